//! accept() out of descriptors: the parent logs once per episode, backs
//! off instead of spinning, and stays alive.

use crate::harness::*;

use std::time::Duration;

/// How long the parent is watched while it cannot accept.
const WINDOW: Duration = Duration::from_millis(1500);

#[test]
fn emfile_is_logged_once_and_backed_off() {
    let b = Backend::echo();
    // 0-2 stdio, 3 listener, 4 signalfd: no descriptor left to accept
    let d = Daemon::start_sh("ulimit -n 5;", &["-P", &b.dest()], &[]);
    let _c1 = std::net::TcpStream::connect(d.addr).unwrap();
    assert!(d.wait_stderr("cannot accept connections"), "{}", d.stderr());
    let before = cpu_ticks(d.pid());
    // the connection stays in the backlog; a second one arrives meanwhile
    let _c2 = std::net::TcpStream::connect(d.addr).unwrap();
    // a span of time under test (CPU used in it), not a readiness wait
    std::thread::sleep(WINDOW);
    let spent = cpu_ticks(d.pid()) - before;
    // a spinning loop would burn ~150 ticks in 1.5 s; backing off, a few
    assert!(spent < 40, "parent used {spent} ticks in 1.5 s");
    assert_eq!(
        d.stderr().matches("cannot accept connections").count(),
        1,
        "{}",
        d.stderr()
    );
    assert!(proc_state(d.pid()).is_some_and(|s| s != 'Z'), "parent died");
}
