//! Fuzzes the PostgreSQL statement decoder through the Auditor (with
//! redaction): the input is a script of chunks, each a header byte (top
//! bit: direction, the rest: length) and its bytes; a first byte with its
//! top bit set puts a complete login before the script, so the fuzzer
//! spends its time in the statement phase. Checks: no panic; at most one
//! `lost`/`undecodable` record and nothing after it; the records do not
//! depend on how the stream is cut into chunks (the same script fed one
//! byte per chunk gives the same records).
#![no_main]

use ipprotd::audit::{Auditor, Dir, Record};
use libfuzzer_sys::fuzz_target;

fn msg(typ: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![typ];
    m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// Startup (user, database), AuthenticationOk, BackendKeyData, ReadyForQuery.
fn login() -> Vec<(Dir, Vec<u8>)> {
    let mut st = 196_608u32.to_be_bytes().to_vec();
    st.extend(b"user\0fuzz\0database\0db\0\0");
    let mut startup = (st.len() as u32 + 4).to_be_bytes().to_vec();
    startup.extend(st);
    let server = [
        msg(b'R', &[0, 0, 0, 0]),
        msg(b'K', &[0, 0, 0, 42, 1, 2, 3, 4]),
        msg(b'Z', b"I"),
    ]
    .concat();
    vec![(Dir::FromClient, startup), (Dir::ToClient, server)]
}

fn script(data: &[u8]) -> Vec<(Dir, Vec<u8>)> {
    let mut steps = Vec::new();
    let mut rest = data;
    if let Some((&first, tail)) = rest.split_first() {
        if first & 0x80 != 0 {
            steps = login();
        }
        rest = tail;
    }
    while let Some((&h, tail)) = rest.split_first() {
        let dir = if h & 0x80 != 0 { Dir::ToClient } else { Dir::FromClient };
        let n = usize::from(h & 0x7f).min(tail.len());
        steps.push((dir, tail[..n].to_vec()));
        rest = &tail[n..];
    }
    steps
}

fn run(steps: &[(Dir, Vec<u8>)], bytewise: bool) -> Vec<Record> {
    let mut a = Auditor::new(true);
    let mut out = Vec::new();
    for (i, (dir, chunk)) in steps.iter().enumerate() {
        let t = i as i64 * 10;
        if bytewise {
            for b in chunk {
                a.feed(*dir, t, std::slice::from_ref(b), &mut out);
            }
        } else {
            a.feed(*dir, t, chunk, &mut out);
        }
    }
    a.finish(&mut out);
    out
}

fuzz_target!(|data: &[u8]| {
    let steps = script(data);
    let whole = run(&steps, false);
    if let Some(i) = whole.iter().position(|r| r.kind == "lost" || r.kind == "undecodable") {
        assert_eq!(i, whole.len() - 1, "records after {}", whole[i].kind);
    }
    let bytes = run(&steps, true);
    assert_eq!(whole, bytes);
});
