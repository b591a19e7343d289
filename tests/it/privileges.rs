//! `--user`: privileges are dropped after the bind and the pid file, and
//! the connections of the unprivileged daemon are relayed and logged.

use crate::harness::*;

fn ids_of(pid: i32, key: &str) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap()
        .to_string();
    line[key.len()..]
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect()
}

#[test]
fn drops_to_user_after_bind() {
    if !need(is_root(), "--user needs root to test") {
        return;
    }
    let Some(nobody) = std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("nobody:"))
        .map(|l| l.split(':').nth(2).unwrap().parse::<u32>().unwrap())
    else {
        skip("no user nobody");
        return;
    };
    let dir = tmpdir("user");
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let b = Backend::echo();
    let (d, log) = Daemon::logged(&dir, &b.dest(), "%x %b", &["--user", "nobody"], &[]);
    assert_eq!(ids_of(d.pid(), "Uid:"), vec![nobody; 4]);
    d.echo(b"abc");
    assert_eq!(wait_lines(&log, 1)[0], "ok 3");
}

#[test]
fn pid_file_is_handed_to_the_user() {
    if !need(is_root(), "--user needs root to test") {
        return;
    }
    let dir = tmpdir("userpid");
    let pidfile = dir.join("pid");
    let port = closed_port();
    let o = run(&[
        "-p",
        &port.dest(),
        "--user",
        "nobody",
        "-Dp",
        pidfile.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&pidfile).unwrap());
    let uid = ids_of(pid, "Uid:")[0];
    signal(pid, libc::SIGTERM);
    assert!(wait_until(DEADLINE, || proc_state(pid).is_none_or(|s| s == 'Z')));
    assert_eq!(owner, uid);
    assert_ne!(uid, 0);
    // the directory is root's: the unprivileged daemon empties the file
    // instead of removing it
    assert!(wait_until(DEADLINE, || std::fs::read_to_string(&pidfile)
        .map(|s| s.is_empty())
        .unwrap_or(true)));
}

#[test]
fn unknown_user_is_a_start_error() {
    let o = run(&["-p", "0@127.0.0.1", "--user", "no-such-user-xyz"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "ipprotd: --user: no such user 'no-such-user-xyz'\n"
    );
}
