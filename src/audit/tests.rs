//! Tests of the Auditor: detection, redaction, rendering.

use super::*;

fn pg_msg(typ: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![typ];
    m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    m.extend_from_slice(body);
    m
}

fn pg_session(sql: &str) -> Vec<(Dir, Vec<u8>)> {
    let mut st = 196_608u32.to_be_bytes().to_vec();
    st.extend(b"user\0alice\0database\0shop\0\0");
    let mut startup = (st.len() as u32 + 4).to_be_bytes().to_vec();
    startup.extend(st);
    let mut q = sql.as_bytes().to_vec();
    q.push(0);
    vec![
        (Dir::FromClient, startup),
        (
            Dir::ToClient,
            [
                pg_msg(b'R', &[0, 0, 0, 0]),
                pg_msg(b'K', &[0, 0, 0, 7, 0, 0, 0, 1]),
                pg_msg(b'Z', b"I"),
            ]
            .concat(),
        ),
        (Dir::FromClient, pg_msg(b'Q', &q)),
        (
            Dir::ToClient,
            [pg_msg(b'C', b"ALTER ROLE\0"), pg_msg(b'Z', b"I")].concat(),
        ),
    ]
}

fn audit(redact: bool, steps: &[(Dir, Vec<u8>)]) -> Vec<Record> {
    let mut a = Auditor::new(redact);
    let mut out = Vec::new();
    for (i, (d, b)) in steps.iter().enumerate() {
        // split every chunk in two to cross the detection buffer
        let (x, y) = b.split_at(b.len().min(3));
        a.feed(*d, 10 * i as i64, x, &mut out);
        a.feed(*d, 10 * i as i64, y, &mut out);
    }
    a.finish(&mut out);
    out
}

#[test]
fn postgres_is_detected_and_redacted() {
    let steps = pg_session("ALTER ROLE alice PASSWORD 'hunter2'");
    let recs = audit(true, &steps);
    let q = recs.iter().find(|r| r.kind == "query").unwrap();
    assert_eq!(
        q.statement.as_deref(),
        Some("ALTER ROLE alice PASSWORD '***'")
    );
    assert_eq!(q.proto, "postgres");
    let recs = audit(false, &steps);
    let q = recs.iter().find(|r| r.kind == "query").unwrap();
    assert_eq!(
        q.statement.as_deref(),
        Some("ALTER ROLE alice PASSWORD 'hunter2'")
    );
}

#[test]
fn other_protocols_give_nothing() {
    assert!(
        audit(
            true,
            &[(Dir::FromClient, b"GET / HTTP/1.1\r\n\r\n".to_vec())]
        )
        .is_empty()
    );
    assert!(audit(true, &[(Dir::ToClient, b"220 smtp ready\r\n".to_vec())]).is_empty());
    assert!(audit(true, &[(Dir::FromClient, vec![0, 0])]).is_empty());
}

#[test]
fn tls_from_the_first_byte_is_one_undecodable_record() {
    let mut hello = vec![0x16, 3, 1, 0, 64, 1, 0, 0, 60];
    hello.extend(b"\x00\x10\x00\x0d\x00\x0b\x0apostgresql");
    let recs = audit(
        true,
        &[
            (Dir::FromClient, hello),
            (Dir::ToClient, vec![0x16, 3, 3, 0, 1, 2]),
        ],
    );
    assert_eq!(recs.len(), 1);
    assert_eq!((recs[0].proto, recs[0].kind), ("postgres", "undecodable"));
    let recs = audit(
        true,
        &[(Dir::FromClient, vec![0x16, 3, 1, 0, 5, 1, 0, 0, 1, 0])],
    );
    assert_eq!((recs[0].proto, recs[0].kind), ("tls", "undecodable"));
}

#[test]
fn secret_parameters_are_masked() {
    let mut r = Record::new("postgres", "execute", 0);
    r.statement = Some("UPDATE u SET password = $1 WHERE name = $2".into());
    r.params = Some(vec![Some("s3cret".into()), Some("bob".into())]);
    redact_record(&mut r);
    assert_eq!(
        r.params,
        Some(vec![Some("***".to_string()), Some("bob".to_string())])
    );
    let mut r = Record::new("postgres", "execute", 0);
    r.statement = Some("SELECT dblink_connect($1)".into());
    r.params = Some(vec![Some("host=h password=pw".into())]);
    redact_record(&mut r);
    assert_eq!(r.params, Some(vec![Some("***".to_string())]));
}

#[test]
fn json_line_has_every_key_in_order() {
    let mut r = Record::new("postgres", "query", 1_795_465_805_123_456);
    r.user = Some("al\"ice".into());
    r.statement = Some("SELECT 1;\nSELECT 2".into());
    r.params = Some(vec![Some("a".into()), None]);
    r.status = Outcome::Ok;
    r.tag = Some("SELECT 1".into());
    r.rows = Some(1);
    r.duration_us = Some(250);
    r.server_session = Some(77);
    let c = Conn {
        conn: Some(3),
        client_ip: Some("127.0.0.1".into()),
        client_port: None,
    };
    let line = json_line(&r, &c, &|_| 3600);
    assert_eq!(
        line,
        "{\"time\":\"2026-11-23T21:30:05.123456+01:00\",\"time_us\":1795465805123456,\"conn\":3,\
         \"client_ip\":\"127.0.0.1\",\"client_port\":null,\"proto\":\"postgres\",\"user\":\"al\\\"ice\",\
         \"service\":null,\"program\":null,\"server_session\":77,\"kind\":\"query\",\
         \"statement\":\"SELECT 1;\\nSELECT 2\",\"params\":[\"a\",null],\"status\":\"ok\",\
         \"tag\":\"SELECT 1\",\"rows\":1,\"error\":null,\"duration_us\":250,\"exact\":true}\n"
    );
}

#[test]
fn text_line_is_one_line() {
    let mut r = Record::new("postgres", "query", 1_795_465_805_123_456);
    r.user = Some("alice".into());
    r.service = Some("shop".into());
    r.statement = Some("SELECT 1;\n\tSELECT '\u{1}'".into());
    r.status = Outcome::Error;
    r.error = Some("42P01 relation \"x\" does not exist".into());
    let c = Conn {
        conn: Some(3),
        client_ip: Some("::1".into()),
        client_port: Some(5),
    };
    assert_eq!(
        text_line(&r, &c, &|_| 0),
        "2026-11-23 20:30:05.123456+00:00|3|::1|alice@shop|error|42P01 relation \"x\" does not exist|SELECT 1;\\n\\tSELECT '\\x01'\n"
    );
    let r = Record::new("postgres", "lost", 0);
    assert_eq!(
        text_line(&r, &Conn::default(), &|_| 0),
        "1970-01-01 00:00:00.000000+00:00|-|-|-@-|unknown|-|(lost)\n"
    );
}

#[test]
fn detection_by_first_bytes() {
    // MySQL greeting: len 74, seq 0, protocol 10
    assert_eq!(
        detect(Dir::ToClient, &[74, 0, 0, 0, 10, b'1', b'1'], false),
        Some(Detected::MySql)
    );
    assert_eq!(
        detect(Dir::ToClient, b"SSH-2.0-x\r\n", false),
        Some(Detected::Other)
    );
    // MySQL HandshakeResponse with the greeting unrecorded
    let mut resp = vec![40, 0, 0, 1, 0x85, 0xa6, 0xff, 0x01];
    resp.extend([0u8; 40]);
    assert_eq!(detect(Dir::FromClient, &resp, false), Some(Detected::MySql));
    // TNS CONNECT: len 0x00c8, checksum 0, type 1
    assert_eq!(
        detect(
            Dir::FromClient,
            &[0, 0xc8, 0, 0, 1, 0, 0, 0, 1, 0x3a],
            false
        ),
        Some(Detected::Tns)
    );
    // PostgreSQL SSLRequest, and a prefix too short to tell
    assert_eq!(
        detect(Dir::FromClient, &[0, 0, 0, 8, 4, 210, 22, 47], false),
        Some(Detected::Postgres)
    );
    assert_eq!(detect(Dir::FromClient, &[0, 0, 0], false), None);
    assert_eq!(
        detect(Dir::FromClient, &[0, 0, 0], true),
        Some(Detected::Other)
    );
    // a TLS ClientHello waits for its whole record
    assert_eq!(detect(Dir::FromClient, &[0x16, 3, 1, 0, 9, 1], false), None);
}

#[test]
fn tls_detection_does_not_depend_on_chunks() {
    // found by fuzz_audit_postgres: a record of length 0, ALPN text after it
    let data = b"\x16\xd2\x04\x00\x00TE\x00\x0d\x00\x00\x00\x00\x00ECT DELETE\x0apostgresql;";
    let whole = audit(true, &[(Dir::FromClient, data.to_vec())]);
    let mut a = Auditor::new(true);
    let mut bytes = Vec::new();
    for b in data {
        a.feed(Dir::FromClient, 0, std::slice::from_ref(b), &mut bytes);
    }
    a.finish(&mut bytes);
    assert_eq!(whole.len(), 1);
    assert_eq!(whole[0].proto, bytes[0].proto);
    assert_eq!(whole[0].proto, "tls");
}

#[test]
fn record_times_are_rfc3339_with_the_offset_of_their_second() {
    // a cached second must never leak into the next one, nor its offset
    let tz = |s: i64| if s % 2 == 0 { 3600 } else { -16_200 };
    let mut t = TimeText::new(&tz);
    for us in [
        -1_000_001,
        -1,
        0,
        999_999,
        1_000_000,
        1_795_465_805_123_456,
        1_795_465_805_999_999,
        1_795_465_806_000_000,
        253_402_300_799_999_999,
    ] {
        let want = LocalTime {
            epoch_us: us,
            offset: tz(us.div_euclid(US_PER_SEC)),
        }
        .rfc3339_us();
        let mut got = String::new();
        t.push(&mut got, us, 'T');
        assert_eq!(got, want, "{us}");
        got.clear();
        t.push(&mut got, us, ' ');
        assert_eq!(got, want.replacen('T', " ", 1), "{us}");
    }
}

#[test]
fn the_redaction_shortcut_never_skips_a_secret() {
    // every statement the redactor changes holds a trigger
    let samples = [
        "ALTER ROLE a PASSWORD 'x'",
        "alter user a identified by pw",
        "CREATE USER u@h IDENTIFIED VIA ed25519 USING PASSWORD('p')",
        "SET PASSWORD FOR a = 'x'",
        "CHANGE MASTER TO MASTER_PASSWORD='x'",
        "UPDATE mysql.user SET authentication_string = 'x'",
        "SELECT dblink_connect('host=h pwd=x')",
        "SELECT 'postgres://u:secret@h/db'",
        "SELECT 'unterminated password",
        "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2",
        "SELECT 1",
    ];
    for s in samples {
        for d in [
            sql::Dialect::Postgres,
            sql::Dialect::MySql,
            sql::Dialect::Oracle,
        ] {
            let red = redact::statement(s, d);
            if red.text != s || !red.params.is_empty() {
                assert!(redact::may_hold_secret(s), "{s}");
            }
        }
        assert!(redact::may_hold_secret(&s.to_uppercase()) == redact::may_hold_secret(s));
    }
    assert!(!redact::may_hold_secret(
        "SELECT abalance FROM pgbench_accounts"
    ));
    assert!(redact::may_hold_secret("x PaSsWoRd"));
}

/// The escape check of JSON strings agrees with the plain rule on every
/// length around its sixteen-byte steps and every byte value at every
/// place; numbers come out as `format!` writes them.
#[test]
fn json_escape_check_and_numbers() {
    let rule = |b: &[u8]| {
        b.iter()
            .any(|&c| c < 0x20 || c == b'"' || c == b'\\' || c == 0x7f)
    };
    for len in 0..40 {
        for at in 0..len {
            for c in 0..=255u8 {
                let mut b = vec![b'a'; len];
                b[at] = c;
                assert_eq!(json_escape_needed(&b), rule(&b), "{len} {at} {c}");
            }
        }
        assert!(!json_escape_needed(&vec![b'x'; len]));
    }
    for v in [
        0u64,
        7,
        10,
        99,
        100,
        123_456,
        1_796_141_069_415_985,
        u64::MAX,
    ] {
        let mut s = String::new();
        push_u64(&mut s, v);
        assert_eq!(s, v.to_string());
    }
    for (v, n, want) in [
        (0, 6, "000000"),
        (42, 6, "000042"),
        (999_999, 6, "999999"),
        (1_234_567, 6, "234567"),
        (5, 2, "05"),
    ] {
        let mut s = String::new();
        push_digits(&mut s, v, n);
        assert_eq!(s, want);
    }
}
