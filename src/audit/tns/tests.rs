//! Byte sequences built from the layouts in AUDIT.md §2.3 (python-oracledb
//! `execute.pyx`, `base.pyx` `_process_error_info`, `packet.pyx`
//! `_send_packet`; go-ora `advanced_nego`). No Oracle server was run.

use super::*;

const DESCRIPTOR: &str = "(DESCRIPTION=(CONNECT_DATA=(SERVICE_NAME=ORCLPDB1)(CID=(PROGRAM=sqlplus)(HOST=app01)(USER=oracle)))(ADDRESS=(PROTOCOL=tcp)(HOST=10.0.0.5)(PORT=1521)))";

/// A TNS packet: 2-byte length (and zero checksum) or 4-byte length.
fn packet(kind: u8, body: &[u8], large: bool) -> Vec<u8> {
    let n = HEADER_BYTES + body.len();
    let mut v = if large {
        (n as u32).to_be_bytes().to_vec()
    } else {
        let mut v = (n as u16).to_be_bytes().to_vec();
        v.extend([0, 0]);
        v
    };
    v.extend([kind, 0, 0, 0]);
    v.extend_from_slice(body);
    v
}

fn connect(version: u16) -> Vec<u8> {
    let d = DESCRIPTOR.as_bytes();
    let mut b = Vec::new();
    b.extend(version.to_be_bytes());
    b.extend(300u16.to_be_bytes());
    b.extend([0x04, 0x01, 0x20, 0x00, 0x20, 0x00, 0x4f, 0x98, 0, 0, 0, 1]);
    b.extend((d.len() as u16).to_be_bytes());
    b.extend(74u16.to_be_bytes());
    b.extend([0, 0, 0, 0, 0x84, 0x84]);
    b.extend([0; 24]);
    b.extend([0, 0, 0x20, 0, 0, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    b.extend(d);
    packet(TNS_CONNECT, &b, false)
}

fn accept(version: u16) -> Vec<u8> {
    let mut b = version.to_be_bytes().to_vec();
    b.extend([
        0x04, 0x01, 0x20, 0x00, 0xff, 0xff, 0x01, 0x00, 0, 0, 0, 32, 0x41, 0x41,
    ]);
    b.extend([0; 10]);
    packet(TNS_ACCEPT, &b, false)
}

fn data(ttc: &[u8], large: bool) -> Vec<u8> {
    let mut b = vec![0, 0];
    b.extend_from_slice(ttc);
    packet(TNS_DATA, &b, large)
}

/// TTC's variable-length unsigned integer.
fn ub(v: u64) -> Vec<u8> {
    if v == 0 {
        return vec![0];
    }
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    let mut out = vec![(8 - skip) as u8];
    out.extend(&bytes[skip..]);
    out
}

fn with_length(b: &[u8]) -> Vec<u8> {
    if b.len() <= SHORT_LENGTH_MAX {
        let mut v = vec![b.len() as u8];
        v.extend(b);
        return v;
    }
    let mut v = vec![LONG_LENGTH];
    for chunk in b.chunks(100) {
        v.extend(ub(chunk.len() as u64));
        v.extend(chunk);
    }
    v.extend(ub(0));
    v
}

fn function(code: u8, seq: u8, fv: u8) -> Vec<u8> {
    let mut v = vec![MSG_FUNCTION, code, seq];
    if fv >= FIELD_VERSION_23_1_EXT_1 {
        v.extend(ub(0));
    }
    v
}

/// OALL8 as python-oracledb `_write_execute_message` writes it.
fn oall8(cursor: u32, sql: Option<&str>, fv: u8) -> Vec<u8> {
    let mut v = function(FN_EXECUTE, 3, fv);
    let sql_bytes = sql.map(str::as_bytes);
    v.extend(ub(0x8061)); // options
    v.extend(ub(u64::from(cursor)));
    match sql_bytes {
        Some(s) => {
            v.push(1);
            v.extend(ub(s.len() as u64));
        }
        None => {
            v.push(0);
            v.extend(ub(0));
        }
    }
    v.push(1);
    v.extend(ub(13));
    v.extend([0, 0]);
    v.extend(ub(0));
    v.extend(ub(50)); // prefetch rows
    v.extend(ub(0x7fff_ffff)); // max long
    v.push(0);
    v.extend(ub(0)); // binds
    v.extend([0; 5]);
    v.push(0);
    v.extend(ub(0)); // defines
    v.extend(ub(0)); // registration id
    v.extend([0, 1, 0]);
    v.extend(ub(0));
    v.push(0);
    v.extend(ub(0));
    v.extend(ub(0)); // regid msb
    v.push(0);
    v.extend(ub(0));
    v.push(0);
    if fv >= FIELD_VERSION_12_2 {
        v.push(0);
        v.extend(ub(0));
        v.push(0);
        v.extend(ub(0));
        v.push(0);
        if fv >= FIELD_VERSION_12_2_EXT1 {
            v.push(0);
            v.extend(ub(0));
        }
    }
    if let Some(s) = sql_bytes {
        v.extend(with_length(s));
        v.extend(ub(1));
    } else {
        v.extend(ub(0));
    }
    for x in [0, 0, 0, 0, 0, 0, 1, 0, 0x8000, 0, 0, 0] {
        v.extend(ub(x));
    }
    v
}

fn reexecute(cursor: u32, fv: u8) -> Vec<u8> {
    let mut v = function(FN_REEXECUTE_AND_FETCH, 4, fv);
    v.extend(ub(u64::from(cursor)));
    v.extend(ub(50));
    v.extend(ub(0x20));
    v.extend(ub(0));
    v
}

/// TTI_OER as `_process_error_info` reads it.
fn oer(cursor: u16, number: u32, rows: u64, message: &str, fv: u8) -> Vec<u8> {
    let mut v = vec![MSG_ERROR];
    v.extend(ub(0)); // call status
    v.extend(ub(3)); // seq
    v.extend(ub(rows)); // current row
    v.extend(ub(u64::from(number.min(65_535))));
    v.extend(ub(0));
    v.extend(ub(0));
    v.extend(ub(u64::from(cursor)));
    v.extend(ub(0)); // error position
    v.extend([0x03, 0, 0, 0, 0, 0]);
    v.extend(ub(0)); // rowid
    v.extend(ub(0));
    v.push(0);
    v.extend(ub(0));
    v.extend(ub(0));
    v.extend(ub(0)); // os error
    v.extend([0, 0]);
    v.extend(ub(0)); // padding
    v.extend(ub(0)); // success iters
    v.extend(ub(0)); // oerrdd
    v.extend(ub(0)); // batch errors
    v.extend(ub(0)); // batch offsets
    v.extend(ub(0)); // batch messages
    v.extend(ub(u64::from(number)));
    v.extend(ub(rows));
    if fv >= FIELD_VERSION_20_1 {
        v.extend(ub(0));
        v.extend(ub(0));
    }
    if number != 0 {
        v.extend(with_length(message.as_bytes()));
    }
    v
}

/// Advanced negotiation: the client's offer or the server's choice.
fn ano(encryption: u8, integrity: u8) -> Vec<u8> {
    let mut services = Vec::new();
    for (kind, algo) in [
        (4u16, None),
        (1, None),
        (ANO_ENCRYPTION, Some(encryption)),
        (ANO_INTEGRITY, Some(integrity)),
    ] {
        let mut subs = vec![(5u16, 0x0b20_0200u32.to_be_bytes().to_vec())];
        if let Some(a) = algo {
            subs.push((ANO_UB1, vec![a]));
        }
        services.extend(kind.to_be_bytes());
        services.extend((subs.len() as u16).to_be_bytes());
        services.extend([0, 0, 0, 0]);
        for (t, value) in subs {
            services.extend((value.len() as u16).to_be_bytes());
            services.extend(t.to_be_bytes());
            services.extend(value);
        }
    }
    let mut v = ANO_MAGIC.to_vec();
    v.extend(((13 + services.len()) as u16).to_be_bytes());
    v.extend(0x0b20_0200u32.to_be_bytes());
    v.extend(4u16.to_be_bytes());
    v.push(0);
    v.extend(services);
    v
}

fn dty(fv: u8) -> Vec<u8> {
    let mut v = vec![MSG_DATA_TYPES, 0x69, 0x03, 0x69, 0x03, 0x03];
    let mut caps = vec![6, 1, 0, 0, 0x6a, 0x01, 0x01, fv, 0x01];
    caps.extend([0; 40]);
    v.extend(with_length(&caps));
    v.extend(with_length(&[2, 1, 0, 0, 0, 0, 0]));
    v
}

fn auth_one(user: &str, fv: u8) -> Vec<u8> {
    let mut v = function(FN_AUTH_PHASE_ONE, 1, fv);
    v.push(1);
    v.extend(ub(user.len() as u64));
    v.extend(ub(1));
    v.push(1);
    v.extend(ub(5));
    v.extend([1, 1]);
    v.extend(with_length(user.as_bytes()));
    v.extend(b"\x0cAUTH_TERMINAL");
    v
}

fn auth_two(fv: u8) -> Vec<u8> {
    let mut v = function(FN_AUTH_PHASE_TWO, 2, fv);
    v.extend(b"AUTH_PASSWORD 0123456789ABCDEF-secret");
    v
}

/// The server's reply to AUTH phase two: key/value pairs and an OER.
fn auth_reply(session: &str, fv: u8) -> Vec<u8> {
    let mut v = vec![8];
    v.extend(ub(2));
    for (k, val) in [
        ("AUTH_VERSION_NO", "318767104"),
        ("AUTH_SESSION_ID", session),
    ] {
        v.extend(ub(k.len() as u64));
        v.extend(with_length(k.as_bytes()));
        v.extend(ub(val.len() as u64));
        v.extend(with_length(val.as_bytes()));
        v.extend(ub(0));
    }
    v.extend(oer(0, 0, 0, "", fv));
    v
}

/// Describe info and two rows: bytes a decoder has to skip.
fn rows_then(end: Vec<u8>) -> Vec<u8> {
    let mut v = vec![
        16, 0x17, 0x04, 0x02, 0x04, 0x09, 0x45, 0x4d, 0x50, 0x4e, 0x4f,
    ];
    v.extend([7, 2, 0xc1, 0x02, 4, b'K', b'I', b'N', b'G']);
    v.extend([7, 2, 0xc1, 0x03, 5, b'B', b'L', b'A', b'K', b'E']);
    v.extend(end);
    v
}

type Script = Vec<(Dir, Vec<u8>)>;

/// A session: connect, accept, ANO, PRO, DTY, auth, then `steps`.
fn session(version: u16, fv: u8, steps: Vec<(Dir, Vec<u8>)>) -> Script {
    let large = version >= VERSION_LARGE_SDU;
    let mut s = vec![
        (Dir::FromClient, connect(version)),
        (Dir::ToClient, accept(version)),
        (Dir::FromClient, data(&ano(0, 0), large)),
        (Dir::ToClient, data(&ano(0, 0), large)),
        (
            Dir::FromClient,
            data(&[MSG_PROTOCOL, 6, 0, b'x', b'\0'], large),
        ),
        (
            Dir::ToClient,
            data(
                &[MSG_PROTOCOL, 6, 0, b'O', b'r', b'a', b'\0', 0x69, 0x03],
                large,
            ),
        ),
        (Dir::FromClient, data(&dty(fv), large)),
        (Dir::ToClient, data(&[MSG_DATA_TYPES, 0, 0, 0, 0], large)),
        (Dir::FromClient, data(&auth_one("scott", fv), large)),
        (Dir::ToClient, data(&auth_reply("0", fv), large)),
        (Dir::FromClient, data(&auth_two(fv), large)),
        (Dir::ToClient, data(&auth_reply("1234", fv), large)),
    ];
    s.extend(steps);
    s
}

fn run_chunked(script: &Script, size: usize) -> Vec<Record> {
    let mut t = Tns::new();
    let mut out = Vec::new();
    for (i, (dir, bytes)) in script.iter().enumerate() {
        for chunk in bytes.chunks(size.max(1)) {
            t.feed(*dir, 1_000 + 10 * i as i64, chunk, &mut out);
        }
    }
    t.finish(&mut out);
    out
}

fn run(script: &Script) -> Vec<Record> {
    run_chunked(script, usize::MAX)
}

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

fn run_all_ways(script: &Script) -> Vec<Record> {
    let whole = run(script);
    for size in [1, 3, 8, 9, 100] {
        assert_eq!(
            strip_times(&run_chunked(script, size)),
            strip_times(&whole),
            "chunks of {size}"
        );
    }
    whole
}

fn summary(r: &Record) -> String {
    format!(
        "{} {:?} {} {:?} {:?}",
        r.kind,
        r.statement.as_deref().unwrap_or(""),
        r.status.as_str(),
        r.rows,
        r.error.as_deref()
    )
}

/// The statements of the three main tests: first execute, re-execute by
/// cursor, an error, a commit.
fn statements(large: bool, fv: u8) -> Script {
    vec![
        (
            Dir::FromClient,
            data(&oall8(0, Some("SELECT ename FROM emp"), fv), large),
        ),
        (
            Dir::ToClient,
            data(
                &rows_then(oer(
                    3,
                    ORA_NO_DATA_FOUND,
                    2,
                    "ORA-01403: no data found\n",
                    fv,
                )),
                large,
            ),
        ),
        (Dir::FromClient, data(&reexecute(3, fv), large)),
        (Dir::ToClient, data(&rows_then(oer(3, 0, 2, "", fv)), large)),
        (
            Dir::FromClient,
            data(&oall8(0, Some("SELECT * FROM nope"), fv), large),
        ),
        (
            Dir::ToClient,
            data(
                &oer(0, 942, 0, "ORA-00942: table or view does not exist\n", fv),
                large,
            ),
        ),
        (Dir::FromClient, data(&function(FN_COMMIT, 6, fv), large)),
        (Dir::ToClient, data(&[MSG_STATUS, 0, 1, 6], large)),
    ]
}

fn check_main(records: &[Record]) {
    let got: Vec<String> = records.iter().map(summary).collect();
    assert_eq!(
        got,
        vec![
            r#"query "SELECT ename FROM emp" ok Some(2) None"#,
            r#"execute "SELECT ename FROM emp" ok Some(2) None"#,
            r#"query "SELECT * FROM nope" error Some(0) Some("942 ORA-00942: table or view does not exist")"#,
            r#"commit "" ok None None"#,
        ]
    );
    for r in records {
        assert_eq!(r.proto, "tns");
        assert!(!r.exact);
        assert_eq!(r.user.as_deref(), Some("scott"));
        assert_eq!(r.service.as_deref(), Some("ORCLPDB1"));
        assert_eq!(r.program.as_deref(), Some("sqlplus"));
        assert_eq!(r.server_session, Some(1234));
        assert!(r.duration_us.is_some());
        let all = format!("{r:?}");
        assert!(!all.contains("secret"), "auth data leaked: {all}");
    }
}

#[test]
fn four_byte_lengths_after_version_315() {
    let s = session(319, 12, statements(true, 12));
    // the 4-byte form really is used: byte 2 of a DATA header is not 0
    assert_eq!(&s[2].1[..4], &(s[2].1.len() as u32).to_be_bytes());
    check_main(&run_all_ways(&s));
}

#[test]
fn two_byte_lengths_before_version_315() {
    let s = session(314, 7, statements(false, 7));
    assert_eq!(&s[2].1[2..4], &[0, 0]);
    check_main(&run_all_ways(&s));
}

#[test]
fn field_versions_with_extra_fields() {
    // 20c: two more ub4 in the OER; 23ai: a token after each function code
    for fv in [FIELD_VERSION_20_1, FIELD_VERSION_23_1_EXT_1, 24] {
        check_main(&run(&session(319, fv, statements(true, fv))));
    }
}

#[test]
fn statement_split_across_data_packets() {
    let sql = format!(
        "SELECT {} FROM dual",
        (0..120)
            .map(|i| format!("'{i}' c{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(sql.len() > 600);
    let ttc = oall8(0, Some(&sql), 12);
    let mut steps = Vec::new();
    // three DATA packets of one request
    for part in ttc.chunks(ttc.len() / 3 + 1) {
        steps.push((Dir::FromClient, data(part, true)));
    }
    // the reply in two packets, the OER split too
    let reply = rows_then(oer(5, 0, 1, "", 12));
    let (a, b) = reply.split_at(reply.len() - 7);
    steps.push((Dir::ToClient, data(a, true)));
    steps.push((Dir::ToClient, data(b, true)));
    steps.push((Dir::FromClient, data(&reexecute(5, 12), true)));
    steps.push((Dir::ToClient, data(&oer(5, 0, 1, "", 12), true)));
    let r = run_all_ways(&session(319, 12, steps));
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].statement.as_deref(), Some(sql.as_str()));
    assert_eq!(r[0].status, Outcome::Ok);
    assert_eq!(r[1].kind, "execute");
    assert_eq!(r[1].statement.as_deref(), Some(sql.as_str()));
}

#[test]
fn close_cursors_piggyback_then_execute() {
    let fv = 12;
    let mut first = oall8(0, Some("UPDATE emp SET sal = sal"), fv);
    let mut piggy = vec![MSG_PIGGYBACK, FN_CLOSE_CURSORS, 5, 1];
    piggy.extend(ub(1));
    piggy.extend(ub(3));
    let mut second = piggy.clone();
    second.extend(reexecute(3, fv));
    let mut third = piggy;
    third.append(&mut first);
    let steps = vec![
        (
            Dir::FromClient,
            data(&oall8(0, Some("SELECT 1 FROM dual"), fv), true),
        ),
        (Dir::ToClient, data(&oer(3, 0, 1, "", fv), true)),
        // closes cursor 3, then re-executes it: unknown now
        (Dir::FromClient, data(&second, true)),
        (
            Dir::ToClient,
            data(&oer(3, 1001, 0, "ORA-01001: invalid cursor", fv), true),
        ),
        (Dir::FromClient, data(&third, true)),
        (Dir::ToClient, data(&oer(4, 0, 14, "", fv), true)),
    ];
    let got: Vec<String> = run(&session(319, fv, steps)).iter().map(summary).collect();
    assert_eq!(
        got,
        vec![
            r#"query "SELECT 1 FROM dual" ok Some(1) None"#,
            r#"execute "" error Some(0) Some("1001 ORA-01001: invalid cursor")"#,
            r#"query "UPDATE emp SET sal = sal" ok Some(14) None"#,
        ]
    );
}

#[test]
fn old_layout_raw_sql_and_ora_text() {
    // 11g/JDBC style (junkie's capture shape): SQL without a length
    // prefix after the fixed part; an error that is not a 12c OER
    let mut ttc = vec![
        MSG_FUNCTION,
        FN_EXECUTE,
        0,
        2,
        0x80,
        0x21,
        0,
        1,
        1,
        20,
        1,
        1,
        0x0d,
        0,
        0,
        0,
        0x7f,
    ];
    ttc.extend(b"SELECT * FROM nope_x");
    ttc.extend([1, 1, 0]);
    let mut err = vec![MSG_ERROR, 0, 0, 0, 0x03, 0xae];
    err.extend(b"\x2bORA-00942: table or view does not exist\n");
    let s = vec![
        (Dir::FromClient, connect(308)),
        (Dir::ToClient, accept(308)),
        (Dir::FromClient, data(&ttc, false)),
        (Dir::ToClient, data(&err, false)),
        (Dir::FromClient, data(&function(FN_LOGOFF, 9, 6), false)),
        (Dir::ToClient, data(&[MSG_STATUS, 0, 0], false)),
    ];
    let got: Vec<String> = run_all_ways(&s).iter().map(summary).collect();
    assert_eq!(
        got,
        vec![
            r#"query "SELECT * FROM nope_x" error None Some("942 ORA-00942: table or view does not exist")"#
        ]
    );
}

#[test]
fn native_network_encryption_is_undecodable() {
    let mut s = vec![
        (Dir::FromClient, connect(319)),
        (Dir::ToClient, accept(319)),
        (Dir::FromClient, data(&ano(0, 0), true)),
        (Dir::ToClient, data(&ano(17, 0), true)),
    ];
    s.extend(statements(true, 12));
    let r = run_all_ways(&s);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].kind, "undecodable");
    assert_eq!(r[0].service.as_deref(), Some("ORCLPDB1"));
    // data integrity alone: also not followed
    let s = vec![
        (Dir::FromClient, connect(319)),
        (Dir::ToClient, accept(319)),
        (Dir::FromClient, data(&ano(0, 0), true)),
        (Dir::ToClient, data(&ano(0, 3), true)),
    ];
    assert_eq!(run(&s)[0].kind, "undecodable");
}

#[test]
fn ciphertext_after_negotiation_is_undecodable() {
    // an ANO reply this decoder misreads as clear: the next request
    // does not start like TTC
    let mut s = vec![
        (Dir::FromClient, connect(319)),
        (Dir::ToClient, accept(319)),
        (Dir::FromClient, data(&ano(0, 0), true)),
        (Dir::ToClient, data(&ano(0, 0), true)),
        (Dir::FromClient, data(&[0x9c, 0x11, 0x7a, 0x00, 0xe3], true)),
        (Dir::ToClient, data(&[0x55, 0x01], true)),
    ];
    s.extend(statements(true, 12));
    let r = run(&s);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].kind, "undecodable");
}

#[test]
fn tcps_is_undecodable() {
    let s = vec![
        (
            Dir::FromClient,
            b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03".to_vec(),
        ),
        (Dir::ToClient, b"\x16\x03\x03\x00\x5d\x02".to_vec()),
    ];
    let r = run(&s);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].kind, "undecodable");
    assert_eq!(r[0].error.as_deref(), Some("TLS (TCPS)"));
}

#[test]
fn refuse_is_a_connect_error() {
    let mut body = vec![0, 0, 0, 0];
    body.extend(
        b"(DESCRIPTION=(TMP=)(VSNNUM=0)(ERR=12514)(ERROR_STACK=(ERROR=(CODE=12514)(EMFI=4))))",
    );
    let s = vec![
        (Dir::FromClient, connect(319)),
        (Dir::ToClient, packet(TNS_REFUSE, &body, false)),
    ];
    let r = run(&s);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].kind, "connect");
    assert_eq!(r[0].status, Outcome::Error);
    assert!(
        r[0].error
            .as_deref()
            .unwrap_or("")
            .starts_with("12514 (DESCRIPTION")
    );
}

#[test]
fn auth_failure_is_a_connect_error() {
    let fv = 12;
    let steps = vec![(
        Dir::ToClient,
        data(
            &oer(
                0,
                1017,
                0,
                "ORA-01017: invalid username/password; logon denied",
                fv,
            ),
            true,
        ),
    )];
    let mut s = session(319, fv, Vec::new());
    s.pop();
    s.extend(steps);
    let r = run(&s);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].kind, "connect");
    assert_eq!(
        r[0].error.as_deref(),
        Some("1017 ORA-01017: invalid username/password; logon denied")
    );
    assert!(!format!("{r:?}").contains("secret"));
}

#[test]
fn unanswered_at_close_is_unknown() {
    let mut s = session(319, 12, Vec::new());
    s.push((
        Dir::FromClient,
        data(&oall8(0, Some("DELETE FROM emp"), 12), true),
    ));
    let r = run(&s);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].statement.as_deref(), Some("DELETE FROM emp"));
    assert_eq!(r[0].status, Outcome::Unknown);
}

#[test]
fn reply_without_final_message_ends_at_the_next_request() {
    let fv = 12;
    let steps = vec![
        (
            Dir::FromClient,
            data(&oall8(0, Some("SELECT 2 FROM dual"), fv), true),
        ),
        (Dir::ToClient, data(&[16, 1, 2, 3], true)),
        (
            Dir::FromClient,
            data(&oall8(0, Some("SELECT 3 FROM dual"), fv), true),
        ),
        (Dir::ToClient, data(&oer(7, 0, 1, "", fv), true)),
    ];
    let got: Vec<String> = run(&session(319, fv, steps)).iter().map(summary).collect();
    assert_eq!(
        got,
        vec![
            r#"query "SELECT 2 FROM dual" unknown None None"#,
            r#"query "SELECT 3 FROM dual" ok Some(1) None"#,
        ]
    );
}

#[test]
fn garbage_is_lost_once() {
    let mut s = session(319, 12, Vec::new());
    s.push((
        Dir::FromClient,
        vec![0, 0, 0, 12, 0x42, 0, 0, 0, 1, 2, 3, 4],
    ));
    s.push((
        Dir::FromClient,
        data(&oall8(0, Some("SELECT 1 FROM dual"), 12), true),
    ));
    s.push((Dir::ToClient, data(&oer(3, 0, 1, "", 12), true)));
    let r = run(&s);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].kind, "lost");
}

#[test]
fn oversized_packet_is_lost() {
    let mut s = session(319, 12, Vec::new());
    s.push((
        Dir::ToClient,
        vec![0x7f, 0xff, 0xff, 0xff, TNS_DATA, 0, 0, 0],
    ));
    let r = run(&s);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].kind, "lost");
}

#[test]
fn ttc_integers() {
    let mut r = Rd(&[0, 1, 7, 2, 0x01, 0x00, 0x81, 5, 3, 0xff]);
    assert_eq!(r.ub4(), Some(0));
    assert_eq!(r.ub4(), Some(7));
    assert_eq!(r.ub2(), Some(256));
    assert_eq!(r.sb2(), Some(-5));
    assert_eq!(r.ub2(), None, "3 bytes for a ub2");
    // found by the fuzzer: the most negative sb2 must not overflow
    assert_eq!(Rd(&[0x82, 0x80, 0x00]).sb2(), Some(i16::MIN));
    let chunked = with_length(&[b'a'; 300]);
    assert_eq!(Rd(&chunked).bytes_with_length().map(|v| v.len()), Some(300));
}

#[test]
fn random_bytes_never_panic() {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let base = session(319, 12, statements(true, 12));
    for _ in 0..300 {
        let mut s = base.clone();
        for (_, bytes) in s.iter_mut() {
            for _ in 0..(next() % 3) {
                if !bytes.is_empty() {
                    let i = (next() as usize) % bytes.len();
                    bytes[i] = next() as u8;
                }
            }
        }
        let _ = run_chunked(&s, 1 + (next() as usize % 13));
    }
}

#[test]
fn client_direction_only() {
    // a `-l` recording: every request is emitted when the next begins
    for (version, large) in [(319, true), (314, false)] {
        client_only(session(version, 12, statements(large, 12)));
    }
}

fn client_only(full: Script) {
    let client: Script = full
        .into_iter()
        .filter(|(d, _)| *d == Dir::FromClient)
        .collect();
    let mut t = Tns::new();
    let mut out = Vec::new();
    t.one_sided(&mut out);
    for (i, (dir, bytes)) in client.iter().enumerate() {
        t.feed(*dir, i as i64, bytes, &mut out);
    }
    t.finish(&mut out);
    let got: Vec<String> = out.iter().map(summary).collect();
    assert_eq!(
        got,
        vec![
            r#"query "SELECT ename FROM emp" unknown None None"#,
            r#"execute "" unknown None None"#,
            r#"query "SELECT * FROM nope" unknown None None"#,
            r#"commit "" unknown None None"#,
        ]
    );
    assert_eq!(out[0].user.as_deref(), Some("scott"));
}
