//! FLEXlm/FlexNet client identity (IDENTIFY.md §2), for lmgrd and vendor
//! daemons alike.
//!
//! Client side: the legacy HELLO (`h` or `` ` ``, fixed-width NUL-padded
//! fields, 147 bytes for comm revision 3, 125 for 1-2, 88 for 0) gives
//! user, host, display, pid, and the vendor daemon name as service; it is
//! claimed only when its checksum holds. A client opening with a framed
//! `0x2f` message (header check byte and CRC-14 verified) is proto
//! `flexlm`; a type 0x0108 request also gives user, host, daemon (as
//! service), tty (as display) and command (as program).
//!
//! Server side: lmgrd's first reply, a framed type 0x0113 or a legacy `A`
//! TRY_ANOTHER, names the vendor daemon's host and TCP port, which clients
//! go on to use directly. Any other reply is `NotMine` here. Pure: reads
//! only the bytes given, never panics, never alters a message.

use super::{
    Decode, IDENTITY_PEEK_BYTES, Identity, Miss, PROTO_FLEXLM, be16, be32, take_cstr, text,
    until_nul,
};

/// Command byte of LM_HELLO.
const CMD_HELLO: u8 = b'h';
/// Command byte of LM_HELLO_THIS_VD (same layout as LM_HELLO).
const CMD_HELLO_THIS_VD: u8 = b'`';
/// Response byte of LM_TRY_ANOTHER (legacy redirect to a vendor daemon).
const CMD_TRY_ANOTHER: u8 = b'A';
/// Comm version digit of every known HELLO.
const COMM_VERSION: u8 = b'1';
/// Legacy message size for comm revision 3 (LM_MSG_LEN_v1_3, bytes).
const MSG_BYTES_V1_3: usize = 147;
/// Legacy message size for comm revisions 1 and 2 (bytes).
const MSG_BYTES_V1_1: usize = 125;
/// Legacy message size for comm revision 0, without display (bytes).
const MSG_BYTES_V1_0: usize = 88;

/// HELLO fields: (offset, width) in bytes, NUL padded.
const HELLO_USER: (usize, usize) = (4, 21);
const HELLO_HOST: (usize, usize) = (25, 33);
const HELLO_DAEMON: (usize, usize) = (58, 11);
const HELLO_DISPLAY: (usize, usize) = (69, 33);
const HELLO_PID: (usize, usize) = (115, 11);

/// TRY_ANOTHER fields: (offset, width) in bytes, NUL padded.
const TRY_HOST: (usize, usize) = (2, 33);
const TRY_TCP_PORT: (usize, usize) = (35, 11);
const TRY_HOST_MORE: (usize, usize) = (46, 33);
/// Characters of the first host field; a full one continues in the second.
const TRY_HOST_CHARS: usize = 32;

/// Marker byte of a framed message.
const FRAME_MARKER: u8 = 0x2f;
/// Framed header: marker, check byte, CRC-14, length, type, 12 more bytes.
const FRAME_HEADER_BYTES: usize = 20;
/// Offset of the header check byte.
const AT_FRAME_CHECK: usize = 1;
/// Offset of the CRC-14 (big-endian) over the bytes from the length on.
const AT_FRAME_CRC: usize = 2;
/// Offset of the total length (big-endian, header included).
const AT_FRAME_LEN: usize = 4;
/// Offset of the message type (big-endian).
const AT_FRAME_TYPE: usize = 6;
/// Framed type: lmgrd redirects the client to a vendor daemon.
const TYPE_REDIRECT: u16 = 0x0113;
/// Framed type: client request (lmstat and friends).
const TYPE_REQUEST: u16 = 0x0108;
/// Body prefix of a type 0x0108 request that carries the client's names.
const REQUEST_NAMES: [u8; 2] = [0x01, 0x04];
/// Reflected CRC-14 polynomial as used by the table (0x2e97 reflected).
const CRC14_POLY: u16 = 0x3a5d;

/// Decodes the client's first message.
pub fn decode_client(buf: &[u8], end: bool) -> Decode {
    match buf.first() {
        None if end => Decode::NotMine,
        None => Decode::NeedMore,
        Some(&CMD_HELLO | &CMD_HELLO_THIS_VD) => hello(buf, end),
        Some(&FRAME_MARKER) => match frame(buf) {
            Ok(message) => Decode::Done(framed_request(message)),
            Err(miss) => miss.decode(end),
        },
        Some(_) => Decode::NotMine,
    }
}

/// Decodes lmgrd's first reply: `Done` with `vendor_host`/`vendor_port`
/// for a redirect to a vendor daemon, `NotMine` for any other reply.
pub fn decode_server(buf: &[u8], end: bool) -> Decode {
    match buf.first() {
        None if end => Decode::NotMine,
        None => Decode::NeedMore,
        Some(&CMD_TRY_ANOTHER) => try_another(buf, end),
        Some(&FRAME_MARKER) => match frame(buf) {
            Ok(message) if be16(message, AT_FRAME_TYPE) == Some(TYPE_REDIRECT) => {
                Decode::Done(redirect(message))
            }
            Ok(_) => Decode::NotMine,
            Err(miss) => miss.decode(end),
        },
        Some(_) => Decode::NotMine,
    }
}

/// Legacy HELLO: size from the comm revision, then the checksum.
fn hello(buf: &[u8], end: bool) -> Decode {
    let wait = Miss::Short.decode(end);
    match buf.get(2) {
        None => return wait,
        Some(&COMM_VERSION) => {}
        Some(_) => return Decode::NotMine,
    }
    let size = match buf.get(3) {
        None => return wait,
        Some(b'3') => MSG_BYTES_V1_3,
        Some(b'1' | b'2') => MSG_BYTES_V1_1,
        Some(b'0') => MSG_BYTES_V1_0,
        Some(_) => return Decode::NotMine,
    };
    let Some(message) = legacy_message(buf, size) else {
        return wait;
    };
    if !checksum_ok(message) {
        return Decode::NotMine;
    }
    Decode::Done(Identity {
        proto: Some(PROTO_FLEXLM),
        user: field(message, HELLO_USER),
        host: field(message, HELLO_HOST),
        service: field(message, HELLO_DAEMON),
        display: field(message, HELLO_DISPLAY),
        pid: field(message, HELLO_PID),
        ..Identity::default()
    })
}

/// Legacy TRY_ANOTHER: vendor daemon host and ASCII TCP port.
fn try_another(buf: &[u8], end: bool) -> Decode {
    let Some(message) = legacy_message(buf, MSG_BYTES_V1_3) else {
        return Miss::Short.decode(end);
    };
    if !checksum_ok(message) {
        return Decode::NotMine;
    }
    let mut host = fixed(message, TRY_HOST).to_vec();
    if host.len() >= TRY_HOST_CHARS {
        host.extend_from_slice(fixed(message, TRY_HOST_MORE));
    }
    let port = std::str::from_utf8(fixed(message, TRY_TCP_PORT))
        .ok()
        .and_then(|digits| digits.trim().parse::<u16>().ok())
        .filter(|&port| port != 0);
    Decode::Done(Identity {
        proto: Some(PROTO_FLEXLM),
        vendor_host: text(&host),
        vendor_port: port,
        ..Identity::default()
    })
}

/// The first `size` bytes, once all are there.
fn legacy_message(buf: &[u8], size: usize) -> Option<&[u8]> {
    buf.get(..size)
}

/// Legacy checksum: byte 1 = (byte 0 + sum of bytes 2..) mod 256.
fn checksum_ok(message: &[u8]) -> bool {
    let (Some(&command), Some(&check), Some(rest)) =
        (message.first(), message.get(1), message.get(2..))
    else {
        return false;
    };
    let sum = rest.iter().fold(command, |acc, &b| acc.wrapping_add(b));
    sum == check
}

/// A fixed-width NUL-padded field, up to its first NUL (empty if absent).
fn fixed(message: &[u8], (at, width): (usize, usize)) -> &[u8] {
    message
        .get(at..at.saturating_add(width))
        .map(until_nul)
        .unwrap_or_default()
}

/// A fixed-width field as text; empty is `None`.
fn field(message: &[u8], slot: (usize, usize)) -> Option<String> {
    text(fixed(message, slot))
}

/// A complete framed message whose header check and CRC hold.
fn frame(buf: &[u8]) -> Result<&[u8], Miss> {
    let header = buf.get(..FRAME_HEADER_BYTES).ok_or(Miss::Short)?;
    let sum = header
        .get(AT_FRAME_CRC..)
        .unwrap_or_default()
        .iter()
        .fold(FRAME_MARKER, |acc, &b| acc.wrapping_add(b));
    if header.first() != Some(&FRAME_MARKER) || header.get(AT_FRAME_CHECK) != Some(&sum) {
        return Err(Miss::Invalid);
    }
    let length = be16(header, AT_FRAME_LEN).map_or(0, usize::from);
    if !(FRAME_HEADER_BYTES..=IDENTITY_PEEK_BYTES).contains(&length) {
        return Err(Miss::Invalid);
    }
    let message = buf.get(..length).ok_or(Miss::Short)?;
    let covered = message.get(AT_FRAME_LEN..).unwrap_or_default();
    if be16(message, AT_FRAME_CRC) != Some(crc14(covered)) {
        return Err(Miss::Invalid);
    }
    Ok(message)
}

/// FlexNet's CRC-14 (reflected, table polynomial 0x3a5d, init 0).
fn crc14(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |crc, &b| {
        let mut x = (crc ^ u16::from(b)) & 0xff;
        for _ in 0..8 {
            x = if x & 1 == 1 {
                (x >> 1) ^ CRC14_POLY
            } else {
                x >> 1
            };
        }
        x ^ (crc >> 8)
    })
}

/// A framed client message: proto `flexlm`, and names from a 0x0108.
fn framed_request(message: &[u8]) -> Identity {
    let mut id = Identity::proto(PROTO_FLEXLM);
    if be16(message, AT_FRAME_TYPE) != Some(TYPE_REQUEST) {
        return id;
    }
    let body = message.get(FRAME_HEADER_BYTES..).unwrap_or_default();
    let Some(mut rest) = body.strip_prefix(&REQUEST_NAMES[..]) else {
        return id;
    };
    for slot in [
        &mut id.user,
        &mut id.host,
        &mut id.service,
        &mut id.display,
        &mut id.program,
    ] {
        let Some((value, after)) = take_cstr(rest) else {
            break;
        };
        *slot = text(value);
        rest = after;
    }
    id
}

/// Body of a framed 0x0113: NUL-terminated host, then a BE u32 port.
fn redirect(message: &[u8]) -> Identity {
    let body = message.get(FRAME_HEADER_BYTES..).unwrap_or_default();
    let (host, port) = match take_cstr(body) {
        Some((host, after)) => (text(host), be32(after, 0)),
        None => (None, None),
    };
    Identity {
        proto: Some(PROTO_FLEXLM),
        vendor_host: host,
        vendor_port: port.and_then(|p| u16::try_from(p).ok()).filter(|&p| p != 0),
        ..Identity::default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::Sniffer;
    use super::super::testutil::*;
    use super::*;

    fn fl1() -> Identity {
        Identity {
            proto: Some(PROTO_FLEXLM),
            user: s("frey"),
            host: s("login01"),
            display: s("/dev/pts/73"),
            pid: s("35174"),
            service: s("MLM"),
            ..Identity::default()
        }
    }

    fn check_hello(vector: &str, want: &Identity) {
        let c = hex(vector);
        assert_eq!(c.len(), MSG_BYTES_V1_3);
        assert_eq!(decode_client(&c, false), Decode::Done(want.clone()));
        assert_eq!(&sniff(&c, b""), want);
        assert_splits(&c, b"", want);
    }

    #[test]
    fn fl1_real_hello() {
        check_hello(FL1, &fl1());
    }

    #[test]
    fn fl3_windows_hello() {
        check_hello(
            FL3,
            &Identity {
                proto: Some(PROTO_FLEXLM),
                user: s("jsmith"),
                host: s("WS-ENG-042"),
                display: s("WS-ENG-042"),
                pid: s("11234"),
                service: s("adskflex"),
                ..Identity::default()
            },
        );
    }

    #[test]
    fn fl4_empty_daemon_is_none() {
        check_hello(
            FL4,
            &Identity {
                proto: Some(PROTO_FLEXLM),
                user: s("svc_lic"),
                host: s("mon01.example.org"),
                display: s("/dev/tty"),
                pid: s("4242"),
                service: None,
                ..Identity::default()
            },
        );
    }

    #[test]
    fn fl6_framed_redirect_gives_vendor_address() {
        let reply = hex(FL6);
        let got = decode_server(&reply, false);
        let Decode::Done(id) = got else {
            panic!("FL6 not decoded: {got:?}");
        };
        assert_eq!(id.vendor_host, s("mathworks.lm.udel.edu"));
        assert_eq!(id.vendor_port, Some(40000));
        let want = Identity {
            vendor_host: s("mathworks.lm.udel.edu"),
            vendor_port: Some(40000),
            ..fl1()
        };
        let c = hex(FL1);
        assert_eq!(sniff(&c, &reply), want);
        assert_splits(&c, &reply, &want);
        // the reply is not a client message
        assert_eq!(
            decode_client(&reply, false),
            Decode::Done(Identity::proto(PROTO_FLEXLM))
        );
    }

    #[test]
    fn fl7_framed_request() {
        let c = hex(FL7);
        let want = Identity {
            proto: Some(PROTO_FLEXLM),
            user: s("frey"),
            host: s("login01"),
            service: s("lmgrd"),
            display: s("/dev/pts/73"),
            program: s("dlist"),
            ..Identity::default()
        };
        assert_eq!(decode_client(&c, false), Decode::Done(want.clone()));
        assert_eq!(sniff(&c, b""), want);
        assert_splits(&c, b"", &want);
        assert_eq!(decode_server(&c, false), Decode::NotMine);
    }

    #[test]
    fn fl8_legacy_try_another() {
        let reply = hex(FL8);
        let want = Identity {
            vendor_host: s("licsrv.example.com"),
            vendor_port: Some(27001),
            ..fl1()
        };
        let c = hex(FL1);
        assert_eq!(sniff(&c, &reply), want);
        assert_splits(&c, &reply, &want);
        let mut sn = Sniffer::new();
        sn.client(&c);
        sn.server(&reply[..100]);
        assert!(!sn.is_done());
        sn.server(&reply[100..]);
        assert!(sn.is_done());
        assert_eq!(sn.vendor_port_seen(), Some(27001));
    }

    #[test]
    fn try_another_long_host_continues() {
        let mut m = vec![0u8; MSG_BYTES_V1_3];
        m[0] = CMD_TRY_ANOTHER;
        m[2..34].copy_from_slice(&[b'a'; 32]);
        m[35..40].copy_from_slice(b"27000");
        m[46..50].copy_from_slice(b".com");
        m[1] = m[2..].iter().fold(m[0], |a, &b| a.wrapping_add(b));
        let Decode::Done(id) = decode_server(&m, false) else {
            panic!("not decoded");
        };
        assert_eq!(id.vendor_host, Some(format!("{}.com", "a".repeat(32))));
        assert_eq!(id.vendor_port, Some(27000));
        m[1] ^= 1;
        assert_eq!(decode_server(&m, false), Decode::NotMine);
    }

    #[test]
    fn other_lmgrd_replies_add_nothing() {
        assert_eq!(decode_server(b"W\xea-60\0", false), Decode::NotMine);
        assert_eq!(decode_server(b"", false), Decode::NeedMore);
        assert_eq!(decode_server(b"", true), Decode::NotMine);
        assert_eq!(decode_server(b"A\x00", false), Decode::NeedMore);
        assert_eq!(decode_server(b"A\x00", true), Decode::NotMine);
        // a framed reply of another type
        let mut m = hex(FL6);
        m[7] = 0x0e;
        refresh_frame(&mut m);
        assert_eq!(decode_server(&m, false), Decode::NotMine);
    }

    /// Recomputes CRC and header check of a framed message.
    fn refresh_frame(m: &mut [u8]) {
        let crc = crc14(&m[4..]);
        m[2..4].copy_from_slice(&crc.to_be_bytes());
        m[1] = m[2..20]
            .iter()
            .fold(FRAME_MARKER, |a, &b| a.wrapping_add(b));
    }

    #[test]
    fn crc14_matches_captures() {
        assert_eq!(crc14(&hex(FL6)[4..]), 0x125a);
        assert_eq!(crc14(&hex(FL7)[4..]), 0x3ea5);
    }

    #[test]
    fn framed_bad_crc_or_check_is_not_mine() {
        let mut m = hex(FL6);
        m[30] ^= 1;
        assert_eq!(decode_server(&m, false), Decode::NotMine);
        let mut m = hex(FL6);
        m[1] ^= 1;
        assert_eq!(decode_server(&m, false), Decode::NotMine);
        let mut m = hex(FL7);
        m[5] = 0x13;
        assert_eq!(decode_client(&m, false), Decode::NotMine);
    }

    #[test]
    fn framed_redirect_with_odd_port_has_no_port() {
        let mut m = hex(FL6);
        // port 0x00019c40 > 65535
        m[43] = 0x01;
        refresh_frame(&mut m);
        let Decode::Done(id) = decode_server(&m, false) else {
            panic!("not decoded");
        };
        assert_eq!(id.vendor_port, None);
        assert_eq!(id.vendor_host, s("mathworks.lm.udel.edu"));
    }

    #[test]
    fn older_comm_revisions() {
        let full = hex(FL1);
        for (rev, size) in [(b'2', MSG_BYTES_V1_1), (b'0', MSG_BYTES_V1_0)] {
            let mut m = full[..size].to_vec();
            m[3] = rev;
            m[1] = m[2..].iter().fold(m[0], |a, &b| a.wrapping_add(b));
            let Decode::Done(id) = decode_client(&m, false) else {
                panic!("rev {rev} not decoded");
            };
            assert_eq!(id.user, s("frey"));
            assert_eq!(id.service, s("MLM"));
            assert_eq!(id.pid, None, "no pid below rev 3");
            let display = if size > 102 { s("/dev/pts/73") } else { None };
            assert_eq!(id.display, display);
        }
    }

    #[test]
    fn hello_this_vd_uses_same_layout() {
        let mut m = hex(FL1);
        m[0] = CMD_HELLO_THIS_VD;
        m[1] = m[2..].iter().fold(m[0], |a, &b| a.wrapping_add(b));
        assert_eq!(decode_client(&m, false), Decode::Done(fl1()));
    }

    #[test]
    fn n1_bad_checksum_is_not_flexlm() {
        let mut c = hex(FL1);
        c[4] = 0x67;
        assert_eq!(decode_client(&c, false), Decode::NotMine);
        assert_eq!(sniff(&c, b""), Identity::default());
        assert_splits(&c, b"", &Identity::default());
    }

    #[test]
    fn n2_truncated_hello_gives_nothing() {
        let c = hex(FL1);
        let short = &c[..100];
        assert_eq!(decode_client(short, false), Decode::NeedMore);
        assert_eq!(decode_client(short, true), Decode::NotMine);
        assert_eq!(sniff(short, b""), Identity::default());
        let mut sn = Sniffer::new();
        sn.client(short);
        assert!(!sn.is_done());
        sn.expire();
        assert!(sn.is_done());
        assert_eq!(sn.identity(), &Identity::default());
        for cut in 0..c.len() {
            assert_eq!(sniff(&c[..cut], b""), Identity::default(), "cut {cut}");
        }
    }

    #[test]
    fn early_rejects() {
        assert_eq!(decode_client(b"h\x001", false), Decode::NeedMore);
        assert_eq!(decode_client(b"h\x002", false), Decode::NotMine);
        assert_eq!(decode_client(b"h\x0014", false), Decode::NotMine);
        assert_eq!(decode_client(b"x", false), Decode::NotMine);
        // a framed header whose length is below the header size
        let mut m = hex(FL7);
        m[4] = 0;
        m[5] = 10;
        m[1] = m[2..20]
            .iter()
            .fold(FRAME_MARKER, |a, &b| a.wrapping_add(b));
        assert_eq!(decode_client(&m, false), Decode::NotMine);
    }
}
