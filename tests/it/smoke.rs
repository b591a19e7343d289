use crate::harness::*;
use std::io::Write;

#[test]
fn relays_and_logs() {
    let dir = tmpdir("smoke");
    let b = Backend::echo();
    let log = dir.join("conn.log");
    let d = Daemon::start(&["-P", &b.dest(), "-c", log.to_str().unwrap()]);
    let mut s = d.connect();
    s.write_all(b"ping").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_all(&mut s), b"ping");
    let l = wait_lines(&log, 1);
    assert!(l[0].contains("|4|4|ok|"), "{l:?}");
}
