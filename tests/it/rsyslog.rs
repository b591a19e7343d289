//! Entries off the host over TLS, with the configurations of
//! contrib/rsyslog/ as shipped: two real rsyslogd on loopback, started by
//! the test (own configuration, pid file, work directory; `-n`), the
//! sender listening on its own socket that ipprotd reaches with
//! `--syslog-socket`, the receiver on a port it picked itself. Entries
//! arrive as the very JSON lines of ipprotd's own `-C json` log, with
//! facility daemon and ident ipprotd; a client whose certificate comes
//! from another CA is refused; entries written while the receiver is down
//! arrive once it is back. The certificates come from the shipped
//! make-test-certs script.

use crate::harness::*;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// rsyslog's retries after the receiver is back take a few seconds
/// (action.resumeInterval in the shipped sender configuration).
const REDELIVERY_DEADLINE: Duration = Duration::from_secs(90);
const GTLS_MODULE_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/rsyslog",
    "/usr/lib/aarch64-linux-gnu/rsyslog",
    "/usr/lib/rsyslog",
];

fn contrib(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib/rsyslog")
        .join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Why this test cannot run here, if it cannot.
fn missing_tools() -> Option<String> {
    for t in ["rsyslogd", "openssl"] {
        if !have_tool(t) && !Path::new("/usr/sbin").join(t).exists() {
            return Some(format!("{t} not installed"));
        }
    }
    if !GTLS_MODULE_DIRS
        .iter()
        .any(|d| Path::new(d).join("lmnsd_gtls.so").exists())
    {
        return Some("rsyslog-gnutls (lmnsd_gtls.so) not installed".into());
    }
    None
}

fn rsyslogd_bin() -> &'static str {
    if have_tool("rsyslogd") {
        "rsyslogd"
    } else {
        "/usr/sbin/rsyslogd"
    }
}

/// The shipped file with `edits` made; each `from` must occur exactly
/// once, so that a changed configuration breaks the test instead of
/// silently testing something else.
fn edited(name: &str, edits: &[(&str, String)]) -> String {
    let mut text = std::fs::read_to_string(contrib(name)).unwrap();
    for (from, to) in edits {
        assert_eq!(
            text.matches(from).count(),
            1,
            "{name}: expected exactly one {from:?}"
        );
        text = text.replace(from, to);
    }
    text
}

/// One rsyslogd in the foreground, with its own directory.
struct Rsyslogd {
    child: Option<Child>,
    dir: PathBuf,
}

impl Rsyslogd {
    /// Start with `main.conf` in `dir` (written before).
    fn start(dir: &Path) -> Rsyslogd {
        let pid = dir.join("pid");
        let _ = std::fs::remove_file(&pid);
        let out = std::fs::File::create(dir.join("out.txt")).unwrap();
        let err = out.try_clone().unwrap();
        let child = Command::new(rsyslogd_bin())
            .args(["-n", "-f", s(&dir.join("main.conf")), "-i", s(&pid)])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap();
        Rsyslogd {
            child: Some(child),
            dir: dir.to_path_buf(),
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(self.dir.join("out.txt")).unwrap_or_default()
    }

    /// Wait until `path` exists (and is not empty), or fail with the
    /// daemon's output.
    fn wait_file(&mut self, path: &Path) {
        let ok = wait_until(DEADLINE, || {
            std::fs::metadata(path).is_ok_and(|m| m.len() > 0 || !m.is_file())
        });
        if !ok {
            let st = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            panic!(
                "rsyslogd in {} made no {} (exit {st:?}): {}",
                self.dir.display(),
                path.display(),
                self.output()
            );
        }
    }

    /// SIGTERM by pid, wait for the exit (rsyslog may take its queue
    /// timeouts), SIGKILL if it does not end.
    fn stop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        signal(c.id() as i32, libc::SIGTERM);
        let end = Instant::now() + DEADLINE;
        while Instant::now() < end {
            if c.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl Drop for Rsyslogd {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Site {
    pki: PathBuf,
    rogue: PathBuf,
    recv: PathBuf,
    send: PathBuf,
    sites: PathBuf,
}

fn receiver_conf(site: &Site, port: Option<u16>) -> String {
    let listen = match port {
        None => format!(
            "port=\"0\" listenPortFileName=\"{}\"",
            s(&site.recv.join("port"))
        ),
        Some(p) => format!("port=\"{p}\""),
    };
    let pki = |f: &str| s(&site.pki.join(f)).to_string();
    let snippet = edited(
        "ipprotd-receiver.conf",
        &[
            ("port=\"6514\"", listen),
            (
                "\"/etc/ipprotd/tls/ca.pem\"",
                format!("\"{}\"", pki("ca.pem")),
            ),
            (
                "\"/etc/ipprotd/tls/receiver.pem\"",
                format!("\"{}\"", pki("receiver.test.pem")),
            ),
            (
                "\"/etc/ipprotd/tls/receiver-key.pem\"",
                format!("\"{}\"", pki("receiver.test-key.pem")),
            ),
            (
                "PermittedPeer=[\"licsrv1.example.org\", \"db1.example.org\"]",
                "PermittedPeer=[\"sender.test\"]".into(),
            ),
            (
                "string=\"/var/log/ipprot/sites/%hostname:::secpath-replace%.json\"",
                format!(
                    "string=\"{}/%hostname:::secpath-replace%.json\"",
                    s(&site.sites)
                ),
            ),
            (
                "string=\"/var/log/ipprot/sites/%hostname:::secpath-replace%.log\"",
                format!(
                    "string=\"{}/%hostname:::secpath-replace%.log\"",
                    s(&site.sites)
                ),
            ),
        ],
    );
    std::fs::write(site.recv.join("ipprotd-receiver.conf"), snippet).unwrap();
    format!(
        "global(workDirectory=\"{work}\")\n\
         include(file=\"{snippet}\")\n",
        work = s(&site.recv.join("work")),
        snippet = s(&site.recv.join("ipprotd-receiver.conf")),
    )
}

fn sender_conf(site: &Site, port: u16) -> String {
    let pki = |f: &str| s(&site.pki.join(f)).to_string();
    let snippet = edited(
        "ipprotd-sender.conf",
        &[
            ("target=\"logs.example.org\"", "target=\"127.0.0.1\"".into()),
            ("port=\"6514\"", format!("port=\"{port}\"")),
            (
                "StreamDriverPermittedPeers=\"logs.example.org\"",
                "StreamDriverPermittedPeers=\"receiver.test\"".into(),
            ),
            (
                "\"/etc/ipprotd/tls/ca.pem\"",
                format!("\"{}\"", pki("ca.pem")),
            ),
            (
                "\"/etc/ipprotd/tls/sender.pem\"",
                format!("\"{}\"", pki("sender.test.pem")),
            ),
            (
                "\"/etc/ipprotd/tls/sender-key.pem\"",
                format!("\"{}\"", pki("sender.test-key.pem")),
            ),
        ],
    );
    std::fs::write(site.send.join("ipprotd-sender.conf"), snippet).unwrap();
    format!(
        "global(workDirectory=\"{work}\")\n\
         module(load=\"imuxsock\" SysSock.Name=\"{sock}\")\n\
         include(file=\"{snippet}\")\n\
         *.* action(type=\"omfile\" file=\"{all}\")\n",
        work = s(&site.send.join("work")),
        sock = s(&site.send.join("log.sock")),
        snippet = s(&site.send.join("ipprotd-sender.conf")),
        all = s(&site.send.join("all.log")),
    )
}

fn start_receiver(site: &Site, port: Option<u16>) -> (Rsyslogd, u16) {
    let _ = std::fs::remove_file(site.recv.join("port"));
    std::fs::write(site.recv.join("main.conf"), receiver_conf(site, port)).unwrap();
    let mut r = Rsyslogd::start(&site.recv);
    let port = match port {
        Some(p) => {
            // listening again: a TCP connect succeeds
            let ok = wait_until(DEADLINE, || {
                std::net::TcpStream::connect(("127.0.0.1", p)).is_ok()
            });
            assert!(ok, "receiver did not listen again on {p}: {}", r.output());
            p
        }
        None => {
            let file = site.recv.join("port");
            r.wait_file(&file);
            let mut text = String::new();
            assert!(wait_until(DEADLINE, || {
                text = std::fs::read_to_string(&file).unwrap_or_default();
                text.trim().parse::<u16>().is_ok()
            }));
            text.trim().parse().unwrap()
        }
    };
    (r, port)
}

/// The lines of the one `*.json` file the receiver made for `host`.
fn site_lines(site: &Site, host: &str) -> Vec<String> {
    lines(&site.sites.join(format!("{host}.json")))
}

/// Send one RFC 5424 message to the receiver with `openssl s_client`,
/// authenticating with `cert` (from `dir`). Returns when the client ended.
fn tls_probe(site: &Site, port: u16, dir: &Path, host: &str, msg: &str) {
    let mut c = Command::new("openssl")
        .args([
            "s_client",
            "-quiet",
            "-no_ign_eof",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-CAfile",
            s(&site.pki.join("ca.pem")),
            "-cert",
            s(&dir.join("sender.test.pem")),
            "-key",
            s(&dir.join("sender.test-key.pem")),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let line = format!("<30>1 2026-11-23T21:30:05+01:00 {host} ipprotd 4242 - - {msg}\n");
    let _ = c.stdin.take().unwrap().write_all(line.as_bytes());
    let end = Instant::now() + DEADLINE;
    while c.try_wait().ok().flatten().is_none() {
        if Instant::now() > end {
            let _ = c.kill();
            let _ = c.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn connect_once(d: &Daemon) {
    use std::io::Read;
    let mut c = d.connect();
    c.write_all(b"ping\n").unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    assert_eq!(back, b"ping\n");
}

#[test]
fn entries_reach_the_receiver_over_tls() {
    if let Some(why) = missing_tools() {
        eprintln!("note: {why}; rsyslog relay test skipped");
        return;
    }
    let dir = tmpdir("rsyslog");
    let site = Site {
        pki: dir.join("pki"),
        rogue: dir.join("rogue"),
        recv: dir.join("recv"),
        send: dir.join("send"),
        sites: dir.join("sites"),
    };
    for d in [&site.recv, &site.send] {
        std::fs::create_dir_all(d.join("work")).unwrap();
    }
    let certs = contrib("make-test-certs");
    for (out, names) in [
        (&site.pki, &["receiver.test", "sender.test"][..]),
        // another CA that issues a certificate with the permitted name
        (&site.rogue, &["sender.test"][..]),
    ] {
        let st = Command::new(&certs).arg(out).args(names).status().unwrap();
        assert!(st.success(), "make-test-certs {}", out.display());
    }

    let (mut receiver, port) = start_receiver(&site, None);
    std::fs::write(site.send.join("main.conf"), sender_conf(&site, port)).unwrap();
    let mut sender = Rsyslogd::start(&site.send);
    sender.wait_file(&site.send.join("log.sock"));

    let log = dir.join("conn.json");
    let b = Backend::echo();
    let dest = b.dest();
    let sock = site.send.join("log.sock");
    let mut d = Daemon::start(&[
        "-P",
        &dest,
        "-c",
        s(&log),
        "-C",
        "json",
        "--syslog",
        "--syslog-socket",
        s(&sock),
    ]);
    assert!(
        !d.stderr().contains("cannot reach"),
        "ipprotd did not reach the sender: {}",
        d.stderr()
    );
    for _ in 0..3 {
        connect_once(&d);
    }
    let local = wait_lines(&log, 3);

    // one file per sending host, named as the sender's rsyslog names it
    let mut host = String::new();
    let arrived = wait_until(DEADLINE, || {
        let names: Vec<String> = std::fs::read_dir(&site.sites)
            .map(|r| {
                r.flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter_map(|n| n.strip_suffix(".json").map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if let [h] = &names[..] {
            host = h.clone();
        }
        !host.is_empty() && site_lines(&site, &host).len() >= 3
    });
    assert!(
        arrived,
        "entries did not arrive; sender: {} {}; receiver: {}",
        sender.output(),
        std::fs::read_to_string(site.send.join("all.log")).unwrap_or_default(),
        receiver.output(),
    );
    // the very lines of ipprotd's own JSON log
    assert_eq!(site_lines(&site, &host), local);
    // ... with facility daemon, severity info, ident ipprotd and the pid
    // of the child that wrote the entry
    let meta = lines(&site.sites.join(format!("{host}.log")));
    assert_eq!(meta.len(), 3, "{meta:?}");
    for (m, entry) in meta.iter().zip(&local) {
        let fields: Vec<&str> = m.splitn(5, ' ').collect();
        assert_eq!(fields[1], host, "{m}");
        assert_eq!(fields[2], "daemon.info", "{m}");
        assert!(
            fields[3].starts_with("ipprotd[") && fields[3].trim_end_matches(':').ends_with(']'),
            "{m}"
        );
        assert_eq!(fields[4], entry, "{m}");
    }

    // a client with a certificate from the right CA gets in; one with the
    // same name from another CA does not
    tls_probe(&site, port, &site.pki, "probe-good", "{\"probe\":\"good\"}");
    assert!(
        wait_until(DEADLINE, || site_lines(&site, "probe-good")
            == vec!["{\"probe\":\"good\"}".to_string()]),
        "the legitimate probe did not arrive: {}",
        receiver.output()
    );
    // rsyslogd -n tells its own errors on its standard error
    let before = receiver.output().len();
    tls_probe(
        &site,
        port,
        &site.rogue,
        "probe-rogue",
        "{\"probe\":\"rogue\"}",
    );
    assert!(
        wait_until(DEADLINE, || receiver.output()[before..]
            .contains("not permitted to talk to peer")),
        "the receiver did not refuse the rogue client: {}",
        receiver.output()
    );
    assert!(receiver.output()[before..].contains("Issuer DN: CN=ipprotd test CA rogue"));
    // a good probe after the rogue one: once it is in, the rogue one would
    // have been written before it
    tls_probe(
        &site,
        port,
        &site.pki,
        "probe-good",
        "{\"probe\":\"after\"}",
    );
    assert!(wait_until(DEADLINE, || site_lines(&site, "probe-good")
        .len()
        == 2));
    assert!(
        !site.sites.join("probe-rogue.json").exists()
            && !site.sites.join("probe-rogue.log").exists(),
        "a client of another CA was let in"
    );

    // the receiver goes down; entries written meanwhile wait in the
    // sender's queue and arrive when it is back
    receiver.stop();
    for _ in 0..3 {
        connect_once(&d);
    }
    let local = wait_lines(&log, 6);
    let (_receiver, _) = start_receiver(&site, Some(port));
    assert!(
        wait_until(REDELIVERY_DEADLINE, || site_lines(&site, &host).len() >= 6),
        "entries of the outage did not arrive: {:?}; sender: {}",
        site_lines(&site, &host),
        std::fs::read_to_string(site.send.join("all.log")).unwrap_or_default()
    );
    assert_eq!(site_lines(&site, &host), local);
    d.term();
    sender.stop();
}
