//! TCP urgent data (`MSG_OOB`) through the relay, both directions, with
//! real sockets that keep `SO_OOBINLINE` off: the receiver gets the byte as
//! urgent data at its place in the stream, the data log has it as a block
//! of its own, and `%b`/`%B` count it.

use crate::harness::*;
use ipprotd::record::block::{Dir, Piece, parse};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{MsgFlags, recv, send};
use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// `SIOCATMARK` of `<asm-generic/sockios.h>`.
const SIOCATMARK: libc::c_ulong = 0x8905;

pub(crate) fn at_mark(s: &TcpStream) -> bool {
    let mut at: libc::c_int = 0;
    // SAFETY: SIOCATMARK writes one int to `at`, alive for the call.
    let r = unsafe { libc::ioctl(s.as_raw_fd(), SIOCATMARK as _, &mut at as *mut libc::c_int) };
    assert_eq!(r, 0, "SIOCATMARK: {}", std::io::Error::last_os_error());
    at != 0
}

/// What a receiver got: before the mark, the urgent byte, after it.
type Received = (Vec<u8>, u8, Vec<u8>);

/// Send `before`, then `urgent` as urgent data, then `after`, then
/// half-close.
fn send_with_urgent(s: &mut TcpStream, before: &[u8], urgent: u8, after: &[u8]) {
    send_urgent_between(s, before, urgent, after);
    s.shutdown(Shutdown::Write).unwrap();
}

/// Send `before`, the urgent byte `u`, then `after`.
pub(crate) fn send_urgent_between(s: &mut TcpStream, before: &[u8], u: u8, after: &[u8]) {
    s.write_all(before).unwrap();
    assert_eq!(send(s.as_raw_fd(), &[u], MsgFlags::MSG_OOB), Ok(1));
    s.write_all(after).unwrap();
}

/// What a receiver got: the bytes before the urgent mark, the urgent byte,
/// the bytes after it up to EOF. Fails when no urgent data arrives under
/// [`DEADLINE`].
fn recv_with_urgent(s: &mut TcpStream) -> Received {
    let end = Instant::now() + DEADLINE;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no urgent data arrived");
        let mut fds = [PollFd::new(s.as_fd(), PollFlags::POLLPRI)];
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(_)
                if fds[0]
                    .revents()
                    .is_some_and(|r| r.contains(PollFlags::POLLPRI)) =>
            {
                break;
            }
            _ => {}
        }
    }
    // normal reads stop at the mark
    let mut before = Vec::new();
    let mut b = [0u8; 4096];
    while !at_mark(s) {
        let n = read_some(s, &mut b).unwrap();
        assert!(n > 0, "EOF before the urgent mark, after {before:?}");
        before.extend_from_slice(&b[..n]);
    }
    let mut u = [0u8; 1];
    assert_eq!(recv(s.as_raw_fd(), &mut u, MsgFlags::MSG_OOB), Ok(1));
    let after = read_all(s);
    (before, u[0], after)
}

/// Blocks of a `-M` data log: direction and payload.
fn blocks(data: &[u8]) -> Vec<(Dir, Vec<u8>)> {
    let mut v: Vec<(Dir, Vec<u8>)> = Vec::new();
    for p in parse(data) {
        match p {
            Piece::Marker(dir, _) => v.push((dir, Vec::new())),
            Piece::Stamp(_) => {}
            Piece::Payload(p) => v.last_mut().expect("payload first").1.extend_from_slice(p),
        }
    }
    v
}

/// The blocks of one direction, split at the one that is `urgent` alone:
/// (bytes before it, bytes after it).
fn around_urgent(bs: &[(Dir, Vec<u8>)], dir: Dir, urgent: u8) -> (Vec<u8>, Vec<u8>) {
    let mine: Vec<&[u8]> = bs
        .iter()
        .filter(|b| b.0 == dir)
        .map(|b| b.1.as_slice())
        .collect();
    let at = mine
        .iter()
        .position(|b| *b == [urgent])
        .unwrap_or_else(|| panic!("no block of its own for {urgent:?} {dir:?}: {mine:?}"));
    (mine[..at].concat(), mine[at + 1..].concat())
}

// See: issue 10, defect 2 (urgent data dropped)
#[test]
fn urgent_data_relayed_in_place_both_ways_and_recorded() {
    let dir = tmpdir("urgent");
    let got: Arc<Mutex<Option<Received>>> = Arc::default();
    let g = got.clone();
    let backend = Backend::start(move |mut s| {
        let r = recv_with_urgent(&mut s);
        *g.lock().unwrap() = Some(r);
        send_with_urgent(&mut s, b"server-before", b'?', b"server-after");
    });
    let prefix = dir.join("prot");
    let (d, log) = Daemon::logged(
        &dir,
        &backend.dest(),
        ENTRY_FMT,
        &["-f", p(&prefix), "-L", "-M"],
        &[],
    );
    let mut c = d.connect();
    send_with_urgent(&mut c, b"client-before", b'!', b"client-after");
    let down = recv_with_urgent(&mut c);
    assert_eq!(
        (down.0.as_slice(), down.1, down.2.as_slice()),
        (&b"server-before"[..], b'?', &b"server-after"[..]),
        "to the client"
    );
    drop(c);
    let up = got.lock().unwrap().take().expect("backend got nothing");
    assert_eq!(
        (up.0.as_slice(), up.1, up.2.as_slice()),
        (&b"client-before"[..], b'!', &b"client-after"[..]),
        "to the server"
    );

    let line = wait_lines(&log, 1).remove(0);
    let f: Vec<&str> = line.split(' ').collect();
    let n = (
        b"client-before!client-after".len(),
        b"server-before?server-after".len(),
    );
    assert_eq!(
        f[1..4],
        ["ok", &n.0.to_string(), &n.1.to_string()],
        "{line}"
    );
    let bs = blocks(&std::fs::read(f[4]).unwrap());
    assert_eq!(
        around_urgent(&bs, Dir::FromClient, b'!'),
        (b"client-before".to_vec(), b"client-after".to_vec())
    );
    assert_eq!(
        around_urgent(&bs, Dir::ToClient, b'?'),
        (b"server-before".to_vec(), b"server-after".to_vec())
    );
}
