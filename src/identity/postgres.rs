//! PostgreSQL client identity from the startup phase (IDENTIFY.md §4).
//!
//! Startup-phase messages have no type byte: a big-endian u32 length
//! (itself included) and a u32 code. A StartupMessage (protocol 3.x) gives
//! `user`, `database` (as service) and `application_name` (as program).
//! SSLRequest and GSSENCRequest make the proto `postgres` and are skipped:
//! the client stream alone tells what the server answered, since after
//! `N` the client sends its StartupMessage and after `S` a TLS ClientHello
//! (proto `postgres-tls`, no identity). A CancelRequest is `postgres` with
//! no identity (its pid is the backend's, not the client's). Input only,
//! never panics, reads nothing past the bytes given.

use super::{Decode, Identity, PROTO_POSTGRES, PROTO_POSTGRES_TLS, be32, take_cstr, text, tls};

/// Length + code of a startup-phase message header (bytes).
const HEADER_BYTES: usize = 8;
/// The server's limit on a StartupMessage (MAX_STARTUP_PACKET_LENGTH, bytes).
const MAX_STARTUP_BYTES: u32 = 10_000;
/// Length of an SSLRequest or GSSENCRequest (bytes).
const REQUEST_BYTES: u32 = 8;
/// Shortest CancelRequest: header + pid + 4-byte key (bytes).
const CANCEL_MIN_BYTES: u32 = 16;
/// Longest CancelRequest: protocol 3.2 allows a key of up to 256 bytes.
const CANCEL_MAX_BYTES: u32 = 12 + 256;
/// SSLRequest code (1234 << 16 | 5679).
const SSL_REQUEST: u32 = 80_877_103;
/// GSSENCRequest code (1234 << 16 | 5680).
const GSSENC_REQUEST: u32 = 80_877_104;
/// CancelRequest code (1234 << 16 | 5678).
const CANCEL_REQUEST: u32 = 80_877_102;
/// Major protocol version of a StartupMessage, in the code's high half.
const PROTOCOL_MAJOR_3: u32 = 3;

/// Decodes the client's first bytes.
pub fn decode(buf: &[u8], end: bool) -> Decode {
    let mut rest = buf;
    // proto known from a complete SSLRequest/GSSENCRequest
    let mut requested = false;
    loop {
        let fallback = if requested {
            Decode::Done(Identity::proto(PROTO_POSTGRES))
        } else {
            Decode::NotMine
        };
        if rest.is_empty() {
            return if end { fallback } else { Decode::NeedMore };
        }
        if requested {
            match tls::starts_tls(rest) {
                Some(true) => return Decode::Done(Identity::proto(PROTO_POSTGRES_TLS)),
                None if !end => return Decode::NeedMore,
                _ => {}
            }
        }
        if !header_prefix_ok(rest) {
            return fallback;
        }
        let (Some(length), Some(code)) = (be32(rest, 0), be32(rest, 4)) else {
            return if end { fallback } else { Decode::NeedMore };
        };
        match code {
            SSL_REQUEST | GSSENC_REQUEST if length == REQUEST_BYTES => {
                requested = true;
                rest = rest.get(HEADER_BYTES..).unwrap_or_default();
            }
            CANCEL_REQUEST if (CANCEL_MIN_BYTES..=CANCEL_MAX_BYTES).contains(&length) => {
                return Decode::Done(Identity::proto(PROTO_POSTGRES));
            }
            _ if code >> 16 == PROTOCOL_MAJOR_3 && length > REQUEST_BYTES => {
                let Some(message) = rest.get(..length as usize) else {
                    return if end { fallback } else { Decode::NeedMore };
                };
                return match startup_params(message) {
                    Some(id) => Decode::Done(id),
                    None => fallback,
                };
            }
            _ => return fallback,
        }
    }
}

/// The first bytes seen can start a startup-phase message: length high
/// bytes zero, and once known a length from 8 to the server's limit.
fn header_prefix_ok(buf: &[u8]) -> bool {
    if buf.iter().take(2).any(|&b| b != 0) {
        return false;
    }
    match be32(buf, 0) {
        Some(length) => (REQUEST_BYTES..=MAX_STARTUP_BYTES).contains(&length),
        None => true,
    }
}

/// Parameters of a complete StartupMessage: `name\0value\0` pairs ended by
/// an empty name. `None` when malformed.
fn startup_params(message: &[u8]) -> Option<Identity> {
    let mut id = Identity::proto(PROTO_POSTGRES);
    let mut rest = message.get(HEADER_BYTES..)?;
    loop {
        let (name, after_name) = take_cstr(rest)?;
        if name.is_empty() {
            return Some(id);
        }
        let (value, after_value) = take_cstr(after_name)?;
        let slot = match name {
            b"user" => &mut id.user,
            b"database" => &mut id.service,
            b"application_name" => &mut id.program,
            _ => {
                rest = after_value;
                continue;
            }
        };
        if slot.is_none() {
            *slot = text(value);
        }
        rest = after_value;
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{PROTO_TLS, Sniffer};
    use super::*;

    fn pg3_identity() -> Identity {
        Identity {
            proto: Some(PROTO_POSTGRES),
            user: s("alice"),
            service: s("sales"),
            program: s("psql"),
            ..Identity::default()
        }
    }

    #[test]
    fn pg1_ssl_request_is_postgres_without_identity() {
        let c = hex(PG1);
        let want = Identity::proto(PROTO_POSTGRES);
        assert_eq!(decode(&c, false), Decode::NeedMore);
        assert_eq!(sniff(&c, b"S"), want);
        assert_splits(&c, b"", &want);
    }

    #[test]
    fn pg2_gssenc_request_is_postgres_without_identity() {
        let c = hex(PG2);
        let want = Identity::proto(PROTO_POSTGRES);
        assert_eq!(sniff(&c, b"G"), want);
        assert_splits(&c, b"", &want);
    }

    #[test]
    fn pg3_startup_3_0() {
        let c = hex(PG3);
        assert_eq!(decode(&c, false), Decode::Done(pg3_identity()));
        assert_eq!(sniff(&c, b""), pg3_identity());
        assert_splits(&c, b"", &pg3_identity());
    }

    #[test]
    fn pg5_startup_3_2_replication() {
        let c = hex(PG5);
        let want = Identity {
            proto: Some(PROTO_POSTGRES),
            user: s("repl"),
            service: s("postgres"),
            program: s("walreceiver"),
            ..Identity::default()
        };
        assert_eq!(sniff(&c, b""), want);
        assert_splits(&c, b"", &want);
    }

    #[test]
    fn pg6_cancel_request_has_no_identity() {
        let c = hex(PG6);
        let want = Identity::proto(PROTO_POSTGRES);
        assert_eq!(decode(&c, false), Decode::Done(want.clone()));
        assert_eq!(sniff(&c, b""), want);
        assert_splits(&c, b"", &want);
    }

    #[test]
    fn pg1_then_pg3_is_pg3() {
        let c = [hex(PG1), hex(PG3)].concat();
        assert_eq!(sniff(&c, b"N"), pg3_identity());
        assert_splits(&c, b"N", &pg3_identity());
    }

    #[test]
    fn gssenc_then_ssl_then_startup() {
        let c = [hex(PG2), hex(PG1), hex(PG3)].concat();
        assert_eq!(sniff(&c, b"NN"), pg3_identity());
        assert_splits(&c, b"NN", &pg3_identity());
    }

    #[test]
    fn pg1_then_tls_is_postgres_tls() {
        let c = [hex(PG1), hex("16030100f8010000f40303")].concat();
        let want = Identity::proto(PROTO_POSTGRES_TLS);
        assert_eq!(sniff(&c, b"S"), want);
        assert_splits(&c, b"S", &want);
    }

    #[test]
    fn pg1_then_gss_tokens_is_postgres() {
        let c = [hex(PG2), hex("0000002a6082002606092a864886f7")].concat();
        assert_eq!(sniff(&c, b"G"), Identity::proto(PROTO_POSTGRES));
    }

    #[test]
    fn direct_tls_is_plain_tls() {
        let c = hex("16030100f8010000f40303");
        assert_eq!(sniff(&c, b""), Identity::proto(PROTO_TLS));
    }

    #[test]
    fn n6_bad_lengths_are_nothing() {
        for v in ["0000000400030000", "00ffffff00030000"] {
            let c = hex(v);
            assert_eq!(decode(&c, false), Decode::NotMine, "{v}");
            assert_eq!(sniff(&c, b""), Identity::default(), "{v}");
            assert_splits(&c, b"", &Identity::default());
        }
    }

    #[test]
    fn n7_startup_missing_final_nul_is_nothing() {
        let mut c = hex(PG3);
        c.pop();
        assert_eq!(decode(&c, false), Decode::NeedMore);
        assert_eq!(decode(&c, true), Decode::NotMine);
        assert_eq!(sniff(&c, b""), Identity::default());
        let mut sn = Sniffer::new();
        sn.client(&c);
        sn.expire();
        assert!(sn.is_done());
        assert_eq!(sn.identity(), &Identity::default());
    }

    #[test]
    fn startup_without_terminator_is_nothing() {
        // length adjusted to 77 bytes: the list lacks its final NUL
        let mut c = hex(PG3);
        c.pop();
        c[3] = 0x4d;
        assert_eq!(decode(&c, false), Decode::NotMine);
        // and a value cut inside the length
        c.pop();
        c[3] = 0x4c;
        assert_eq!(decode(&c, false), Decode::NotMine);
        assert_eq!(sniff(&c, b""), Identity::default());
    }

    #[test]
    fn truncated_prefixes_give_nothing_at_end() {
        let c = hex(PG3);
        for cut in 0..c.len() {
            assert_eq!(sniff(&c[..cut], b""), Identity::default(), "cut {cut}");
        }
        let c = [hex(PG1), hex(PG3)].concat();
        for cut in 8..c.len() {
            assert_eq!(sniff(&c[..cut], b""), Identity::proto(PROTO_POSTGRES));
        }
    }

    #[test]
    fn empty_values_are_none_and_first_wins() {
        let mut body = b"user\0\0application_name\0a\0application_name\0b\0\0".to_vec();
        let mut c = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        c.extend_from_slice(&[0, 3, 0, 0]);
        c.append(&mut body);
        let id = sniff(&c, b"");
        assert_eq!(id.user, None);
        assert_eq!(id.program, s("a"));
        assert_eq!(id.proto, Some(PROTO_POSTGRES));
    }

    #[test]
    fn protocol_2_is_ignored() {
        assert_eq!(decode(&hex("0000012800020000"), false), Decode::NotMine);
    }
}
