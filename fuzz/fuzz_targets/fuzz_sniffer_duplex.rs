//! Fuzzes the sniffer with both sides: the first byte says where the
//! input splits into server and client bytes and who speaks first; both
//! streams are fed in interleaved chunks, then the deadline passes.
#![no_main]

use ipprotd::identity::Sniffer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&control, body)) = data.split_first() else {
        return;
    };
    let cut = body.len() * usize::from(control & 0x7f) / 0x7f;
    let (server, client) = body.split_at(cut.min(body.len()));
    let chunk = usize::from(control >> 4) + 1;
    let mut sn = Sniffer::new();
    let (mut c, mut s) = (client.chunks(chunk), server.chunks(chunk * 3));
    let server_first = control & 0x80 != 0;
    loop {
        let (a, b) = if server_first {
            (s.next().map(|p| sn.server(p)), c.next().map(|p| sn.client(p)))
        } else {
            (c.next().map(|p| sn.client(p)), s.next().map(|p| sn.server(p)))
        };
        if a.is_none() && b.is_none() {
            break;
        }
    }
    let _ = sn.identity();
    let _ = sn.vendor_port_seen();
    sn.expire();
    assert!(sn.is_done());
});
