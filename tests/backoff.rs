//! accept() out of descriptors: the parent logs once per episode, backs
//! off instead of spinning, and stays alive.

mod common;
use common::*;

use std::time::{Duration, Instant};

/// CPU time (user + system) of `pid`, in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn emfile_is_logged_once_and_backed_off() {
    let b = Backend::echo();
    // 0-2 stdio, 3 listener, 4-5 self-pipe: no descriptor left to accept
    let d = Daemon::start_sh("ulimit -n 6;", &["-P", &b.dest()], None, &[]);
    let _c1 = std::net::TcpStream::connect(d.addr).unwrap();
    assert!(d.wait_stderr("cannot accept connections"), "{}", d.stderr());
    let before = cpu_ticks(d.pid());
    let t = Instant::now();
    // the connection stays in the backlog; a second one arrives meanwhile
    let _c2 = std::net::TcpStream::connect(d.addr).unwrap();
    while t.elapsed() < Duration::from_millis(1500) {
        std::thread::sleep(Duration::from_millis(50));
    }
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
