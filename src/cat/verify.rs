//! `ipprotcat --verify CONNLOG... [--archive DIR]`: check recordings
//! against the SHA-256 their connection-log entries carry.
//!
//! An entry is a JSON object (`-C json`: keys `file` and `sha256`) or a
//! text line; in text, the data log is the field that is an absolute path
//! and the digest the field of 64 hex digits, fields being separated by
//! `|` (as in `-C '%s|%f|%{sha256}'`) or, failing that, by blanks. Entries
//! that name no data log or no digest (the default format, `-` values,
//! open entries) are not checked. Each checked file gives one line:
//! `OK PATH`, `MISMATCH PATH` or `MISSING PATH` (PATH is where the file
//! was found, else where the entry said). With `--archive DIR`, a file no
//! longer at its path is looked up by its base name under DIR, where the
//! archive hook files it as `yyyy/mm/dd/NAME` (or `NAME.N`).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Read size while hashing a recording.
const HASH_CHUNK: usize = 64 * 1024;
/// How deep `--archive` looks below DIR (the hook uses three levels).
const ARCHIVE_DEPTH: usize = 8;
/// Length of a SHA-256 in hex.
const SHA256_HEX_LEN: usize = 64;

/// The verdict on one recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Mismatch,
    Missing,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "OK",
            Verdict::Mismatch => "MISMATCH",
            Verdict::Missing => "MISSING",
        }
    }
}

/// What one entry asks to check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub file: PathBuf,
    pub sha256: String,
}

fn is_sha256(s: &str) -> bool {
    s.len() == SHA256_HEX_LEN && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn claim_in(fields: &[&str]) -> Option<Claim> {
    let sha = fields.iter().map(|f| f.trim()).find(|f| is_sha256(f))?;
    let file = fields
        .iter()
        .map(|f| f.trim())
        .find(|f| f.starts_with('/'))?;
    Some(Claim {
        file: PathBuf::from(file),
        sha256: sha.to_ascii_lowercase(),
    })
}

/// The claim of one connection-log line, if it makes one. Pure.
pub fn parse_entry(line: &str) -> Option<Claim> {
    let line = line.trim_end_matches(['\n', '\r']);
    if line.trim_start().starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        let file = v.get("file")?.as_str()?;
        let sha = v.get("sha256")?.as_str()?;
        if !is_sha256(sha) || file.is_empty() {
            return None;
        }
        return Some(Claim {
            file: PathBuf::from(file),
            sha256: sha.to_ascii_lowercase(),
        });
    }
    let bars: Vec<&str> = line.split('|').collect();
    claim_in(&bars).or_else(|| claim_in(&line.split_ascii_whitespace().collect::<Vec<_>>()))
}

/// SHA-256 of a file, lower-case hex.
pub fn hash_file(path: &Path) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; HASH_CHUNK];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => sha.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(crate::record::sink::hex(&sha.finalize()))
}

/// Base names under an archive directory, each with every path it has
/// (the archive hook adds `.N` when a name repeats).
#[derive(Default)]
pub struct Archive {
    by_name: HashMap<String, Vec<PathBuf>>,
}

impl Archive {
    /// Index `dir`; unreadable subdirectories are skipped with a warning.
    pub fn scan(dir: &Path) -> io::Result<Archive> {
        let mut a = Archive::default();
        std::fs::read_dir(dir)?;
        a.walk(dir, 0);
        for paths in a.by_name.values_mut() {
            paths.sort();
        }
        Ok(a)
    }

    fn walk(&mut self, dir: &Path, depth: usize) {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                super::warn(&format!("--archive: cannot read {}: {e}", dir.display()));
                return;
            }
        };
        for e in entries.flatten() {
            let path = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() && depth < ARCHIVE_DEPTH => self.walk(&path, depth + 1),
                Ok(t) if t.is_file() => {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let base = strip_repeat(&name).to_string();
                    self.by_name.entry(base).or_default().push(path);
                }
                _ => {}
            }
        }
    }

    /// Every archived copy of a file named `base`.
    pub fn lookup(&self, base: &str) -> &[PathBuf] {
        self.by_name.get(base).map_or(&[], Vec::as_slice)
    }
}

/// `NAME.3` -> `NAME` (the hook's suffix for a repeated name); data log
/// names themselves end in an address, `.gz` or `.bz2`, so a purely
/// numeric last part after a dot is only taken off when what is before it
/// also ends like a data log name.
fn strip_repeat(name: &str) -> &str {
    match name.rsplit_once('.') {
        Some((stem, n))
            if !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
                && (stem.ends_with(".gz")
                    || stem.ends_with(".bz2")
                    || stem
                        .rsplit('_')
                        .next()
                        .is_some_and(|ip| ip.parse::<std::net::IpAddr>().is_ok())) =>
        {
            stem
        }
        _ => name,
    }
}

/// Check one claim: its own path first, then the archive.
pub fn check(claim: &Claim, archive: Option<&Archive>) -> (Verdict, PathBuf) {
    let mut candidates = vec![claim.file.clone()];
    if let (Some(a), Some(base)) = (archive, claim.file.file_name()) {
        candidates.extend(a.lookup(&base.to_string_lossy()).iter().cloned());
    }
    let mut first_mismatch = None;
    for c in candidates {
        match hash_file(&c) {
            Ok(h) if h == claim.sha256 => return (Verdict::Ok, c),
            Ok(_) => {
                first_mismatch.get_or_insert(c);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                super::warn(&format!("{}: cannot read: {e}", c.display()));
                first_mismatch.get_or_insert(c);
            }
        }
    }
    match first_mismatch {
        Some(p) => (Verdict::Mismatch, p),
        None => (Verdict::Missing, claim.file.clone()),
    }
}

/// Run `--verify` over the connection logs; the exit status: 0 only when
/// at least one file was checked and every checked file is OK.
pub fn run(connlogs: &[String], archive_dir: Option<&str>) -> u8 {
    let archive = match archive_dir.map(|d| Archive::scan(Path::new(d))) {
        None => None,
        Some(Ok(a)) => Some(a),
        Some(Err(e)) => {
            super::warn(&format!(
                "--archive: cannot read directory {}: {e}",
                archive_dir.unwrap_or_default()
            ));
            return 1;
        }
    };
    let mut out = io::stdout().lock();
    let mut status = 0;
    let mut checked = 0usize;
    for log in connlogs {
        let reader: Box<dyn BufRead> = if log == "-" {
            Box::new(BufReader::new(io::stdin()))
        } else {
            match File::open(log) {
                Ok(f) => Box::new(BufReader::new(f)),
                Err(e) => {
                    super::warn(&format!("{log}: cannot open: {e}"));
                    status = 1;
                    continue;
                }
            }
        };
        for line in reader.split(b'\n') {
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    super::warn(&format!("{log}: cannot read: {e}"));
                    status = 1;
                    break;
                }
            };
            let Some(claim) = parse_entry(&String::from_utf8_lossy(&line)) else {
                continue;
            };
            checked += 1;
            let (verdict, path) = check(&claim, archive.as_ref());
            if verdict != Verdict::Ok {
                status = 1;
            }
            if let Err(e) = writeln!(out, "{} {}", verdict.as_str(), path.display()) {
                if e.kind() != io::ErrorKind::BrokenPipe {
                    super::warn(&format!("stdout: cannot write: {e}"));
                }
                return 1;
            }
        }
    }
    if checked == 0 {
        super::warn(
            "--verify: no entry names a data log and a sha256 (log with -C json or a -C format with %f and %{sha256})",
        );
        status = 1;
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn entries() {
        let want = Some(Claim {
            file: "/var/log/ipprot/prot_2026-11-23_213005_7_10.0.0.9.gz".into(),
            sha256: H.into(),
        });
        let json = format!(
            "{{\"start\":\"x\",\"file\":\"/var/log/ipprot/prot_2026-11-23_213005_7_10.0.0.9.gz\",\"conn\":7,\"sha256\":\"{H}\",\"event\":\"close\"}}\n"
        );
        assert_eq!(parse_entry(&json), want);
        let text = format!(
            "2026-11-23 21:30:05+01:00|/var/log/ipprot/prot_2026-11-23_213005_7_10.0.0.9.gz|ok|{H}"
        );
        assert_eq!(parse_entry(&text), want);
        let blanks = format!("7 ok /var/log/ipprot/prot_2026-11-23_213005_7_10.0.0.9.gz {H}\n");
        assert_eq!(parse_entry(&blanks), want);
        // nothing to check
        assert_eq!(parse_entry("{\"file\":null,\"sha256\":null}"), None);
        assert_eq!(parse_entry("{\"file\":\"/x\",\"sha256\":null}"), None);
        assert_eq!(parse_entry("a|-|-|ok"), None);
        assert_eq!(
            parse_entry(
                "2026-11-23 21:30:05+01:00|2026-11-23 21:30:07+01:00|2|10.0.0.9|40000|147|53|ok|flexlm|fr|-|-|-|-"
            ),
            None
        );
        assert_eq!(parse_entry("{not json"), None);
        assert_eq!(parse_entry(&format!("{H}|relative/path")), None);
    }

    #[test]
    fn repeat_suffix() {
        assert_eq!(strip_repeat("prot_x_3_10.0.0.9.2"), "prot_x_3_10.0.0.9");
        assert_eq!(
            strip_repeat("prot_x_3_10.0.0.9.gz.1"),
            "prot_x_3_10.0.0.9.gz"
        );
        assert_eq!(strip_repeat("prot_x_3_10.0.0.9"), "prot_x_3_10.0.0.9");
        assert_eq!(strip_repeat("prot_x_3_::1.bz2"), "prot_x_3_::1.bz2");
        assert_eq!(strip_repeat("prot_x_3_::1.12"), "prot_x_3_::1");
    }
}
