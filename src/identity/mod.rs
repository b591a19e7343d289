//! Client identity: who is on the other end, from the first bytes each side
//! sends (SPEC "Client identity", layouts in `shared/IDENTIFY.md`).
//!
//! The relay hands the [`Sniffer`] a copy of every chunk it reads, client
//! side and server side; the sniffer keeps at most the first
//! [`IDENTITY_PEEK_BYTES`] of each side and re-runs the protocol decoders on
//! what it holds, so a message split at any byte boundary decodes exactly
//! as if it had come in one read. Once identification has ended the
//! sniffer drops its buffers and every further call is a no-op. It is pure:
//! no I/O, no clock, no `unsafe`. The daemon owns the 1 s deadline and
//! calls [`Sniffer::expire`]; EOF on a side is reported with
//! [`Sniffer::client_eof`] / [`Sniffer::server_eof`]. Values are raw
//! network text decoded lossily as UTF-8 and never sanitised here (the
//! connection log does that); an empty value is `None`.
//!
//! When identification ends, by protocol:
//! - **TLS** (`16 03 0x`): at the third byte, proto `tls`.
//! - **PostgreSQL**: at a complete StartupMessage (user, database as
//!   service, application_name as program) or CancelRequest. After an
//!   SSLRequest or GSSENCRequest the proto is `postgres` and the sniffer
//!   waits for the client's next bytes: a StartupMessage (the server said
//!   `N`) decodes as usual, `16 03` ends it as `postgres-tls`, anything else
//!   (GSSAPI tokens) ends it with no identity. The server's `S`/`N` byte is
//!   not needed: the client stream alone decides.
//! - **Oracle TNS**: at a complete CONNECT packet with inline connect data,
//!   or, for connect data too large to go inline, at the complete DATA
//!   packet that follows it. Only the first CONNECT counts.
//! - **FLEXlm**: the client's first message (the legacy HELLO, checksum
//!   verified, or a framed `0x2f` message, header check and CRC verified)
//!   gives user, host, display, pid and the vendor daemon name as service;
//!   identification then stays open for the server's first reply, which
//!   ends it: a framed `0x0113` or legacy `A` TRY_ANOTHER adds
//!   `vendor_host`/`vendor_port`, any other reply adds nothing. Server EOF,
//!   the server's 4 KiB, or the deadline end it with the HELLO's fields.
//! - **MySQL/MariaDB**: the server speaks first. When the server's first
//!   bytes came before any client byte and form a complete greeting
//!   (protocol 10, or an error packet), the proto is `mysql` and
//!   identification waits for the client's first packet: a
//!   HandshakeResponse ends it with user, database as service, and the
//!   `program_name` / `_pid` attributes; an SSLRequest ends it as
//!   `mysql-tls`; anything else, or client EOF, ends it with no identity.
//!   A server that speaks first with anything else changes nothing: the
//!   client's bytes are classified as usual.
//!
//! A decoder that said "not mine" about the client's first bytes is not
//! run again on the longer prefixes that follow (a prefix that is no
//! protocol's never becomes one by growing), so a trickled first message
//! costs the decoders still in the race only.
//!
//! A protocol is claimed only from a complete, validated message: a
//! truncated or malformed first message leaves every field `None` (the
//! proto too, unless an earlier complete message set it, as an SSLRequest
//! or a TNS CONNECT waiting for its DATA packet does). Identification also
//! ends as soon as no decoder can claim the client's first bytes, when the
//! sides' EOF or 4 KiB leave nothing more to wait for, or at
//! [`Sniffer::expire`], keeping what is known at that point.

pub mod flexlm;
pub mod mysql;
pub mod postgres;
pub mod tls;
pub mod tns;

/// How many bytes of each side the sniffer looks at, at most (bytes).
pub const IDENTITY_PEEK_BYTES: usize = 4096;

/// Proto name of a FLEXlm/FlexNet client (lmgrd or a vendor daemon).
pub const PROTO_FLEXLM: &str = "flexlm";
/// Proto name of an Oracle TNS client.
pub const PROTO_TNS: &str = "tns";
/// Proto name of a PostgreSQL client.
pub const PROTO_POSTGRES: &str = "postgres";
/// Proto name of a MySQL/MariaDB client.
pub const PROTO_MYSQL: &str = "mysql";
/// Proto name of a PostgreSQL client that switched to TLS.
pub const PROTO_POSTGRES_TLS: &str = "postgres-tls";
/// Proto name of a MySQL/MariaDB client that switched to TLS.
pub const PROTO_MYSQL_TLS: &str = "mysql-tls";
/// Proto name of a client opening with a TLS ClientHello.
pub const PROTO_TLS: &str = "tls";

/// What the client said about itself; `None` is shown as `-`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// `flexlm`, `tns`, `postgres`, `mysql`, `postgres-tls`, `mysql-tls`,
    /// `tls`, or `None` when unidentified.
    pub proto: Option<&'static str>,
    /// User name the client sent (login, database or OS user).
    pub user: Option<String>,
    /// Client host name as the client sent it.
    pub host: Option<String>,
    /// FLEXlm: display (tty, or the Windows/RDP client name).
    pub display: Option<String>,
    /// Client process id, as the client sent it (text).
    pub pid: Option<String>,
    /// Client program or application name.
    pub program: Option<String>,
    /// Service asked for: database, Oracle service/SID, FLEXlm vendor
    /// daemon.
    pub service: Option<String>,
    /// FLEXlm: vendor daemon host from lmgrd's reply.
    pub vendor_host: Option<String>,
    /// FLEXlm: vendor daemon TCP port from lmgrd's reply.
    pub vendor_port: Option<u16>,
}

impl Identity {
    /// An identity that only names the protocol.
    pub fn proto(proto: &'static str) -> Identity {
        Identity {
            proto: Some(proto),
            ..Identity::default()
        }
    }
}

/// Result of one decoder on the bytes seen so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decode {
    /// The bytes so far are a prefix of this protocol's message: wait.
    NeedMore,
    /// Decoded; stop looking.
    Done(Identity),
    /// Not this protocol (or malformed): this decoder gives nothing.
    NotMine,
}

/// Why a decoder could not take a complete message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Miss {
    /// Only a prefix is there: wait, unless the stream has ended.
    Short,
    /// Not this protocol, or malformed.
    Invalid,
}

impl Miss {
    fn decode(self, end: bool) -> Decode {
        match self {
            Miss::Short if !end => Decode::NeedMore,
            _ => Decode::NotMine,
        }
    }
}

/// Identification state of one connection; fed by the relay.
#[derive(Debug)]
pub struct Sniffer {
    from_client: Vec<u8>,
    from_server: Vec<u8>,
    client_eof: bool,
    server_eof: bool,
    /// The server's first bytes came before any client byte (MySQL).
    server_first: bool,
    /// The client-first decoders that said "not mine" (a bit per index
    /// of [`CLIENT_FIRST`]): never run again.
    rejected: u8,
    done: bool,
    identity: Identity,
}

impl Default for Sniffer {
    fn default() -> Sniffer {
        Sniffer::new()
    }
}

impl Sniffer {
    /// A sniffer that has seen nothing yet.
    pub fn new() -> Sniffer {
        Sniffer {
            from_client: Vec::new(),
            from_server: Vec::new(),
            client_eof: false,
            server_eof: false,
            server_first: false,
            rejected: 0,
            done: false,
            identity: Identity::default(),
        }
    }

    /// A copy of one chunk the client sent; bytes past the first
    /// [`IDENTITY_PEEK_BYTES`] are ignored.
    pub fn client(&mut self, chunk: &[u8]) {
        if self.done || self.client_eof || chunk.is_empty() {
            return;
        }
        if self.from_client.is_empty() && self.from_server.is_empty() {
            // decide on the chunk itself where possible: most first chunks
            // settle it, and then nothing is copied (no heap in the child)
            let part = &chunk[..chunk.len().min(IDENTITY_PEEK_BYTES)];
            let seen = Seen {
                client: part,
                server: &[],
                server_first: false,
                rejected: self.rejected,
            };
            let client_end = part.len() >= IDENTITY_PEEK_BYTES;
            let (identity, end, rejected) = judge(&seen, client_end, self.server_eof, false);
            self.rejected = rejected;
            if end {
                self.identity = identity;
                self.finish();
                return;
            }
        }
        if append_capped(&mut self.from_client, chunk) {
            self.update(false);
        }
    }

    /// A copy of one chunk the server sent (MySQL greeting, lmgrd's
    /// reply); bytes past the first [`IDENTITY_PEEK_BYTES`] are ignored.
    pub fn server(&mut self, chunk: &[u8]) {
        if self.done || self.server_eof || chunk.is_empty() {
            return;
        }
        if self.from_server.is_empty() {
            self.server_first = self.from_client.is_empty();
        }
        if append_capped(&mut self.from_server, chunk) {
            self.update(false);
        }
    }

    /// The client closed its side (or the connection ended).
    pub fn client_eof(&mut self) {
        if self.done || self.client_eof {
            return;
        }
        self.client_eof = true;
        self.update(false);
    }

    /// The server closed its side (or the connection ended).
    pub fn server_eof(&mut self) {
        if self.done || self.server_eof {
            return;
        }
        self.server_eof = true;
        self.update(false);
    }

    /// The deadline passed: stop, keeping what is known.
    pub fn expire(&mut self) {
        if self.done {
            return;
        }
        self.update(true);
    }

    /// Identification has ended; [`Sniffer::identity`] is final.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The fields known so far (final once [`Sniffer::is_done`]).
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// FLEXlm: the vendor daemon port named in lmgrd's reply, if any.
    pub fn vendor_port_seen(&self) -> Option<u16> {
        self.identity.vendor_port
    }

    // re-decode everything held; `stop` forces an end
    fn update(&mut self, stop: bool) {
        let client_end = stop || self.client_eof || self.from_client.len() >= IDENTITY_PEEK_BYTES;
        let server_end = stop || self.server_eof || self.from_server.len() >= IDENTITY_PEEK_BYTES;
        let seen = Seen {
            client: &self.from_client,
            server: &self.from_server,
            server_first: self.server_first,
            rejected: self.rejected,
        };
        let (identity, end, rejected) = judge(&seen, client_end, server_end, stop);
        self.identity = identity;
        self.rejected = rejected;
        if end {
            self.finish();
        }
    }

    fn finish(&mut self) {
        self.done = true;
        self.from_client = Vec::new();
        self.from_server = Vec::new();
    }
}

/// The identity `seen` gives, whether identification ends with it (a
/// decoder is done, `stop` forces the end, or both sides ended), and the
/// client-first decoders rejected so far. While it goes on, the identity
/// is what would be known if both sides ended now (that guess rejects
/// nothing).
fn judge(seen: &Seen, client_end: bool, server_end: bool, stop: bool) -> (Identity, bool, u8) {
    let (identity, done, rejected) = seen.classify(client_end, server_end);
    if done || stop || (client_end && server_end) {
        (identity, true, rejected)
    } else {
        (seen.classify(true, true).0, false, rejected)
    }
}

/// Appends up to the peek limit; false when nothing was added.
fn append_capped(buf: &mut Vec<u8>, chunk: &[u8]) -> bool {
    let room = IDENTITY_PEEK_BYTES.saturating_sub(buf.len());
    let take = chunk.len().min(room);
    match chunk.get(..take) {
        Some(part) if !part.is_empty() => {
            buf.extend_from_slice(part);
            true
        }
        _ => false,
    }
}

/// The bytes held of both sides.
struct Seen<'a> {
    client: &'a [u8],
    server: &'a [u8],
    server_first: bool,
    /// Client-first decoders not to run (bits of [`CLIENT_FIRST`]).
    rejected: u8,
}

/// A decoder of the client's first bytes.
type Decoder = fn(&[u8], bool) -> Decode;

/// The decoders of protocols where the client speaks first, in the order
/// they are asked.
const CLIENT_FIRST: [Decoder; 4] = [
    tls::decode,
    postgres::decode,
    tns::decode,
    flexlm::decode_client,
];

impl Seen<'_> {
    /// Decodes both sides from scratch, skipping the rejected client-first
    /// decoders: the identity so far, whether identification has ended,
    /// and the rejected decoders now. `*_end`: that side brings no more
    /// bytes.
    fn classify(&self, client_end: bool, server_end: bool) -> (Identity, bool, u8) {
        let (client, server) = (self.client, self.server);
        let rejected = self.rejected;
        // a MySQL server speaks first
        if self.server_first
            && let Decode::Done(greeting) = mysql::decode_greeting(server, server_end)
        {
            let (id, end) = match mysql::decode_client(client, client_end) {
                Decode::Done(id) => (id, true),
                Decode::NeedMore => (greeting, false),
                Decode::NotMine => (greeting, true),
            };
            return (id, end, rejected);
        }
        if client.is_empty() {
            return (Identity::default(), client_end, rejected);
        }

        let mut waiting = false;
        let mut now_rejected = rejected;
        for (i, decoder) in CLIENT_FIRST.iter().enumerate() {
            let bit = 1u8 << i;
            if rejected & bit != 0 {
                continue;
            }
            match decoder(client, client_end) {
                Decode::Done(id) if id.proto == Some(PROTO_FLEXLM) => {
                    let (id, end) = with_lmgrd_reply(id, server, server_end);
                    return (id, end, now_rejected);
                }
                Decode::Done(id) => return (id, true, now_rejected),
                Decode::NeedMore => waiting = true,
                Decode::NotMine => now_rejected |= bit,
            }
        }
        (Identity::default(), !waiting, now_rejected)
    }
}

/// FLEXlm: the client's hello is decoded; lmgrd's first reply may name
/// the vendor daemon.
fn with_lmgrd_reply(mut id: Identity, server: &[u8], server_end: bool) -> (Identity, bool) {
    match flexlm::decode_server(server, server_end) {
        Decode::Done(reply) => {
            id.vendor_host = reply.vendor_host;
            id.vendor_port = reply.vendor_port;
            (id, true)
        }
        Decode::NeedMore => (id, false),
        Decode::NotMine => (id, true),
    }
}

/// Lossy text of raw bytes; empty is `None`.
fn text(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() {
        None
    } else {
        Some(String::from_utf8_lossy(bytes).into_owned())
    }
}

/// The bytes before the first NUL (all of them if there is none).
fn until_nul(bytes: &[u8]) -> &[u8] {
    match bytes.iter().position(|&b| b == 0) {
        Some(end) => bytes.get(..end).unwrap_or(bytes),
        None => bytes,
    }
}

/// A NUL-terminated string at the start of `bytes`, and what follows it;
/// `None` when there is no NUL.
fn take_cstr(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = bytes.iter().position(|&b| b == 0)?;
    let value = bytes.get(..end)?;
    let rest = bytes.get(end + 1..)?;
    Some((value, rest))
}

/// Big-endian u16 at `at`.
fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

/// Big-endian u32 at `at`.
fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    let mut word = [0u8; 4];
    word.copy_from_slice(b);
    Some(u32::from_be_bytes(word))
}

#[cfg(test)]
pub(crate) mod testutil {
    use super::*;

    // IDENTIFY.md §7 test vectors, hex
    pub const FL1: &str = "683831336672657900000000000000000000000000000000006c6f67696e303100000000000000000000000000000000000000000000000000004d4c4d00000000000000002f6465762f7074732f3733000000000000000000000000000000000000000000005400000000000000000000000033353137340000000000007836345f6c73620000000000000b10373800313400";
    pub const FL3: &str = "68bb31336a736d69746800000000000000000000000000000057532d454e472d30343200000000000000000000000000000000000000000000006164736b666c657800000057532d454e472d30343200000000000000000000000000000000000000000000005400000000000000000000000031313233340000000000007836345f6e36000000000000000b13373800313400";
    pub const FL4: &str = "687b31337376635f6c696300000000000000000000000000006d6f6e30312e6578616d706c652e6f72670000000000000000000000000000000000000000000000000000002f6465762f747479000000000000000000000000000000000000000000000000005400000000000000000000000034323432000000000000007836345f6c73620000000000000b12373800313400";
    pub const FL6: &str = "2f25125a003501130000000041000000000000006d617468776f726b732e6c6d2e7564656c2e6564750000009c4000000000005444";
    pub const FL7: &str = "2f283ea5003b010865bbf0c20000000000000000010466726579006c6f67696e3031006c6d677264002f6465762f7074732f373300646c69737400";
    pub const FL8: &str = "41ed6c69637372762e6578616d706c652e636f6d00000000000000000000000000000032373030310000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000544400000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";
    pub const OR1: &str = "005a0000010000000136012c000008007fff7f08000000010020003a0000000000000000000000000000000034e600000001000000000000000028434f4e4e4543545f444154413d28434f4d4d414e443d76657273696f6e2929";
    pub const OR2: &str = "00e0000001000000013f012c0401200020004f98000000010096004a00000000848400000000000000000000000000000000000000000000000000002000000020000000000000000001284445534352495054494f4e3d28434f4e4e4543545f444154413d28534552564943455f4e414d453d4f52434c5044423129284349443d2850524f4752414d3d73716c706c75732928484f53543d61707030312928555345523d6f7261636c6529292928414444524553533d2850524f544f434f4c3d7463702928484f53543d31302e302e302e352928504f52543d31353231292929";
    pub const OR4: &str = "00cb000001000000013a012c0c412000ffff7f08000000010091003a000000004141000000000000000000000000000000000000000000000000284445534352495054494f4e3d28434f4e4e4543545f444154413d285349443d4f52434c29284349443d2850524f4752414d3d4a444243205468696e20436c69656e742928484f53543d5f5f6a6462635f5f2928555345523d7376635f65746c29292928414444524553533d2850524f544f434f4c3d7463702928484f53543d6462312928504f52543d31353231292929";
    pub const OR5: &str = "004a000001000000013f012c0401200020004f9800000001012c004a0000000084840000000000000000000000000000000000000000000000000000200000002000000000000000000101360000060000000000284445534352495054494f4e3d28434f4e4e4543545f54494d454f55543d3930292852455452595f434f554e543d3230292852455452595f44454c41593d3329285452414e53504f52545f434f4e4e4543545f54494d454f55543d332928414444524553535f4c4953543d284c4f41445f42414c414e43453d6f6e2928414444524553533d2850524f544f434f4c3d5443502928484f53543d7363616e312e6578616d706c652e636f6d2928504f52543d3135323129292928434f4e4e4543545f444154413d28534552564943455f4e414d453d706179726f6c6c2e6578616d706c652e636f6d29284349443d2850524f4752414d3d433a5c6170705c706179726f6c6c2e6578652928484f53543d46494e2d4c4150544f502d30392928555345523d6d6368616e29292929";
    pub const PG1: &str = "0000000804d2162f";
    pub const PG2: &str = "0000000804d21630";
    pub const PG3: &str = "0000004e000300007573657200616c6963650064617461626173650073616c6573006170706c69636174696f6e5f6e616d65007073716c00636c69656e745f656e636f64696e6700555446380000";
    pub const PG5: &str = "000000570003000275736572007265706c007265706c69636174696f6e00646174616261736500646174616261736500706f737467726573006170706c69636174696f6e5f6e616d650077616c72656365697665720000";
    pub const PG6: &str = "0000001004d2162e00007a69deadbeef";
    pub const MY1: &str = "1100000185240000006f6c6400474453435159525f";
    pub const MY2: &str = "c70000018fa63f0100000001ff0000000000000000000000000000000000000000000000626f6200205f3bd1d0a4c7b7e9e0b8b5a2e1c0c8b1d0c5e2f3a4b5c6d7e8f90a1b2c3d4e5f73686f700063616368696e675f736861325f70617373776f72640066045f706964053132333435095f706c6174666f726d067838365f3634035f6f73054c696e75780c5f636c69656e745f6e616d65086c69626d7973716c0f5f636c69656e745f76657273696f6e06382e302e33360c70726f6772616d5f6e616d65056d7973716c";
    pub const MY3: &str = "5200000101a20a00000000012100000000000000000000000000000000000000000000006170705f7277001400000000000000000000000000000000000000006d7973716c5f6e61746976655f70617373776f726400";
    pub const MY4: &str =
        "2000000105aa3a0000000001ff0000000000000000000000000000000000000000000000";
    pub const MYSQL_GREETING: &str = "4a0000000a382e302e3336000b000000313233343536373800ffffff0200ffdf15000000000000000000006162636465666768696a6b6c006d7973716c5f6e61746976655f70617373776f726400";

    pub fn hex(s: &str) -> Vec<u8> {
        let s: Vec<u8> = s.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
        s.chunks(2)
            .map(|p| {
                let p = std::str::from_utf8(p).unwrap();
                u8::from_str_radix(p, 16).unwrap()
            })
            .collect()
    }

    pub fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    /// Feeds a server stream, then a client stream, in one chunk each,
    /// then EOF on both; the final identity.
    pub fn sniff(client: &[u8], server: &[u8]) -> Identity {
        let mut sn = Sniffer::new();
        sn.server(server);
        sn.client(client);
        sn.client_eof();
        sn.server_eof();
        assert!(sn.is_done());
        sn.identity().clone()
    }

    /// Every split of `client`, then of `server`, into two chunks, the
    /// client speaking first and no EOF, must end identification with
    /// `want` (after `expire` if it is still waiting).
    pub fn assert_splits(client: &[u8], server: &[u8], want: &Identity) {
        splits(client, server, want, false);
    }

    /// As [`assert_splits`], the server speaking first (MySQL).
    pub fn assert_splits_server_first(client: &[u8], server: &[u8], want: &Identity) {
        splits(client, server, want, true);
    }

    fn splits(client: &[u8], server: &[u8], want: &Identity, server_first: bool) {
        let run = |c: [&[u8]; 2], sv: [&[u8]; 2]| {
            let mut sn = Sniffer::new();
            if server_first {
                sv.iter().for_each(|p| sn.server(p));
                c.iter().for_each(|p| sn.client(p));
            } else {
                c.iter().for_each(|p| sn.client(p));
                sv.iter().for_each(|p| sn.server(p));
            }
            if !sn.is_done() {
                sn.expire();
            }
            sn.identity().clone()
        };
        for cut in 0..=client.len() {
            let got = run([&client[..cut], &client[cut..]], [server, b""]);
            assert_eq!(&got, want, "client split at {cut}");
        }
        for cut in 0..=server.len() {
            let got = run([client, b""], [&server[..cut], &server[cut..]]);
            assert_eq!(&got, want, "server split at {cut}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    #[test]
    fn nothing_sent_then_eof_gives_nothing() {
        let mut sn = Sniffer::new();
        assert!(!sn.is_done());
        sn.client_eof();
        assert!(sn.is_done());
        assert_eq!(sn.identity(), &Identity::default());
    }

    #[test]
    fn expire_before_any_byte_gives_nothing() {
        let mut sn = Sniffer::default();
        sn.expire();
        assert!(sn.is_done());
        assert_eq!(sn.identity(), &Identity::default());
    }

    #[test]
    fn flexlm_waits_for_lmgrd_reply() {
        let mut sn = Sniffer::new();
        sn.client(&hex(FL1));
        assert!(!sn.is_done(), "must wait for lmgrd's reply");
        assert_eq!(sn.identity().user, s("frey"));
        assert_eq!(sn.vendor_port_seen(), None);
        sn.server(&hex(FL6));
        assert!(sn.is_done());
        assert_eq!(sn.vendor_port_seen(), Some(40000));
        assert_eq!(sn.identity().vendor_host, s("mathworks.lm.udel.edu"));
        assert_eq!(sn.identity().user, s("frey"));
    }

    #[test]
    fn flexlm_hello_then_expire_keeps_hello() {
        let mut sn = Sniffer::new();
        sn.client(&hex(FL1));
        sn.expire();
        assert!(sn.is_done());
        assert_eq!(sn.identity().proto, Some(PROTO_FLEXLM));
        assert_eq!(sn.identity().service, s("MLM"));
        assert_eq!(sn.identity().vendor_port, None);
    }

    #[test]
    fn flexlm_hello_then_server_eof_ends() {
        let mut sn = Sniffer::new();
        sn.client(&hex(FL1));
        sn.client_eof();
        assert!(!sn.is_done(), "client EOF alone: lmgrd may still reply");
        sn.server_eof();
        assert!(sn.is_done());
        assert_eq!(sn.identity().user, s("frey"));
    }

    #[test]
    fn flexlm_hello_then_other_reply_ends() {
        let mut sn = Sniffer::new();
        sn.client(&hex(FL1));
        sn.server(b"W\xea-60\0");
        assert!(sn.is_done());
        assert_eq!(sn.identity().host, s("login01"));
        assert_eq!(sn.identity().vendor_host, None);
    }

    #[test]
    fn flexlm_reply_split_everywhere() {
        let (c, sv) = (hex(FL1), hex(FL6));
        let want = sniff(&c, &sv);
        assert_eq!(want.vendor_port, Some(40000));
        assert_splits(&c, &sv, &want);
    }

    #[test]
    fn postgres_ssl_request_waits_for_next_client_bytes() {
        let mut sn = Sniffer::new();
        sn.client(&hex(PG1));
        assert!(!sn.is_done());
        assert_eq!(sn.identity().proto, Some(PROTO_POSTGRES));
        sn.server(b"N");
        assert!(!sn.is_done());
        sn.client(&hex(PG3));
        assert!(sn.is_done());
        assert_eq!(sn.identity().user, s("alice"));
    }

    #[test]
    fn postgres_ssl_request_then_tls() {
        let mut sn = Sniffer::new();
        sn.client(&hex(PG1));
        sn.server(b"S");
        sn.client(&hex("1603010200010001fc0303"));
        assert!(sn.is_done());
        assert_eq!(sn.identity(), &Identity::proto(PROTO_POSTGRES_TLS));
    }

    #[test]
    fn mysql_greeting_alone_is_mysql() {
        let mut sn = Sniffer::new();
        sn.server(&hex(MYSQL_GREETING));
        assert!(!sn.is_done(), "waits for the client's answer");
        assert_eq!(sn.identity(), &Identity::proto(PROTO_MYSQL));
        sn.expire();
        assert!(sn.is_done());
        assert_eq!(sn.identity(), &Identity::proto(PROTO_MYSQL));
    }

    #[test]
    fn mysql_greeting_then_response() {
        let mut sn = Sniffer::new();
        sn.server(&hex(MYSQL_GREETING));
        sn.client(&hex(MY2));
        assert!(sn.is_done());
        assert_eq!(sn.identity().user, s("bob"));
        assert_eq!(sn.identity().proto, Some(PROTO_MYSQL));
    }

    #[test]
    fn mysql_greeting_then_client_eof() {
        let mut sn = Sniffer::new();
        sn.server(&hex(MYSQL_GREETING));
        sn.client_eof();
        assert!(sn.is_done());
        assert_eq!(sn.identity(), &Identity::proto(PROTO_MYSQL));
    }

    #[test]
    fn greeting_after_client_bytes_is_not_mysql() {
        let mut sn = Sniffer::new();
        sn.client(&hex(FL1));
        sn.server(&hex(MYSQL_GREETING));
        assert!(sn.is_done());
        assert_eq!(sn.identity().proto, Some(PROTO_FLEXLM));
        assert_eq!(sn.identity().user, s("frey"));
    }

    #[test]
    fn server_banner_then_client_tls() {
        let mut sn = Sniffer::new();
        sn.server(b"SSH-2.0-OpenSSH_9.2\r\n");
        assert!(!sn.is_done());
        sn.client(&hex("160303"));
        assert!(sn.is_done());
        assert_eq!(sn.identity(), &Identity::proto(PROTO_TLS));
    }

    #[test]
    fn calls_after_done_are_no_ops() {
        let mut sn = Sniffer::new();
        sn.client(&hex("160301"));
        assert!(sn.is_done());
        let before = sn.identity().clone();
        sn.client(&hex(PG3));
        sn.server(&hex(FL6));
        sn.client_eof();
        sn.server_eof();
        sn.expire();
        assert_eq!(sn.identity(), &before);
        assert_eq!(before, Identity::proto(PROTO_TLS));
    }

    #[test]
    fn keeps_only_first_peek_bytes() {
        let mut sn = Sniffer::new();
        // a PG startup that claims 10000 bytes never completes in 4 KiB
        let mut big = hex("0000271000030000");
        big.resize(IDENTITY_PEEK_BYTES + 100, b'a');
        sn.client(&big[..100]);
        assert!(!sn.is_done());
        sn.client(&big[100..]);
        assert!(sn.is_done(), "4 KiB reached");
        assert_eq!(sn.identity(), &Identity::default());
    }

    #[test]
    fn byte_by_byte_trickle() {
        let c = hex(PG3);
        let mut sn = Sniffer::new();
        for (i, b) in c.iter().enumerate() {
            assert!(!sn.is_done(), "done early at byte {i}");
            sn.client(std::slice::from_ref(b));
        }
        assert!(sn.is_done());
        assert_eq!(sn.identity().program, s("psql"));
    }

    #[test]
    fn unknown_protocol_ends_at_first_byte() {
        let mut sn = Sniffer::new();
        sn.client(b"G");
        assert!(sn.is_done());
        assert_eq!(sn.identity(), &Identity::default());
    }

    // N8
    #[test]
    fn n8_http_is_nothing() {
        let c = hex("474554202f20485454502f312e300d0a0d0a");
        assert_eq!(sniff(&c, b""), Identity::default());
        assert_splits(&c, b"", &Identity::default());
    }

    /// A prefix a client-first decoder rejects stays rejected however it
    /// grows: what lets the sniffer skip that decoder from then on.
    #[test]
    fn rejection_is_final_for_longer_prefixes() {
        let mut inputs: Vec<Vec<u8>> = positive_vectors().into_iter().map(|v| v.1).collect();
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        for v in inputs.clone() {
            for _ in 0..20 {
                let mut m = v.clone();
                let at = (rng.next() as usize) % m.len();
                m[at] = rng.next() as u8;
                inputs.push(m);
            }
        }
        for data in &inputs {
            for (i, decoder) in CLIENT_FIRST.iter().enumerate() {
                let first =
                    (1..=data.len()).find(|&n| decoder(&data[..n], false) == Decode::NotMine);
                let Some(first) = first else { continue };
                for n in first..=data.len() {
                    for end in [false, true] {
                        assert_eq!(
                            decoder(&data[..n], end),
                            Decode::NotMine,
                            "decoder {i} rejected {first} bytes but not {n} (end {end}): {data:02x?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn rejected_decoders_are_skipped() {
        let c = hex(PG3);
        let mut sn = Sniffer::new();
        sn.client(&c[..2]);
        // 00 00: no TLS record, no FLEXlm hello, a TNS length too short
        let tls_bit = 1u8 << 0;
        assert_ne!(
            sn.rejected & tls_bit,
            0,
            "TLS rejects 00 00: {:#b}",
            sn.rejected
        );
        let before = sn.rejected;
        for b in &c[2..] {
            assert!(!sn.is_done());
            sn.client(std::slice::from_ref(b));
            assert_eq!(sn.rejected & before, before, "a rejection was forgotten");
        }
        assert!(sn.is_done());
        assert_eq!(sn.identity().user, s("alice"));
    }

    #[test]
    fn helpers_are_total() {
        assert_eq!(be16(&[1], 0), None);
        assert_eq!(be16(&[1, 2], usize::MAX), None);
        assert_eq!(be32(&[0, 0, 1, 0], 0), Some(256));
        assert_eq!(be32(&[0, 0, 1], 0), None);
        assert_eq!(take_cstr(b"ab"), None);
        assert_eq!(take_cstr(b"ab\0c"), Some((&b"ab"[..], &b"c"[..])));
        assert_eq!(until_nul(b"ab\0c"), b"ab");
        assert_eq!(text(b""), None);
        assert_eq!(text(b"\xffx"), s("\u{fffd}x"));
    }

    /// Every positive client vector, with the server bytes it needs.
    fn positive_vectors() -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
        let greeting = hex(MYSQL_GREETING);
        let mut v: Vec<(&'static str, Vec<u8>, Vec<u8>)> = [
            ("FL1", FL1),
            ("FL3", FL3),
            ("FL4", FL4),
            ("FL7", FL7),
            ("OR1", OR1),
            ("OR2", OR2),
            ("OR4", OR4),
            ("OR5", OR5),
            ("PG1", PG1),
            ("PG2", PG2),
            ("PG3", PG3),
            ("PG5", PG5),
            ("PG6", PG6),
        ]
        .into_iter()
        .map(|(name, c)| (name, hex(c), Vec::new()))
        .collect();
        for (name, c) in [("MY1", MY1), ("MY2", MY2), ("MY3", MY3), ("MY4", MY4)] {
            v.push((name, hex(c), greeting.clone()));
        }
        v.push(("PG1+PG3", [hex(PG1), hex(PG3)].concat(), Vec::new()));
        v
    }

    fn no_fields(id: &Identity) -> bool {
        Identity {
            proto: None,
            ..id.clone()
        } == Identity::default()
    }

    #[test]
    fn truncated_vectors_give_no_identity() {
        for (name, client, server) in positive_vectors() {
            for cut in 0..client.len() {
                for by_expire in [false, true] {
                    let mut sn = Sniffer::new();
                    sn.server(&server);
                    sn.client(&client[..cut]);
                    if by_expire {
                        sn.expire();
                    } else {
                        sn.client_eof();
                        sn.server_eof();
                    }
                    assert!(sn.is_done());
                    assert!(
                        no_fields(sn.identity()),
                        "{name} cut {cut}: {:?}",
                        sn.identity()
                    );
                }
            }
        }
    }

    #[test]
    fn vectors_decode_alike_whole_byte_by_byte_and_split() {
        for (name, client, server) in positive_vectors() {
            let mut whole = Sniffer::new();
            whole.server(&server);
            whole.client(&client);
            if !whole.is_done() {
                whole.expire();
            }
            let want = whole.identity().clone();
            assert!(want.proto.is_some(), "{name}");
            let mut trickle = Sniffer::new();
            server
                .iter()
                .for_each(|b| trickle.server(std::slice::from_ref(b)));
            client
                .iter()
                .for_each(|b| trickle.client(std::slice::from_ref(b)));
            trickle.expire();
            assert_eq!(trickle.identity(), &want, "{name} byte by byte");
            if server.is_empty() {
                assert_splits(&client, &server, &want);
            } else {
                assert_splits_server_first(&client, &server, &want);
            }
        }
    }

    /// xorshift64: deterministic pseudo-random bytes without dependencies.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let seeds: [&[u8]; 6] = [
            &hex(FL1),
            &hex(FL6),
            &hex(PG3),
            &hex(MY2),
            &hex(MYSQL_GREETING),
            b"",
        ];
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for round in 0..4000 {
            let len = (rng.next() % 600) as usize;
            // start from a real vector half of the time, then mutate it
            let mut data: Vec<u8> = if round % 2 == 0 {
                seeds[(rng.next() % seeds.len() as u64) as usize].to_vec()
            } else {
                (0..len).map(|_| rng.next() as u8).collect()
            };
            if !data.is_empty() {
                for _ in 0..(rng.next() % 8) {
                    let at = (rng.next() as usize) % data.len();
                    data[at] = rng.next() as u8;
                }
                let keep = (rng.next() as usize) % (data.len() + 1);
                data.truncate(keep.max(data.len() / 2));
            }
            let mut sn = Sniffer::new();
            let server_first = rng.next().is_multiple_of(3);
            let other: Vec<u8> = (0..(rng.next() % 64)).map(|_| rng.next() as u8).collect();
            if server_first {
                sn.server(&data);
            }
            let mut rest = &data[..];
            while !rest.is_empty() {
                let n = 1 + (rng.next() as usize) % rest.len();
                sn.client(&rest[..n]);
                sn.server(&other);
                rest = &rest[n..];
            }
            // every decoder on the raw bytes, ended or not
            for end in [false, true] {
                let results = [
                    tls::decode(&data, end),
                    postgres::decode(&data, end),
                    tns::decode(&data, end),
                    flexlm::decode_client(&data, end),
                    flexlm::decode_server(&data, end),
                    mysql::decode_greeting(&data, end),
                    mysql::decode_client(&data, end),
                ];
                if end {
                    assert!(!results.contains(&Decode::NeedMore), "{data:02x?}");
                }
            }
            sn.client_eof();
            sn.server_eof();
            sn.expire();
            assert!(sn.is_done());
        }
    }
}
