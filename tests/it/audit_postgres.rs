//! Statement audit end to end (SPEC "Statement audit") against a real
//! PostgreSQL server started here with `log_statement = all`: psql (a
//! script with a failing statement, a multi-statement query, `\copy`, a
//! password), pgbench `-M extended` and `-M prepared`, and a psycopg 3
//! pipeline, all through ipprotd with `-L -M -z -f` and
//! `--statement-log`. The server's own log is the ground truth: for every
//! backend (our `server_session`), every statement it logged appears
//! once, in order, with the right status and parameters. The live
//! statement log and `ipprotcat --statements --json` on the recordings
//! give the same records; password literals are redacted unless
//! `--no-redact`; a `-l` recording gives the statements with status
//! `unknown`.

use crate::harness::*;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

/// Server settings: every statement logged, with the backend pid.
const SETTINGS: &[&str] = &[
    "log_statement=all",
    "log_line_prefix='%m [%p] '",
    "log_min_error_statement=error",
    "lc_messages=C",
];
/// How long one client program may run.
const CLIENT_LIMIT: Duration = Duration::from_secs(120);
/// The password the psql script sets; never in a redacted record.
const SECRET: &str = "hunter2-never-logged";

/// One statement as the server logged it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Logged {
    text: String,
    error: bool,
    /// `None` for an SQL NULL.
    params: Option<Vec<Option<String>>>,
}

/// Blanks collapsed, so that a `Q` split into pieces compares with the
/// server's one line for it.
fn norm(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `2026-12-01 10:44:34.511 UTC [4500] LOG:  statement: ...` -> pid,
/// level, message.
fn log_line(l: &str) -> Option<(u64, &str, &str)> {
    if !l.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let (head, rest) = l.split_once("] ")?;
    let pid = head.rsplit_once('[')?.1.parse().ok()?;
    let (level, msg) = rest.split_once(":  ")?;
    Some((pid, level, msg))
}

/// `$1 = '-12', $2 = NULL, $3 = 'NULL'` -> [Some("-12"), None, Some("NULL")].
fn logged_params(s: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(eq) = rest.find(" = ") {
        rest = &rest[eq + 3..];
        if let Some(r) = rest.strip_prefix("NULL") {
            out.push(None);
            rest = r;
            continue;
        }
        let Some(body) = rest.strip_prefix('\'') else {
            break;
        };
        let mut v = String::new();
        let mut it = body.char_indices().peekable();
        let mut end = body.len();
        while let Some((i, c)) = it.next() {
            if c == '\'' {
                if it.peek().map(|p| p.1) == Some('\'') {
                    v.push('\'');
                    it.next();
                } else {
                    end = i + 1;
                    break;
                }
            } else {
                v.push(c);
            }
        }
        out.push(Some(v));
        rest = &body[end..];
    }
    out
}

/// The statements of each backend, from the server's log.
fn server_statements(log: &str) -> BTreeMap<u64, Vec<Logged>> {
    // entries: a prefixed line and its continuation lines
    let mut entries: Vec<(u64, String, String)> = Vec::new();
    for l in log.lines() {
        match log_line(l) {
            Some((pid, level, msg)) => entries.push((pid, level.to_string(), msg.to_string())),
            None => {
                if let Some(e) = entries.last_mut() {
                    e.2.push('\n');
                    e.2.push_str(l);
                }
            }
        }
    }
    let mut by_pid: BTreeMap<u64, Vec<Logged>> = BTreeMap::new();
    for (pid, level, msg) in entries {
        let list = by_pid.entry(pid).or_default();
        let text = if let Some(t) = msg.strip_prefix("statement: ") {
            Some(t.to_string())
        } else if level == "LOG" && msg.starts_with("execute ") {
            msg.split_once(": ").map(|(_, t)| t.to_string())
        } else {
            None
        };
        match (level.as_str(), text) {
            ("LOG", Some(text)) => list.push(Logged {
                text,
                error: false,
                params: None,
            }),
            ("DETAIL", _) => {
                if let (Some(p), Some(last)) = (msg.strip_prefix("parameters: "), list.last_mut()) {
                    last.params = Some(logged_params(p));
                }
            }
            ("STATEMENT", _) => match list.last_mut() {
                Some(last) if norm(&last.text) == norm(&msg) && !last.error => last.error = true,
                _ => list.push(Logged {
                    text: msg,
                    error: true,
                    params: None,
                }),
            },
            _ => {}
        }
    }
    by_pid.retain(|_, v| !v.is_empty());
    by_pid
}

/// Our records as the server would have logged them: the pieces of one
/// `Q` joined, successful prepares left out (the server logs no Parse).
fn as_logged(records: &[Value]) -> BTreeMap<u64, Vec<Logged>> {
    let mut by_pid: BTreeMap<u64, Vec<(i64, String, Logged)>> = BTreeMap::new();
    for r in records {
        let kind = r["kind"].as_str().unwrap();
        let status = r["status"].as_str().unwrap();
        let keep = match kind {
            "query" | "copy" | "execute" | "call" => true,
            "prepare" => status == "error",
            _ => false,
        };
        let Some(pid) = r["server_session"].as_u64() else {
            continue;
        };
        if !keep {
            continue;
        }
        let text = r["statement"].as_str().unwrap_or("").to_string();
        let params = r["params"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().map(str::to_string)).collect());
        let time = r["time_us"].as_i64().unwrap();
        let list = by_pid.entry(pid).or_default();
        let simple = kind == "query" || kind == "copy";
        match list.last_mut() {
            // another statement of the same Q
            Some((t, k, last)) if simple && *t == time && k == "simple" => {
                last.text.push(' ');
                last.text.push_str(&text);
                last.error |= status == "error";
            }
            _ => list.push((
                time,
                if simple { "simple" } else { "extended" }.to_string(),
                Logged {
                    text,
                    error: status == "error",
                    params,
                },
            )),
        }
    }
    by_pid
        .into_iter()
        .map(|(pid, v)| (pid, v.into_iter().map(|(_, _, l)| l).collect()))
        .collect()
}

/// Our parameter `ours` is the value the server logged as `logged`: the
/// same text, or a binary integer (`\x` hex, big-endian) of that value.
fn same_param(ours: &Option<String>, logged: &Option<String>) -> bool {
    let (Some(ours), Some(logged)) = (ours, logged) else {
        // NULL only where the server had NULL
        return ours.is_none() && logged.is_none();
    };
    match ours.strip_prefix("\\x") {
        Some(hex) if hex.len() <= 16 && !hex.is_empty() => {
            let v = u64::from_str_radix(hex, 16).unwrap_or(u64::MAX);
            let bits = hex.len() * 4;
            let signed = if bits < 64 && v >> (bits - 1) == 1 {
                v as i64 - (1i64 << bits)
            } else {
                v as i64
            };
            logged.parse::<i64>() == Ok(signed)
        }
        _ => ours == logged,
    }
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn run_client(mut c: Command, what: &str) -> String {
    c.env("PGCONNECT_TIMEOUT", "10");
    let (ok, out) = run_ok(c, CLIENT_LIMIT);
    assert!(ok, "{what} failed: {out}");
    out
}

/// `ipprotcat --statements` with `args` on `files`, stdout.
fn statements_of(dir: &Path, args: &[&str], files: &[PathBuf]) -> String {
    let mut a: Vec<&str> = vec!["--statements"];
    a.extend_from_slice(args);
    a.extend(files.iter().map(|f| p(f)));
    let o = ipprotcat_in(&a, dir, "UTC", b"");
    assert!(
        o.status.success(),
        "ipprotcat {a:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// The psycopg 3 that `/usr/bin/python3` (Debian's python3-psycopg) or
/// `python3` imports, if any.
fn python_with_psycopg() -> Option<&'static str> {
    ["/usr/bin/python3", "python3"].into_iter().find(|py| {
        Command::new(py)
            .args(["-c", "import psycopg"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Wait until the daemon has no children: every connection is logged.
fn wait_idle(d: &Daemon) {
    assert!(
        wait_until(DEADLINE, || children(d.pid()).is_empty()),
        "connections still open: {}",
        d.stderr()
    );
}

#[test]
fn statements_match_the_server_log_live_and_from_recordings() {
    let Some(cluster) = PgCluster::start("audit_pg", SETTINGS) else {
        return;
    };
    let (Some(psql), Some(pgbench)) = (cluster.client("psql"), cluster.client("pgbench")) else {
        skip("postgresql client programs (psql, pgbench) not installed");
        return;
    };
    let dir = cluster.base.clone();
    let live = dir.join("statements.log");
    let prefix = dir.join("prot");
    let (d, _conn) = Daemon::logged(
        &dir,
        &cluster.dest(),
        "%c %x",
        &[
            "-L",
            "-M",
            "-z",
            "-f",
            p(&prefix),
            "--statement-log",
            p(&live),
        ],
        &[],
    );
    let url = |app: &str| {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres application_name={app} sslmode=disable",
            d.port()
        )
    };
    let direct = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=disable",
        cluster.port.port()
    );

    // psql: a script with a failing statement, \copy in and out, a password
    let rows = dir.join("rows.tsv");
    std::fs::write(&rows, "1\tone\n2\ttwo\n3\tthree\n").unwrap();
    let script = dir.join("script.sql");
    std::fs::write(
        &script,
        format!(
            "CREATE TABLE t (a int, b text);\n\
             INSERT INTO t VALUES (10, 'ten');\n\
             SELECT * FROM no_such_table;\n\
             \\copy t FROM '{}'\n\
             \\copy t TO '{}'\n\
             CREATE ROLE auditor LOGIN PASSWORD '{SECRET}';\n\
             SELECT count(*) FROM t WHERE b <> ';';\n",
            rows.display(),
            dir.join("out.tsv").display()
        ),
    )
    .unwrap();
    let mut c = Command::new(&psql);
    c.arg(url("audit_script"))
        .args(["-X", "-q", "-f"])
        .arg(&script);
    let out = run_client(c, "psql -f");
    assert!(
        out.contains("no_such_table"),
        "the failing statement did not fail: {out}"
    );
    // one Q with several statements, the second failing
    let mut c = Command::new(&psql);
    c.arg(url("audit_multi"))
        .args(["-X", "-q", "-c"])
        .arg("INSERT INTO t VALUES (20, 'a;b'); SELECT 1/0; UPDATE t SET a = 0");
    let (ok, _) = run_ok(c, CLIENT_LIMIT);
    assert!(!ok, "division by zero did not fail");
    let mut c = Command::new(&psql);
    c.arg(url("audit_multi_ok"))
        .args(["-X", "-q", "-c"])
        .arg("BEGIN; UPDATE t SET a = a + 1 WHERE a < 3; SELECT count(*) FROM t; COMMIT");
    run_client(c, "psql -c");

    // pgbench: tables made directly, transactions through ipprotd
    let mut c = Command::new(&pgbench);
    c.args(["-i", "-s", "1", "-q", &direct]);
    run_client(c, "pgbench -i");
    for mode in ["extended", "prepared"] {
        let mut c = Command::new(&pgbench);
        c.args(["-n", "-M", mode, "-t", "3", "-c", "1"])
            .arg(url(&format!("pgbench_{mode}")));
        run_client(c, &format!("pgbench -M {mode}"));
    }

    // psycopg 3: a pipeline of parameterised statements
    let psycopg = python_with_psycopg();
    if let Some(py) = psycopg {
        let code = "import sys, psycopg\n\
                    with psycopg.connect(sys.argv[1], autocommit=True) as c:\n\
                    \x20   with c.pipeline():\n\
                    \x20       c.execute('INSERT INTO t VALUES (%s, %s)', (30, 'thirty'))\n\
                    \x20       c.execute('SELECT b FROM t WHERE a = %s', (30,))\n\
                    \x20       c.execute('UPDATE t SET b = %s WHERE a = %s', (None, 30))\n";
        let mut c = Command::new(py);
        c.args(["-c", code]).arg(url("psycopg_pipeline"));
        run_client(c, "psycopg pipeline");
    } else {
        skip("psycopg 3 not importable (python3-psycopg): the pipeline part");
    }
    wait_idle(&d);

    // the live log: one JSON object per line, secrets redacted
    let live_text = std::fs::read_to_string(&live).unwrap();
    assert!(!live_text.contains(SECRET), "password in the statement log");
    assert!(live_text.contains("PASSWORD '***'"), "{live_text}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&live).unwrap().permissions().mode() & 0o777,
        0o640
    );
    let live_records = json_lines(&live_text);
    assert!(
        live_records
            .iter()
            .all(|r| r["client_port"].is_u64() && r["exact"] == true)
    );

    // the recordings give the same records (client_port unknown there)
    let files = data_logs(&dir);
    assert!(files.len() >= 6, "recordings: {files:?}");
    let from_files = json_lines(&statements_of(&dir, &["--json"], &files));
    let mut expect = live_records.clone();
    for r in &mut expect {
        r["client_port"] = Value::Null;
    }
    let key = |r: &Value| (r["conn"].as_u64(), r["time_us"].as_i64());
    let mut sorted = expect.clone();
    sorted.sort_by_key(key);
    let mut got = from_files.clone();
    got.sort_by_key(key);
    assert_eq!(got.len(), sorted.len());
    for (g, e) in got.iter().zip(&sorted) {
        assert_eq!(g, e);
    }
    // the text form: one line per record, the same statuses
    let text = statements_of(&dir, &[], &files);
    assert_eq!(text.lines().count(), from_files.len());
    assert!(text.lines().all(|l| l.split('|').count() >= 7), "{text}");

    // the server's log is the truth; the records unredacted match it
    let unredacted = json_lines(&statements_of(&dir, &["--json", "--no-redact"], &files));
    assert!(
        unredacted
            .iter()
            .any(|r| r["statement"].as_str().is_some_and(|s| s.contains(SECRET)))
    );
    let server = server_statements(&std::fs::read_to_string(cluster.log()).unwrap());
    let ours = as_logged(&unredacted);
    assert!(ours.len() >= 6, "backends seen: {:?}", ours.keys());
    for (pid, got) in &ours {
        let want = server
            .get(pid)
            .unwrap_or_else(|| panic!("backend {pid} logged nothing"));
        let show = |v: &[Logged]| {
            v.iter()
                .map(|l| format!("{} {}", l.error, norm(&l.text)))
                .collect::<Vec<_>>()
        };
        assert_eq!(show(got), show(want), "backend {pid}");
        for (g, w) in got.iter().zip(want) {
            if let Some(wp) = &w.params {
                let gp = g
                    .params
                    .as_ref()
                    .unwrap_or_else(|| panic!("no parameters for {}", w.text));
                assert_eq!(gp.len(), wp.len(), "parameters of {}", w.text);
                for (gv, wv) in gp.iter().zip(wp) {
                    assert!(
                        same_param(gv, wv),
                        "parameter {gv:?} of {}: the server has {wv:?}",
                        w.text
                    );
                }
            }
        }
    }
    // and the parts named in the test are there
    let by_app = |app: &str| -> Vec<&Value> {
        unredacted
            .iter()
            .filter(|r| r["program"] == app && r["kind"] != "connect")
            .collect()
    };
    let multi = by_app("audit_multi");
    let st: Vec<&str> = multi
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(st, ["ok", "error", "unknown"], "{multi:?}");
    assert_eq!(multi[1]["error"], "22012 division by zero");
    let copies: Vec<_> = by_app("audit_script")
        .into_iter()
        .filter(|r| r["kind"] == "copy")
        .collect();
    assert_eq!(copies.len(), 2);
    assert_eq!(
        (copies[0]["rows"].as_u64(), copies[1]["rows"].as_u64()),
        (Some(3), Some(4))
    );
    let failed: Vec<_> = by_app("audit_script")
        .into_iter()
        .filter(|r| r["status"] == "error")
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0]["error"],
        "42P01 relation \"no_such_table\" does not exist"
    );
    for mode in ["extended", "prepared"] {
        let ex: Vec<_> = by_app(&format!("pgbench_{mode}"))
            .into_iter()
            .filter(|r| r["kind"] == "execute")
            .collect();
        // 3 transactions of 7 statements
        assert_eq!(ex.len(), 21, "pgbench -M {mode}");
        assert!(ex.iter().all(|r| r["status"] == "ok"));
        assert!(
            ex.iter()
                .any(|r| r["params"].as_array().is_some_and(|a| a.len() == 2))
        );
        let prepares = by_app(&format!("pgbench_{mode}"))
            .into_iter()
            .filter(|r| r["kind"] == "prepare")
            .count();
        assert_eq!(prepares, if mode == "prepared" { 7 } else { 0 });
    }
    if psycopg.is_some() {
        let pl: Vec<_> = by_app("psycopg_pipeline")
            .into_iter()
            .filter(|r| r["kind"] == "execute")
            .collect();
        assert_eq!(pl.len(), 3, "{pl:?}");
        // psycopg sends integers binary: shown as hex
        assert_eq!(pl[2]["params"], serde_json::json!([null, "\\x001e"]));
        assert_eq!(pl[1]["rows"], 1);
    }
    drop(d);
}

#[test]
fn client_only_recording_gives_unknown_statuses() {
    let Some(cluster) = PgCluster::start("audit_pg_l", &[]) else {
        return;
    };
    let Some(psql) = cluster.client("psql") else {
        skip("postgresql not installed (no psql)");
        return;
    };
    let dir = cluster.base.clone();
    let prefix = dir.join("prot");
    let (d, _conn) = Daemon::logged(
        &dir,
        &cluster.dest(),
        "%c %x",
        &[
            "-l",
            "-M",
            "-j",
            "-f",
            p(&prefix),
            "--statement-log",
            p(&dir.join("live.log")),
        ],
        &[],
    );
    let mut c = Command::new(&psql);
    c.arg(format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=disable",
        d.port()
    ))
    .args(["-X", "-q", "-c", "SELECT 1; SELECT 2"]);
    run_client(c, "psql");
    wait_idle(&d);
    let files = data_logs(&dir);
    assert_eq!(files.len(), 1);
    assert!(p(&files[0]).ends_with(".bz2"));
    let recs = json_lines(&statements_of(&dir, &["--json"], &files));
    let got: Vec<(&str, &str)> = recs
        .iter()
        .map(|r| {
            (
                r["statement"].as_str().unwrap_or("-"),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, [("SELECT 1;", "unknown"), ("SELECT 2", "unknown")]);
    assert!(
        recs.iter()
            .all(|r| r["user"] == "postgres" && r["server_session"].is_null())
    );
    // the live log saw both directions whatever -l records
    let live = json_lines(&std::fs::read_to_string(dir.join("live.log")).unwrap());
    let st: Vec<&str> = live
        .iter()
        .filter(|r| r["kind"] == "query")
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(st, ["ok", "ok"]);
    drop(d);
}

#[test]
fn statement_log_directory_is_checked_at_start() {
    let dir = tmpdir("stmtlog_start");
    let missing = dir.join("no/such/dir/statements.log");
    let o = run(&["-p", "0@127.0.0.1", "--statement-log", p(&missing)]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--statement-log") && err.contains(p(missing.parent().unwrap())),
        "{err}"
    );
    let o = run(&["--no-redact"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--no-redact needs --statement-log"));
}
