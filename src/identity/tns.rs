//! Oracle TNS client identity from the CONNECT packet (IDENTIFY.md §3).
//!
//! A CONNECT (packet type 1, 2-byte big-endian length, pre-negotiation)
//! carries the connect descriptor `(DESCRIPTION=...(CONNECT_DATA=
//! (SERVICE_NAME=x|SID=x)(CID=(PROGRAM=p)(HOST=h)(USER=u))))`, inline
//! when short, or in the DATA packet that immediately follows a CONNECT
//! that stops at the connect-data offset. From it: SERVICE_NAME (else SID)
//! as service, and PROGRAM, HOST, USER from inside CID only (the ADDRESS
//! HOST is the server's). A complete CONNECT whose descriptor never
//! arrives is proto `tns` with no identity. Every length and offset is
//! untrusted and bound-checked; the descriptor parser is iterative, so
//! deep nesting cannot exhaust the stack. Pure; never panics.

use super::{Decode, IDENTITY_PEEK_BYTES, Identity, PROTO_TNS, be16, text};

/// TNS packet header (bytes).
const HEADER_BYTES: usize = 8;
/// Packet type of a CONNECT.
const TYPE_CONNECT: u8 = 1;
/// Packet type of a DATA packet.
const TYPE_DATA: u8 = 6;
/// Shortest CONNECT: the fixed part up to the trace items (bytes).
const CONNECT_MIN_BYTES: usize = 34;
/// Data flags that open a DATA packet's payload (bytes).
const DATA_FLAGS_BYTES: usize = 2;
/// Lowest desired version accepted (TNS versions are 300..399).
const VERSION_MIN: u16 = 300;
/// One past the highest desired version accepted.
const VERSION_END: u16 = 400;
/// Offset of the desired version in a CONNECT.
const AT_VERSION: usize = 8;
/// Offset of the connect data length in a CONNECT.
const AT_DATA_LEN: usize = 24;
/// Offset of the connect data offset in a CONNECT.
const AT_DATA_OFF: usize = 26;
/// Offset of the packet type in the header.
const AT_TYPE: usize = 4;

/// Decodes the client's first bytes as a TNS CONNECT.
pub fn decode(buf: &[u8], end: bool) -> Decode {
    let wait = |known: Decode| if end { known } else { Decode::NeedMore };
    if !header_prefix_ok(buf) {
        return Decode::NotMine;
    }
    let Some(length) = be16(buf, 0).map(usize::from) else {
        return wait(Decode::NotMine);
    };
    let Some(packet) = buf.get(..length) else {
        return wait(Decode::NotMine);
    };
    let (Some(version), Some(data_len), Some(data_off)) = (
        be16(packet, AT_VERSION),
        be16(packet, AT_DATA_LEN).map(usize::from),
        be16(packet, AT_DATA_OFF).map(usize::from),
    ) else {
        return Decode::NotMine;
    };
    if !(VERSION_MIN..VERSION_END).contains(&version)
        || !(CONNECT_MIN_BYTES..=length).contains(&data_off)
    {
        return Decode::NotMine;
    }
    let only_proto = Decode::Done(Identity::proto(PROTO_TNS));
    if data_len == 0 {
        return only_proto;
    }
    if let Some(descriptor) = packet.get(data_off..data_off.saturating_add(data_len)) {
        return Decode::Done(descriptor_identity(descriptor));
    }
    if data_off != length {
        return Decode::NotMine;
    }

    // large connect data: the DATA packet that follows carries it
    let rest = buf.get(length..).unwrap_or_default();
    let data_end = length
        .saturating_add(HEADER_BYTES + DATA_FLAGS_BYTES)
        .saturating_add(data_len);
    if data_end > IDENTITY_PEEK_BYTES {
        return only_proto;
    }
    if !header_prefix_ok_type(rest, TYPE_DATA) {
        return only_proto;
    }
    let Some(data_length) = be16(rest, 0).map(usize::from) else {
        return wait(only_proto);
    };
    let start = HEADER_BYTES + DATA_FLAGS_BYTES;
    let descriptor_end = start.saturating_add(data_len);
    if data_length < descriptor_end {
        return only_proto;
    }
    match rest.get(start..descriptor_end) {
        Some(descriptor) => Decode::Done(descriptor_identity(descriptor)),
        None => wait(only_proto),
    }
}

/// The bytes seen so far can start a CONNECT header.
fn header_prefix_ok(buf: &[u8]) -> bool {
    if !header_prefix_ok_type(buf, TYPE_CONNECT) {
        return false;
    }
    match (be16(buf, 0).map(usize::from), buf.first()) {
        (Some(length), _) => (CONNECT_MIN_BYTES..=IDENTITY_PEEK_BYTES).contains(&length),
        (None, Some(&high)) => usize::from(high) <= IDENTITY_PEEK_BYTES >> 8,
        (None, None) => true,
    }
}

/// The bytes seen so far can start a header of packet type `kind`: packet
/// checksum zero, then the type (the header checksum is not checked).
fn header_prefix_ok_type(buf: &[u8], kind: u8) -> bool {
    buf.iter()
        .enumerate()
        .take(HEADER_BYTES)
        .all(|(i, &b)| match i {
            2 | 3 => b == 0,
            AT_TYPE => b == kind,
            _ => true,
        })
}

/// Identity from a connect descriptor; fields it lacks stay `None`.
fn descriptor_identity(descriptor: &[u8]) -> Identity {
    let mut id = Identity::proto(PROTO_TNS);
    let mut sid = None;
    walk(descriptor, |keys, value| {
        let slot = match keys {
            [.., a, b] if a == "CONNECT_DATA" && b == "SERVICE_NAME" => &mut id.service,
            [.., a, b] if a == "CONNECT_DATA" && b == "SID" => &mut sid,
            [.., a, b, c] if a == "CONNECT_DATA" && b == "CID" => match c.as_str() {
                "PROGRAM" => &mut id.program,
                "HOST" => &mut id.host,
                "USER" => &mut id.user,
                _ => return,
            },
            _ => return,
        };
        if slot.is_none() {
            *slot = text(value);
        }
    });
    if id.service.is_none() {
        id.service = sid;
    }
    id
}

/// Calls `leaf` for every `(KEY=VALUE)` of a descriptor with the
/// upper-cased keys from the outermost list down to its own. Tolerates
/// blanks; stops quietly at malformed text. Iterative: the key stack is
/// on the heap, so deep nesting cannot exhaust the call stack.
fn walk(text: &[u8], mut leaf: impl FnMut(&[String], &[u8])) {
    let mut cursor = Cursor { text, at: 0 };
    let mut keys: Vec<String> = Vec::new();
    loop {
        cursor.skip_blanks();
        let Some(next) = cursor.peek() else {
            return;
        };
        match next {
            b'(' => {
                cursor.at += 1;
                let key = cursor.take_until(b"=()");
                if cursor.peek() != Some(b'=') {
                    // `(KEY)` or garbage: not a pair
                    return;
                }
                cursor.at += 1;
                keys.push(String::from_utf8_lossy(key).to_ascii_uppercase());
                cursor.skip_blanks();
                if cursor.peek() == Some(b'(') {
                    continue;
                }
                let value = cursor.take_value();
                if cursor.peek() != Some(b')') {
                    return;
                }
                cursor.at += 1;
                leaf(&keys, value);
                keys.pop();
            }
            b')' => {
                cursor.at += 1;
                if keys.pop().is_none() {
                    return;
                }
            }
            // text between lists (`(A=(B=1),x)`): skip it
            _ => {
                cursor.take_until(b"()");
            }
        }
    }
}

/// A read position in descriptor text.
struct Cursor<'a> {
    text: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn skip_blanks(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.at += 1;
        }
    }

    /// Bytes up to (not including) the first of `stops`, trimmed.
    fn take_until(&mut self, stops: &[u8]) -> &'a [u8] {
        let start = self.at;
        while self.peek().is_some_and(|b| !stops.contains(&b)) {
            self.at += 1;
        }
        self.text
            .get(start..self.at)
            .unwrap_or_default()
            .trim_ascii()
    }

    /// A value after `=`: quoted (may hold parentheses), or bare up to a
    /// parenthesis.
    fn take_value(&mut self) -> &'a [u8] {
        if self.peek() != Some(b'"') {
            return self.take_until(b"()");
        }
        self.at += 1;
        let start = self.at;
        while self.peek().is_some_and(|b| b != b'"') {
            self.at += 1;
        }
        let value = self.text.get(start..self.at).unwrap_or_default();
        if self.peek().is_some() {
            self.at += 1;
        }
        self.take_until(b"()");
        value
    }
}

#[cfg(test)]
mod tests {
    use super::super::Sniffer;
    use super::super::testutil::*;
    use super::*;

    fn check(vector: &str, want: &Identity) {
        let c = hex(vector);
        assert_eq!(decode(&c, false), Decode::Done(want.clone()));
        assert_eq!(&sniff(&c, b""), want);
        assert_splits(&c, b"", want);
    }

    #[test]
    fn or1_nmap_version_probe_has_no_identity() {
        check(OR1, &Identity::proto(PROTO_TNS));
    }

    #[test]
    fn or2_python_oracledb() {
        check(
            OR2,
            &Identity {
                proto: Some(PROTO_TNS),
                service: s("ORCLPDB1"),
                program: s("sqlplus"),
                host: s("app01"),
                user: s("oracle"),
                ..Identity::default()
            },
        );
    }

    #[test]
    fn or4_jdbc_sid() {
        check(
            OR4,
            &Identity {
                proto: Some(PROTO_TNS),
                service: s("ORCL"),
                program: s("JDBC Thin Client"),
                host: s("__jdbc__"),
                user: s("svc_etl"),
                ..Identity::default()
            },
        );
    }

    #[test]
    fn or5_large_descriptor_in_data_packet() {
        check(
            OR5,
            &Identity {
                proto: Some(PROTO_TNS),
                service: s("payroll.example.com"),
                program: s("C:\\app\\payroll.exe"),
                host: s("FIN-LAPTOP-09"),
                user: s("mchan"),
                ..Identity::default()
            },
        );
    }

    #[test]
    fn n3_not_a_connect() {
        let mut c = hex(OR2);
        c[4] = 0x06;
        assert_eq!(decode(&c, false), Decode::NotMine);
        assert_eq!(sniff(&c, b""), Identity::default());
        assert_splits(&c, b"", &Identity::default());
    }

    #[test]
    fn n4_connect_without_its_data_packet() {
        let c = hex(OR5);
        let first = &c[..74];
        assert_eq!(decode(first, false), Decode::NeedMore);
        assert_eq!(
            decode(first, true),
            Decode::Done(Identity::proto(PROTO_TNS))
        );
        assert_eq!(sniff(first, b""), Identity::proto(PROTO_TNS));
        let mut sn = Sniffer::new();
        sn.client(first);
        assert!(!sn.is_done());
        assert_eq!(sn.identity().proto, Some(PROTO_TNS));
        sn.expire();
        assert_eq!(sn.identity(), &Identity::proto(PROTO_TNS));
        // a truncated DATA packet gives no more
        for cut in 74..c.len() {
            assert_eq!(sniff(&c[..cut], b""), Identity::proto(PROTO_TNS));
        }
    }

    #[test]
    fn n5_connect_data_length_beyond_packet() {
        let mut c = hex(OR2);
        c[24] = 0xff;
        c[25] = 0xff;
        assert_eq!(decode(&c, false), Decode::NotMine);
        assert_eq!(sniff(&c, b""), Identity::default());
        assert_splits(&c, b"", &Identity::default());
    }

    #[test]
    fn truncated_connect_gives_nothing() {
        let c = hex(OR2);
        for cut in 0..c.len() {
            assert_eq!(sniff(&c[..cut], b""), Identity::default(), "cut {cut}");
        }
    }

    #[test]
    fn huge_data_length_after_connect_is_proto_only() {
        let mut c = hex(OR5);
        c.truncate(74);
        c[24] = 0xff;
        c[25] = 0xff;
        assert_eq!(decode(&c, false), Decode::Done(Identity::proto(PROTO_TNS)));
    }

    #[test]
    fn descriptor_tolerates_case_blanks_order_and_quotes() {
        let d = b" ( description = (connect_data = (cid = (user = u1 ) (program=\"p (x)\")\n(host=h1))(service_name=svc)(sid=ignored)) (address=(host=srv)))";
        let id = descriptor_identity(d);
        assert_eq!(id.user, s("u1"));
        assert_eq!(id.program, s("p (x)"));
        assert_eq!(id.host, s("h1"));
        assert_eq!(id.service, s("svc"));
    }

    #[test]
    fn descriptor_ignores_host_outside_cid() {
        let d = b"(DESCRIPTION=(ADDRESS=(HOST=srv)(PORT=1521))(CONNECT_DATA=(SID=X)))";
        let id = descriptor_identity(d);
        assert_eq!(id.host, None);
        assert_eq!(id.service, s("X"));
    }

    #[test]
    fn descriptor_garbage_never_panics() {
        for d in [
            &b""[..],
            b"(",
            b")",
            b"((((((((",
            b"))))(A=",
            b"(A=\"",
            b"(A=\"x",
            b"(A=(B=(C=",
            b"(=)",
            b"(A)(B=1)",
            b"x(A=1)y",
        ] {
            let _ = descriptor_identity(d);
        }
        let deep = [b"(A=".repeat(2000), b"1".to_vec(), b")".repeat(2000)].concat();
        let _ = descriptor_identity(&deep);
    }
}
