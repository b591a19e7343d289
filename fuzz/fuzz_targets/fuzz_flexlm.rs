//! Fuzzes the FLEXlm decoders (client hello, lmgrd reply), open and ended.
#![no_main]

use ipprotd::identity::{Decode, flexlm};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for end in [false, true] {
        let client = flexlm::decode_client(data, end);
        let server = flexlm::decode_server(data, end);
        if end {
            assert_ne!(client, Decode::NeedMore);
            assert_ne!(server, Decode::NeedMore);
        }
    }
});
