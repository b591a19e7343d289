//! Fuzzes the Oracle TNS statement decoder. The first byte picks a valid
//! CONNECT and ACCEPT (version 314 or 319) fed first, or none; the rest is
//! a sequence of chunks, each `[header][bytes]` where the header's low bit
//! is the direction and the rest its length; bit 0x40 of the first byte
//! says only the client's direction is recorded. Checks: no panic, and
//! nothing after a `lost` or `undecodable` record.
#![no_main]

use ipprotd::audit::tns::Tns;
use ipprotd::audit::{Dir, Protocol, Record};
use libfuzzer_sys::fuzz_target;

const DESCRIPTOR: &[u8] =
    b"(DESCRIPTION=(CONNECT_DATA=(SERVICE_NAME=FUZZ)(CID=(PROGRAM=f)(HOST=h)(USER=u))))";

fn packet(kind: u8, body: &[u8]) -> Vec<u8> {
    let n = 8 + body.len();
    let mut v = (n as u16).to_be_bytes().to_vec();
    v.extend_from_slice(&[0, 0, kind, 0, 0, 0]);
    v.extend_from_slice(body);
    v
}

fn handshake(version: u16) -> [(Dir, Vec<u8>); 2] {
    let mut c = version.to_be_bytes().to_vec();
    c.extend_from_slice(&300u16.to_be_bytes());
    c.extend_from_slice(&[0x04, 0x01, 0x20, 0x00, 0x20, 0x00, 0x4f, 0x98, 0, 0, 0, 1]);
    c.extend_from_slice(&(DESCRIPTOR.len() as u16).to_be_bytes());
    c.extend_from_slice(&74u16.to_be_bytes());
    c.extend_from_slice(&[0; 6]);
    c.extend_from_slice(&[0; 40]);
    c.extend_from_slice(DESCRIPTOR);
    let mut a = version.to_be_bytes().to_vec();
    a.extend_from_slice(&[0; 22]);
    [
        (Dir::FromClient, packet(1, &c)),
        (Dir::ToClient, packet(2, &a)),
    ]
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, mut rest)) = data.split_first() else {
        return;
    };
    let mut tns = Tns::new();
    let mut out: Vec<Record> = Vec::new();
    let mut t = 0;
    if control & 0x40 != 0 {
        tns.one_sided(&mut out);
    }
    if control & 0x80 != 0 {
        let version = if control & 1 != 0 { 319 } else { 314 };
        for (dir, bytes) in handshake(version) {
            tns.feed(dir, t, &bytes, &mut out);
            t += 1;
        }
    }
    while let Some((&h, after)) = rest.split_first() {
        let dir = if h & 1 == 0 {
            Dir::FromClient
        } else {
            Dir::ToClient
        };
        let n = usize::from(h >> 1).min(after.len());
        let (chunk, tail) = after.split_at(n);
        tns.feed(dir, t, chunk, &mut out);
        t += 1;
        rest = tail;
        if n == 0 && tail.is_empty() {
            break;
        }
    }
    tns.finish(&mut out);
    if let Some(i) = out
        .iter()
        .position(|r| r.kind == "lost" || r.kind == "undecodable")
    {
        assert_eq!(i, out.len() - 1, "records after {}", out[i].kind);
    }
});
