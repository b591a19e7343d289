//! Statement audit against a real MariaDB 10.11, started by the test on a
//! loopback port in its own data directory, with the `server_audit`
//! plugin as ground truth: every statement the server logged for a
//! connection through ipprotd appears once, in order, with the same
//! status, in `--statement-log` (live) and in `ipprotcat --statements`
//! (from the `-L -M` recording). Clients: the `mariadb` client with and
//! without `--compress` (an error 1146, `USE db`, a multi-statement
//! query, `CREATE USER ... IDENTIFIED BY`), and the Python connectors that
//! use COM_STMT_PREPARE / EXECUTE / BULK_EXECUTE when installed. A TLS
//! session gives one `undecodable` record.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::harness::*;

/// The account the clients use through ipprotd.
const USER: &str = "auditor";
const PASSWORD: &str = "audit-pw";
/// The password in the CREATE USER statements, redacted in the log.
const SECRET: &str = "s3cret-pw";
/// How long the server gets to initialise and to start.
const SERVER_DEADLINE: Duration = Duration::from_secs(120);
/// How long one client run may take.
const CLIENT_DEADLINE: Duration = Duration::from_secs(60);

/// A MariaDB server of the test's own: data dir, socket, error log and
/// audit log under `dir`, on a held loopback port; stopped when dropped
/// (also used by the TLS tests).
pub(crate) struct MariaDb {
    child: Child,
    dir: PathBuf,
    port: ClosedPort,
}

impl MariaDb {
    /// Initialises and starts a server with `extra` options, or `None`
    /// (with a skip note) when MariaDB is not installed.
    pub(crate) fn start(name: &str, extra: &[String]) -> Option<MariaDb> {
        for tool in ["mariadbd", "mariadb-install-db", "mariadb"] {
            if !have_tool(tool) && !Path::new("/usr/sbin").join(tool).is_file() {
                skip(&format!(
                    "{tool} not installed (apt-get install mariadb-server mariadb-client)"
                ));
                return None;
            }
        }
        let plugin = ["/usr/lib/mysql/plugin/server_audit.so"];
        if !plugin.iter().any(|p| Path::new(p).is_file()) {
            skip("MariaDB's server_audit plugin not installed");
            return None;
        }
        let dir = tmpdir(name);
        let data = dir.join("data");
        // a temporary directory of its own: concurrent servers' temporary
        // tables in a shared /tmp have been seen removed under them
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp).expect("mariadb tmpdir");
        let tmpdir = format!("--tmpdir={}", tmp.display());
        let mut install = Command::new("mariadb-install-db");
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(&tmpdir)
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"]);
        if is_root() {
            install.arg("--user=root");
        }
        let out = run_limited(install, b"", SERVER_DEADLINE).expect("mariadb-install-db");
        assert!(
            out.status.success(),
            "mariadb-install-db failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // held for the test; mariadbd (SO_REUSEADDR) listens on it
        let port = closed_port();
        let mut c = Command::new(if have_tool("mariadbd") {
            "mariadbd".into()
        } else {
            PathBuf::from("/usr/sbin/mariadbd")
        });
        c.arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(&tmpdir)
            .arg(format!("--socket={}", dir.join("sock").display()))
            .arg(format!("--pid-file={}", dir.join("pid").display()))
            .arg(format!("--log-error={}", dir.join("err.log").display()))
            .arg(format!("--port={}", port.port()))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                "--innodb-buffer-pool-size=32M",
                "--innodb-flush-log-at-trx-commit=0",
                "--max-connections=20",
                "--plugin-load-add=server_audit",
                "--server-audit-logging=ON",
                "--server-audit-events=QUERY",
                "--server-audit-query-log-limit=1000000",
            ])
            .arg(format!(
                "--server-audit-file-path={}",
                dir.join("audit.log").display()
            ))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if is_root() {
            c.arg("--user=root");
        }
        let child = c.spawn().expect("mariadbd");
        let mut db = MariaDb { child, dir, port };
        let ready = wait_until(SERVER_DEADLINE, || {
            db.error_log().contains("ready for connections")
                || db.child.try_wait().ok().flatten().is_some()
        });
        assert!(
            ready && db.error_log().contains("ready for connections"),
            "mariadbd did not start: {}",
            db.error_log()
        );
        Some(db)
    }

    pub(crate) fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("err.log")).unwrap_or_default()
    }

    /// `PORT@127.0.0.1` for `-P`.
    pub(crate) fn dest(&self) -> String {
        self.port.dest()
    }

    /// Runs `sql` as root over the unix socket (not through ipprotd).
    pub(crate) fn root(&self, sql: &str) {
        let mut c = Command::new("mariadb");
        c.arg("--no-defaults")
            .arg(format!("--socket={}", self.dir.join("sock").display()))
            .args(["-uroot", "-e", sql]);
        let out = run_limited(c, b"", CLIENT_DEADLINE).expect("mariadb as root");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The QUERY events of the audit log.
    fn audit(&self) -> Vec<Audited> {
        lines(&self.dir.join("audit.log"))
            .iter()
            .filter_map(|l| Audited::parse(l))
            .collect()
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        signal(self.child.id() as i32, libc::SIGTERM);
        if !wait_until(SERVER_DEADLINE, || {
            self.child.try_wait().ok().flatten().is_some()
        }) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One QUERY event of server_audit:
/// `time,host,user,client,connid,queryid,QUERY,db,'text',retcode`.
#[derive(Debug)]
struct Audited {
    user: String,
    conn: u64,
    text: String,
    code: u32,
}

impl Audited {
    fn parse(line: &str) -> Option<Audited> {
        let f: Vec<&str> = line.splitn(9, ',').collect();
        if f.len() < 9 || f[6] != "QUERY" {
            return None;
        }
        let (quoted, code) = f[8].rsplit_once(',')?;
        let inner = quoted.strip_prefix('\'')?.strip_suffix('\'')?;
        let mut text = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => text.push('\n'),
                    Some('t') => text.push('\t'),
                    Some(other) => text.push(other),
                    None => {}
                },
                c => text.push(c),
            }
        }
        Some(Audited {
            user: f[2].to_string(),
            conn: f[4].parse().ok()?,
            text,
            code: code.trim().parse().ok()?,
        })
    }
}

/// A statement with its literals and redactions reduced to `?` and
/// blanks collapsed, so the server's log (which expands parameters and
/// masks passwords as `*****`) compares with ours.
fn normalize(s: &str) -> String {
    let mut out = String::new();
    let b: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == '\'' || c == '"' {
            i += 1;
            while i < b.len() && b[i] != c {
                if b[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            out.push('?');
        } else if c == '*' && b[i..].starts_with(&['*'; 5]) {
            while i + 1 < b.len() && b[i + 1] == '*' {
                i += 1;
            }
            out.push('?');
        } else if c.is_ascii_digit() && !out.ends_with(|p: char| p.is_alphanumeric() || p == '_') {
            while i + 1 < b.len() && (b[i + 1].is_ascii_digit() || b[i + 1] == '.') {
                i += 1;
            }
            out.push('?');
        } else if c.is_whitespace() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
        i += 1;
    }
    out.trim().trim_end_matches(';').trim().to_string()
}

/// The JSON records of a statement log.
fn records(path: &Path) -> Vec<Value> {
    lines(path)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Checks that every audited statement of a connection through ipprotd
/// appears in `got` once, in order, with the server's status; returns how
/// many were matched.
fn compare(audit: &[Audited], got: &[Value]) -> usize {
    let sessions: BTreeSet<u64> = got
        .iter()
        .filter_map(|r| r["server_session"].as_u64())
        .collect();
    let proxied: BTreeSet<u64> = audit
        .iter()
        .filter(|a| a.user == USER)
        .map(|a| a.conn)
        .collect();
    assert!(
        proxied.is_subset(&sessions),
        "connections in the audit log {proxied:?}, in the statement log {sessions:?}"
    );
    let mut matched = 0;
    for conn in &proxied {
        let ours: Vec<&Value> = got
            .iter()
            .filter(|r| r["server_session"].as_u64() == Some(*conn))
            .collect();
        let mut at = 0;
        for a in audit.iter().filter(|a| a.conn == *conn) {
            let want = normalize(&a.text);
            let status = if a.code == 0 { "ok" } else { "error" };
            let found = ours[at..].iter().position(|r| {
                let text = r["statement"].as_str().unwrap_or("");
                normalize(text) == want
                    && r["status"] == status
                    && (a.code == 0
                        || r["error"]
                            .as_str()
                            .is_some_and(|e| e.starts_with(&format!("{} ", a.code))))
            });
            let Some(k) = found else {
                panic!(
                    "connection {conn}: audited {:?} ({status}, {}) not found in order after record {at} of {:#?}",
                    a.text,
                    a.code,
                    ours.iter()
                        .map(|r| format!("{} {} {}", r["kind"], r["status"], r["statement"]))
                        .collect::<Vec<_>>()
                );
            };
            at += k + 1;
            matched += 1;
        }
    }
    matched
}

/// The mariadb client through ipprotd, reading `script` on stdin.
fn mariadb_client(port: u16, extra: &[&str], script: &str) -> String {
    let mut c = Command::new("mariadb");
    c.arg("--no-defaults")
        .args(["-h", "127.0.0.1", "-P", &port.to_string()])
        .args(["-u", USER, &format!("-p{PASSWORD}")])
        .args(["--skip-ssl", "--force", "--connect-timeout=10"])
        .args(extra)
        .arg("shop");
    let out = run_limited(c, script.as_bytes(), CLIENT_DEADLINE).expect("mariadb client");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// What one `mariadb` session sends: an error, `USE`, a multi-statement
/// query (one COM_QUERY through DELIMITER), a password.
fn script(user: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS t (a INT PRIMARY KEY, b VARCHAR(20));\n\
         REPLACE INTO t VALUES (1, 'x'), (2, 'y');\n\
         SELECT * FROM t ORDER BY a;\n\
         SELECT * FROM nope;\n\
         UPDATE t SET b = 'z' WHERE a = 2;\n\
         DELIMITER //\n\
         SELECT 1; SELECT a FROM t WHERE a = 1; SELECT * FROM nope2; SELECT 3//\n\
         DELIMITER ;\n\
         USE other;\n\
         SELECT DATABASE();\n\
         CREATE USER '{user}'@'%' IDENTIFIED BY '{SECRET}';\n\
         DROP USER '{user}'@'%';\n"
    )
}

/// The Python connectors' prepared statements, if a connector imports.
const PYTHON_PREPARED: &str = r#"
import sys
port = int(sys.argv[1])
done = []
try:
    import mysql.connector
    c = mysql.connector.connect(host="127.0.0.1", port=port, user="auditor",
        password="audit-pw", database="shop", ssl_disabled=True)
    cur = c.cursor(prepared=True)
    cur.execute("SELECT b FROM t WHERE a = %s AND b <> %s", (1, "q"))
    cur.fetchall()
    cur.execute("SELECT b FROM t WHERE a = %s AND b <> %s", (2, None))
    cur.fetchall()
    cur.execute("INSERT INTO t VALUES (%s, %s)", (10, "p"))
    try:
        cur.execute("SELECT b FROM nope WHERE a = %s", (1,))
    except mysql.connector.Error:
        pass
    c.commit()
    c.close()
    done.append("mysql.connector")
except ImportError:
    pass
try:
    import mariadb
    m = mariadb.connect(host="127.0.0.1", port=port, user="auditor",
        password="audit-pw", database="shop")
    cur = m.cursor()
    cur.executemany("INSERT INTO t VALUES (?, ?)", [(20, "r"), (21, None), (22, "s")])
    m.commit()
    m.close()
    done.append("mariadb")
except ImportError:
    pass
print(" ".join(done))
"#;

/// Runs [`PYTHON_PREPARED`]; the connectors that ran.
fn python_prepared(port: u16) -> String {
    if !have_tool("python3") {
        return String::new();
    }
    let mut c = Command::new("python3");
    c.args(["-c", PYTHON_PREPARED, &port.to_string()]);
    let out = run_limited(c, b"", CLIENT_DEADLINE).expect("python3");
    assert!(
        out.status.success(),
        "python connectors failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The statement log once every connection child of `d` has exited
/// (each writes its last records before it does).
fn final_records(d: &Daemon, path: &Path) -> Vec<Value> {
    assert!(
        wait_until(DEADLINE, || children(d.pid()).is_empty()),
        "connection children still running"
    );
    records(path)
}

#[test]
fn mariadb_statements_match_server_audit() {
    let Some(db) = MariaDb::start("mariadb-audit", &[]) else {
        return;
    };
    db.root(&format!(
        "CREATE DATABASE shop; CREATE DATABASE other; \
         CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'; \
         GRANT ALL ON *.* TO '{USER}'@'%' WITH GRANT OPTION;"
    ));
    let dir = tmpdir("mariadb-audit-logs");
    let stmt_log = dir.join("statements.log");
    let rec = dir.join("prot");
    let mut d = Daemon::start(&[
        "-P",
        &db.dest(),
        "-L",
        "-M",
        "-f",
        p(&rec),
        "--statement-log",
        p(&stmt_log),
    ]);

    let plain = mariadb_client(d.port(), &[], &script("u_plain"));
    assert!(
        plain.contains("1146"),
        "the error reached the client: {plain}"
    );
    let compressed = mariadb_client(d.port(), &["--compress"], &script("u_compressed"));
    assert!(compressed.contains("1146"), "{compressed}");
    let connectors = python_prepared(d.port());
    if connectors.is_empty() {
        skip(
            "no Python MySQL connector (pip install mysql-connector-python mariadb): prepared statements not compared",
        );
    }

    let audit = db.audit();
    let proxied: Vec<&Audited> = audit.iter().filter(|a| a.user == USER).collect();
    let sessions = 2 + connectors.split_whitespace().count();
    // every audited statement of ours, once logged, has its record
    let expected = proxied.len();
    let got = final_records(&d, &stmt_log);
    let matched = compare(&audit, &got);
    assert_eq!(matched, expected);
    // twelve statements per mariadb session reach the server's log
    assert!(expected >= 24, "only {expected} statements audited");
    eprintln!(
        "audit_mysql: {matched} audited statements matched in {} records; connectors: {connectors:?}",
        got.len()
    );
    let conns: BTreeSet<u64> = proxied.iter().map(|a| a.conn).collect();
    assert_eq!(
        conns.len(),
        sessions,
        "one server connection per client session"
    );

    // what the audit log shows, checked on our side too
    let find = |needle: &str| -> Vec<&Value> {
        got.iter()
            .filter(|r| r["statement"].as_str().is_some_and(|s| s.contains(needle)))
            .collect()
    };
    for r in find("nope") {
        if r["statement"].as_str().unwrap_or("").contains("nope2") || r["kind"] != "query" {
            continue;
        }
        assert_eq!(r["status"], "error");
        assert!(
            r["error"].as_str().unwrap_or("").starts_with("1146 "),
            "{r}"
        );
    }
    // the multi-statement query: one record per statement, the one after
    // the error not run
    for user in ["u_plain", "u_compressed"] {
        let conn = got
            .iter()
            .find(|r| r["statement"].as_str().is_some_and(|s| s.contains(user)))
            .and_then(|r| r["server_session"].as_u64())
            .expect("the CREATE USER record");
        let of_conn: Vec<&Value> = got
            .iter()
            .filter(|r| r["server_session"].as_u64() == Some(conn))
            .collect();
        let texts: Vec<&str> = of_conn
            .iter()
            .filter_map(|r| r["statement"].as_str())
            .collect();
        let i = texts
            .iter()
            .position(|s| *s == "SELECT 1")
            .unwrap_or_else(|| panic!("{texts:?}"));
        assert_eq!(
            &texts[i..i + 4],
            &[
                "SELECT 1",
                "SELECT a FROM t WHERE a = 1",
                "SELECT * FROM nope2",
                "SELECT 3"
            ]
        );
        assert_eq!(of_conn[i + 1]["rows"], 1);
        assert_eq!(of_conn[i + 3]["status"], "unknown");
        // service follows USE (the client's own SELECT DATABASE() before
        // its COM_INIT_DB still has the old one)
        let init_db = of_conn
            .iter()
            .position(|r| r["kind"] == "init_db" && r["statement"] == "other")
            .expect("COM_INIT_DB other");
        assert_eq!(of_conn[init_db]["status"], "ok");
        let after_use = of_conn[init_db..]
            .iter()
            .find(|r| r["statement"] == "SELECT DATABASE()")
            .expect("SELECT DATABASE()");
        assert_eq!(after_use["service"], "other");
        assert_eq!(of_conn[0]["service"], "shop");
        assert_eq!(of_conn[0]["user"], USER);
        assert_eq!(of_conn[0]["proto"], "mysql");
        assert_eq!(of_conn[0]["exact"], true);
    }
    // the password never appears, not even in the recordings' statements
    let text = std::fs::read_to_string(&stmt_log).unwrap();
    assert!(!text.contains(SECRET), "password in the statement log");
    assert!(!text.contains(PASSWORD), "auth data in the statement log");
    assert_eq!(find("IDENTIFIED BY").len(), 2);

    if connectors.contains("mysql.connector") {
        let exec: Vec<&Value> = got.iter().filter(|r| r["kind"] == "execute").collect();
        let params: Vec<String> = exec.iter().map(|r| r["params"].to_string()).collect();
        assert!(params.contains(&r#"["1","q"]"#.to_string()), "{params:?}");
        assert!(params.contains(&r#"["2",null]"#.to_string()), "{params:?}");
        assert!(params.contains(&r#"["10","p"]"#.to_string()), "{params:?}");
    }
    if connectors.contains("mariadb") {
        let bulk = got
            .iter()
            .find(|r| r["kind"] == "execute" && r["params"].to_string().contains("\"20\""))
            .expect("the bulk insert");
        assert_eq!(
            bulk["params"].to_string(),
            r#"["20","r","21",null,"22","s"]"#
        );
        assert_eq!(bulk["rows"], 3);
    }

    // the recordings give the same statements
    d.term();
    let logs = data_logs(&dir);
    assert_eq!(logs.len(), sessions, "{logs:?}");
    let mut args = vec!["--statements", "--json"];
    args.extend(logs.iter().map(|l| p(l)));
    let out = ipprotcat_in(&args, &dir, "UTC", b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_rec: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let key = |r: &Value| {
        format!(
            "{} {} {} {} {} {}",
            r["server_session"], r["kind"], r["statement"], r["status"], r["rows"], r["params"]
        )
    };
    let mut live: Vec<String> = got.iter().map(key).collect();
    let mut rec: Vec<String> = from_rec.iter().map(key).collect();
    live.sort();
    rec.sort();
    assert_eq!(rec, live);
    assert_eq!(compare(&audit, &from_rec), expected);

    // --no-redact shows the password as sent
    let mut args = vec!["--statements", "--json", "--no-redact"];
    args.extend(logs.iter().map(|l| p(l)));
    let out = ipprotcat_in(&args, &dir, "UTC", b"");
    assert!(String::from_utf8_lossy(&out.stdout).contains(SECRET));
}

#[test]
fn mariadb_tls_session_is_undecodable() {
    if !have_tool("openssl") {
        skip("openssl not installed: no certificate for the TLS test");
        return;
    }
    let certs = tmpdir("mariadb-tls-certs");
    let (key, cert) = (certs.join("key.pem"), certs.join("cert.pem"));
    let mut keygen = Command::new("openssl");
    keygen
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-keyout",
            p(&key),
            "-out",
            p(&cert),
        ]);
    let out = run_limited(keygen, b"", CLIENT_DEADLINE).expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let Some(db) = MariaDb::start(
        "mariadb-tls",
        &[
            format!("--ssl-cert={}", cert.display()),
            format!("--ssl-key={}", key.display()),
        ],
    ) else {
        return;
    };
    db.root(&format!(
        "CREATE DATABASE shop; CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'; \
         GRANT ALL ON *.* TO '{USER}'@'%';"
    ));
    let dir = tmpdir("mariadb-tls-logs");
    let stmt_log = dir.join("statements.log");
    let d = Daemon::start(&["-P", &db.dest(), "--statement-log", p(&stmt_log)]);
    let mut c = Command::new("mariadb");
    c.arg("--no-defaults")
        .args(["-h", "127.0.0.1", "-P", &d.port().to_string()])
        .args(["-u", USER, &format!("-p{PASSWORD}")])
        .args([
            "--ssl",
            "--connect-timeout=10",
            "-e",
            "SELECT 'over tls'",
            "shop",
        ]);
    let out = run_limited(c, b"", CLIENT_DEADLINE).expect("mariadb --ssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = final_records(&d, &stmt_log);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["kind"], "undecodable");
    assert_eq!(got[0]["proto"], "mysql");
    // the server did run it: over TLS, out of our sight
    assert!(db.audit().iter().any(|a| a.text == "SELECT 'over tls'"));
    let _ = std::fs::remove_dir_all(&certs);
}

#[test]
fn normalize_compares_server_and_proxy_forms() {
    assert_eq!(
        normalize("CREATE USER 'u'@'%' IDENTIFIED BY *****"),
        normalize("CREATE USER 'u'@'%' IDENTIFIED BY '***'")
    );
    assert_eq!(
        normalize("SELECT a FROM t WHERE a = 1 AND b = 'x'"),
        normalize("SELECT a FROM t WHERE a = ? AND b = ?")
    );
    assert_ne!(normalize("SELECT a FROM t"), normalize("SELECT b FROM t"));
    assert_eq!(normalize("SELECT  t1.a\n FROM t1;"), "SELECT t1.a FROM t1");
    let a = Audited::parse(
        "20261201 10:32:48,vm,app,localhost,9,46,QUERY,test,'CREATE USER \\'u9\\'@\\'%\\' IDENTIFIED BY *****',0",
    )
    .unwrap();
    assert_eq!(a.conn, 9);
    assert_eq!(a.code, 0);
    assert_eq!(a.text, "CREATE USER 'u9'@'%' IDENTIFIED BY *****");
}
