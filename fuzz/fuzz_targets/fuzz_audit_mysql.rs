//! Fuzzes the MySQL/MariaDB statement decoder. The first byte picks the
//! capabilities of a valid greeting, handshake and auth OK fed first (or
//! none), so the fuzzer reaches the command phase, compressed or not;
//! the rest is a sequence of chunks, each `[header][bytes]` where the
//! header's low bit is the direction and the rest its length. Checks:
//! no panic, and nothing after a `lost` or `undecodable` record.
#![no_main]

use ipprotd::audit::mysql::MySql;
use ipprotd::audit::{Dir, Protocol, Record};
use libfuzzer_sys::fuzz_target;

/// Capability bits the first byte can switch on, in order.
const CAPS: [u32; 8] = [
    0x20,       // CLIENT_COMPRESS
    0x100_0000, // CLIENT_DEPRECATE_EOF
    0x800_0000, // CLIENT_QUERY_ATTRIBUTES
    0x80_0000,  // CLIENT_SESSION_TRACK
    0x200_0000, // CLIENT_OPTIONAL_RESULTSET_METADATA
    0x1_0000,   // CLIENT_MULTI_STATEMENTS
    0x800,      // CLIENT_SSL
    0x2_0000,   // CLIENT_MULTI_RESULTS
];

fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    let n = payload.len();
    let mut v = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
    v.extend_from_slice(payload);
    v
}

/// Greeting, HandshakeResponse41 and the server's OK with `caps`.
fn login(caps: u32) -> [(Dir, Vec<u8>); 3] {
    let caps = caps | 0x200 | 0x8000 | 0x8 | 0x8_0000 | 0x20_0000;
    let mut g = vec![0x0a];
    g.extend_from_slice(b"10.11.19-MariaDB\0");
    g.extend_from_slice(&7u32.to_le_bytes());
    g.extend_from_slice(b"abcdefgh\0");
    g.extend_from_slice(&(caps as u16).to_le_bytes());
    g.push(0x2d);
    g.extend_from_slice(&2u16.to_le_bytes());
    g.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
    g.push(21);
    g.extend_from_slice(&[0; 6]);
    g.extend_from_slice(&0x1cu32.to_le_bytes());
    g.extend_from_slice(b"ijklmnopqrst\0mysql_native_password\0");
    let mut h = (caps & !0x800).to_le_bytes().to_vec();
    h.extend_from_slice(&16_777_216u32.to_le_bytes());
    h.push(0x2d);
    h.extend_from_slice(&[0; 19]);
    h.extend_from_slice(&0x1cu32.to_le_bytes());
    h.extend_from_slice(b"fuzz\0\x02ab");
    h.extend_from_slice(b"db\0mysql_native_password\0");
    let ok = [0u8, 0, 0, 2, 0, 0, 0];
    [
        (Dir::ToClient, packet(0, &g)),
        (Dir::FromClient, packet(1, &h)),
        (Dir::ToClient, packet(2, &ok)),
    ]
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, mut rest)) = data.split_first() else {
        return;
    };
    let mut m = MySql::new();
    let mut out: Vec<Record> = Vec::new();
    let mut t = 0;
    if control & 0x80 != 0 {
        let caps = CAPS
            .iter()
            .enumerate()
            .filter(|(i, _)| control & (1 << i) != 0)
            .fold(0, |c, (_, bit)| c | bit);
        for (dir, bytes) in login(caps & !0x800) {
            m.feed(dir, t, &bytes, &mut out);
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
        m.feed(dir, t, chunk, &mut out);
        t += 1;
        rest = tail;
        if n == 0 && tail.is_empty() {
            break;
        }
    }
    m.finish(&mut out);
    if let Some(i) = out
        .iter()
        .position(|r| r.kind == "lost" || r.kind == "undecodable")
    {
        assert_eq!(i, out.len() - 1, "records after {}", out[i].kind);
    }
});
