//! TLS detection: a client that opens with a TLS handshake record
//! (`16 03 0x`: ClientHello, SSL 3.0 to TLS 1.3 record versions) is proto
//! `tls`, so an auditor sees at once that the recording holds no readable
//! statements. Nothing inside the ClientHello is decoded (no SNI, no
//! ALPN): the identity fields stay `None`. Used on its own (direct TLS,
//! Oracle TCPS, PostgreSQL `sslnegotiation=direct`) and by `postgres` after
//! an SSLRequest. Pure; never panics.

use super::{Decode, Identity, PROTO_TLS};

/// TLS record content type of a handshake.
const RECORD_HANDSHAKE: u8 = 0x16;
/// Major record version of SSL 3.0 and every TLS.
const RECORD_MAJOR: u8 = 0x03;
/// Highest minor record version accepted (TLS 1.3 is 0x04 at most).
const RECORD_MINOR_MAX: u8 = 0x04;
/// Bytes needed to recognise a TLS record (bytes).
const TLS_SIGNATURE_BYTES: usize = 3;

/// Whether `buf` starts like a TLS handshake record: `Some(true)` after
/// 3 matching bytes, `None` while a shorter prefix matches.
pub fn starts_tls(buf: &[u8]) -> Option<bool> {
    let matches = |i: usize, b: u8| match i {
        0 => b == RECORD_HANDSHAKE,
        1 => b == RECORD_MAJOR,
        _ => b <= RECORD_MINOR_MAX,
    };
    let head = buf.get(..TLS_SIGNATURE_BYTES).unwrap_or(buf);
    if !head.iter().enumerate().all(|(i, &b)| matches(i, b)) {
        return Some(false);
    }
    if head.len() < TLS_SIGNATURE_BYTES {
        None
    } else {
        Some(true)
    }
}

/// Decodes a client's first bytes as a TLS record.
pub fn decode(buf: &[u8], end: bool) -> Decode {
    match starts_tls(buf) {
        Some(true) => Decode::Done(Identity::proto(PROTO_TLS)),
        None if !end => Decode::NeedMore,
        _ => Decode::NotMine,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn client_hello_is_tls() {
        let hello = hex("16030100f8010000f40303");
        let want = Identity::proto(PROTO_TLS);
        assert_eq!(sniff(&hello, b""), want);
        assert_splits(&hello, b"", &want);
        assert_eq!(decode(&hello[..3], false), Decode::Done(want));
    }

    #[test]
    fn prefixes_wait_then_fail_at_end() {
        assert_eq!(decode(b"", false), Decode::NeedMore);
        assert_eq!(decode(&[0x16], false), Decode::NeedMore);
        assert_eq!(decode(&[0x16, 0x03], false), Decode::NeedMore);
        assert_eq!(decode(&[0x16, 0x03], true), Decode::NotMine);
        assert_eq!(sniff(&[0x16, 0x03], b""), Identity::default());
    }

    #[test]
    fn other_bytes_are_not_tls() {
        assert_eq!(decode(&[0x17, 0x03, 0x03], false), Decode::NotMine);
        assert_eq!(decode(&[0x16, 0x02, 0x00], false), Decode::NotMine);
        assert_eq!(decode(&[0x16, 0x03, 0x05], false), Decode::NotMine);
        assert_eq!(decode(&[0x16, 0x04], false), Decode::NotMine);
    }
}
