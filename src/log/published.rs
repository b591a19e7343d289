//! What a child publishes for its parent, so that no connection goes
//! unlogged: one fixed-size slot per live child in a mapping shared by the
//! parent and all its children ([`crate::os::mmap::shared_words`]). The
//! child fills in the destination, the byte counts, the identity and
//! whether it created a data log as it learns them, and marks the slot when
//! it has written its own entry. When a child dies with its slot unmarked
//! (SIGKILL, the OOM killer, a crash), the parent writes the entry for it,
//! status `crashed`, from what it knew at fork time plus this slot. The
//! number of slots is fixed at start: a child forked while all are taken
//! gets none, and its `crashed` entry has only the fork-time fields.
//!
//! The mapping also holds the run-wide flags: one data-log write error
//! episode (ENOSPC) is logged by the first child that meets it, not by
//! every child, until a data log is written again.
//!
//! Everything is an atomic 64-bit word: strings are packed into words, a
//! length byte first. The parent reads a slot only after it reaped the
//! child, and clears it before it hands it to the next child.

use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::identity::{self, Identity};

/// Slots when `--max-connections` is 0 (no limit).
pub const SLOTS_UNLIMITED: usize = 4096;
/// At most this many slots, whatever `--max-connections` says.
pub const SLOTS_MAX: usize = 65_536;
/// Bytes kept of each published identity field (the rest is cut off).
pub const FIELD_BYTES: usize = 127;

const FIELD_WORDS: usize = (FIELD_BYTES + 1) / 8;
const HEADER_WORDS: usize = 8;
const W_FLAGS: usize = 0;
const W_BYTES_IN: usize = 1;
const W_BYTES_OUT: usize = 2;
const W_DEST_PORT: usize = 3;
const W_DEST_IP: usize = 4; // and 5
const W_VENDOR_PORT: usize = 6;
const W_PROTO: usize = 7;
const W_FIELDS: usize = 8;
const FIELDS: usize = 7;
const SLOT_WORDS: usize = W_FIELDS + FIELDS * FIELD_WORDS;

const ENTRY_WRITTEN: u64 = 1;
const FILE_CREATED: u64 = 2;
const PRESENT: u64 = 1 << 16;
/// In the destination word, above the port: the address family.
const DEST_V4: u64 = 4 << 16;
const DEST_V6: u64 = 6 << 16;

/// Header word: a data-log write error episode is going on.
const H_RECORD_ERROR: usize = 0;

const PROTOS: [&str; 7] = [
    identity::PROTO_FLEXLM,
    identity::PROTO_TNS,
    identity::PROTO_POSTGRES,
    identity::PROTO_MYSQL,
    identity::PROTO_POSTGRES_TLS,
    identity::PROTO_MYSQL_TLS,
    identity::PROTO_TLS,
];

static BOARD: OnceLock<&'static [AtomicU64]> = OnceLock::new();
thread_local! {
    /// The slot of this process (a child), or `usize::MAX`. Thread-local
    /// only for where it lives (the process has one thread): in the
    /// thread's static TLS block, on the page of the thread control block
    /// that the kernel writes in every fresh child anyway (the child's
    /// thread id), not on the binary's data page, which a child then need
    /// not copy.
    static MINE: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// The number of slots for a `--max-connections` value.
pub fn slots_for(max_connections: usize) -> usize {
    match max_connections {
        0 => SLOTS_UNLIMITED,
        n => n.min(SLOTS_MAX),
    }
}

/// Make the shared mapping with `slots` slots (in the parent, once, before
/// the first fork). False if it cannot be mapped: then nothing is
/// published, and `crashed` entries carry only the fork-time fields.
pub fn create(slots: usize) -> bool {
    if BOARD.get().is_some() {
        return true;
    }
    match crate::os::mmap::shared_words(HEADER_WORDS + slots * SLOT_WORDS) {
        Some(w) => BOARD.set(w).is_ok(),
        None => false,
    }
}

/// The number of slots of the mapping (0 without one).
pub fn slots() -> usize {
    BOARD
        .get()
        .map_or(0, |b| (b.len() - HEADER_WORDS) / SLOT_WORDS)
}

fn slot(i: usize) -> Option<&'static [AtomicU64]> {
    let b = BOARD.get()?;
    let at = HEADER_WORDS + i.checked_mul(SLOT_WORDS)?;
    b.get(at..at + SLOT_WORDS)
}

fn my_slot() -> Option<&'static [AtomicU64]> {
    slot(MINE.get())
}

/// In the parent, before it forks the child that gets slot `i`: empty it.
pub fn clear(i: usize) {
    if let Some(s) = slot(i) {
        for w in s {
            w.store(0, Ordering::Relaxed);
        }
    }
}

/// In a fresh child: publish into slot `i` from now on.
pub fn enter_child(i: Option<usize>) {
    MINE.set(i.unwrap_or(usize::MAX));
}

fn set_flag(s: &[AtomicU64], f: u64) {
    s[W_FLAGS].fetch_or(f, Ordering::Release);
}

/// The child connected to `dest`.
pub fn dest(dest: SocketAddr) {
    let Some(s) = my_slot() else { return };
    let (flag, ip) = match dest.ip().to_canonical() {
        IpAddr::V4(a) => (DEST_V4, u128::from(a.to_ipv6_mapped())),
        IpAddr::V6(a) => (DEST_V6, u128::from(a)),
    };
    s[W_DEST_IP].store((ip >> 64) as u64, Ordering::Relaxed);
    s[W_DEST_IP + 1].store(ip as u64, Ordering::Relaxed);
    s[W_DEST_PORT].store(flag | u64::from(dest.port()), Ordering::Relaxed);
}

/// The child created its data log.
pub fn file_created() {
    if let Some(s) = my_slot() {
        set_flag(s, FILE_CREATED);
    }
}

/// Bytes from and to the client so far.
pub fn bytes(from_client: u64, to_client: u64) {
    if let Some(s) = my_slot() {
        s[W_BYTES_IN].store(from_client, Ordering::Relaxed);
        s[W_BYTES_OUT].store(to_client, Ordering::Relaxed);
    }
}

fn put_str(words: &[AtomicU64], v: Option<&str>) {
    let Some(v) = v else {
        words[0].store(0, Ordering::Relaxed);
        return;
    };
    let mut n = v.len().min(FIELD_BYTES);
    while !v.is_char_boundary(n) {
        n -= 1;
    }
    // byte 0: length + 1 (0 = unknown), then the bytes
    let mut bytes = [0u8; FIELD_WORDS * 8];
    bytes[0] = n as u8 + 1;
    bytes[1..=n].copy_from_slice(&v.as_bytes()[..n]);
    for (w, chunk) in words.iter().zip(bytes.chunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        w.store(u64::from_le_bytes(b), Ordering::Relaxed);
    }
}

fn get_str(words: &[AtomicU64]) -> Option<String> {
    let mut bytes = [0u8; FIELD_WORDS * 8];
    for (w, chunk) in words.iter().zip(bytes.chunks_exact_mut(8)) {
        chunk.copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
    }
    let n = usize::from(bytes[0].checked_sub(1)?).min(FIELD_BYTES);
    Some(String::from_utf8_lossy(&bytes[1..=n]).into_owned())
}

fn fields(id: &Identity) -> [Option<&str>; FIELDS] {
    [
        id.user.as_deref(),
        id.host.as_deref(),
        id.display.as_deref(),
        id.pid.as_deref(),
        id.program.as_deref(),
        id.service.as_deref(),
        id.vendor_host.as_deref(),
    ]
}

/// The identity the child found.
pub fn identity(id: &Identity) {
    let Some(s) = my_slot() else { return };
    let proto = id
        .proto
        .and_then(|p| PROTOS.iter().position(|k| *k == p))
        .map_or(0, |i| i as u64 + 1);
    s[W_PROTO].store(proto, Ordering::Relaxed);
    s[W_VENDOR_PORT].store(
        id.vendor_port.map_or(0, |p| PRESENT | u64::from(p)),
        Ordering::Relaxed,
    );
    for (k, v) in fields(id).into_iter().enumerate() {
        let at = W_FIELDS + k * FIELD_WORDS;
        put_str(&s[at..at + FIELD_WORDS], v);
    }
}

/// The child wrote its own (close) entry: the parent writes none.
pub fn entry_written() {
    if let Some(s) = my_slot() {
        set_flag(s, ENTRY_WRITTEN);
    }
}

/// What a dead child had published, read by the parent after reaping it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Published {
    pub entry_written: bool,
    pub file_created: bool,
    pub dest: Option<SocketAddr>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub identity: Identity,
}

/// Read slot `i` (in the parent, after the child ended).
pub fn read(i: usize) -> Option<Published> {
    let s = slot(i)?;
    let flags = s[W_FLAGS].load(Ordering::Acquire);
    let ip = (u128::from(s[W_DEST_IP].load(Ordering::Relaxed)) << 64)
        | u128::from(s[W_DEST_IP + 1].load(Ordering::Relaxed));
    let d = s[W_DEST_PORT].load(Ordering::Relaxed);
    let port = d as u16;
    let dest = match d & !0xffff {
        DEST_V4 => {
            let a = Ipv6Addr::from(ip)
                .to_ipv4_mapped()
                .unwrap_or(Ipv4Addr::UNSPECIFIED);
            Some(SocketAddr::from((a, port)))
        }
        DEST_V6 => Some(SocketAddr::from((Ipv6Addr::from(ip), port))),
        _ => None,
    };
    let mut id = Identity {
        proto: (s[W_PROTO].load(Ordering::Relaxed) as usize)
            .checked_sub(1)
            .and_then(|i| PROTOS.get(i).copied()),
        ..Identity::default()
    };
    let vp = s[W_VENDOR_PORT].load(Ordering::Relaxed);
    id.vendor_port = (vp & PRESENT != 0).then_some(vp as u16);
    let mut got: [Option<String>; FIELDS] = Default::default();
    for (k, g) in got.iter_mut().enumerate() {
        let at = W_FIELDS + k * FIELD_WORDS;
        *g = get_str(&s[at..at + FIELD_WORDS]);
    }
    let [user, host, display, pid, program, service, vendor_host] = got;
    id.user = user;
    id.host = host;
    id.display = display;
    id.pid = pid;
    id.program = program;
    id.service = service;
    id.vendor_host = vendor_host;
    Some(Published {
        entry_written: flags & ENTRY_WRITTEN != 0,
        file_created: flags & FILE_CREATED != 0,
        dest,
        bytes_in: s[W_BYTES_IN].load(Ordering::Relaxed),
        bytes_out: s[W_BYTES_OUT].load(Ordering::Relaxed),
        identity: id,
    })
}

/// A data-log write failed: true if this starts an episode (log it),
/// false if another child already logged it. Without a mapping, every
/// failure is its own episode.
pub fn record_error_begin() -> bool {
    match BOARD.get() {
        Some(b) => b[H_RECORD_ERROR].swap(1, Ordering::AcqRel) == 0,
        None => true,
    }
}

/// A data log was written to its file again: the episode, if any, ended.
pub fn record_error_end() {
    if let Some(b) = BOARD.get()
        && b[H_RECORD_ERROR].load(Ordering::Relaxed) != 0
    {
        b[H_RECORD_ERROR].store(0, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_round_trips() {
        assert!(create(4));
        let i = slots() - 1;
        clear(i);
        enter_child(Some(i));
        let long = "é".repeat(100);
        let id = Identity {
            proto: Some(identity::PROTO_POSTGRES),
            user: Some("alice".into()),
            host: Some(long.clone()),
            service: Some(String::new()),
            vendor_port: Some(27001),
            ..Identity::default()
        };
        dest("[::1]:5432".parse().unwrap());
        dest("127.0.0.1:5432".parse().unwrap());
        bytes(10, 4_000_000_000);
        identity(&id);
        file_created();
        let p = read(i).unwrap();
        enter_child(None);
        assert!(!p.entry_written && p.file_created);
        // the later destination wins (failover)
        assert_eq!(p.dest, Some("127.0.0.1:5432".parse().unwrap()));
        assert_eq!((p.bytes_in, p.bytes_out), (10, 4_000_000_000));
        assert_eq!(p.identity.proto, Some(identity::PROTO_POSTGRES));
        assert_eq!(p.identity.user.as_deref(), Some("alice"));
        assert_eq!(p.identity.service.as_deref(), Some(""));
        assert_eq!(p.identity.program, None);
        assert_eq!(p.identity.vendor_port, Some(27001));
        // cut at a character boundary within FIELD_BYTES
        let h = p.identity.host.unwrap();
        assert!(h.len() <= FIELD_BYTES && long.starts_with(&h) && h.len() == 126);
        clear(i);
        assert_eq!(read(i).unwrap(), Published::default());
    }
}
