//! Output formats of `ipprotcat` for one item at a time: text (the
//! default), hexdump (`-x`), JSON (`--json`), raw payload (`--raw`), and
//! the per-file `--summary`. Pure: items in, bytes appended to a buffer;
//! the caller supplies the local UTC offset for an instant (`tz`, seconds
//! since the epoch to seconds east of UTC) and does the writing.

use base64::Engine;

use super::{Block, Item, stamp_epoch_us};
use crate::log::hexdump::hexdump;
use crate::log::timefmt::LocalTime;
use crate::record::block::Dir;

/// Microseconds per second.
const US_PER_SEC: i64 = 1_000_000;

/// An instant (epoch microseconds) in local time.
fn local(us: i64, tz: &dyn Fn(i64) -> i32) -> LocalTime {
    LocalTime {
        epoch_us: us,
        offset: tz(us.div_euclid(US_PER_SEC)),
    }
}

/// A marker time as `yyyy-mm-dd HH:MM:SS.uuuuuu+hh:mm`, local time.
pub fn block_time(us: u64, tz: &dyn Fn(i64) -> i32) -> String {
    let t = local(i64::try_from(us).unwrap_or(i64::MAX), tz);
    // RFC 3339 with a space instead of the `T`, as in every time ipprotd
    // shows to people.
    t.rfc3339_us().replacen('T', " ", 1)
}

/// The arrow of a direction: `>>` from the client, `<<` to it, `--` when
/// unknown.
fn arrow(dir: Option<Dir>) -> &'static str {
    match dir {
        Some(Dir::FromClient) => ">>",
        Some(Dir::ToClient) => "<<",
        None => "--",
    }
}

/// `TIME ARROW N` (or `- -- N` for an undated block) and a newline.
fn header(b: &Block, tz: &dyn Fn(i64) -> i32, out: &mut Vec<u8>) {
    let time = b
        .time_us
        .map_or_else(|| "-".to_string(), |us| block_time(us, tz));
    out.extend_from_slice(format!("{time} {} {}\n", arrow(b.dir), b.payload.len()).as_bytes());
}

/// `TEXT -- stamp` and a newline.
fn stamp_line(text: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b" -- stamp\n");
}

/// Append `data` with every byte other than graphic ASCII, space, tab, CR
/// and LF written as `\xNN` (lower-case hex), and `\` as `\\`.
pub fn escape(data: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in data {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' | b'\r' | b'\t' | 0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
        }
    }
}

/// Default format: the header line, then the escaped payload, ended by a
/// newline if it does not end in one (the header's byte count tells).
pub fn text(item: &Item, tz: &dyn Fn(i64) -> i32, out: &mut Vec<u8>) {
    match item {
        Item::Stamp(t) => stamp_line(t, out),
        Item::Block(b) => {
            header(b, tz, out);
            escape(&b.payload, out);
            if b.payload.last().is_some_and(|&c| c != b'\n') {
                out.push(b'\n');
            }
        }
    }
}

/// `-x`: the header line, then the payload as a hexdump.
pub fn hex(item: &Item, tz: &dyn Fn(i64) -> i32, out: &mut Vec<u8>) {
    match item {
        Item::Stamp(t) => stamp_line(t, out),
        Item::Block(b) => {
            header(b, tz, out);
            out.extend_from_slice(hexdump(&b.payload).as_bytes());
        }
    }
}

/// `--raw`: the payload bytes, exactly.
pub fn raw(item: &Item, out: &mut Vec<u8>) {
    if let Item::Block(b) = item {
        out.extend_from_slice(&b.payload);
    }
}

/// Append `s` as a JSON string literal.
pub fn json_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if u32::from(c) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", u32::from(c)).as_bytes());
            }
            c => {
                let mut utf8 = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// `--json`: one object per item and a newline. Keys: `file`, `time`
/// (RFC 3339 or null), `time_us` (or null), `dir` (`in`, `out`, `stamp` or
/// null), `bytes`, `data_b64`.
pub fn json(file: &str, item: &Item, tz: &dyn Fn(i64) -> i32, out: &mut Vec<u8>) {
    let (time, time_us, dir, payload): (Option<String>, Option<i64>, Option<&str>, &[u8]) =
        match item {
            Item::Stamp(t) => (
                Some(t.replacen(' ', "T", 1)),
                stamp_epoch_us(t),
                Some("stamp"),
                &[],
            ),
            Item::Block(b) => (
                b.time_us
                    .map(|us| local(i64::try_from(us).unwrap_or(i64::MAX), tz).rfc3339_us()),
                b.time_us.and_then(|us| i64::try_from(us).ok()),
                b.dir.map(|d| match d {
                    Dir::FromClient => "in",
                    Dir::ToClient => "out",
                }),
                &b.payload,
            ),
        };
    out.extend_from_slice(b"{\"file\":");
    json_str(file, out);
    out.extend_from_slice(b",\"time\":");
    match &time {
        Some(t) => json_str(t, out),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"time_us\":");
    match time_us {
        Some(us) => out.extend_from_slice(us.to_string().as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"dir\":");
    match dir {
        Some(d) => json_str(d, out),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(format!(",\"bytes\":{},\"data_b64\":\"", payload.len()).as_bytes());
    out.extend_from_slice(
        base64::engine::general_purpose::STANDARD
            .encode(payload)
            .as_bytes(),
    );
    out.extend_from_slice(b"\"}\n");
}

/// Blocks and payload bytes of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Count {
    pub blocks: u64,
    pub bytes: u64,
}

impl Count {
    fn add(&mut self, b: &Block) {
        self.blocks += 1;
        self.bytes += b.payload.len() as u64;
    }
}

/// `--summary` of one file, gathered item by item.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub from_client: Count,
    pub to_client: Count,
    pub undated: Count,
    /// First and last marker times, in file order.
    marked: Option<(i64, i64)>,
    /// First and last stamp times, used when the file has no markers.
    stamped: Option<(i64, i64)>,
}

impl Summary {
    pub fn add(&mut self, item: &Item) {
        fn span(s: &mut Option<(i64, i64)>, t: i64) {
            *s = Some(s.map_or((t, t), |(first, _)| (first, t)));
        }
        match item {
            Item::Stamp(t) => {
                if let Some(us) = stamp_epoch_us(t) {
                    span(&mut self.stamped, us);
                }
            }
            Item::Block(b) => {
                match b.dir {
                    Some(Dir::FromClient) => self.from_client.add(b),
                    Some(Dir::ToClient) => self.to_client.add(b),
                    None => self.undated.add(b),
                }
                if let Some(us) = b.time_us.and_then(|us| i64::try_from(us).ok()) {
                    span(&mut self.marked, us);
                }
            }
        }
    }

    /// The file name, then one indented line per field: `in`, `out`,
    /// `undated` (only if there is undated data), `first`, `last`.
    pub fn render(&self, file: &str, tz: &dyn Fn(i64) -> i32, out: &mut Vec<u8>) {
        let mut s = format!("{file}\n");
        let mut count = |label: &str, c: Count| {
            s.push_str(&format!(
                "  {label:<8} {:>6} blocks {:>12} bytes\n",
                c.blocks, c.bytes
            ));
        };
        count("in", self.from_client);
        count("out", self.to_client);
        if self.undated.blocks > 0 {
            count("undated", self.undated);
        }
        let show = |us: Option<i64>| {
            us.map_or_else(
                || "-".to_string(),
                |us| local(us, tz).rfc3339_us().replacen('T', " ", 1),
            )
        };
        let span = self.marked.or(self.stamped);
        s.push_str(&format!("  {:<8} {}\n", "first", show(span.map(|s| s.0))));
        s.push_str(&format!("  {:<8} {}\n", "last", show(span.map(|s| s.1))));
        out.extend_from_slice(s.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cet(_: i64) -> i32 {
        3600
    }

    fn block(time_us: Option<u64>, dir: Option<Dir>, payload: &[u8]) -> Item {
        Item::Block(Block {
            time_us,
            dir,
            payload: payload.to_vec(),
        })
    }

    fn text_of(item: &Item) -> String {
        let mut v = Vec::new();
        text(item, &cet, &mut v);
        String::from_utf8(v).expect("escaped output is ASCII")
    }

    #[test]
    fn text_headers_and_escapes() {
        let t = 1_795_465_805_123_456;
        assert_eq!(
            text_of(&block(Some(t), Some(Dir::FromClient), b"GET /\r\n")),
            "2026-11-23 21:30:05.123456+01:00 >> 7\nGET /\r\n"
        );
        assert_eq!(
            text_of(&block(Some(t), Some(Dir::ToClient), b"a\\b\x00\xff\tc")),
            "2026-11-23 21:30:05.123456+01:00 << 7\na\\\\b\\x00\\xff\tc\n"
        );
        assert_eq!(
            text_of(&block(Some(5), Some(Dir::ToClient), b"")),
            "1970-01-01 01:00:00.000005+01:00 << 0\n"
        );
        assert_eq!(text_of(&block(None, None, b"xyz")), "- -- 3\nxyz\n");
        assert_eq!(
            text_of(&Item::Stamp("2026-11-23 20:30:00+01:00".into())),
            "2026-11-23 20:30:00+01:00 -- stamp\n"
        );
    }

    #[test]
    fn hex_format() {
        let mut v = Vec::new();
        hex(&block(None, None, b"hi"), &cet, &mut v);
        assert_eq!(
            String::from_utf8_lossy(&v),
            "- -- 2\n00000000  68 69                                             |hi|\n"
        );
    }

    #[test]
    fn json_objects() {
        let mut v = Vec::new();
        json(
            "a\"b",
            &block(Some(1_000_001), Some(Dir::FromClient), b"hi"),
            &cet,
            &mut v,
        );
        assert_eq!(
            String::from_utf8_lossy(&v),
            "{\"file\":\"a\\\"b\",\"time\":\"1970-01-01T01:00:01.000001+01:00\",\"time_us\":1000001,\"dir\":\"in\",\"bytes\":2,\"data_b64\":\"aGk=\"}\n"
        );
        v.clear();
        json("f", &block(None, None, b""), &cet, &mut v);
        assert_eq!(
            String::from_utf8_lossy(&v),
            "{\"file\":\"f\",\"time\":null,\"time_us\":null,\"dir\":null,\"bytes\":0,\"data_b64\":\"\"}\n"
        );
        v.clear();
        json(
            "f",
            &Item::Stamp("1970-01-01 01:00:01+01:00".into()),
            &cet,
            &mut v,
        );
        assert_eq!(
            String::from_utf8_lossy(&v),
            "{\"file\":\"f\",\"time\":\"1970-01-01T01:00:01+01:00\",\"time_us\":1000000,\"dir\":\"stamp\",\"bytes\":0,\"data_b64\":\"\"}\n"
        );
    }

    #[test]
    fn json_escapes_controls() {
        let mut v = Vec::new();
        json_str("\u{1}\n\\é", &mut v);
        assert_eq!(String::from_utf8_lossy(&v), "\"\\u0001\\n\\\\é\"");
    }

    #[test]
    fn summary_counts_and_span() {
        let mut s = Summary::default();
        s.add(&block(Some(2_000_000), Some(Dir::FromClient), b"abc"));
        s.add(&Item::Stamp("1970-01-01 01:00:09+01:00".into()));
        s.add(&block(Some(3_000_000), Some(Dir::ToClient), b""));
        s.add(&block(Some(4_000_000), Some(Dir::ToClient), b"12345"));
        let mut v = Vec::new();
        s.render("f.gz", &cet, &mut v);
        assert_eq!(
            String::from_utf8_lossy(&v),
            "f.gz\n\
             \x20 in            1 blocks            3 bytes\n\
             \x20 out           2 blocks            5 bytes\n\
             \x20 first    1970-01-01 01:00:02.000000+01:00\n\
             \x20 last     1970-01-01 01:00:04.000000+01:00\n"
        );
    }

    #[test]
    fn summary_of_undated_file_uses_stamps() {
        let mut s = Summary::default();
        s.add(&Item::Stamp("1970-01-01 01:00:09+01:00".into()));
        s.add(&block(None, None, b"abc"));
        let mut v = Vec::new();
        s.render("f", &cet, &mut v);
        let text = String::from_utf8_lossy(&v).into_owned();
        assert!(
            text.contains("  undated       1 blocks            3 bytes\n"),
            "{text}"
        );
        assert!(text.ends_with("  first    1970-01-01 01:00:09.000000+01:00\n  last     1970-01-01 01:00:09.000000+01:00\n"));
    }
}
