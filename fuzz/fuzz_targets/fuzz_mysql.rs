//! Fuzzes the MySQL decoders (server greeting, client's first packet),
//! open and ended.
#![no_main]

use ipprotd::identity::{Decode, mysql};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for end in [false, true] {
        let greeting = mysql::decode_greeting(data, end);
        let client = mysql::decode_client(data, end);
        if end {
            assert_ne!(greeting, Decode::NeedMore);
            assert_ne!(client, Decode::NeedMore);
        }
    }
});
