//! Input stage of `ipprotcat`: open a data log (a path, or `-` for
//! standard input), tell plain, gzip and bzip2 apart by their first bytes
//! (never by the name: files get renamed), and cut the decompressed stream
//! into items, one block at a time.
//!
//! Decompression handles what the recorder writes: several gzip members
//! (new members or sync flushes after idle time) and several concatenated
//! bzip2 streams. The stream is read in chunks and every item is handed on
//! as soon as it is complete, so whatever precedes damage (a file cut off
//! by a crash, a corrupt byte) is still shown; the error is kept and
//! reported once the good part is out. Memory use is bounded by the
//! largest block, not by the file (an undated file is one block).
//!
//! The splitting itself ([`Assembler`], [`Splitter`]) is pure; only
//! [`open`] touches the file system.

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{self, Cursor, Read};
use std::time::UNIX_EPOCH;

use super::{Block, Item};
use crate::record::block::{self, Piece, STAMP_LINE_LEN};

/// Bytes asked of the decompressor per read.
pub const CHUNK_BYTES: usize = 64 * 1024;
/// gzip magic (RFC 1952).
const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
/// bzip2 magic: `BZh` and the block size digit `1`..`9`.
const BZIP2_MAGIC: &[u8] = b"BZh";
/// Bytes needed to tell the formats apart.
const SNIFF_BYTES: usize = 4;

/// How a data log is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Plain,
    Gzip,
    Bzip2,
}

impl Format {
    /// Tell the format from the first bytes of a file.
    pub fn sniff(head: &[u8]) -> Format {
        if head.starts_with(GZIP_MAGIC) {
            Format::Gzip
        } else if head.len() >= 4
            && head.starts_with(BZIP2_MAGIC)
            && (b'1'..=b'9').contains(&head[3])
        {
            Format::Bzip2
        } else {
            Format::Plain
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Plain => "plain",
            Format::Gzip => "gzip",
            Format::Bzip2 => "bzip2",
        }
    }
}

/// Why a file could not be read to its end.
#[derive(Debug)]
pub struct ReadError {
    format: Format,
    cause: io::Error,
}

impl fmt::Display for ReadError {
    /// `cannot read: CAUSE` for an OS error, else `cannot decompress gzip:
    /// CAUSE (truncated or corrupt ...)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.cause.raw_os_error().is_some() || self.format == Format::Plain {
            write!(f, "cannot read: {}", self.cause)
        } else {
            write!(
                f,
                "cannot decompress {}: {} (truncated or corrupt; everything before the damage was shown)",
                self.format.name(),
                self.cause
            )
        }
    }
}

/// An opened data log.
pub struct Source {
    format: Format,
    mtime_us: Option<u64>,
    splitter: Splitter<Box<dyn Read>>,
}

/// Open `path` (`-`: standard input) and sniff its format. Errors are those
/// of opening; read errors come with the items (see [`Source::take_error`]).
pub fn open(path: &str) -> io::Result<Source> {
    let (mut raw, mtime_us): (Box<dyn Read>, _) = if path == "-" {
        (Box::new(io::stdin()), None)
    } else {
        let f = File::open(path)?;
        let mtime = f
            .metadata()
            .ok()
            .filter(|m| m.is_file())
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .and_then(|d| u64::try_from(d.as_micros()).ok());
        (Box::new(f), mtime)
    };
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    let sniffed = (&mut raw).take(SNIFF_BYTES as u64).read_to_end(&mut head);
    let format = Format::sniff(&head);
    let whole = Cursor::new(head).chain(raw);
    let reader: Box<dyn Read> = match format {
        Format::Plain => Box::new(whole),
        Format::Gzip => Box::new(flate2::read::MultiGzDecoder::new(whole)),
        Format::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(whole)),
    };
    let mut splitter = Splitter::new(reader);
    // A file that opens but cannot be read (a directory, EIO) is reported
    // like any other read error, after its (empty) output.
    if let Err(e) = sniffed {
        splitter.error = Some(e);
        splitter.eof = true;
    }
    Ok(Source {
        format,
        mtime_us,
        splitter,
    })
}

impl Source {
    /// The format found by sniffing.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Modification time of a regular file, microseconds since the epoch.
    pub fn mtime_us(&self) -> Option<u64> {
        self.mtime_us
    }

    /// The items, read lazily; ends at the end of the file or at the first
    /// read error (see [`Source::take_error`]).
    pub fn items(&mut self) -> &mut Splitter<Box<dyn Read>> {
        &mut self.splitter
    }

    /// The error that ended reading early, if any (once).
    pub fn take_error(&mut self) -> Option<ReadError> {
        let cause = self.splitter.error.take()?;
        Some(ReadError {
            format: self.format,
            cause,
        })
    }
}

/// Turns the pieces of [`block::parse`] into items. A marker opens a
/// block; payload pieces extend the open block (or open an undated one);
/// a stamp right after a marker is emitted before that marker's block,
/// any other stamp closes the open block. Pure.
#[derive(Debug, Default)]
pub struct Assembler {
    open: Option<Block>,
    emitted: bool,
}

impl Assembler {
    /// Take one piece; finished items go to `out`.
    pub fn piece(&mut self, piece: Piece<'_>, out: &mut VecDeque<Item>) {
        match piece {
            Piece::Marker(dir, us) => {
                self.close(out);
                self.open = Some(Block {
                    time_us: Some(us),
                    dir: Some(dir),
                    payload: Vec::new(),
                });
            }
            Piece::Stamp(text) => {
                let keeps_open =
                    matches!(&self.open, Some(b) if b.time_us.is_some() && b.payload.is_empty());
                if !keeps_open {
                    self.close(out);
                }
                self.emit(Item::Stamp(text.to_string()), out);
            }
            Piece::Payload(bytes) => self
                .open
                .get_or_insert_with(Block::default)
                .payload
                .extend_from_slice(bytes),
        }
    }

    /// End of input: close the open block. A file that held nothing at all
    /// is still one (empty, undated) block, unless `damaged` (nothing could
    /// be read).
    pub fn finish(&mut self, damaged: bool, out: &mut VecDeque<Item>) {
        self.close(out);
        if !self.emitted && !damaged {
            self.emit(Item::Block(Block::default()), out);
        }
    }

    fn close(&mut self, out: &mut VecDeque<Item>) {
        if let Some(b) = self.open.take() {
            self.emit(Item::Block(b), out);
        }
    }

    fn emit(&mut self, item: Item, out: &mut VecDeque<Item>) {
        self.emitted = true;
        out.push_back(item);
    }
}

/// Reads a stream in chunks and yields its items. Bytes that may still be
/// the start of a marker or stamp line (the last `STAMP_LINE_LEN - 1`) wait
/// for the next chunk, so lines split across chunks are found, and no byte
/// is scanned more than twice.
pub struct Splitter<R> {
    reader: R,
    buf: Vec<u8>,
    asm: Assembler,
    ready: VecDeque<Item>,
    eof: bool,
    finished: bool,
    error: Option<io::Error>,
}

impl<R: Read> Splitter<R> {
    pub fn new(reader: R) -> Self {
        Splitter {
            reader,
            buf: Vec::new(),
            asm: Assembler::default(),
            ready: VecDeque::new(),
            eof: false,
            finished: false,
            error: None,
        }
    }

    /// The error that ended reading early, if any.
    pub fn error(&self) -> Option<&io::Error> {
        self.error.as_ref()
    }

    /// Read one chunk and split what is decided.
    fn fill(&mut self) {
        let old = self.buf.len();
        self.buf.resize(old + CHUNK_BYTES, 0);
        match self.reader.read(&mut self.buf[old..]) {
            Ok(0) => {
                self.buf.truncate(old);
                self.eof = true;
            }
            Ok(n) => self.buf.truncate(old + n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => self.buf.truncate(old),
            Err(e) => {
                self.buf.truncate(old);
                self.error = Some(e);
                self.eof = true;
            }
        }
        self.split();
    }

    /// Hand every decided piece of `buf` to the assembler and keep only the
    /// undecided tail. A position is decided once a whole stamp line fits
    /// after it (or at the end of input).
    fn split(&mut self) {
        let Splitter {
            buf,
            asm,
            ready,
            eof,
            error,
            ..
        } = self;
        // Input cut off by damage often ends inside a marker line: that
        // fragment is not payload.
        if error.is_some() {
            let from = buf.len().saturating_sub(STAMP_LINE_LEN - 1);
            if let Some(i) = (from..buf.len()).find(|&i| is_cut_line(&buf[i..])) {
                buf.truncate(i);
            }
        }
        let decided = if *eof {
            buf.len()
        } else {
            buf.len().saturating_sub(STAMP_LINE_LEN - 1)
        };
        let mut pos = 0;
        let mut keep_from = buf.len();
        for piece in block::parse(buf) {
            let len = match &piece {
                Piece::Marker(..) => block::MARKER_LINE_LEN,
                Piece::Stamp(_) => STAMP_LINE_LEN,
                Piece::Payload(p) => p.len(),
            };
            let end = pos + len;
            match piece {
                // The trailing payload: a marker may start in its last bytes.
                Piece::Payload(p) if end == buf.len() && decided < end => {
                    let cut = decided.max(pos) - pos;
                    if cut > 0 {
                        asm.piece(Piece::Payload(&p[..cut]), ready);
                    }
                    keep_from = pos + cut;
                }
                other => asm.piece(other, ready),
            }
            pos = end;
        }
        buf.drain(..keep_from);
    }
}

/// Whether `b` is the start of a marker or stamp line, cut short: a whole
/// tag, then only what such a line holds, and no end.
fn is_cut_line(b: &[u8]) -> bool {
    let Some((tag, rest)) = b.split_first_chunk::<8>() else {
        return false;
    };
    if tag == block::MARK_FROM_CLIENT || tag == block::MARK_TO_CLIENT {
        b.len() < block::MARKER_LINE_LEN && rest.iter().all(u8::is_ascii_digit)
    } else if tag == block::MARK_STAMP {
        b.len() < STAMP_LINE_LEN
            && rest
                .iter()
                .all(|c| c.is_ascii_digit() || b"-: +".contains(c))
    } else {
        false
    }
}

impl<R: Read> Iterator for Splitter<R> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Some(item);
            }
            if self.finished {
                return None;
            }
            if self.eof {
                self.asm.finish(self.error.is_some(), &mut self.ready);
                self.finished = true;
            } else {
                self.fill();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::block::{Dir, push_marker, push_stamp};

    /// A reader that hands out at most `step` bytes per read, then fails
    /// with `fail` (if any) instead of reporting the end.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
        fail: bool,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.data.is_empty() {
                return if self.fail {
                    Err(io::Error::new(io::ErrorKind::UnexpectedEof, "cut"))
                } else {
                    Ok(0)
                };
            }
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn block(us: u64, dir: Dir, payload: &[u8]) -> Item {
        Item::Block(Block {
            time_us: Some(us),
            dir: Some(dir),
            payload: payload.to_vec(),
        })
    }

    fn sample() -> Vec<u8> {
        let mut v = Vec::new();
        push_marker(&mut v, Dir::FromClient, 1);
        push_stamp(&mut v, "2026-11-23 20:30:00+01:00");
        v.extend_from_slice(b"hello #848367#12");
        push_marker(&mut v, Dir::ToClient, 2);
        push_marker(&mut v, Dir::ToClient, 3);
        v.extend_from_slice(&[b'x'; 100]);
        push_marker(&mut v, Dir::FromClient, 4);
        v
    }

    fn expected() -> Vec<Item> {
        vec![
            Item::Stamp("2026-11-23 20:30:00+01:00".into()),
            block(1, Dir::FromClient, b"hello #848367#12"),
            block(2, Dir::ToClient, b""),
            block(3, Dir::ToClient, &[b'x'; 100]),
            block(4, Dir::FromClient, b""),
        ]
    }

    #[test]
    fn every_chunking_gives_the_same_items() {
        let data = sample();
        for step in 1..=data.len() {
            let mut s = Splitter::new(Trickle {
                data: &data,
                step,
                fail: false,
            });
            let items: Vec<Item> = s.by_ref().collect();
            assert_eq!(items, expected(), "step {step}");
            assert!(s.error().is_none());
        }
    }

    #[test]
    fn error_keeps_what_came_before() {
        let data = sample();
        let mut s = Splitter::new(Trickle {
            data: &data,
            step: 7,
            fail: true,
        });
        let items: Vec<Item> = s.by_ref().collect();
        assert_eq!(items, expected());
        assert_eq!(
            s.error().map(|e| e.kind()),
            Some(io::ErrorKind::UnexpectedEof)
        );
    }

    #[test]
    fn marker_cut_by_damage_is_not_payload() {
        let mut data = sample();
        data.extend_from_slice(b"tail#948366#17");
        let items: Vec<Item> = Splitter::new(Trickle {
            data: &data,
            step: 5,
            fail: true,
        })
        .collect();
        let mut want = expected();
        want[4] = block(4, Dir::FromClient, b"tail");
        assert_eq!(items, want);
        // Without damage the same bytes are payload.
        let items: Vec<Item> = Splitter::new(&data[..]).collect();
        want[4] = block(4, Dir::FromClient, b"tail#948366#17");
        assert_eq!(items, want);
        // A lone stamp fragment too, and a short one stays.
        assert!(is_cut_line(b"#748369#2026-11-23 2"));
        assert!(!is_cut_line(b"#74836"));
        assert!(!is_cut_line(b"#848367#12x"));
    }

    #[test]
    fn undated_and_empty() {
        let items: Vec<Item> = Splitter::new(&b"plain bytes"[..]).collect();
        assert_eq!(
            items,
            vec![Item::Block(Block {
                payload: b"plain bytes".to_vec(),
                ..Block::default()
            })]
        );
        let items: Vec<Item> = Splitter::new(&b""[..]).collect();
        assert_eq!(items, vec![Item::Block(Block::default())]);
    }

    #[test]
    fn stamps_without_markers_split_undated_payload() {
        let mut v = Vec::new();
        push_stamp(&mut v, "2026-11-23 20:30:00+01:00");
        v.extend_from_slice(b"one");
        push_stamp(&mut v, "2026-11-23 20:31:00+01:00");
        v.extend_from_slice(b"two");
        let items: Vec<Item> = Splitter::new(&v[..]).collect();
        let undated = |p: &[u8]| {
            Item::Block(Block {
                payload: p.to_vec(),
                ..Block::default()
            })
        };
        assert_eq!(
            items,
            vec![
                Item::Stamp("2026-11-23 20:30:00+01:00".into()),
                undated(b"one"),
                Item::Stamp("2026-11-23 20:31:00+01:00".into()),
                undated(b"two"),
            ]
        );
    }

    #[test]
    fn sniffing() {
        assert_eq!(Format::sniff(&[0x1f, 0x8b, 8, 0]), Format::Gzip);
        assert_eq!(Format::sniff(b"BZh9"), Format::Bzip2);
        assert_eq!(Format::sniff(b"BZhx"), Format::Plain);
        assert_eq!(Format::sniff(b"BZh"), Format::Plain);
        assert_eq!(Format::sniff(b"#848"), Format::Plain);
        assert_eq!(Format::sniff(b""), Format::Plain);
    }
}
