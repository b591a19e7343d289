//! Fuzzes the Oracle TNS CONNECT decoder, open and ended.
#![no_main]

use ipprotd::identity::{Decode, tns};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tns::decode(data, false);
    assert_ne!(tns::decode(data, true), Decode::NeedMore);
});
