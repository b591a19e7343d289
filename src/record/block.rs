//! The data-log block format, shared by the recorder and `ipprotcat`.
//!
//! A data log is a sequence of blocks, one per read from one side. With
//! `-M` every block starts with a marker line: `#848367#` (from the client)
//! or `#948366#` (to the client), 16 decimal digits of microseconds since
//! the epoch, and `\n`. With `-t` an ISO stamp line `#748369#<time>\n` may
//! follow the marker of a client block. The payload follows unchanged (or
//! filtered by `-s`). Payload lengths are not stored: a reader splits the
//! stream at marker lines, so a payload that itself contains a byte-exact
//! marker line is ambiguous (the original format has the same property).
//!
//! Pure: bytes in, bytes out. Never does I/O.

/// Marker of a block of data from the client (connection establisher).
pub const MARK_FROM_CLIENT: &[u8; 8] = b"#848367#";
/// Marker of a block of data sent to the client.
pub const MARK_TO_CLIENT: &[u8; 8] = b"#948366#";
/// Marker of an ISO time stamp line (`-t`).
pub const MARK_STAMP: &[u8; 8] = b"#748369#";
/// Digits of the microsecond time in a marker line.
pub const MARKER_DIGITS: usize = 16;
/// Whole length of a marker line: tag, digits, newline.
pub const MARKER_LINE_LEN: usize = 8 + MARKER_DIGITS + 1;
/// Length of the text of a stamp: `yyyy-mm-dd HH:MM:SS+hh:mm`.
pub const STAMP_TEXT_LEN: usize = 25;
/// Whole length of a stamp line: tag, text, newline.
pub const STAMP_LINE_LEN: usize = 8 + STAMP_TEXT_LEN + 1;

/// Direction of a relayed chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// From the client towards the destination.
    FromClient,
    /// From the destination towards the client.
    ToClient,
}

impl Dir {
    /// The marker tag of this direction.
    pub fn marker(self) -> &'static [u8; 8] {
        match self {
            Dir::FromClient => MARK_FROM_CLIENT,
            Dir::ToClient => MARK_TO_CLIENT,
        }
    }
}

/// Append a marker line for a block of `dir` at `epoch_us`.
pub fn push_marker(out: &mut Vec<u8>, dir: Dir, epoch_us: u64) {
    out.extend_from_slice(dir.marker());
    // 16 digits hold any time up to the year 2286.
    let mut digits = [b'0'; MARKER_DIGITS];
    let mut v = epoch_us;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&digits);
    out.push(b'\n');
}

/// Append a stamp line; `text` is `yyyy-mm-dd HH:MM:SS+hh:mm`.
pub fn push_stamp(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(MARK_STAMP);
    out.extend_from_slice(text.as_bytes());
    out.push(b'\n');
}

/// Whether `-s` keeps byte `b`: CR, LF, space, tab and graphic ASCII.
pub fn is_kept(b: u8) -> bool {
    matches!(b, b'\r' | b'\n' | b' ' | b'\t' | 0x21..=0x7e)
}

/// Append `data` filtered by `-s`: every run of other bytes becomes one
/// space.
pub fn push_printable(out: &mut Vec<u8>, data: &[u8]) {
    let mut in_run = false;
    for &b in data {
        if is_kept(b) {
            out.push(b);
            in_run = false;
        } else if !in_run {
            out.push(b' ');
            in_run = true;
        }
    }
}

/// One piece of a parsed data log.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// A marker line: direction and epoch microseconds.
    Marker(Dir, u64),
    /// A stamp line with its text.
    Stamp(&'a str),
    /// Payload bytes (a maximal run between marker or stamp lines).
    Payload(&'a [u8]),
}

/// Parse a marker line at the start of `b`.
fn marker_at(b: &[u8]) -> Option<(Dir, u64)> {
    if b.len() < MARKER_LINE_LEN || b[MARKER_LINE_LEN - 1] != b'\n' {
        return None;
    }
    let dir = match &b[..8] {
        t if t == MARK_FROM_CLIENT => Dir::FromClient,
        t if t == MARK_TO_CLIENT => Dir::ToClient,
        _ => return None,
    };
    let mut v: u64 = 0;
    for &d in &b[8..8 + MARKER_DIGITS] {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some((dir, v))
}

/// Parse a stamp line at the start of `b`.
fn stamp_at(b: &[u8]) -> Option<&str> {
    if b.len() < STAMP_LINE_LEN || &b[..8] != MARK_STAMP || b[STAMP_LINE_LEN - 1] != b'\n' {
        return None;
    }
    let text = std::str::from_utf8(&b[8..8 + STAMP_TEXT_LEN]).ok()?;
    let shape = text.bytes().enumerate().all(|(i, c)| match i {
        4 | 7 => c == b'-',
        10 => c == b' ',
        13 | 16 | 22 => c == b':',
        19 => c == b'+' || c == b'-',
        _ => c.is_ascii_digit(),
    });
    shape.then_some(text)
}

/// Split a whole data log (or a recovered prefix of one) into pieces.
///
/// A marker or stamp line is recognised anywhere (the recorder writes no
/// separator between a payload and the next marker).
pub fn parse(data: &[u8]) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut start = 0; // start of the pending payload
    let mut i = 0;
    while let Some(at) = memchr::memchr(b'#', &data[i..]) {
        i += at;
        let rest = &data[i..];
        let hit = if let Some((dir, us)) = marker_at(rest) {
            Some((Piece::Marker(dir, us), MARKER_LINE_LEN))
        } else {
            stamp_at(rest).map(|t| (Piece::Stamp(t), STAMP_LINE_LEN))
        };
        if let Some((piece, len)) = hit {
            if start < i {
                out.push(Piece::Payload(&data[start..i]));
            }
            out.push(piece);
            i += len;
            start = i;
        } else {
            i += 1;
        }
    }
    if start < data.len() {
        out.push(Piece::Payload(&data[start..]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_is_25_bytes_zero_padded() {
        let mut v = Vec::new();
        push_marker(&mut v, Dir::FromClient, 1_700_000_000_123_456);
        assert_eq!(v, b"#848367#1700000000123456\n");
        v.clear();
        push_marker(&mut v, Dir::ToClient, 42);
        assert_eq!(v, b"#948366#0000000000000042\n");
    }

    #[test]
    fn printable_collapses_runs() {
        let mut v = Vec::new();
        push_printable(&mut v, b"a\x00\x01b\r\n\tc\xff");
        assert_eq!(v, b"a b\r\n\tc ");
    }

    #[test]
    fn parse_round_trip() {
        let mut v = Vec::new();
        push_marker(&mut v, Dir::FromClient, 1);
        push_stamp(&mut v, "2026-11-23 20:30:00+01:00");
        v.extend_from_slice(b"hello#8");
        push_marker(&mut v, Dir::ToClient, 2);
        push_marker(&mut v, Dir::ToClient, 3);
        v.extend_from_slice(b"world");
        let p = parse(&v);
        assert_eq!(
            p,
            vec![
                Piece::Marker(Dir::FromClient, 1),
                Piece::Stamp("2026-11-23 20:30:00+01:00"),
                Piece::Payload(b"hello#8"),
                Piece::Marker(Dir::ToClient, 2),
                Piece::Marker(Dir::ToClient, 3),
                Piece::Payload(b"world"),
            ]
        );
    }

    #[test]
    fn parse_undated() {
        assert_eq!(parse(b"plain"), vec![Piece::Payload(b"plain")]);
        assert!(parse(b"").is_empty());
    }
}
