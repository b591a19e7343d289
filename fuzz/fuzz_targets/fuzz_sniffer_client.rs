//! Fuzzes the sniffer with arbitrary client bytes, split into chunks: the
//! first input byte seeds the chunk sizes, the rest is the client stream.
//! Identification must end by EOF and calls after it must be no-ops.
#![no_main]

use ipprotd::identity::{IDENTITY_PEEK_BYTES, Sniffer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&seed, mut rest)) = data.split_first() else {
        return;
    };
    let mut sizes = u32::from(seed) | 0x100;
    let mut sn = Sniffer::new();
    while !rest.is_empty() {
        // xorshift over the seed: chunk sizes 1..=64
        sizes ^= sizes << 13;
        sizes ^= sizes >> 17;
        sizes ^= sizes << 5;
        let n = (sizes as usize % 64 + 1).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        sn.client(chunk);
        rest = tail;
    }
    if data.len() > IDENTITY_PEEK_BYTES + 1 {
        // 4 KiB seen; only FLEXlm may still wait for the server
        assert!(sn.is_done() || sn.identity().proto == Some("flexlm"));
    }
    sn.client_eof();
    sn.server_eof();
    assert!(sn.is_done());
    let done = sn.identity().clone();
    sn.client(data);
    sn.expire();
    assert_eq!(sn.identity(), &done);
});
