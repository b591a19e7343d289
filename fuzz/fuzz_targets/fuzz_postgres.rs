//! Fuzzes the PostgreSQL startup decoder (and TLS detection), open and
//! ended.
#![no_main]

use ipprotd::identity::{Decode, postgres, tls};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = postgres::decode(data, false);
    let _ = tls::decode(data, false);
    assert_ne!(postgres::decode(data, true), Decode::NeedMore);
    assert_ne!(tls::decode(data, true), Decode::NeedMore);
});
