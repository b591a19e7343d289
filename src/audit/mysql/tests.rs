//! Byte sequences built from the protocol layouts (AUDIT.md §2.2), fed
//! whole, split at every byte, and merged.

use std::io::Write;

use super::*;

const MARIADB_CAPS: u64 = CLIENT_CONNECT_WITH_DB
    | CLIENT_PROTOCOL_41
    | CLIENT_SECURE_CONNECTION
    | CLIENT_PLUGIN_AUTH
    | CLIENT_CONNECT_ATTRS
    | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
    | CLIENT_SESSION_TRACK
    | (1 << 16) // CLIENT_MULTI_STATEMENTS
    | (1 << 17) // CLIENT_MULTI_RESULTS
    | (1 << 34); // MARIADB_CLIENT_STMT_BULK_OPERATIONS

/// Auth data in the handshake: must never show up in a record.
const SECRET: &[u8] = b"SECRET-SCRAMBLE-0123";

fn pkt(seq: u8, payload: &[u8]) -> Vec<u8> {
    let n = payload.len();
    let mut v = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
    v.extend_from_slice(payload);
    v
}

fn lenenc(n: u64) -> Vec<u8> {
    match n {
        0..=0xfa => vec![n as u8],
        0xfb..=0xffff => vec![0xfc, n as u8, (n >> 8) as u8],
        0x1_0000..=0xff_ffff => vec![0xfd, n as u8, (n >> 8) as u8, (n >> 16) as u8],
        _ => {
            let mut v = vec![0xfe];
            v.extend_from_slice(&n.to_le_bytes());
            v
        }
    }
}

fn lstr(s: &[u8]) -> Vec<u8> {
    let mut v = lenenc(s.len() as u64);
    v.extend_from_slice(s);
    v
}

fn greeting(conn_id: u32, caps: u64) -> Vec<u8> {
    let mut p = vec![GREETING_V10];
    p.extend_from_slice(b"5.5.5-10.11.6-MariaDB-0+deb12u1\0");
    p.extend_from_slice(&conn_id.to_le_bytes());
    p.extend_from_slice(b"abcdefgh\0");
    p.extend_from_slice(&(caps as u16).to_le_bytes());
    p.push(0x2d);
    p.extend_from_slice(&2u16.to_le_bytes());
    p.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
    p.push(21);
    p.extend_from_slice(&[0; 6]);
    p.extend_from_slice(&((caps >> 32) as u32).to_le_bytes());
    p.extend_from_slice(b"ijklmnopqrst\0");
    p.extend_from_slice(b"mysql_native_password\0");
    pkt(0, &p)
}

fn handshake(caps: u64, user: &str, db: Option<&str>) -> Vec<u8> {
    let mut caps = caps;
    if db.is_some() {
        caps |= CLIENT_CONNECT_WITH_DB;
    } else {
        caps &= !CLIENT_CONNECT_WITH_DB;
    }
    let mut p = Vec::new();
    p.extend_from_slice(&(caps as u32).to_le_bytes());
    p.extend_from_slice(&16_777_216u32.to_le_bytes());
    p.push(0x2d);
    p.extend_from_slice(&[0; 19]);
    p.extend_from_slice(&((caps >> 32) as u32).to_le_bytes());
    p.extend_from_slice(user.as_bytes());
    p.push(0);
    p.extend_from_slice(&lstr(SECRET));
    if let Some(db) = db {
        p.extend_from_slice(db.as_bytes());
        p.push(0);
    }
    p.extend_from_slice(b"mysql_native_password\0");
    let mut attrs = Vec::new();
    for (k, v) in [("_client_name", "libmariadb"), ("program_name", "mysql")] {
        attrs.extend_from_slice(&lstr(k.as_bytes()));
        attrs.extend_from_slice(&lstr(v.as_bytes()));
    }
    p.extend_from_slice(&lstr(&attrs));
    pkt(1, &p)
}

fn ok_payload(affected: u64, status: u16) -> Vec<u8> {
    let mut p = vec![OK];
    p.extend_from_slice(&lenenc(affected));
    p.extend_from_slice(&lenenc(0));
    p.extend_from_slice(&status.to_le_bytes());
    p.extend_from_slice(&0u16.to_le_bytes());
    p
}

fn ok(seq: u8, affected: u64, status: u16) -> Vec<u8> {
    pkt(seq, &ok_payload(affected, status))
}

fn err(seq: u8, code: u16, state: &str, msg: &str) -> Vec<u8> {
    let mut p = vec![ERR];
    p.extend_from_slice(&code.to_le_bytes());
    p.push(b'#');
    p.extend_from_slice(state.as_bytes());
    p.extend_from_slice(msg.as_bytes());
    pkt(seq, &p)
}

fn eof(seq: u8, status: u16) -> Vec<u8> {
    let mut p = vec![EOF, 0, 0];
    p.extend_from_slice(&status.to_le_bytes());
    pkt(seq, &p)
}

/// OK with a 0xfe header: the end of rows under CLIENT_DEPRECATE_EOF.
fn eof_ok(seq: u8, status: u16) -> Vec<u8> {
    let mut p = ok_payload(0, status);
    p[0] = EOF;
    pkt(seq, &p)
}

fn coldef(seq: u8, name: &str) -> Vec<u8> {
    let mut p = Vec::new();
    for s in ["def", "test", "t", "t", name, name] {
        p.extend_from_slice(&lstr(s.as_bytes()));
    }
    p.extend_from_slice(&[0x0c, 0x21, 0, 0xff, 0, 0, 0, 0xfd, 0, 0, 0, 0, 0]);
    pkt(seq, &p)
}

fn row(seq: u8, values: &[&str]) -> Vec<u8> {
    let mut p = Vec::new();
    for v in values {
        p.extend_from_slice(&lstr(v.as_bytes()));
    }
    pkt(seq, &p)
}

fn command(cmd: u8, body: &[u8]) -> Vec<u8> {
    let mut p = vec![cmd];
    p.extend_from_slice(body);
    pkt(0, &p)
}

fn query(sql: &str) -> Vec<u8> {
    command(COM_QUERY, sql.as_bytes())
}

/// A result set: column count, definitions, [EOF], rows, EOF or OK.
fn result_set(columns: &[&str], rows: &[&[&str]], status: u16, deprecate_eof: bool) -> Vec<u8> {
    let mut v = pkt(1, &lenenc(columns.len() as u64));
    let mut seq = 2;
    for c in columns {
        v.extend(coldef(seq, c));
        seq += 1;
    }
    if !deprecate_eof {
        v.extend(eof(seq, 0));
        seq += 1;
    }
    for r in rows {
        v.extend(row(seq, r));
        seq += 1;
    }
    if deprecate_eof {
        v.extend(eof_ok(seq, status));
    } else {
        v.extend(eof(seq, status));
    }
    v
}

type Script = Vec<(Dir, Vec<u8>)>;

/// Greeting, handshake and the server's OK.
fn login(caps: u64, db: Option<&str>) -> Script {
    vec![
        (Dir::ToClient, greeting(42, caps)),
        (Dir::FromClient, handshake(caps, "alice", db)),
        (Dir::ToClient, ok(2, 0, 2)),
    ]
}

/// Feeds each step as one chunk, 10 µs apart.
fn run(script: &Script) -> Vec<Record> {
    run_chunked(script, usize::MAX)
}

/// Feeds each step in chunks of at most `size` bytes.
fn run_chunked(script: &Script, size: usize) -> Vec<Record> {
    let mut m = MySql::new();
    let mut out = Vec::new();
    for (i, (dir, bytes)) in script.iter().enumerate() {
        for chunk in bytes.chunks(size.max(1)) {
            m.feed(*dir, 1_000 + 10 * i as i64, chunk, &mut out);
        }
    }
    m.finish(&mut out);
    out
}

/// Consecutive steps of one direction joined into one chunk.
fn merged(script: &Script) -> Script {
    let mut v: Script = Vec::new();
    for (dir, bytes) in script {
        match v.last_mut() {
            Some((d, b)) if d == dir => b.extend_from_slice(bytes),
            _ => v.push((*dir, bytes.clone())),
        }
    }
    v
}

/// The same records whole, split at every byte and in 7-byte chunks.
fn run_all_ways(script: &Script) -> Vec<Record> {
    let whole = run(script);
    for size in [1, 2, 3, 7, 64] {
        let got = run_chunked(script, size);
        assert_eq!(strip_times(&got), strip_times(&whole), "chunks of {size}");
    }
    assert_eq!(
        strip_times(&run(&merged(script))),
        strip_times(&whole),
        "merged"
    );
    whole
}

/// Records without their times (which depend on chunking).
fn strip_times(records: &[Record]) -> Vec<Record> {
    records
        .iter()
        .cloned()
        .map(|mut r| {
            r.time_us = 0;
            r.duration_us = r.duration_us.map(|_| 0);
            r
        })
        .collect()
}

fn no_secret(records: &[Record]) {
    let secret = String::from_utf8_lossy(SECRET).into_owned();
    for r in records {
        let all = format!("{r:?}");
        assert!(!all.contains(&secret), "auth data leaked: {all}");
    }
}

fn statements(records: &[Record]) -> Vec<(&str, String, Outcome)> {
    records
        .iter()
        .map(|r| {
            (
                r.kind,
                r.statement.as_deref().unwrap_or_default().to_string(),
                r.status,
            )
        })
        .collect()
}

#[test]
fn handshake_gives_identity_and_no_auth_data() {
    let mut s = login(MARIADB_CAPS, Some("shop"));
    s.push((Dir::FromClient, query("SELECT 1")));
    s.push((Dir::ToClient, result_set(&["1"], &[&["1"]], 2, false)));
    let r = run_all_ways(&s);
    assert_eq!(r.len(), 1);
    let r0 = &r[0];
    assert_eq!(r0.proto, "mysql");
    assert_eq!(r0.user.as_deref(), Some("alice"));
    assert_eq!(r0.service.as_deref(), Some("shop"));
    assert_eq!(r0.program.as_deref(), Some("mysql"));
    assert_eq!(r0.server_session, Some(42));
    assert_eq!(r0.kind, "query");
    assert_eq!(r0.statement.as_deref(), Some("SELECT 1"));
    assert_eq!(r0.status, Outcome::Ok);
    assert_eq!(r0.tag.as_deref(), Some("EOF"));
    assert_eq!(r0.rows, Some(1));
    assert!(r0.exact);
    no_secret(&r);
}

#[test]
fn ok_gives_rows_affected_and_duration() {
    let mut s = login(MARIADB_CAPS, None);
    s.push((Dir::FromClient, query("UPDATE t SET a = 1")));
    s.push((Dir::ToClient, ok(1, 3, 2)));
    let r = run(&s);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].service, None);
    assert_eq!(r[0].tag.as_deref(), Some("OK"));
    assert_eq!(r[0].rows, Some(3));
    assert_eq!(r[0].time_us, 1_030);
    assert_eq!(r[0].duration_us, Some(10));
}

#[test]
fn result_sets_with_and_without_deprecate_eof() {
    for deprecate in [false, true] {
        let caps = if deprecate {
            MARIADB_CAPS | CLIENT_DEPRECATE_EOF
        } else {
            MARIADB_CAPS
        };
        let mut s = login(caps, None);
        s.push((Dir::FromClient, query("SELECT a, b FROM t")));
        s.push((
            Dir::ToClient,
            result_set(
                &["a", "b"],
                &[&["1", "x"], &["2", "y"], &["3", ""]],
                2,
                deprecate,
            ),
        ));
        s.push((Dir::FromClient, query("DELETE FROM t")));
        s.push((Dir::ToClient, ok(1, 3, 2)));
        let r = run_all_ways(&s);
        assert_eq!(r.len(), 2, "deprecate_eof {deprecate}");
        assert_eq!(r[0].rows, Some(3));
        assert_eq!(r[0].tag.as_deref(), Some("EOF"));
        assert_eq!(r[1].rows, Some(3));
        assert_eq!(r[1].tag.as_deref(), Some("OK"));
    }
}

#[test]
fn error_gives_number_and_message() {
    let mut s = login(MARIADB_CAPS, Some("test"));
    s.push((Dir::FromClient, query("SELECT * FROM nope")));
    s.push((
        Dir::ToClient,
        err(1, 1146, "42S02", "Table 'test.nope' doesn't exist"),
    ));
    let r = run_all_ways(&s);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, Outcome::Error);
    assert_eq!(r[0].tag, None);
    assert_eq!(
        r[0].error.as_deref(),
        Some("1146 Table 'test.nope' doesn't exist")
    );
}

#[test]
fn error_mid_result_set() {
    let mut s = login(MARIADB_CAPS, None);
    s.push((Dir::FromClient, query("SELECT sleep(10)")));
    let mut reply = pkt(1, &lenenc(1));
    reply.extend(coldef(2, "s"));
    reply.extend(eof(3, 0));
    reply.extend(err(4, 1317, "70100", "Query execution was interrupted"));
    s.push((Dir::ToClient, reply));
    let r = run_all_ways(&s);
    assert_eq!(r[0].status, Outcome::Error);
    assert_eq!(r[0].rows, Some(0));
    assert!(r[0].error.as_deref().unwrap_or("").starts_with("1317 "));
}

#[test]
fn multi_statement_gives_one_record_each() {
    let mut s = login(MARIADB_CAPS, None);
    s.push((
        Dir::FromClient,
        query("SELECT 1; INSERT INTO t VALUES (';', \"a;b\") ;\n DELETE FROM t -- gone; really\n"),
    ));
    let mut reply = result_set(&["1"], &[&["1"]], 2 | SERVER_MORE_RESULTS_EXISTS, false);
    reply.extend(ok(5, 1, 2 | SERVER_MORE_RESULTS_EXISTS));
    reply.extend(ok(6, 4, 2));
    s.push((Dir::ToClient, reply));
    let r = run_all_ways(&s);
    assert_eq!(
        statements(&r),
        vec![
            ("query", "SELECT 1".to_string(), Outcome::Ok),
            (
                "query",
                "INSERT INTO t VALUES (';', \"a;b\")".to_string(),
                Outcome::Ok
            ),
            (
                "query",
                "DELETE FROM t -- gone; really".to_string(),
                Outcome::Ok
            ),
        ]
    );
    assert_eq!(r[0].rows, Some(1));
    assert_eq!(r[1].rows, Some(1));
    assert_eq!(r[2].rows, Some(4));
}

#[test]
fn multi_statement_stops_at_an_error() {
    let mut s = login(MARIADB_CAPS, None);
    s.push((
        Dir::FromClient,
        query("INSERT INTO t VALUES (1); SELECT * FROM nope; DELETE FROM t"),
    ));
    let mut reply = ok(1, 1, 2 | SERVER_MORE_RESULTS_EXISTS);
    reply.extend(err(2, 1146, "42S02", "Table 'test.nope' doesn't exist"));
    s.push((Dir::ToClient, reply));
    s.push((Dir::FromClient, query("SELECT 2")));
    s.push((Dir::ToClient, result_set(&["2"], &[&["2"]], 2, false)));
    let r = run_all_ways(&s);
    assert_eq!(
        statements(&r),
        vec![
            ("query", "INSERT INTO t VALUES (1)".to_string(), Outcome::Ok),
            ("query", "SELECT * FROM nope".to_string(), Outcome::Error),
            ("query", "DELETE FROM t".to_string(), Outcome::Unknown),
            ("query", "SELECT 2".to_string(), Outcome::Ok),
        ]
    );
}

#[test]
fn compound_statement_is_one_record() {
    let sql = "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END";
    let mut s = login(MARIADB_CAPS, None);
    s.push((Dir::FromClient, query(sql)));
    s.push((Dir::ToClient, ok(1, 0, 2)));
    let r = run(&s);
    assert_eq!(
        statements(&r),
        vec![("query", sql.to_string(), Outcome::Ok)]
    );
}

#[test]
fn call_with_result_sets_is_one_record() {
    let mut s = login(MARIADB_CAPS, None);
    s.push((Dir::FromClient, query("CALL p(); SELECT 3")));
    let more = 2 | SERVER_MORE_RESULTS_EXISTS;
    let mut reply = result_set(&["1"], &[&["1"]], more, false);
    reply.extend(result_set(&["2"], &[&["2"], &["2"]], more, false));
    reply.extend(ok(1, 0, more));
    reply.extend(result_set(&["3"], &[&["3"]], 2, false));
    s.push((Dir::ToClient, reply));
    let r = run_all_ways(&s);
    assert_eq!(
        statements(&r),
        vec![
            ("query", "CALL p()".to_string(), Outcome::Ok),
            ("query", "SELECT 3".to_string(), Outcome::Ok),
        ]
    );
    assert_eq!(r[0].rows, Some(3));
    assert_eq!(r[0].tag.as_deref(), Some("OK"));
    assert_eq!(r[1].rows, Some(1));
}

#[test]
fn init_db_and_use_change_the_service() {
    let mut s = login(MARIADB_CAPS, Some("a"));
    s.push((Dir::FromClient, command(COM_INIT_DB, b"b")));
    s.push((Dir::ToClient, ok(1, 0, 2)));
    s.push((Dir::FromClient, query("SELECT 1")));
    s.push((Dir::ToClient, result_set(&["1"], &[&["1"]], 2, false)));
    s.push((Dir::FromClient, command(COM_INIT_DB, b"nope")));
    s.push((
        Dir::ToClient,
        err(1, 1049, "42000", "Unknown database 'nope'"),
    ));
    s.push((Dir::FromClient, query("use `c``d`")));
    s.push((Dir::ToClient, ok(1, 0, 2)));
    s.push((Dir::FromClient, query("SELECT 2")));
    s.push((Dir::ToClient, result_set(&["2"], &[&["2"]], 2, false)));
    let r = run_all_ways(&s);
    let got: Vec<_> = r
        .iter()
        .map(|r| (r.kind, r.statement.as_deref(), r.service.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("init_db", Some("b"), Some("a")),
            ("query", Some("SELECT 1"), Some("b")),
            ("init_db", Some("nope"), Some("b")),
            ("query", Some("use `c``d`"), Some("b")),
            ("query", Some("SELECT 2"), Some("c`d")),
        ]
    );
    assert_eq!(r[2].status, Outcome::Error);
}

#[test]
fn session_track_schema_changes_the_service() {
    let mut s = login(MARIADB_CAPS, None);
    s.push((Dir::FromClient, query("CALL switch_db()")));
    let mut p = ok_payload(0, 2 | SERVER_SESSION_STATE_CHANGED);
    p.extend(lstr(b""));
    let mut entry = vec![SESSION_TRACK_SCHEMA];
    entry.extend(lstr(&lstr(b"inventory")));
    p.extend(lstr(&entry));
    s.push((Dir::ToClient, pkt(1, &p)));
    s.push((Dir::FromClient, query("SELECT 1")));
    s.push((Dir::ToClient, result_set(&["1"], &[&["1"]], 2, false)));
    let r = run(&s);
    assert_eq!(r[0].service, None);
    assert_eq!(r[1].service.as_deref(), Some("inventory"));
}

/// COM_STMT_PREPARE_OK with its parameter and column definitions.
fn prepare_ok(id: u32, columns: u16, params: u16, deprecate_eof: bool) -> Vec<u8> {
    let mut p = vec![OK];
    p.extend_from_slice(&id.to_le_bytes());
    p.extend_from_slice(&columns.to_le_bytes());
    p.extend_from_slice(&params.to_le_bytes());
    p.push(0);
    p.extend_from_slice(&0u16.to_le_bytes());
    let mut v = pkt(1, &p);
    let mut seq = 2;
    for (n, name) in [(params, "?"), (columns, "c")] {
        for _ in 0..n {
            v.extend(coldef(seq, name));
            seq += 1;
        }
        if n > 0 && !deprecate_eof {
            v.extend(eof(seq, 2));
            seq += 1;
        }
    }
    v
}

/// COM_STMT_EXECUTE with a null bitmap, optional types, and raw values.
fn execute(id: u32, nulls: &[u8], types: Option<&[(u8, u8)]>, values: &[u8]) -> Vec<u8> {
    let mut p = vec![COM_STMT_EXECUTE];
    p.extend_from_slice(&id.to_le_bytes());
    p.push(0);
    p.extend_from_slice(&1u32.to_le_bytes());
    p.extend_from_slice(nulls);
    match types {
        Some(types) => {
            p.push(1);
            for (t, f) in types {
                p.extend_from_slice(&[*t, *f]);
            }
        }
        None => p.push(0),
    }
    p.extend_from_slice(values);
    pkt(0, &p)
}

/// A binary result set: count, definitions, EOF, rows, EOF.
fn binary_rows(n: usize) -> Vec<u8> {
    let mut v = pkt(1, &lenenc(1));
    v.extend(coldef(2, "c"));
    v.extend(eof(3, 2));
    for i in 0..n {
        v.extend(pkt(4 + i as u8, &[0x00, 0x00, 1, b'x']));
    }
    v.extend(eof(4 + n as u8, 2));
    v
}

#[test]
fn prepared_statement_with_typed_then_cached_parameters() {
    let sql = "SELECT c FROM t WHERE a = ? AND b = ? AND d = ?";
    let mut s = login(MARIADB_CAPS, None);
    s.push((Dir::FromClient, command(COM_STMT_PREPARE, sql.as_bytes())));
    s.push((Dir::ToClient, prepare_ok(7, 1, 3, false)));
    let mut values = (-42i64).to_le_bytes().to_vec();
    values.extend(lstr(b"x'y"));
    values.extend([4, 0xe8, 0x07, 12, 31]); // DATE 2024-12-31
    let types = [(T_LONGLONG, 0), (0xfd, 0), (T_DATE, 0)];
    s.push((Dir::FromClient, execute(7, &[0], Some(&types), &values)));
    s.push((Dir::ToClient, binary_rows(2)));
    // cached types, second value NULL
    let mut values = 7u64.to_le_bytes().to_vec();
    values.extend([0]);
    s.push((Dir::FromClient, execute(7, &[0b010], None, &values)));
    s.push((Dir::ToClient, binary_rows(0)));
    s.push((
        Dir::FromClient,
        command(COM_STMT_CLOSE, &7u32.to_le_bytes()),
    ));
    s.push((Dir::FromClient, query("SELECT 1")));
    s.push((Dir::ToClient, result_set(&["1"], &[&["1"]], 2, false)));
    let r = run_all_ways(&s);
    assert_eq!(r.len(), 4);
    assert_eq!(r[0].kind, "prepare");
    assert_eq!(r[0].statement.as_deref(), Some(sql));
    assert_eq!(r[0].status, Outcome::Ok);
    assert_eq!(r[1].kind, "execute");
    assert_eq!(r[1].statement.as_deref(), Some(sql));
    assert_eq!(
        r[1].params,
        Some(vec![
            Some("-42".to_string()),
            Some("x'y".to_string()),
            Some("2024-12-31".to_string())
        ])
    );
    assert_eq!(r[1].rows, Some(2));
    assert_eq!(
        r[2].params,
        Some(vec![
            Some("7".to_string()),
            None,
            Some("0000-00-00".to_string())
        ])
    );
    assert_eq!(r[2].rows, Some(0));
    assert_eq!(r[3].statement.as_deref(), Some("SELECT 1"));
}

#[test]
fn prepare_with_deprecate_eof_and_an_error() {
    let caps = MARIADB_CAPS | CLIENT_DEPRECATE_EOF;
    let mut s = login(caps, None);
    s.push((
        Dir::FromClient,
        command(COM_STMT_PREPARE, b"INSERT INTO t VALUES (?, ?)"),
    ));
    s.push((Dir::ToClient, prepare_ok(1, 0, 2, true)));
    s.push((Dir::FromClient, command(COM_STMT_PREPARE, b"SELEC oops")));
    s.push((Dir::ToClient, err(1, 1064, "42000", "You have an error")));
    let mut values = vec![5];
    values.extend(lstr(b"\xff\x00"));
    let types = [(T_TINY, PARAM_UNSIGNED), (0xfc, 0)];
    s.push((Dir::FromClient, execute(1, &[0], Some(&types), &values)));
    s.push((Dir::ToClient, ok(1, 1, 2)));
    let r = run_all_ways(&s);
    assert_eq!(
        statements(&r),
        vec![
            (
                "prepare",
                "INSERT INTO t VALUES (?, ?)".to_string(),
                Outcome::Ok
            ),
            ("prepare", "SELEC oops".to_string(), Outcome::Error),
            (
                "execute",
                "INSERT INTO t VALUES (?, ?)".to_string(),
                Outcome::Ok
            ),
        ]
    );
    assert_eq!(
        r[2].params,
        Some(vec![Some("5".to_string()), Some("\\xff00".to_string())])
    );
    assert_eq!(r[2].rows, Some(1));
}

#[test]
fn mariadb_last_prepared_id_pipelined() {
    let sql = "UPDATE t SET a = ? WHERE id = ?";
    let mut s = login(MARIADB_CAPS, None);
    // PREPARE and EXECUTE(-1) in one chunk, before any reply
    let mut c = command(COM_STMT_PREPARE, sql.as_bytes());
    let mut values = 1.5f64.to_le_bytes().to_vec();
    values.extend(9i32.to_le_bytes());
    c.extend(execute(
        LAST_PREPARED,
        &[0],
        Some(&[(T_DOUBLE, 0), (T_LONG, 0)]),
        &values,
    ));
    s.push((Dir::FromClient, c));
    let mut reply = prepare_ok(3, 0, 2, false);
    reply.extend(ok(1, 1, 2));
    s.push((Dir::ToClient, reply));
    let r = run_all_ways(&s);
    assert_eq!(r.len(), 2);
    assert_eq!(r[1].kind, "execute");
    assert_eq!(r[1].statement.as_deref(), Some(sql));
    assert_eq!(
        r[1].params,
        Some(vec![Some("1.5".to_string()), Some("9".to_string())])
    );
    assert_eq!(r[1].rows, Some(1));
}

#[test]
fn bulk_execute_values_row_after_row() {
    let sql = "INSERT INTO t VALUES (?, ?)";
    let mut s = login(MARIADB_CAPS, None);
    s.push((Dir::FromClient, command(COM_STMT_PREPARE, sql.as_bytes())));
    s.push((Dir::ToClient, prepare_ok(2, 0, 2, false)));
    let mut p = vec![COM_STMT_BULK_EXECUTE];
    p.extend_from_slice(&2u32.to_le_bytes());
    p.extend_from_slice(&BULK_SEND_TYPES.to_le_bytes());
    p.extend_from_slice(&[T_LONG, 0, 0xfd, 0]);
    for (n, v) in [(1i32, Some("a")), (2, None)] {
        p.push(BULK_INDICATOR_NONE);
        p.extend_from_slice(&n.to_le_bytes());
        match v {
            Some(v) => {
                p.push(BULK_INDICATOR_NONE);
                p.extend(lstr(v.as_bytes()));
            }
            None => p.push(BULK_INDICATOR_NULL),
        }
    }
    s.push((Dir::FromClient, pkt(0, &p)));
    s.push((Dir::ToClient, ok(1, 2, 2)));
    let r = run_all_ways(&s);
    assert_eq!(r[1].kind, "execute");
    assert_eq!(
        r[1].params,
        Some(vec![
            Some("1".into()),
            Some("a".into()),
            Some("2".into()),
            None
        ])
    );
    assert_eq!(r[1].rows, Some(2));
}

#[test]
fn long_data_is_the_parameter_value() {
    let mut s = login(MARIADB_CAPS, None);
    s.push((
        Dir::FromClient,
        command(COM_STMT_PREPARE, b"INSERT INTO b VALUES (?, ?)"),
    ));
    s.push((Dir::ToClient, prepare_ok(1, 0, 2, false)));
    let mut body = 1u32.to_le_bytes().to_vec();
    body.extend(1u16.to_le_bytes());
    body.extend(b"chunk1-");
    s.push((Dir::FromClient, command(COM_STMT_SEND_LONG_DATA, &body)));
    let mut body = 1u32.to_le_bytes().to_vec();
    body.extend(1u16.to_le_bytes());
    body.extend(b"chunk2");
    s.push((Dir::FromClient, command(COM_STMT_SEND_LONG_DATA, &body)));
    let values = 3i32.to_le_bytes().to_vec();
    s.push((
        Dir::FromClient,
        execute(1, &[0], Some(&[(T_LONG, 0), (0xfc, 0)]), &values),
    ));
    s.push((Dir::ToClient, ok(1, 1, 2)));
    let r = run_all_ways(&s);
    assert_eq!(
        r[1].params,
        Some(vec![
            Some("3".to_string()),
            Some("chunk1-chunk2".to_string())
        ])
    );
}

#[test]
fn query_attributes() {
    let caps = MARIADB_CAPS | CLIENT_QUERY_ATTRIBUTES;
    let mut s = login(caps, None);
    let mut body = lenenc(1);
    body.extend(lenenc(1));
    body.push(0); // null bitmap
    body.push(1); // new params bound
    body.extend([0xfe, 0]);
    body.extend(lstr(b"trace_id"));
    body.extend(lstr(b"abc"));
    body.extend(b"SELECT 1");
    s.push((Dir::FromClient, command(COM_QUERY, &body)));
    s.push((Dir::ToClient, result_set(&["1"], &[&["1"]], 2, false)));
    // no attributes: counts of zero
    let mut body = lenenc(0);
    body.extend(lenenc(1));
    body.extend(b"SELECT 2");
    s.push((Dir::FromClient, command(COM_QUERY, &body)));
    s.push((Dir::ToClient, result_set(&["2"], &[&["2"]], 2, false)));
    let r = run_all_ways(&s);
    assert_eq!(r[0].statement.as_deref(), Some("SELECT 1"));
    assert_eq!(r[0].params, Some(vec![Some("trace_id=abc".to_string())]));
    assert_eq!(r[1].statement.as_deref(), Some("SELECT 2"));
    assert_eq!(r[1].params, None);
}

#[test]
fn execute_with_query_attributes_counts_and_names() {
    let caps = MARIADB_CAPS | CLIENT_QUERY_ATTRIBUTES;
    let mut s = login(caps, None);
    s.push((Dir::FromClient, command(COM_STMT_PREPARE, b"SELECT ?")));
    s.push((Dir::ToClient, prepare_ok(1, 1, 1, false)));
    let mut p = vec![COM_STMT_EXECUTE];
    p.extend(1u32.to_le_bytes());
    p.push(PARAMETER_COUNT_AVAILABLE);
    p.extend(1u32.to_le_bytes());
    p.extend(lenenc(1));
    p.push(0);
    p.push(1);
    p.extend([T_SHORT, 0]);
    p.extend(lstr(b""));
    p.extend((-2i16).to_le_bytes());
    s.push((Dir::FromClient, pkt(0, &p)));
    s.push((Dir::ToClient, binary_rows(1)));
    let r = run(&s);
    assert_eq!(r[1].params, Some(vec![Some("-2".to_string())]));
}

/// Wraps a plain stream in compressed frames of the given plain sizes.
fn compress(plain: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut seq = 0u8;
    let mut sizes = sizes.iter().cycle();
    while at < plain.len() {
        let n = (*sizes.next().unwrap_or(&plain.len())).min(plain.len() - at);
        let piece = &plain[at..at + n];
        at += n;
        let (body, inflated) = if n < 50 {
            (piece.to_vec(), 0)
        } else {
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            z.write_all(piece).unwrap();
            (z.finish().unwrap(), n)
        };
        let c = body.len();
        out.extend([c as u8, (c >> 8) as u8, (c >> 16) as u8, seq]);
        out.extend([
            inflated as u8,
            (inflated >> 8) as u8,
            (inflated >> 16) as u8,
        ]);
        out.extend(body);
        seq = seq.wrapping_add(1);
    }
    out
}

#[test]
fn compressed_protocol_frames_hold_parts_and_many() {
    let caps = MARIADB_CAPS | CLIENT_COMPRESS;
    let long = format!("SELECT '{}'", "z".repeat(300));
    let mut client = query("SELECT 1");
    client.extend(query(&long));
    let mut server = result_set(&["1"], &[&["1"]], 2, false);
    server.extend(result_set(&["z"], &[&[&"z".repeat(300)]], 2, false));
    for sizes in [vec![usize::MAX], vec![5], vec![60, 3, 200]] {
        let mut s = login(caps, Some("db"));
        s.push((Dir::FromClient, compress(&client, &sizes)));
        s.push((Dir::ToClient, compress(&server, &sizes)));
        let r = run_all_ways(&s);
        assert_eq!(
            statements(&r),
            vec![
                ("query", "SELECT 1".to_string(), Outcome::Ok),
                ("query", long.clone(), Outcome::Ok),
            ],
            "frame sizes {sizes:?}"
        );
        assert_eq!(r[1].rows, Some(1));
    }
}

#[test]
fn compression_starts_right_after_the_auth_ok() {
    let caps = MARIADB_CAPS | CLIENT_COMPRESS;
    let mut s2 = login(caps, None);
    let auth_ok = s2.pop().map(|(_, b)| b).unwrap_or_default();
    s2.push((Dir::ToClient, auth_ok));
    s2.push((
        Dir::FromClient,
        compress(&command(COM_PING, b""), &[usize::MAX]),
    ));
    let mut reply = compress(&ok(1, 0, 2), &[usize::MAX]);
    s2.push((Dir::FromClient, compress(&query("SELECT 5"), &[usize::MAX])));
    reply.extend(compress(&result_set(&["5"], &[&["5"]], 2, false), &[7]));
    s2.push((Dir::ToClient, reply));
    let r = run_all_ways(&s2);
    assert_eq!(
        statements(&r),
        vec![("query", "SELECT 5".to_string(), Outcome::Ok)]
    );
}

#[test]
fn corrupt_compressed_frame_is_lost_once() {
    let caps = MARIADB_CAPS | CLIENT_COMPRESS;
    let mut s = login(caps, None);
    let mut frames = compress(
        &query("SELECT 1 -- padding padding padding padding padding"),
        &[usize::MAX],
    );
    let n = frames.len();
    frames[n - 3] ^= 0x55;
    s.push((Dir::FromClient, frames));
    s.push((Dir::FromClient, compress(&query("SELECT 2"), &[usize::MAX])));
    s.push((Dir::ToClient, ok(1, 0, 2)));
    let r = run(&s);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].kind, "lost");
    assert!(!r[0].exact);
}

#[test]
fn inflated_size_is_capped_by_the_header() {
    // a frame claiming 10 inflated bytes that inflates to 100
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&[b'a'; 100]).unwrap();
    let body = z.finish().unwrap();
    assert!(inflate(&body, 10).is_err());
    assert_eq!(inflate(&body, 100).map(|v| v.len()), Ok(100));
}

#[test]
fn continuation_packets_join_into_one_statement() {
    // one byte over a full packet: the payload is exactly the cap
    let sql = format!("SELECT '{}'", "q".repeat(MAX_PACKET_PAYLOAD - 9));
    assert_eq!(1 + sql.len(), MAX_MESSAGE_BYTES);
    let mut payload = vec![COM_QUERY];
    payload.extend(sql.as_bytes());
    let mut bytes = Vec::new();
    let mut seq = 0;
    for part in payload.chunks(MAX_PACKET_PAYLOAD) {
        bytes.extend(pkt(seq, part));
        seq += 1;
    }
    if payload.len() % MAX_PACKET_PAYLOAD == 0 {
        bytes.extend(pkt(seq, b""));
    }
    let mut s = login(MARIADB_CAPS, None);
    s.push((Dir::FromClient, bytes));
    s.push((Dir::ToClient, result_set(&["q"], &[&["q"]], 2, false)));
    let r = run(&s);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].statement.as_deref().map(str::len), Some(sql.len()));
    assert_eq!(r[0].status, Outcome::Ok);
    let r = run_chunked(&s, 1_000_003);
    assert_eq!(r[0].statement.as_deref().map(str::len), Some(sql.len()));
    // beyond the cap the statement is cut, the stream still followed
    let mut s = login(MARIADB_CAPS, None);
    let mut big = vec![COM_QUERY];
    big.extend(vec![b'x'; MAX_MESSAGE_BYTES + 100]);
    let mut bytes = Vec::new();
    for (seq, part) in big.chunks(MAX_PACKET_PAYLOAD).enumerate() {
        bytes.extend(pkt(seq as u8, part));
    }
    s.push((Dir::FromClient, bytes));
    s.push((Dir::ToClient, ok(2, 0, 2)));
    s.push((Dir::FromClient, query("SELECT 2")));
    s.push((Dir::ToClient, ok(1, 0, 2)));
    let r = run(&s);
    assert_eq!(r.len(), 2);
    assert_eq!(
        r[0].statement.as_deref().map(str::len),
        Some(MAX_MESSAGE_BYTES - 1)
    );
    assert_eq!(r[1].statement.as_deref(), Some("SELECT 2"));
}

#[test]
fn exact_multiple_of_the_packet_size_ends_with_an_empty_packet() {
    // payload exactly 0xffffff bytes: a full packet, then an empty one
    let mut payload = vec![COM_QUERY];
    payload.extend(vec![b' '; MAX_PACKET_PAYLOAD - 9]);
    payload.extend(b"SELECT 1");
    assert_eq!(payload.len(), MAX_PACKET_PAYLOAD);
    let mut bytes = pkt(0, &payload);
    bytes.extend(pkt(1, b""));
    let mut s = login(MARIADB_CAPS, None);
    s.push((Dir::FromClient, bytes));
    s.push((Dir::ToClient, ok(2, 0, 2)));
    let r = run(&s);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, Outcome::Ok);
    assert!(
        r[0].statement
            .as_deref()
            .unwrap_or("")
            .ends_with("SELECT 1")
    );
}

#[test]
fn ssl_request_is_undecodable_then_silence() {
    let caps = MARIADB_CAPS | CLIENT_SSL;
    let mut ssl = (caps as u32).to_le_bytes().to_vec();
    ssl.extend(16_777_216u32.to_le_bytes());
    ssl.push(0x2d);
    ssl.extend([0; 23]);
    let s = vec![
        (Dir::ToClient, greeting(9, caps)),
        (Dir::FromClient, pkt(1, &ssl)),
        (
            Dir::FromClient,
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(),
        ),
        (
            Dir::ToClient,
            b"\x16\x03\x03\x00\x7a\x02\x00\x00\x76".to_vec(),
        ),
    ];
    let r = run_all_ways(&s);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].kind, "undecodable");
    assert_eq!(r[0].server_session, Some(9));
    assert!(!r[0].exact);
}

#[test]
fn unknown_command_is_lost_once() {
    let mut s = login(MARIADB_CAPS, None);
    s.push((Dir::FromClient, query("SELECT 1")));
    s.push((Dir::ToClient, ok(1, 0, 2)));
    s.push((Dir::FromClient, command(0x77, b"junk")));
    s.push((Dir::ToClient, ok(1, 0, 2)));
    s.push((Dir::FromClient, query("SELECT 2")));
    s.push((Dir::ToClient, ok(1, 0, 2)));
    let r = run_all_ways(&s);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].statement.as_deref(), Some("SELECT 1"));
    assert_eq!(r[1].kind, "lost");
    assert!(r[1].error.as_deref().unwrap_or("").contains("0x77"));
}

#[test]
fn unsolicited_packet_is_lost() {
    let mut s = login(MARIADB_CAPS, None);
    s.push((Dir::ToClient, ok(1, 0, 2)));
    let r = run(&s);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].kind, "lost");
}

#[test]
fn change_user_with_auth_switch() {
    let mut s = login(MARIADB_CAPS, Some("a"));
    let mut body = b"bob\0".to_vec();
    body.push(SECRET.len() as u8);
    body.extend(SECRET);
    body.extend(b"b2\0");
    body.extend(0x2du16.to_le_bytes());
    body.extend(b"mysql_native_password\0");
    s.push((Dir::FromClient, command(COM_CHANGE_USER, &body)));
    let mut switch = vec![EOF];
    switch.extend(b"mysql_native_password\0abcdefghijklmnopqrst\0");
    s.push((Dir::ToClient, pkt(1, &switch)));
    s.push((Dir::FromClient, pkt(2, SECRET)));
    s.push((Dir::ToClient, ok(3, 0, 2)));
    s.push((Dir::FromClient, query("SELECT user()")));
    s.push((Dir::ToClient, result_set(&["u"], &[&["bob"]], 2, false)));
    let r = run_all_ways(&s);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].kind, "change_user");
    assert_eq!(r[0].status, Outcome::Ok);
    assert_eq!(r[1].user.as_deref(), Some("bob"));
    assert_eq!(r[1].service.as_deref(), Some("b2"));
    no_secret(&r);
}

#[test]
fn auth_failure_is_a_connect_error() {
    let s = vec![
        (Dir::ToClient, greeting(5, MARIADB_CAPS)),
        (Dir::FromClient, handshake(MARIADB_CAPS, "mallory", None)),
        (
            Dir::ToClient,
            err(
                2,
                1045,
                "28000",
                "Access denied for user 'mallory'@'localhost'",
            ),
        ),
    ];
    let r = run_all_ways(&s);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].kind, "connect");
    assert_eq!(r[0].status, Outcome::Error);
    assert_eq!(r[0].user.as_deref(), Some("mallory"));
    assert!(
        r[0].error
            .as_deref()
            .unwrap_or("")
            .starts_with("1045 Access denied")
    );
    no_secret(&r);
}

#[test]
fn auth_more_data_exchanges_are_skipped() {
    let mut s = vec![
        (Dir::ToClient, greeting(5, MARIADB_CAPS)),
        (Dir::FromClient, handshake(MARIADB_CAPS, "carol", None)),
        (Dir::ToClient, pkt(2, &[AUTH_MORE_DATA, 4])),
        (Dir::FromClient, pkt(3, b"SECRET-SCRAMBLE-0123\0")),
        (Dir::ToClient, ok(4, 0, 2)),
    ];
    s.push((Dir::FromClient, command(COM_PING, b"")));
    s.push((Dir::ToClient, ok(1, 0, 2)));
    s.push((Dir::FromClient, query("SELECT 1")));
    s.push((Dir::ToClient, ok(1, 0, 2)));
    let r = run_all_ways(&s);
    assert_eq!(
        statements(&r),
        vec![("query", "SELECT 1".to_string(), Outcome::Ok)]
    );
    no_secret(&r);
}

#[test]
fn local_infile_upload_is_not_a_command() {
    let mut s = login(MARIADB_CAPS, None);
    s.push((
        Dir::FromClient,
        query("LOAD DATA LOCAL INFILE '/tmp/x' INTO TABLE t"),
    ));
    s.push((Dir::ToClient, pkt(1, b"\xfb/tmp/x")));
    s.push((Dir::FromClient, pkt(2, b"\x03SELECT not a command\n")));
    s.push((Dir::FromClient, pkt(3, b"")));
    s.push((Dir::ToClient, ok(4, 1, 2)));
    let r = run_all_ways(&s);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].rows, Some(1));
    assert_eq!(r[0].status, Outcome::Ok);
}

#[test]
fn progress_reports_are_skipped() {
    let caps = MARIADB_CAPS | MARIADB_CLIENT_PROGRESS;
    let mut s = login(caps, None);
    s.push((Dir::FromClient, query("ALTER TABLE t ADD x INT")));
    let mut progress = vec![ERR, 0xff, 0xff, 1, 1, 2, 0x10, 0, 0];
    progress.extend(lstr(b"copy to tmp table"));
    s.push((Dir::ToClient, pkt(1, &progress)));
    s.push((Dir::ToClient, ok(2, 0, 2)));
    let r = run(&s);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, Outcome::Ok);
}

#[test]
fn other_commands_are_paired_silently() {
    let mut s = login(MARIADB_CAPS, None);
    s.push((Dir::FromClient, command(COM_STATISTICS, b"")));
    s.push((Dir::ToClient, pkt(1, b"Uptime: 5  Threads: 1")));
    s.push((Dir::FromClient, command(COM_FIELD_LIST, b"t\0")));
    let mut reply = coldef(1, "a");
    reply.extend(coldef(2, "b"));
    reply.extend(eof(3, 2));
    s.push((Dir::ToClient, reply));
    s.push((Dir::FromClient, command(COM_SET_OPTION, &[0, 0])));
    s.push((Dir::ToClient, eof(1, 2)));
    s.push((Dir::FromClient, command(COM_PROCESS_INFO, b"")));
    s.push((Dir::ToClient, result_set(&["Id"], &[&["1"]], 2, false)));
    s.push((Dir::FromClient, command(COM_RESET_CONNECTION, b"")));
    s.push((Dir::ToClient, ok(1, 0, 2)));
    s.push((Dir::FromClient, query("SELECT 9")));
    s.push((Dir::ToClient, ok(1, 0, 2)));
    s.push((Dir::FromClient, command(COM_QUIT, b"")));
    let r = run_all_ways(&s);
    assert_eq!(
        statements(&r),
        vec![("query", "SELECT 9".to_string(), Outcome::Ok)]
    );
}

#[test]
fn unanswered_at_close_is_unknown() {
    let mut s = login(MARIADB_CAPS, None);
    s.push((Dir::FromClient, query("SELECT sleep(100)")));
    let r = run(&s);
    assert_eq!(
        statements(&r),
        vec![("query", "SELECT sleep(100)".to_string(), Outcome::Unknown)]
    );
    assert_eq!(r[0].duration_us, None);
}

#[test]
fn client_direction_only() {
    let caps = MARIADB_CAPS;
    let mut values = 11i32.to_le_bytes().to_vec();
    values.extend(lstr(b"v"));
    let s = vec![
        (Dir::FromClient, handshake(caps, "dave", Some("d"))),
        (Dir::FromClient, query("SELECT 1; SELECT 2")),
        (Dir::FromClient, command(COM_INIT_DB, b"e")),
        (
            Dir::FromClient,
            command(COM_STMT_PREPARE, b"SELECT ? , '?', ?"),
        ),
        (
            Dir::FromClient,
            execute(1, &[0], Some(&[(T_LONG, 0), (0xfd, 0)]), &values),
        ),
    ];
    let r = run_all_ways(&s);
    assert_eq!(
        statements(&r),
        vec![
            ("query", "SELECT 1; SELECT 2".to_string(), Outcome::Unknown),
            ("init_db", "e".to_string(), Outcome::Unknown),
            ("prepare", "SELECT ? , '?', ?".to_string(), Outcome::Unknown),
            ("execute", "SELECT ? , '?', ?".to_string(), Outcome::Unknown),
        ]
    );
    assert_eq!(r[0].user.as_deref(), Some("dave"));
    assert_eq!(r[0].service.as_deref(), Some("d"));
    assert_eq!(r[2].service.as_deref(), Some("e"));
    assert_eq!(
        r[3].params,
        Some(vec![Some("11".to_string()), Some("v".to_string())])
    );
    no_secret(&r);
}

#[test]
fn client_direction_only_compressed() {
    let caps = MARIADB_CAPS | CLIENT_COMPRESS;
    let mut frames = compress(&query("SELECT 1"), &[usize::MAX]);
    frames.extend(compress(
        &query("SELECT 'long enough to be compressed by zlib here'"),
        &[usize::MAX],
    ));
    let s = vec![
        (Dir::FromClient, handshake(caps, "erin", None)),
        (Dir::FromClient, frames),
    ];
    let r = run_all_ways(&s);
    assert_eq!(
        statements(&r),
        vec![
            ("query", "SELECT 1".to_string(), Outcome::Unknown),
            (
                "query",
                "SELECT 'long enough to be compressed by zlib here'".to_string(),
                Outcome::Unknown
            ),
        ]
    );
}

#[test]
fn in_flight_cap_is_lost() {
    let mut s = login(MARIADB_CAPS, None);
    let mut c = Vec::new();
    for _ in 0..=MAX_IN_FLIGHT {
        c.extend(command(COM_PING, b""));
    }
    s.push((Dir::FromClient, c));
    let r = run(&s);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].kind, "lost");
}

#[test]
fn client_before_greeting_is_lost() {
    let s = vec![(Dir::FromClient, query("SELECT 1"))];
    let r = run(&s);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].kind, "lost");
}

#[test]
fn greeting_error_is_silence() {
    let s = vec![
        (Dir::ToClient, err(0, 1040, "08004", "Too many connections")),
        (Dir::FromClient, query("SELECT 1")),
    ];
    assert!(run(&s).is_empty());
}

#[test]
fn splitter_knows_quotes_and_comments() {
    let sql = "SELECT 'a;\\'b' ; SELECT \"c;\"\"d\"; SELECT `e;``f`;# x;y\nSELECT 1 /* ; */; -- z;\nSELECT 2--3;\n;  ";
    let got: Vec<&str> = split_statements(sql)
        .iter()
        .map(|&(s, e)| &sql[s..e])
        .collect();
    assert_eq!(
        got,
        vec![
            "SELECT 'a;\\'b'",
            "SELECT \"c;\"\"d\"",
            "SELECT `e;``f`",
            "# x;y\nSELECT 1 /* ; */",
            "-- z;\nSELECT 2--3",
        ]
    );
    assert_eq!(
        placeholders("SELECT ?, '?', \"?\", `?`, ? -- ?\n/* ? */"),
        2
    );
    assert_eq!(split_statements("  ;; "), Vec::<(usize, usize)>::new());
    // unterminated quote: the rest is one statement
    assert_eq!(split_statements("SELECT 'a;b"), vec![(0, 11)]);
}

#[test]
fn use_schema_forms() {
    assert_eq!(use_schema("USE shop").as_deref(), Some("shop"));
    assert_eq!(use_schema(" /* c */ use\tshop ;").as_deref(), Some("shop"));
    assert_eq!(use_schema("USE `a b`").as_deref(), Some("a b"));
    assert_eq!(use_schema("USER x"), None);
    assert_eq!(use_schema("SELECT 1"), None);
}

#[test]
fn binary_values() {
    let mut r = Rd(&[11, 0xe8, 0x07, 2, 29, 23, 59, 58, 0x40, 0xe2, 0x01, 0]);
    assert_eq!(
        binary_text(&mut r, T_DATETIME, 0).as_deref(),
        Some("2024-02-29 23:59:58.123456")
    );
    let mut r = Rd(&[8, 1, 1, 0, 0, 0, 2, 3, 4]);
    assert_eq!(binary_text(&mut r, T_TIME, 0).as_deref(), Some("-26:03:04"));
    let mut r = Rd(&[0xff, 0xff]);
    assert_eq!(
        binary_text(&mut r, T_SHORT, PARAM_UNSIGNED).as_deref(),
        Some("65535")
    );
    let mut r = Rd(&[0xff, 0xff]);
    assert_eq!(binary_text(&mut r, T_SHORT, 0).as_deref(), Some("-1"));
    let mut r = Rd(&[0, 0, 0x80, 0x3f]);
    assert_eq!(binary_text(&mut r, T_FLOAT, 0).as_deref(), Some("1"));
    let mut r = Rd(&[4, b'1', b'.', b'5', b'0']);
    assert_eq!(
        binary_text(&mut r, T_NEWDECIMAL, 0).as_deref(),
        Some("1.50")
    );
    let mut r = Rd(&[5, 1]);
    assert_eq!(binary_value(&mut r, T_VARCHAR, 0), None, "cut short");
    let mut r = Rd(&[1]);
    assert_eq!(binary_value(&mut r, 0x42, 0), None, "unknown type");
}

#[test]
fn random_bytes_never_panic() {
    // a small deterministic generator: no dependency for a unit test
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let base = {
        let mut s = login(MARIADB_CAPS | CLIENT_COMPRESS, Some("x"));
        s.push((Dir::FromClient, compress(&query("SELECT 1"), &[3])));
        s
    };
    for _ in 0..300 {
        let mut s = base.clone();
        for (_, bytes) in s.iter_mut() {
            for _ in 0..(next() % 4) {
                if !bytes.is_empty() {
                    let i = (next() as usize) % bytes.len();
                    bytes[i] = next() as u8;
                }
            }
        }
        let extra: Vec<u8> = (0..(next() % 64)).map(|_| next() as u8).collect();
        s.push((Dir::ToClient, extra.clone()));
        s.push((Dir::FromClient, extra));
        let _ = run_chunked(&s, 1 + (next() as usize % 9));
    }
}

/// A recording made through ipprotd (`-L -M -f`) in front of MariaDB
/// 10.11, one line per block: `time_us C|S hex`.
fn fixture(text: &str) -> Vec<Record> {
    let mut m = MySql::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.split(' ');
        let (Some(t), Some(d), Some(hex)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let t: i64 = t.parse().unwrap();
        let dir = if d == "C" {
            Dir::FromClient
        } else {
            Dir::ToClient
        };
        let bytes: Vec<u8> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        m.feed(dir, t, &bytes, &mut out);
    }
    m.finish(&mut out);
    out
}

/// What a record says, compactly: kind, statement, params, status,
/// tag, rows, error, service.
fn summary(r: &Record) -> String {
    format!(
        "{} {:?} {:?} {} {:?} {:?} {:?} {:?}",
        r.kind,
        r.statement.as_deref().unwrap_or(""),
        r.params,
        r.status.as_str(),
        r.tag.as_deref(),
        r.rows,
        r.error.as_deref(),
        r.service.as_deref(),
    )
}

fn check_fixture(text: &str, want: &[&str]) -> Vec<Record> {
    let got = fixture(text);
    let lines: Vec<String> = got.iter().map(summary).collect();
    assert_eq!(lines, want);
    for r in &got {
        assert_eq!(r.user.as_deref(), Some("app"));
        assert!(r.server_session.is_some());
        assert!(r.time_us > 0);
    }
    got
}

#[test]
fn fixture_mariadb_client_plain() {
    let r = check_fixture(
        include_str!("fixtures/plain.txt"),
        &[
            r#"query "SELECT 1" None ok Some("EOF") Some(1) None Some("test")"#,
            r#"query "CREATE TABLE IF NOT EXISTS t (a INT, b VARCHAR(10))" None ok Some("OK") Some(0) None Some("test")"#,
            r#"query "INSERT INTO t VALUES (1,'x'),(2,'y')" None ok Some("OK") Some(2) None Some("test")"#,
            r#"query "SELECT * FROM t" None ok Some("EOF") Some(2) None Some("test")"#,
            r#"query "SELECT * FROM nope" None error None None Some("1146 Table 'test.nope' doesn't exist") Some("test")"#,
        ],
    );
    assert_eq!(r[0].program.as_deref(), Some("mysql"));
    assert!(r.iter().all(|r| r.duration_us.is_some_and(|d| d >= 0)));
}

#[test]
fn fixture_mariadb_client_compressed() {
    check_fixture(
        include_str!("fixtures/compress.txt"),
        &[
            r#"query "SELECT 2" None ok Some("EOF") Some(1) None Some("test")"#,
            r#"query "SELECT * FROM t" None ok Some("EOF") Some(2) None Some("test")"#,
            r#"query "SELECT DATABASE()" None ok Some("EOF") Some(1) None Some("test")"#,
            r#"init_db "mysql" None ok Some("OK") Some(0) None Some("test")"#,
            r#"query "SELECT 3" None ok Some("EOF") Some(1) None Some("mysql")"#,
        ],
    );
}

#[test]
fn fixture_connector_python_prepared() {
    check_fixture(
        include_str!("fixtures/connector_python.txt"),
        &[
            r#"query "SET NAMES 'utf8mb4' COLLATE 'utf8mb4_general_ci'" None ok Some("OK") Some(0) None Some("test")"#,
            r#"query "SET @@session.autocommit = OFF" None ok Some("OK") Some(0) None Some("test")"#,
            r#"prepare "SELECT a, b FROM t WHERE a = ? AND b = ?" None ok Some("OK") None None Some("test")"#,
            r#"execute "SELECT a, b FROM t WHERE a = ? AND b = ?" Some([Some("1"), Some("x")]) ok Some("EOF") Some(1) None Some("test")"#,
            r#"execute "SELECT a, b FROM t WHERE a = ? AND b = ?" Some([Some("2"), None]) ok Some("EOF") Some(0) None Some("test")"#,
            r#"prepare "INSERT INTO t VALUES (?, ?)" None ok Some("OK") None None Some("test")"#,
            r#"execute "INSERT INTO t VALUES (?, ?)" Some([Some("3"), Some("z")]) ok Some("OK") Some(1) None Some("test")"#,
            r#"query "COMMIT" None ok Some("OK") Some(0) None Some("test")"#,
        ],
    );
}

#[test]
fn fixture_mariadb_python_bulk_and_last_prepared() {
    check_fixture(
        include_str!("fixtures/mariadb_python.txt"),
        &[
            r#"query "SET AUTOCOMMIT=0" None ok Some("OK") Some(0) None Some("test")"#,
            r#"query "SELECT a, b FROM t WHERE a = 1 AND b = 'x'" None ok Some("EOF") Some(1) None Some("test")"#,
            r#"query "SELECT a, b FROM t WHERE a = 2 AND b = 'y'" None ok Some("EOF") Some(1) None Some("test")"#,
            r#"prepare "INSERT INTO t VALUES (?, ?)" None ok Some("OK") None None Some("test")"#,
            r#"execute "INSERT INTO t VALUES (?, ?)" Some([Some("10"), Some("p"), Some("11"), None, Some("12"), Some("r")]) ok Some("OK") Some(3) None Some("test")"#,
            r#"prepare "INSERT INTO t VALUES (?, ?)" None ok Some("OK") None None Some("test")"#,
            r#"execute "INSERT INTO t VALUES (?, ?)" Some([Some("2024-12-31"), Some("1.5")]) ok Some("OK") Some(1) None Some("test")"#,
        ],
    );
}

#[test]
fn fixtures_split_at_every_byte_give_the_same_records() {
    for text in [
        include_str!("fixtures/compress.txt"),
        include_str!("fixtures/mariadb_python.txt"),
    ] {
        let script: Script = text
            .lines()
            .filter_map(|line| {
                let mut f = line.split(' ');
                let (_, d, hex) = (f.next()?, f.next()?, f.next()?);
                let dir = if d == "C" {
                    Dir::FromClient
                } else {
                    Dir::ToClient
                };
                let bytes = (0..hex.len() / 2)
                    .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
                    .collect();
                Some((dir, bytes))
            })
            .collect();
        run_all_ways(&script);
    }
}
