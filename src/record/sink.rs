//! The data-log file of one connection: named
//! `<prefix>_<yyyy-mm-dd_HHMMSS>_<n>_<client_ip>[.gz|.bz2]`, created with
//! O_EXCL|O_NOFOLLOW and mode 0640, written plain, gzip or bzip2 while the
//! relay runs. After [`FLUSH_IDLE`] without data everything so far reaches
//! the file (gzip: sync flush; bzip2: the stream is ended and a new one
//! begun), so a SIGKILL loses nothing older; while data keeps coming, that
//! happens at least every [`FLUSH_BUSY`]. A write error stops recording
//! (logged once per episode across all children) and never the relay.
//!
//! Where someone will see the digest (an entry format with `%{sha256}`,
//! JSON entries, a hook: [`crate::config::Config::shows_sha256`]), every
//! byte that reaches the file also goes through SHA-256 as it is written
//! (after compression), so `%{sha256}` is the digest of the file as it is
//! on disk when the connection ends, without reading it back. Nobody else
//! pays for it: the hash is the dearest part of recording.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, IoSlice, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bzip2::write::BzEncoder;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use crate::config::{Compress, DataLog, Record};
use crate::log::timefmt::LocalTime;
use crate::record::block::{self, Dir};

/// Idle time after which recorded data is flushed to the file.
pub const FLUSH_IDLE: std::time::Duration = std::time::Duration::from_secs(1);
/// While data keeps coming, everything recorded is flushed at least this
/// often (SPEC "Data log", crash safety).
pub const FLUSH_BUSY: std::time::Duration = std::time::Duration::from_secs(10);
/// Default gzip level for `-z` (`--compress-level` overrides it): gzip's own default; with the zlib-rs backend it
/// runs 2.5 times as fast as `gzip -6` (measurements in Cargo.toml).
pub const GZIP_LEVEL: u32 = 6;
/// Default bzip2 block size for `-j` (`--compress-level` overrides it), in 100 kB units: 12% faster than 9 for 8%
/// larger files (measurements in Cargo.toml).
pub const BZIP2_LEVEL: u32 = 6;
/// Write buffer of a plain data log.
const PLAIN_BUFFER: usize = 64 * 1024;

/// The data log file, hashing exactly the bytes the OS accepted. The
/// digest is shared with the [`Recorder`], so bytes a broken encoder still
/// writes when it is dropped are counted too.
struct HashedFile {
    file: File,
    /// `None`: no digest wanted.
    sha: Option<Rc<RefCell<Sha256>>>,
}

impl HashedFile {
    fn hash_written(&self, bufs: &[IoSlice<'_>], mut n: usize) {
        let Some(sha) = &self.sha else { return };
        let mut sha = sha.borrow_mut();
        for b in bufs {
            if n == 0 {
                break;
            }
            let take = n.min(b.len());
            sha.update(&b[..take]);
            n -= take;
        }
    }
}

impl Write for HashedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        if let Some(sha) = &self.sha {
            sha.borrow_mut().update(&buf[..n]);
        }
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let n = self.file.write_vectored(bufs)?;
        self.hash_written(bufs, n);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

enum Out {
    Plain(BufWriter<HashedFile>),
    Gzip(GzEncoder<HashedFile>),
    /// The encoder and its level (a flush begins a new stream with it).
    Bzip2(BzEncoder<HashedFile>, u32),
}

/// Write `head` and `body` with as few write(2) calls as the OS allows.
fn write_all_vectored(f: &mut HashedFile, head: &[u8], body: &[u8]) -> io::Result<()> {
    let mut bufs = [IoSlice::new(head), IoSlice::new(body)];
    let mut bufs = &mut bufs[..];
    while !bufs.is_empty() {
        match f.write_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl Out {
    /// Write one block: its header lines (may be empty) and its payload.
    fn write_block(&mut self, head: &[u8], body: &[u8]) -> io::Result<()> {
        match self {
            // a large block goes straight to the file, header and payload
            // in one writev; small ones gather in the buffer
            Out::Plain(w) if head.len() + body.len() >= PLAIN_BUFFER => {
                w.flush()?;
                write_all_vectored(w.get_mut(), head, body)
            }
            Out::Plain(w) => w.write_all(head).and_then(|_| w.write_all(body)),
            Out::Gzip(w) => w.write_all(head).and_then(|_| w.write_all(body)),
            Out::Bzip2(w, _) => w.write_all(head).and_then(|_| w.write_all(body)),
        }
    }

    /// Make everything written so far recoverable from the file.
    fn flush(self) -> io::Result<Out> {
        Ok(match self {
            Out::Plain(mut w) => {
                w.flush()?;
                Out::Plain(w)
            }
            Out::Gzip(mut w) => {
                w.flush()?;
                Out::Gzip(w)
            }
            Out::Bzip2(w, level) => {
                // a block flush keeps the block's last bits in memory:
                // end this stream and start a new one
                let f = w.finish()?;
                Out::Bzip2(BzEncoder::new(f, bzip2::Compression::new(level)), level)
            }
        })
    }

    fn finish(self) -> io::Result<()> {
        match self {
            Out::Plain(w) => w.into_inner().map(drop).map_err(|e| e.into_error()),
            Out::Gzip(w) => w.finish().map(drop),
            Out::Bzip2(w, _) => w.finish().map(drop),
        }
    }
}

/// What [`Recorder::finish`] tells.
pub struct Finished {
    /// False if recording failed at any point (status `record-error`).
    pub ok: bool,
    /// SHA-256 (lower-case hex) of every byte written to the file, when
    /// it was asked for.
    pub sha256: Option<String>,
}

/// The data log of one connection.
pub struct Recorder {
    cfg: DataLog,
    /// For error messages only.
    path: PathBuf,
    /// The writer; `None` once a write failed (status `record-error`).
    out: Option<Out>,
    sha: Option<Rc<RefCell<Sha256>>>,
    scratch: Vec<u8>,
    /// Data written since the last flush.
    dirty: bool,
    /// When the oldest data not yet flushed was written.
    dirty_since: Instant,
    last_data: Instant,
    last_stamp: Option<Instant>,
}

/// The file name of a connection's data log.
pub fn file_name(cfg: &DataLog, start: &LocalTime, conn: u64, client_ip: &str) -> PathBuf {
    let mut s = cfg.prefix.clone().into_os_string();
    s.push(format!(
        "_{}_{}_{}{}",
        start.file_stamp(),
        conn,
        client_ip,
        cfg.compress.extension()
    ));
    PathBuf::from(s)
}

fn epoch_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

impl Recorder {
    /// Create the file; never overwrites, never follows a symlink.
    /// `hash`: compute the file's SHA-256 as it is written.
    pub fn create(cfg: &DataLog, path: PathBuf, hash: bool) -> io::Result<Recorder> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o640)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)?;
        // 0640 whatever the umask (SPEC: the file's mode is part of the format)
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o640))?;
        crate::log::published::file_created();
        let sha = hash.then(|| Rc::new(RefCell::new(Sha256::new())));
        let file = HashedFile {
            file,
            sha: sha.clone(),
        };
        let out = match cfg.compress {
            Compress::None => Out::Plain(BufWriter::with_capacity(PLAIN_BUFFER, file)),
            Compress::Gzip => {
                let level = cfg.compress_level.unwrap_or(GZIP_LEVEL);
                Out::Gzip(GzEncoder::new(file, flate2::Compression::new(level)))
            }
            Compress::Bzip2 => {
                let level = cfg.compress_level.unwrap_or(BZIP2_LEVEL);
                Out::Bzip2(BzEncoder::new(file, bzip2::Compression::new(level)), level)
            }
        };
        Ok(Recorder {
            cfg: cfg.clone(),
            path,
            out: Some(out),
            sha,
            scratch: Vec::with_capacity(256),
            dirty: false,
            dirty_since: Instant::now(),
            last_data: Instant::now(),
            last_stamp: None,
        })
    }

    fn fail(&mut self, e: io::Error) {
        // once per episode across all children (a full disk fails them
        // all), until some data log is written again
        if crate::log::published::record_error_begin() {
            crate::log::error(&format!(
                "-f: cannot write data log {}: {e}; recording stopped, relaying goes on",
                self.path.display()
            ));
        }
        // dropping a broken encoder may try to write once more: harmless;
        // from now on `out` is None, which is what "failed" means
        self.out = None;
    }

    /// Whether the payload of chunks from the side `dir` comes from goes
    /// into the file (false for the direction `-l`/`-L` leave out, and
    /// once recording failed): if not, [`Recorder::chunk_read_at`] never
    /// looks at their bytes, only at their number.
    pub fn records(&self, dir: Dir) -> bool {
        self.out.is_some() && self.recorded(dir)
    }

    fn recorded(&self, dir: Dir) -> bool {
        match self.cfg.record {
            Record::Both => true,
            Record::FromClient => dir == Dir::FromClient,
            Record::ToClient => dir == Dir::ToClient,
        }
    }

    /// Record one chunk read from the side `dir` comes from.
    pub fn chunk(&mut self, dir: Dir, data: &[u8]) {
        self.chunk_read_at(dir, data, None);
    }

    /// [`Recorder::chunk`] with the time it was read (epoch microseconds)
    /// when the caller has it, so that its marker and the statement audit
    /// tell the same time.
    pub fn chunk_read_at(&mut self, dir: Dir, data: &[u8], read_us: Option<u64>) {
        let recorded = self.recorded(dir);
        let Some(out) = self.out.as_mut() else {
            return;
        };
        self.scratch.clear();
        if self.cfg.markers {
            block::push_marker(&mut self.scratch, dir, read_us.unwrap_or_else(epoch_us));
        }
        if let (Dir::FromClient, Some(every)) = (dir, self.cfg.stamp_every) {
            let now = Instant::now();
            if self
                .last_stamp
                .is_none_or(|t| now.duration_since(t) >= every)
            {
                self.last_stamp = Some(now);
                block::push_stamp(&mut self.scratch, &crate::os::time::now_local().iso());
            }
        }
        let body: &[u8] = match (recorded, self.cfg.printable) {
            (false, _) => &[],
            (true, false) => data,
            (true, true) => {
                block::push_printable(&mut self.scratch, data);
                &[]
            }
        };
        if self.scratch.is_empty() && body.is_empty() {
            return;
        }
        match out.write_block(&self.scratch, body) {
            Ok(()) => {
                let now = Instant::now();
                if !self.dirty {
                    self.dirty = true;
                    self.dirty_since = now;
                }
                self.last_data = now;
            }
            Err(e) => self.fail(e),
        }
    }

    /// When the next flush is due, if anything waits for one: after
    /// [`FLUSH_IDLE`] without data, or [`FLUSH_BUSY`] after the oldest
    /// data not yet flushed.
    pub fn deadline(&self) -> Option<Instant> {
        (self.dirty && self.out.is_some())
            .then(|| (self.last_data + FLUSH_IDLE).min(self.dirty_since + FLUSH_BUSY))
    }

    /// Flush everything recorded so far to the file.
    pub fn flush(&mut self) {
        let wrote = std::mem::take(&mut self.dirty);
        if let Some(out) = self.out.take() {
            match out.flush() {
                Ok(o) => {
                    if wrote {
                        crate::log::published::record_error_end();
                    }
                    self.out = Some(o);
                }
                Err(e) => self.fail(e),
            }
        }
    }

    /// Complete the file (a valid gzip/bzip2 stream) and close it.
    pub fn finish(mut self) -> Finished {
        // no writer left means a write failed earlier
        let ok = match self.out.take().map(Out::finish) {
            None => false,
            Some(Ok(())) => {
                if self.dirty {
                    crate::log::published::record_error_end();
                }
                true
            }
            Some(Err(e)) => {
                self.fail(e);
                false
            }
        };
        // every writer holding the digest is gone now
        let sha256 = self
            .sha
            .map(|sha| hex(&std::mem::take(&mut *sha.borrow_mut()).finalize()));
        Finished { ok, sha256 }
    }
}
