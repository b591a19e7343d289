//! MySQL/MariaDB client identity (IDENTIFY.md §5).
//!
//! The server speaks first: a greeting packet (`[len u24 LE][seq 0]
//! [0x0a protocol 10][version\0]...`, or an error packet `[..][00][ff]`)
//! makes the connection `mysql`. The client's first packet (`seq 1`) is
//! then a HandshakeResponse41 or the old HandshakeResponse320, giving the
//! user, the database (as service), and the connection attributes
//! `program_name` (as program) and `_pid` (as pid); or an SSLRequest,
//! after which TLS follows (proto `mysql-tls`, no identity). With TLS
//! termination the sniffer sees the greeting and then, in plaintext, the
//! HandshakeResponse that followed the SSLRequest (`seq 2`, CLIENT_SSL
//! set): it decodes as the first packet. Fields parsed
//! before a malformed part of a complete response are kept. Pure: every
//! length is untrusted and bound-checked; never panics.

use super::{
    Decode, IDENTITY_PEEK_BYTES, Identity, Miss, PROTO_MYSQL, PROTO_MYSQL_TLS, take_cstr, text,
};

/// Packet header: u24 LE payload length and a sequence number (bytes).
const HEADER_BYTES: usize = 4;
/// Largest payload that fits in the sniffed bytes.
const MAX_PAYLOAD_BYTES: usize = IDENTITY_PEEK_BYTES - HEADER_BYTES;
/// First byte of a protocol-10 greeting payload.
const GREETING_V10: u8 = 0x0a;
/// First byte of an error packet payload.
const ERROR_PACKET: u8 = 0xff;
/// An error payload: 0xff and a u16 error code at least (bytes).
const ERROR_MIN_BYTES: usize = 3;
/// Greeting bytes after the version: connection id u32, 8 bytes of
/// auth data, one filler byte (bytes).
const GREETING_AFTER_VERSION_MIN: usize = 13;
/// Sequence number of the server's greeting.
const SEQ_GREETING: u8 = 0;
/// Sequence number of the client's first packet.
const SEQ_RESPONSE: u8 = 1;
/// Sequence number of the HandshakeResponse that follows an SSLRequest.
const SEQ_AFTER_SSL: u8 = 2;
/// HandshakeResponse41 fixed part: caps u32, max packet u32, charset u8,
/// 23 filler bytes; also the whole SSLRequest41 payload (bytes).
const RESPONSE41_FIXED_BYTES: usize = 32;
/// HandshakeResponse320 fixed part: caps u16, max packet u24 (bytes).
const RESPONSE320_FIXED_BYTES: usize = 5;

/// Capability flags (CLIENT_*).
const CLIENT_CONNECT_WITH_DB: u32 = 0x8;
const CLIENT_PROTOCOL_41: u32 = 0x200;
const CLIENT_SSL: u32 = 0x800;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
const CLIENT_PLUGIN_AUTH: u32 = 0x8_0000;
const CLIENT_CONNECT_ATTRS: u32 = 0x10_0000;
const CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA: u32 = 0x20_0000;

/// Connection attribute holding the client program's name.
const ATTR_PROGRAM: &[u8] = b"program_name";
/// Connection attribute holding the client's process id.
const ATTR_PID: &[u8] = b"_pid";

/// Decodes the server's first bytes as a MySQL greeting (or error).
pub fn decode_greeting(buf: &[u8], end: bool) -> Decode {
    let payload = match packet(buf, SEQ_GREETING) {
        Ok(payload) => payload,
        Err(miss) => return miss.decode(end),
    };
    let ok = match payload.split_first() {
        Some((&GREETING_V10, rest)) => match take_cstr(rest) {
            Some((version, after)) => {
                !version.is_empty()
                    && version.iter().all(|b| b.is_ascii_graphic() || *b == b' ')
                    && after.len() >= GREETING_AFTER_VERSION_MIN
            }
            None => false,
        },
        Some((&ERROR_PACKET, _)) => payload.len() >= ERROR_MIN_BYTES,
        _ => false,
    };
    if ok {
        Decode::Done(Identity::proto(PROTO_MYSQL))
    } else {
        Decode::NotMine
    }
}

/// Decodes the client's first packet, the answer to a greeting.
pub fn decode_client(buf: &[u8], end: bool) -> Decode {
    // the response after a (terminated) SSLRequest comes with seq 2
    let seq = match buf.get(3) {
        Some(&SEQ_AFTER_SSL) => SEQ_AFTER_SSL,
        _ => SEQ_RESPONSE,
    };
    let payload = match packet(buf, seq) {
        Ok(payload) => payload,
        Err(miss) => return miss.decode(end),
    };
    if seq == SEQ_AFTER_SSL
        && !le_u32(payload).is_some_and(|c| c & CLIENT_SSL != 0 && c & CLIENT_PROTOCOL_41 != 0)
    {
        return Decode::NotMine;
    }
    let caps16 = match payload {
        [low, high, ..] => u32::from(u16::from_le_bytes([*low, *high])),
        _ => return Decode::NotMine,
    };
    if caps16 & CLIENT_PROTOCOL_41 != 0 {
        response41(payload)
    } else {
        response320(payload, caps16)
    }
}

/// Payload of a complete packet with sequence number `seq` at the start
/// of `buf`.
fn packet(buf: &[u8], seq: u8) -> Result<&[u8], Miss> {
    if buf.get(3).is_some_and(|&got| got != seq) {
        return Err(Miss::Invalid);
    }
    let Some(&[b0, b1, b2, _]) = buf.get(..HEADER_BYTES) else {
        return Err(Miss::Short);
    };
    let length = usize::from(b0) | usize::from(b1) << 8 | usize::from(b2) << 16;
    if length == 0 || length > MAX_PAYLOAD_BYTES {
        return Err(Miss::Invalid);
    }
    buf.get(HEADER_BYTES..HEADER_BYTES.saturating_add(length))
        .ok_or(Miss::Short)
}

/// HandshakeResponse41 or SSLRequest41.
fn response41(payload: &[u8]) -> Decode {
    let Some(caps) = le_u32(payload) else {
        return Decode::NotMine;
    };
    let Some(rest) = payload.get(RESPONSE41_FIXED_BYTES..) else {
        return Decode::NotMine;
    };
    if rest.is_empty() {
        return if caps & CLIENT_SSL != 0 {
            Decode::Done(Identity::proto(PROTO_MYSQL_TLS))
        } else {
            Decode::NotMine
        };
    }
    let Some((user, rest)) = take_cstr(rest) else {
        return Decode::NotMine;
    };
    let mut id = Identity::proto(PROTO_MYSQL);
    id.user = text(user);
    // what follows the user name; stop at the first malformed part
    let _ = response41_tail(&mut id, caps, rest);
    Decode::Done(id)
}

/// Auth data, database, plugin and attributes of a HandshakeResponse41.
fn response41_tail(id: &mut Identity, caps: u32, rest: &[u8]) -> Option<()> {
    let mut rest = if caps & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
        lenenc_bytes(rest)?.1
    } else if caps & CLIENT_SECURE_CONNECTION != 0 {
        let (&n, after) = rest.split_first()?;
        after.get(usize::from(n)..)?
    } else {
        take_cstr(rest)?.1
    };
    if caps & CLIENT_CONNECT_WITH_DB != 0 {
        let (db, after) = take_cstr(rest)?;
        id.service = text(db);
        rest = after;
    }
    if caps & CLIENT_PLUGIN_AUTH != 0 {
        rest = take_cstr(rest)?.1;
    }
    if caps & CLIENT_CONNECT_ATTRS != 0 {
        let (attrs, _) = lenenc_bytes(rest).or_else(|| {
            // a total longer than the packet: read what is there
            let (_, after) = lenenc_int(rest)?;
            Some((after, &[][..]))
        })?;
        connect_attrs(id, attrs);
    }
    Some(())
}

/// `program_name` and `_pid` from lenenc key/value pairs.
fn connect_attrs(id: &mut Identity, mut attrs: &[u8]) {
    while let Some((key, after_key)) = lenenc_bytes(attrs) {
        let Some((value, after_value)) = lenenc_bytes(after_key) else {
            return;
        };
        let slot = match key {
            ATTR_PROGRAM => &mut id.program,
            ATTR_PID => &mut id.pid,
            _ => {
                attrs = after_value;
                continue;
            }
        };
        if slot.is_none() {
            *slot = text(value);
        }
        attrs = after_value;
    }
}

/// HandshakeResponse320 (or its SSLRequest): caps u16, max packet u24,
/// `user\0`, then auth, and `db\0` after a NUL-ended auth if asked.
fn response320(payload: &[u8], caps: u32) -> Decode {
    let Some(rest) = payload.get(RESPONSE320_FIXED_BYTES..) else {
        return Decode::NotMine;
    };
    if rest.is_empty() {
        return if caps & CLIENT_SSL != 0 {
            Decode::Done(Identity::proto(PROTO_MYSQL_TLS))
        } else {
            Decode::NotMine
        };
    }
    let Some((user, rest)) = take_cstr(rest) else {
        return Decode::NotMine;
    };
    let mut id = Identity::proto(PROTO_MYSQL);
    id.user = text(user);
    if caps & CLIENT_CONNECT_WITH_DB != 0
        && let Some((_, after_auth)) = take_cstr(rest)
    {
        id.service = take_cstr(after_auth).and_then(|(db, _)| text(db));
    }
    Decode::Done(id)
}

/// Little-endian u32 at the start.
fn le_u32(bytes: &[u8]) -> Option<u32> {
    let b = bytes.get(..4)?;
    let mut word = [0u8; 4];
    word.copy_from_slice(b);
    Some(u32::from_le_bytes(word))
}

/// A length-encoded integer and what follows it.
fn lenenc_int(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (&first, rest) = bytes.split_first()?;
    let width = match first {
        0..=0xfa => return Some((u64::from(first), rest)),
        0xfc => 2,
        0xfd => 3,
        0xfe => 8,
        _ => return None,
    };
    let digits = rest.get(..width)?;
    let value = digits
        .iter()
        .rev()
        .fold(0u64, |acc, &b| acc << 8 | u64::from(b));
    Some((value, rest.get(width..)?))
}

/// A length-encoded string and what follows it.
fn lenenc_bytes(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (length, rest) = lenenc_int(bytes)?;
    let length = usize::try_from(length).ok()?;
    Some((rest.get(..length)?, rest.get(length..)?))
}

#[cfg(test)]
mod tests {
    use super::super::Sniffer;
    use super::super::testutil::*;
    use super::*;

    fn check(vector: &str, want: &Identity) {
        let c = hex(vector);
        let g = hex(MYSQL_GREETING);
        assert_eq!(decode_client(&c, false), Decode::Done(want.clone()));
        assert_eq!(&sniff(&c, &g), want);
        assert_splits_server_first(&c, &g, want);
    }

    #[test]
    fn greeting_is_mysql() {
        let g = hex(MYSQL_GREETING);
        assert_eq!(
            decode_greeting(&g, false),
            Decode::Done(Identity::proto(PROTO_MYSQL))
        );
        for cut in 0..g.len() {
            assert_eq!(
                decode_greeting(&g[..cut], false),
                Decode::NeedMore,
                "cut {cut}"
            );
            assert_eq!(
                decode_greeting(&g[..cut], true),
                Decode::NotMine,
                "cut {cut}"
            );
        }
        let want = Identity::proto(PROTO_MYSQL);
        assert_eq!(sniff(b"", &g), want);
    }

    #[test]
    fn error_greeting_is_mysql() {
        let g = hex("170000ff6a04486f7374206e6f7420616c6c6f776564");
        // seq must be 0
        assert_eq!(decode_greeting(&g, false), Decode::NotMine);
        let g = hex("13000000ff6a04486f7374206e6f7420616c6c6f776564");
        assert_eq!(
            decode_greeting(&g, false),
            Decode::Done(Identity::proto(PROTO_MYSQL))
        );
    }

    #[test]
    fn my1_handshake_response_320() {
        check(
            MY1,
            &Identity {
                proto: Some(PROTO_MYSQL),
                user: s("old"),
                ..Identity::default()
            },
        );
    }

    #[test]
    fn my2_handshake_response_41_with_attrs() {
        check(
            MY2,
            &Identity {
                proto: Some(PROTO_MYSQL),
                user: s("bob"),
                service: s("shop"),
                program: s("mysql"),
                pid: s("12345"),
                ..Identity::default()
            },
        );
    }

    #[test]
    fn my3_no_db_no_attrs() {
        check(
            MY3,
            &Identity {
                proto: Some(PROTO_MYSQL),
                user: s("app_rw"),
                ..Identity::default()
            },
        );
    }

    #[test]
    fn my4_ssl_request_is_mysql_tls() {
        check(MY4, &Identity::proto(PROTO_MYSQL_TLS));
        // TLS records following the SSLRequest change nothing
        let c = [hex(MY4), hex("16030100f8010000f40303")].concat();
        assert_eq!(
            sniff(&c, &hex(MYSQL_GREETING)),
            Identity::proto(PROTO_MYSQL_TLS)
        );
    }

    #[test]
    fn response_without_greeting_is_nothing() {
        // the client never speaks first: no greeting, no MySQL
        assert_eq!(sniff(&hex(MY2), b""), Identity::default());
    }

    #[test]
    fn truncated_response_is_mysql_without_identity() {
        let c = hex(MY2);
        let g = hex(MYSQL_GREETING);
        for cut in 0..c.len() {
            assert_eq!(decode_client(&c[..cut], true), Decode::NotMine);
            assert_eq!(
                sniff(&c[..cut], &g),
                Identity::proto(PROTO_MYSQL),
                "cut {cut}"
            );
        }
        let mut sn = Sniffer::new();
        sn.server(&g);
        sn.client(&c[..50]);
        assert!(!sn.is_done());
        sn.expire();
        assert_eq!(sn.identity(), &Identity::proto(PROTO_MYSQL));
    }

    #[test]
    fn malformed_attrs_keep_user_and_db() {
        let mut c = hex(MY2);
        // attrs total 0x66 -> 0xfe with nothing behind it
        let at = c.len() - 0x66 - 1;
        assert_eq!(c[at], 0x66);
        c[at] = 0xfe;
        let Decode::Done(id) = decode_client(&c, false) else {
            panic!("not decoded");
        };
        assert_eq!(id.user, s("bob"));
        assert_eq!(id.service, s("shop"));
        assert_eq!(id.program, None);
    }

    #[test]
    fn attrs_total_beyond_packet_reads_what_is_there() {
        let mut c = hex(MY2);
        let at = c.len() - 0x66 - 1;
        c[at] = 0x70;
        let Decode::Done(id) = decode_client(&c, false) else {
            panic!("not decoded");
        };
        assert_eq!(id.program, s("mysql"));
        assert_eq!(id.pid, s("12345"));
    }

    #[test]
    fn wrong_sequence_or_sizes_are_not_mine() {
        let mut c = hex(MY3);
        c[3] = 2;
        assert_eq!(decode_client(&c, false), Decode::NotMine);
        assert_eq!(decode_client(&hex("00000001"), false), Decode::NotMine);
        assert_eq!(decode_client(&hex("ffff0f01"), false), Decode::NotMine);
        assert_eq!(decode_client(&hex("0100000100"), false), Decode::NotMine);
        // 41 response cut inside the fixed part
        assert_eq!(
            decode_client(&hex("0500000101a20a0000"), false),
            Decode::NotMine
        );
    }

    #[test]
    fn response_after_a_terminated_ssl_request_has_seq_2() {
        let plain = decode_client(&hex(MY3), false);
        let mut c = hex(MY3);
        c[3] = 2;
        // CLIENT_SSL (0x800) in the capabilities: the client did TLS first
        c[5] |= 0x08;
        let Decode::Done(want) = plain else {
            panic!("MY3 does not decode: {plain:?}");
        };
        let Decode::Done(got) = decode_client(&c, false) else {
            panic!("seq 2 with CLIENT_SSL does not decode");
        };
        assert_eq!(got.user, want.user);
        assert!(got.user.is_some());
    }

    #[test]
    fn lenenc_forms() {
        assert_eq!(lenenc_int(&[0xfa]), Some((0xfa, &[][..])));
        assert_eq!(lenenc_int(&[0xfc, 0x01, 0x02]), Some((0x0201, &[][..])));
        assert_eq!(lenenc_int(&[0xfd, 1, 2, 3]), Some((0x030201, &[][..])));
        assert_eq!(
            lenenc_int(&[0xfe, 1, 0, 0, 0, 0, 0, 0, 0x80]).map(|v| v.0),
            Some(0x8000_0000_0000_0001)
        );
        assert_eq!(lenenc_int(&[0xfb]), None);
        assert_eq!(lenenc_int(&[0xff]), None);
        assert_eq!(lenenc_int(&[0xfc, 1]), None);
        assert_eq!(
            lenenc_bytes(&[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            None
        );
    }
}
