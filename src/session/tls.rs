//! TLS termination (`--tls-cert`, SPEC "TLS termination"): the child ends
//! the client's TLS with the configured certificate and opens its own TLS
//! session to the destination, so the recorder, the identity sniffer and
//! the statement audit see plaintext.
//!
//! At start, [`load`] reads the certificate, the key and the roots into
//! rustls configurations (a key that does not match is a start error) and
//! [`install`] keeps them for every child. In the child, [`run`] first
//! looks at the first bytes without taking them (`MSG_PEEK`): a TLS
//! ClientHello (Oracle TCPS, PostgreSQL 17 direct TLS with ALPN
//! `postgresql`, anything else), a PostgreSQL SSLRequest (answered `S`;
//! GSSENCRequest answered `N`) or a MySQL/MariaDB greeting offering SSL
//! (the client's SSLRequest is passed on, TLS on both legs, the scramble
//! untouched). Anything else is left to the plain relay, untouched.
//!
//! Once it terminated a side, the session runs in the poll loop here, not
//! in `relay` (which moves raw fds, and may splice): each leg is a socket
//! with or without a rustls connection (sans-IO: `read_tls`,
//! `process_new_packets`, `reader`, `writer`, `write_tls`). One buffer of
//! `-b` bytes per direction; a direction reads its source only once its
//! chunk was written on, so one plaintext read is one chunk for the tap.
//! EOF (a close_notify, or the TCP EOF) is passed on as close_notify and
//! `shutdown(SHUT_WR)`, the other direction goes on; a reset ends both.
//! Byte counts are plaintext bytes (what the tap sees), never TLS records.
//!
//! rustls buffers are bounded: a ClientHello is collected by the
//! `Acceptor` (at most one handshake message), received plaintext stops
//! `wants_read`, and the writer takes no more than its limit.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{MsgFlags, recv};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{Accepted, Acceptor};
use rustls::{
    ClientConfig, ClientConnection, Connection, DigitallySignedStruct, RootCertStore, ServerConfig,
    SignatureScheme,
};

use super::relay::{End, Tap, Totals};
use crate::config::{Tls, TlsUpstream};
use crate::error::StartError;
use crate::os::signals::SelfPipe;
use crate::os::socket;
use crate::record::block::Dir;

/// PostgreSQL SSLRequest: length 8, code 80877103.
const PG_SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
/// PostgreSQL GSSENCRequest: length 8, code 80877104.
const PG_GSSENC_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30];
/// ALPN of PostgreSQL 17 direct TLS.
const ALPN_POSTGRES: &[u8] = b"postgresql";
/// MySQL capability flag CLIENT_SSL.
const MYSQL_CLIENT_SSL: u32 = 0x0800;
/// MySQL protocol version of the greeting (HandshakeV10).
const MYSQL_PROTOCOL_10: u8 = 10;
/// Payload length of a MySQL SSLRequest (the HandshakeResponse prefix).
const MYSQL_SSL_REQUEST_LEN: usize = 32;
/// A greeting larger than this is not taken for one (bytes).
const MYSQL_GREETING_MAX: usize = 1024;
/// How long the first bytes may take to complete a message that is
/// recognised by its prefix (an SSLRequest split by the network).
const PEEK_WINDOW: Duration = Duration::from_secs(1);
/// Pause between two looks at a prefix that is still incomplete.
const PEEK_PAUSE_MS: u16 = 5;
/// Rounds of the relay's inner loop before it looks at the sockets again.
const PUMP_ROUNDS: u32 = 64;
/// How many client bytes are searched for a SCRAM-SHA-256-PLUS choice.
const SCRAM_WATCH_BYTES: u64 = 64 * 1024;

/// What the children use: the server side (the certificate shown to
/// clients), the client side towards the destination, and the mode.
pub struct Setup {
    server: Arc<ServerConfig>,
    upstream: Option<Arc<ClientConfig>>,
    mode: TlsUpstream,
}

static SETUP: OnceLock<Setup> = OnceLock::new();

/// Keep `s` for every child of this run.
pub fn install(s: Setup) {
    let _ = SETUP.set(s);
}

/// The TLS termination of this run, if configured.
pub fn setup() -> Option<&'static Setup> {
    SETUP.get()
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_file(option: &'static str, path: &Path) -> Result<Vec<u8>, StartError> {
    std::fs::read(path).map_err(|e| StartError::path(option, "read", path, e))
}

fn unusable(option: &str, path: &Path, why: impl std::fmt::Display) -> StartError {
    StartError::Other(format!("{option}: cannot use {}: {why}", path.display()))
}

fn certificates(
    option: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, StartError> {
    let pem = read_file(option, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unusable(option, path, format!("not a PEM certificate file ({e})")))?;
    if certs.is_empty() {
        return Err(unusable(option, path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

/// Read `--tls-cert`, `--tls-key` and `--tls-ca` (or the system roots)
/// into the configurations of every child: exit-1 errors naming the file.
pub fn load(t: &Tls) -> Result<Setup, StartError> {
    let certs = certificates("--tls-cert", &t.cert)?;
    let key_pem = read_file("--tls-key", &t.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        unusable(
            "--tls-key",
            &t.key,
            format!("no PEM private key in the file ({e})"),
        )
    })?;
    let server = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| StartError::Other(format!("--tls-cert: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => unusable(
                "--tls-key",
                &t.key,
                format!(
                    "the key does not match the certificate of {}",
                    t.cert.display()
                ),
            ),
            e => unusable("--tls-key", &t.key, e),
        })?;
    let upstream = match t.upstream {
        TlsUpstream::Plain => None,
        TlsUpstream::Insecure => Some(
            ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| StartError::Other(format!("--tls-upstream: {e}")))?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider())))
                .with_no_client_auth(),
        ),
        TlsUpstream::Verify | TlsUpstream::PlainOk => {
            let mut roots = RootCertStore::empty();
            match &t.ca {
                Some(ca) => {
                    for c in certificates("--tls-ca", ca)? {
                        roots.add(c).map_err(|e| {
                            unusable("--tls-ca", ca, format!("bad certificate ({e})"))
                        })?;
                    }
                }
                None => {
                    let found = rustls_native_certs::load_native_certs();
                    let (added, _) = roots.add_parsable_certificates(found.certs);
                    if added == 0 {
                        return Err(StartError::Other(format!(
                            "--tls-upstream: cannot load the system roots (give --tls-ca): {}",
                            found
                                .errors
                                .first()
                                .map(|e| e.to_string())
                                .unwrap_or_else(|| "no certificate found".into())
                        )));
                    }
                }
            }
            Some(
                ClientConfig::builder_with_provider(provider())
                    .with_safe_default_protocol_versions()
                    .map_err(|e| StartError::Other(format!("--tls-upstream: {e}")))?
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
            )
        }
    };
    Ok(Setup {
        server: Arc::new(server),
        upstream: upstream.map(Arc::new),
        mode: t.upstream,
    })
}

/// `--tls-upstream insecure`: any certificate is accepted, the handshake
/// signatures are still checked (so the session keys are the server's).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Which side a TLS failure was on (the log line names it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Client,
    Destination,
}

impl Side {
    fn as_str(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Destination => "destination",
        }
    }
}

/// Why a negotiation step did not complete.
enum Fail {
    /// A TLS failure on a side, with its reason: status `tls-error`.
    Tls(Side, String),
    /// SIGTERM/SIGINT.
    Killed,
    /// `--idle-timeout` before anything was negotiated.
    Idle,
    /// A reset or another socket error before TLS started.
    Io(io::Error),
}

/// How the session went, for the entry.
pub struct Report {
    pub end: End,
    pub totals: Totals,
    /// The client's TLS was ended here (`%{tls}` terminated).
    pub terminated: bool,
    /// A handshake (or a later TLS record) failed: status `tls-error`; the
    /// log line was written.
    pub tls_error: bool,
}

/// The child's view of the run: what [`run`] needs besides the sockets.
pub struct Ctx<'a> {
    pub conn: u64,
    /// The destination's name as given (`-P`/`-h`), for verification.
    pub dest_host: &'a str,
    pub bufsize: usize,
    pub idle: Option<Duration>,
    /// Each handshake must be done within this (`--connect-timeout`).
    pub handshake_timeout: Duration,
    pub pipe: &'a SelfPipe,
    pub stop: &'a dyn Fn() -> bool,
}

/// The `-P` entry the child connected to (`addr`): its host name is what
/// the destination's certificate is checked against.
pub fn dest_host(dests: &[crate::config::addr::Dest], addr: std::net::SocketAddr) -> &str {
    use std::net::ToSocketAddrs;
    let same_port = || dests.iter().filter(|d| d.port == addr.port());
    let by_ip = same_port().find(|d| {
        d.host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip == addr.ip())
    });
    let found = by_ip
        .or_else(|| {
            if dests.len() == 1 {
                return dests.first();
            }
            same_port().find(|d| {
                (d.host.as_str(), d.port)
                    .to_socket_addrs()
                    .is_ok_and(|mut a| a.any(|a| a == addr))
            })
        })
        .or(dests.first());
    found.map(|d| d.host.as_str()).unwrap_or("")
}

/// What the first bytes say.
enum First {
    /// Nothing for TLS termination: the plain relay, nothing was taken.
    Plain,
    /// A ClientHello (nothing taken).
    Hello,
    /// A PostgreSQL SSLRequest (taken).
    PgSsl,
    /// A MySQL greeting offering SSL (not taken yet), of this length.
    MysqlGreeting(usize),
}

fn peek(s: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match recv(s.as_raw_fd(), buf, MsgFlags::MSG_PEEK) {
            Ok(n) => return Ok(n),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::EAGAIN) => return Ok(0),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Wait for `fd` to be ready for `ev` (and the self-pipe), at most until
/// `deadline`; false on timeout. Stops on a signal.
fn wait(
    fds: &[(BorrowedFd<'_>, PollFlags)],
    deadline: Option<Instant>,
    ctx: &Ctx,
) -> Result<Vec<PollFlags>, Fail> {
    loop {
        if (ctx.stop)() {
            return Err(Fail::Killed);
        }
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let ms = d.saturating_duration_since(Instant::now()).as_millis() + 1;
                PollTimeout::try_from(ms.min(60_000) as i32).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut pfds: Vec<PollFd> = std::iter::once(PollFd::new(ctx.pipe.fd(), PollFlags::POLLIN))
            .chain(fds.iter().map(|(fd, ev)| PollFd::new(*fd, *ev)))
            .collect();
        match poll(&mut pfds, timeout) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Fail::Io(e.into())),
        }
        let rev: Vec<PollFlags> = pfds
            .iter()
            .map(|p| p.revents().unwrap_or(PollFlags::empty()))
            .collect();
        if !rev[0].is_empty() {
            ctx.pipe.drain();
            if (ctx.stop)() {
                return Err(Fail::Killed);
            }
        }
        if rev[1..].iter().any(|r| !r.is_empty()) {
            return Ok(rev[1..].to_vec());
        }
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return Ok(rev[1..].to_vec());
        }
    }
}

/// A short pause (an incomplete prefix), on the self-pipe.
fn pause(ctx: &Ctx) -> Result<(), Fail> {
    let mut p = [PollFd::new(ctx.pipe.fd(), PollFlags::POLLIN)];
    let _ = poll(&mut p, PollTimeout::from(PEEK_PAUSE_MS));
    if (ctx.stop)() {
        return Err(Fail::Killed);
    }
    Ok(())
}

/// Take exactly `buf.len()` bytes that [`peek`] showed are there.
fn take(mut s: &TcpStream, buf: &mut [u8]) -> io::Result<()> {
    s.read_exact(buf)
}

/// Write all of `data` to the non-blocking `s` within the deadline.
fn send_all(mut s: &TcpStream, mut data: &[u8], deadline: Instant, ctx: &Ctx) -> Result<(), Fail> {
    while !data.is_empty() {
        match s.write(data) {
            Ok(0) => return Err(Fail::Io(io::Error::from_raw_os_error(libc::EPIPE))),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                wait(&[(s.as_fd(), PollFlags::POLLOUT)], Some(deadline), ctx)?;
                if Instant::now() >= deadline {
                    return Err(Fail::Io(io::Error::from_raw_os_error(libc::ETIMEDOUT)));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Fail::Io(e)),
        }
    }
    Ok(())
}

/// Decide from the first bytes, taking only a PostgreSQL SSLRequest (and
/// answering a GSSENCRequest `N`).
fn classify(client: &TcpStream, server: &TcpStream, ctx: &Ctx) -> Result<First, Fail> {
    let mut since: Option<Instant> = None;
    let mut active = Instant::now();
    loop {
        let deadline = ctx.idle.map(|d| active + d);
        let rev = wait(
            &[
                (client.as_fd(), PollFlags::POLLIN),
                (server.as_fd(), PollFlags::POLLIN),
            ],
            deadline,
            ctx,
        )?;
        if rev.iter().all(|r| r.is_empty()) {
            if deadline.is_some_and(|d| d <= Instant::now()) {
                return Err(Fail::Idle);
            }
            continue;
        }
        let started = *since.get_or_insert_with(Instant::now);
        let late = started + PEEK_WINDOW <= Instant::now();
        if !rev[0].is_empty() {
            let mut head = [0u8; 8];
            let n = peek(client, &mut head).map_err(Fail::Io)?;
            let head = &head[..n];
            if n == 0 {
                return Ok(First::Plain);
            }
            match crate::identity::tls::starts_tls(head) {
                Some(true) => return Ok(First::Hello),
                None if !late => {
                    pause(ctx)?;
                    continue;
                }
                _ => {}
            }
            for (req, name) in [(&PG_SSL_REQUEST, "ssl"), (&PG_GSSENC_REQUEST, "gssenc")] {
                if !req.starts_with(head) {
                    continue;
                }
                if n < req.len() {
                    if late {
                        return Ok(First::Plain);
                    }
                    pause(ctx)?;
                    break;
                }
                let mut got = [0u8; 8];
                take(client, &mut got).map_err(Fail::Io)?;
                if name == "ssl" {
                    return Ok(First::PgSsl);
                }
                // no GSSAPI here: the client goes on with SSL or in clear
                send_all(client, b"N", Instant::now() + ctx.handshake_timeout, ctx)?;
                since = None;
                active = Instant::now();
                break;
            }
            if PG_SSL_REQUEST.starts_with(head) || PG_GSSENC_REQUEST.starts_with(head) {
                continue;
            }
            return Ok(First::Plain);
        }
        // the server spoke first: a MySQL greeting?
        let mut head = vec![0u8; MYSQL_GREETING_MAX + 4];
        let n = peek(server, &mut head).map_err(Fail::Io)?;
        if n < 5 {
            if n == 0 || late {
                return Ok(First::Plain);
            }
            pause(ctx)?;
            continue;
        }
        let len = usize::from(head[0]) | usize::from(head[1]) << 8 | usize::from(head[2]) << 16;
        if head[3] != 0 || head[4] != MYSQL_PROTOCOL_10 || len > MYSQL_GREETING_MAX {
            return Ok(First::Plain);
        }
        if n < len + 4 {
            if late {
                return Ok(First::Plain);
            }
            pause(ctx)?;
            continue;
        }
        return Ok(match mysql_caps(&head[4..4 + len]) {
            Some(c) if c & MYSQL_CLIENT_SSL != 0 => First::MysqlGreeting(len + 4),
            _ => First::Plain,
        });
    }
}

/// The lower capability flags of a HandshakeV10 payload.
fn mysql_caps(p: &[u8]) -> Option<u32> {
    // protocol, server version (NUL-terminated), thread id, 8 bytes of
    // scramble, a filler, then the lower 2 bytes of the capabilities
    let nul = p.get(1..)?.iter().position(|&b| b == 0)? + 1;
    let at = nul + 1 + 4 + 8 + 1;
    let lo = p.get(at..at + 2)?;
    Some(u32::from(lo[0]) | u32::from(lo[1]) << 8)
}

/// Push out what `conn` has to send, as far as `s` takes it now.
fn flush(conn: &mut Connection, mut s: &TcpStream) -> io::Result<()> {
    while conn.wants_write() {
        match conn.write_tls(&mut s) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn io_reason(e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        "the peer closed the connection during the handshake".into()
    } else {
        e.to_string()
    }
}

/// Read TLS from `s` into `conn` once and process it; Ok(false) at EOF.
fn take_tls(conn: &mut Connection, mut s: &TcpStream) -> Result<bool, TlsIo> {
    match conn.read_tls(&mut s) {
        Ok(0) => return Ok(false),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(true),
        Err(e) => return Err(TlsIo::Io(e)),
    }
    if let Err(e) = conn.process_new_packets() {
        // the alert rustls queued for the peer, if it takes it now
        let _ = flush(conn, s);
        return Err(TlsIo::Tls(e));
    }
    Ok(true)
}

enum TlsIo {
    Tls(rustls::Error),
    Io(io::Error),
}

/// Complete the handshake of `conn` on `s` by the deadline.
fn handshake(conn: &mut Connection, s: &TcpStream, side: Side, ctx: &Ctx) -> Result<(), Fail> {
    let deadline = Instant::now() + ctx.handshake_timeout;
    let tls_fail = |why: String| Fail::Tls(side, why);
    loop {
        flush(conn, s).map_err(|e| tls_fail(io_reason(&e)))?;
        if !conn.is_handshaking() && !conn.wants_write() {
            return Ok(());
        }
        let mut ev = PollFlags::empty();
        if conn.wants_read() {
            ev |= PollFlags::POLLIN;
        }
        if conn.wants_write() {
            ev |= PollFlags::POLLOUT;
        }
        let rev = wait(&[(s.as_fd(), ev)], Some(deadline), ctx)?;
        if rev[0].is_empty() && Instant::now() >= deadline {
            return Err(tls_fail("the handshake timed out".into()));
        }
        if rev[0].intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
            && conn.wants_read()
        {
            match take_tls(conn, s) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(tls_fail(
                        "the peer closed the connection during the handshake".into(),
                    ));
                }
                Err(TlsIo::Tls(e)) => return Err(tls_fail(e.to_string())),
                Err(TlsIo::Io(e)) => return Err(tls_fail(io_reason(&e))),
            }
        }
    }
}

/// Collect the client's ClientHello (bounded by rustls: one handshake
/// message), however it is split.
fn accept_hello(s: &TcpStream, ctx: &Ctx) -> Result<Accepted, Fail> {
    let deadline = Instant::now() + ctx.handshake_timeout;
    let mut acceptor = Acceptor::default();
    let fail = |why: String| Fail::Tls(Side::Client, why);
    loop {
        let rev = wait(&[(s.as_fd(), PollFlags::POLLIN)], Some(deadline), ctx)?;
        if rev[0].is_empty() {
            if Instant::now() >= deadline {
                return Err(fail("the handshake timed out".into()));
            }
            continue;
        }
        let mut src = s;
        match acceptor.read_tls(&mut src) {
            Ok(0) => {
                return Err(fail(
                    "the peer closed the connection during the handshake".into(),
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(fail(io_reason(&e))),
        }
        match acceptor.accept() {
            Ok(Some(a)) => return Ok(a),
            Ok(None) => {}
            Err((e, mut alert)) => {
                let mut dst = s;
                let _ = alert.write_all(&mut dst);
                return Err(fail(e.to_string()));
            }
        }
    }
}

/// The TLS session towards the destination, handshake done.
fn connect_upstream(
    config: &Arc<ClientConfig>,
    server: &TcpStream,
    alpn: &[Vec<u8>],
    ctx: &Ctx,
) -> Result<Connection, Fail> {
    let fail = |why: String| Fail::Tls(Side::Destination, why);
    let name = ServerName::try_from(ctx.dest_host.to_string()).map_err(|_| {
        fail(format!(
            "the destination name '{}' is no DNS name or IP address",
            ctx.dest_host
        ))
    })?;
    let config = if alpn.is_empty() {
        Arc::clone(config)
    } else {
        let mut c = ClientConfig::clone(config);
        c.alpn_protocols = alpn.to_vec();
        Arc::new(c)
    };
    let conn = ClientConnection::new(config, name).map_err(|e| fail(e.to_string()))?;
    let mut conn = Connection::Client(conn);
    handshake(&mut conn, server, Side::Destination, ctx)?;
    Ok(conn)
}

/// PostgreSQL: our own SSLRequest to the destination; `Ok(true)` when it
/// answered `S`, `Ok(false)` for `N`.
fn pg_ssl_upstream(server: &TcpStream, ctx: &Ctx) -> Result<bool, Fail> {
    let deadline = Instant::now() + ctx.handshake_timeout;
    send_all(server, &PG_SSL_REQUEST, deadline, ctx)
        .map_err(|f| tls_io_fail(f, Side::Destination))?;
    loop {
        let rev = wait(&[(server.as_fd(), PollFlags::POLLIN)], Some(deadline), ctx)?;
        if rev[0].is_empty() && Instant::now() >= deadline {
            return Err(Fail::Tls(
                Side::Destination,
                "no answer to the SSLRequest".into(),
            ));
        }
        let mut b = [0u8; 1];
        let mut s = server;
        match s.read(&mut b) {
            Ok(0) => {
                return Err(Fail::Tls(
                    Side::Destination,
                    "the destination closed the connection after the SSLRequest".into(),
                ));
            }
            Ok(_) => {
                return match b[0] {
                    b'S' => Ok(true),
                    b'N' => Ok(false),
                    other => Err(Fail::Tls(
                        Side::Destination,
                        format!("unexpected answer 0x{other:02x} to the SSLRequest"),
                    )),
                };
            }
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Fail::Tls(Side::Destination, e.to_string())),
        }
    }
}

fn tls_io_fail(f: Fail, side: Side) -> Fail {
    match f {
        Fail::Io(e) => Fail::Tls(side, e.to_string()),
        f => f,
    }
}

/// What protocol the terminated session carries (for the upstream leg).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Inner {
    /// TLS from the first byte (Oracle TCPS and others): TLS upstream too.
    Whole,
    /// PostgreSQL (SSLRequest, or direct TLS with ALPN `postgresql`):
    /// SSLRequest upstream.
    Postgres,
}

/// Open the destination's leg for `inner`: TLS, or plain when the mode
/// says so.
fn open_upstream(
    setup: &Setup,
    server: &TcpStream,
    inner: Inner,
    alpn: &[Vec<u8>],
    ctx: &Ctx,
) -> Result<Option<Connection>, Fail> {
    let Some(config) = &setup.upstream else {
        return Ok(None);
    };
    if inner == Inner::Postgres && !pg_ssl_upstream(server, ctx)? {
        if setup.mode == TlsUpstream::PlainOk {
            return Ok(None);
        }
        return Err(Fail::Tls(
            Side::Destination,
            "the destination does not offer TLS (it answered N to the SSLRequest; --tls-upstream plain-ok or plain continue in clear)"
                .into(),
        ));
    }
    connect_upstream(config, server, alpn, ctx).map(Some)
}

/// The client's leg: the ClientHello, then (once the destination's leg
/// is open, so its ALPN can be given to the client) the handshake.
fn finish_client(
    setup: &Setup,
    accepted: Accepted,
    client: &TcpStream,
    upstream_alpn: Option<&[u8]>,
    client_alpn: &[Vec<u8>],
    ctx: &Ctx,
) -> Result<Connection, Fail> {
    let pick = if client_alpn.iter().any(|p| p == ALPN_POSTGRES) {
        Some(ALPN_POSTGRES)
    } else {
        upstream_alpn.filter(|a| client_alpn.iter().any(|p| p == a))
    };
    let config = match pick {
        None => Arc::clone(&setup.server),
        Some(p) => {
            let mut c = ServerConfig::clone(&setup.server);
            c.alpn_protocols = vec![p.to_vec()];
            Arc::new(c)
        }
    };
    let conn = accepted.into_connection(config).map_err(|(e, mut alert)| {
        let mut dst = client;
        let _ = alert.write_all(&mut dst);
        Fail::Tls(Side::Client, e.to_string())
    })?;
    let mut conn = Connection::Server(conn);
    handshake(&mut conn, client, Side::Client, ctx)?;
    Ok(conn)
}

/// The ClientHello's ALPN protocols.
fn alpn_of(a: &Accepted) -> Vec<Vec<u8>> {
    a.client_hello()
        .alpn()
        .map(|it| it.map(<[u8]>::to_vec).collect())
        .unwrap_or_default()
}

/// Both legs ready for the relay loop, and what was relayed in clear
/// before (the MySQL greeting).
struct Legs {
    client: Option<Connection>,
    server: Option<Connection>,
    pre_to_client: Vec<u8>,
    postgres: bool,
}

fn negotiate(
    setup: &Setup,
    client: &TcpStream,
    server: &TcpStream,
    ctx: &Ctx,
) -> Result<Option<Legs>, Fail> {
    let first = classify(client, server, ctx)?;
    let deadline = || Instant::now() + ctx.handshake_timeout;
    match first {
        First::Plain => Ok(None),
        First::Hello | First::PgSsl => {
            let mut inner = Inner::Whole;
            if matches!(first, First::PgSsl) {
                inner = Inner::Postgres;
                send_all(client, b"S", deadline(), ctx)
                    .map_err(|f| tls_io_fail(f, Side::Client))?;
            }
            let accepted = accept_hello(client, ctx)?;
            let alpn = alpn_of(&accepted);
            if alpn.iter().any(|p| p == ALPN_POSTGRES) {
                inner = Inner::Postgres;
            }
            let up = open_upstream(setup, server, inner, &alpn, ctx)?;
            let up_alpn = up
                .as_ref()
                .and_then(|c| c.alpn_protocol().map(<[u8]>::to_vec));
            let conn = finish_client(setup, accepted, client, up_alpn.as_deref(), &alpn, ctx)?;
            Ok(Some(Legs {
                client: Some(conn),
                server: up,
                pre_to_client: Vec::new(),
                postgres: inner == Inner::Postgres,
            }))
        }
        First::MysqlGreeting(len) => {
            let mut greeting = vec![0u8; len];
            take(server, &mut greeting).map_err(Fail::Io)?;
            send_all(client, &greeting, deadline(), ctx)?;
            // the client's first packet: an SSLRequest, or it goes on in
            // clear (then everything stays in clear)
            let until = Instant::now() + PEEK_WINDOW.max(ctx.handshake_timeout);
            let want = 4 + MYSQL_SSL_REQUEST_LEN;
            let mut head = vec![0u8; want];
            let n = loop {
                let rev = wait(&[(client.as_fd(), PollFlags::POLLIN)], Some(until), ctx)?;
                let n = peek(client, &mut head).map_err(Fail::Io)?;
                let len = usize::from(head[0]) | usize::from(head[1]) << 8;
                let short = n >= 3 && (head[2] != 0 || len != MYSQL_SSL_REQUEST_LEN);
                if n >= want || short || Instant::now() >= until {
                    break n;
                }
                if n == 0 && !rev[0].is_empty() {
                    // readable with nothing to peek: the client's EOF
                    break 0;
                }
                if !rev[0].is_empty() {
                    pause(ctx)?;
                }
            };
            let caps = head
                .get(4..8)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .unwrap_or(0);
            if n < want
                || head[2] != 0
                || head[0] != MYSQL_SSL_REQUEST_LEN as u8
                || caps & MYSQL_CLIENT_SSL == 0
            {
                return Ok(Some(Legs {
                    client: None,
                    server: None,
                    pre_to_client: greeting,
                    postgres: false,
                }));
            }
            let mut req = vec![0u8; want];
            take(client, &mut req).map_err(Fail::Io)?;
            send_all(server, &req, deadline(), ctx)
                .map_err(|f| tls_io_fail(f, Side::Destination))?;
            let accepted = accept_hello(client, ctx)?;
            let up = match &setup.upstream {
                Some(c) => Some(connect_upstream(c, server, &[], ctx)?),
                None => None,
            };
            let conn = finish_client(setup, accepted, client, None, &[], ctx)?;
            Ok(Some(Legs {
                client: Some(conn),
                server: up,
                pre_to_client: greeting,
                postgres: false,
            }))
        }
    }
}

/// Run the session if TLS termination has something to do with it:
/// `None` when the first bytes are none of its business (nothing was
/// taken: the plain relay carries on).
pub fn run(
    setup: &Setup,
    client: &TcpStream,
    server: &TcpStream,
    ctx: &Ctx,
    tap: &mut dyn Tap,
) -> Option<Report> {
    let mut totals = Totals::default();
    let report = |end: End, totals: Totals, terminated: bool, tls_error: bool| Report {
        end,
        totals,
        terminated,
        tls_error,
    };
    let legs = match negotiate(setup, client, server, ctx) {
        Ok(None) => return None,
        Ok(Some(l)) => l,
        Err(Fail::Killed) => return Some(report(End::Killed, totals, false, false)),
        Err(Fail::Idle) => return Some(report(End::Idle, totals, false, false)),
        Err(Fail::Io(e)) if is_reset(&e) => return Some(report(End::Reset, totals, false, false)),
        Err(Fail::Io(e)) => return Some(report(End::Failed(e), totals, false, false)),
        Err(Fail::Tls(side, why)) => {
            log_failure(ctx.conn, side, &why);
            return Some(report(End::Closed, totals, false, true));
        }
    };
    let terminated = legs.client.is_some();
    if !legs.pre_to_client.is_empty() {
        totals.from_server += legs.pre_to_client.len() as u64;
        totals.to_client += legs.pre_to_client.len() as u64;
        tap.chunk(Dir::ToClient, &legs.pre_to_client, &totals);
        tap.forwarded(Dir::ToClient, &legs.pre_to_client);
    }
    let upstream_tls = legs.server.is_some();
    let mut watch = Watch {
        inner: tap,
        scram: if legs.postgres && upstream_tls {
            Scram::Watching
        } else {
            Scram::Off
        },
        conn: ctx.conn,
    };
    let mut peers = [
        Peer::new(client, legs.client),
        Peer::new(server, legs.server),
    ];
    let (end, failed) = relay(&mut peers, ctx, &mut totals, &mut watch);
    watch.end();
    if let Some((side, why)) = &failed {
        log_failure(ctx.conn, *side, why);
    }
    Some(report(end, totals, terminated, failed.is_some()))
}

fn log_failure(conn: u64, side: Side, why: &str) {
    crate::log::error(&format!(
        "conn {conn}: tls-error: TLS with the {} failed: {why}",
        side.as_str()
    ));
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNRESET | libc::EPIPE | libc::ECONNABORTED | libc::ETIMEDOUT)
    )
}

/// SCRAM channel binding over a terminated session: the client picked
/// SCRAM-SHA-256-PLUS (bound to the certificate it sees, ours), which the
/// server must reject.
#[derive(PartialEq, Eq)]
enum Scram {
    Off,
    Watching,
    /// The client's SASLInitialResponse named SCRAM-SHA-256-PLUS.
    Plus,
    /// Told (or the login went on).
    Done,
}

/// The tap, watched for the SCRAM-SHA-256-PLUS failure.
struct Watch<'t> {
    inner: &'t mut dyn Tap,
    scram: Scram,
    conn: u64,
}

/// PostgreSQL SASLInitialResponse naming the channel-binding mechanism.
const SCRAM_PLUS: &[u8] = b"SCRAM-SHA-256-PLUS\0";

impl Watch<'_> {
    fn see(&mut self, dir: Dir, data: &[u8], totals: &Totals) {
        match (&self.scram, dir) {
            (Scram::Watching, Dir::FromClient) => {
                if data.first() == Some(&b'p')
                    && data.get(5..5 + SCRAM_PLUS.len()) == Some(SCRAM_PLUS)
                {
                    self.scram = Scram::Plus;
                } else if totals.from_client > SCRAM_WATCH_BYTES {
                    self.scram = Scram::Done;
                }
            }
            (Scram::Plus, Dir::ToClient) => {
                // an ErrorResponse ends the login; anything else (SASL
                // continue, final, AuthenticationOk) lets it go on
                if data.first() == Some(&b'E') {
                    self.tell();
                } else if data.windows(9).any(|w| w == [b'R', 0, 0, 0, 8, 0, 0, 0, 0]) {
                    self.scram = Scram::Done;
                }
            }
            _ => {}
        }
    }

    fn tell(&mut self) {
        self.scram = Scram::Done;
        crate::log::error(&format!(
            "conn {}: the PostgreSQL login with SCRAM-SHA-256-PLUS (channel binding, libpq's default channel_binding=prefer over TLS) cannot pass TLS termination: the client binds to ipprotd's certificate, the server to its own; use --tls-upstream plain, or channel_binding=disable in the client",
            self.conn
        ));
    }

    /// The session ended: a login that picked channel binding and never
    /// got AuthenticationOk failed for that reason.
    fn end(&mut self) {
        if self.scram == Scram::Plus {
            self.tell();
        }
    }
}

impl Tap for Watch<'_> {
    fn chunk(&mut self, dir: Dir, data: &[u8], totals: &Totals) {
        self.see(dir, data, totals);
        self.inner.chunk(dir, data, totals);
    }
    fn forwarded(&mut self, dir: Dir, data: &[u8]) {
        self.inner.forwarded(dir, data);
    }
    fn eof(&mut self, dir: Dir, totals: &Totals) {
        self.inner.eof(dir, totals);
    }
    fn deadline(&self) -> Option<Instant> {
        self.inner.deadline()
    }
    fn tick(&mut self, now: Instant, totals: &Totals) {
        self.inner.tick(now, totals);
    }
}

/// One leg: the socket, its TLS session if terminated/re-encrypted, and
/// where its streams stand.
struct Peer<'a> {
    sock: &'a TcpStream,
    tls: Option<Connection>,
    /// The TCP stream from it ended (TLS legs; plain legs end by `read`).
    tcp_eof: bool,
    /// Our write direction towards it is closing (close_notify queued).
    closing: bool,
    /// `shutdown(SHUT_WR)` done.
    shut: bool,
    /// Hung up while nothing was wanted: parked on the self-pipe.
    parked: bool,
}

impl<'a> Peer<'a> {
    fn new(sock: &'a TcpStream, tls: Option<Connection>) -> Peer<'a> {
        Peer {
            sock,
            tls,
            tcp_eof: false,
            closing: false,
            shut: false,
            parked: false,
        }
    }

    /// Plaintext from it: Ok(Some(n)), Ok(None) nothing now, n == 0 EOF.
    fn read_plain(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let r = match &mut self.tls {
            Some(c) => c.reader().read(buf),
            None => {
                let mut s = self.sock;
                s.read(buf)
            }
        };
        match r {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // a TLS leg whose TCP stream ended has nothing more
                Ok(if self.tls.is_some() && self.tcp_eof {
                    Some(0)
                } else {
                    None
                })
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
            // TCP EOF without close_notify: an end all the same
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Some(0)),
            Err(e) => Err(e),
        }
    }

    /// Plaintext to it: how much it took now.
    fn write_plain(&mut self, data: &[u8]) -> io::Result<usize> {
        match &mut self.tls {
            Some(c) => {
                // make room first: records still queued count against the
                // writer's limit, and a 0 here with nothing left queued
                // would wait for a POLLOUT nobody asks for
                flush(c, self.sock)?;
                let n = c.writer().write(data)?;
                flush(c, self.sock)?;
                Ok(n)
            }
            None => {
                let mut s = self.sock;
                match s.write(data) {
                    Ok(0) => Err(io::Error::from_raw_os_error(libc::EPIPE)),
                    Ok(n) => Ok(n),
                    Err(e)
                        if e.kind() == io::ErrorKind::WouldBlock
                            || e.kind() == io::ErrorKind::Interrupted =>
                    {
                        Ok(0)
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }

    fn wants_write(&self) -> bool {
        self.tls.as_ref().is_some_and(|c| c.wants_write())
    }

    /// Close our write direction: close_notify first on a TLS leg, the
    /// shutdown once it went out.
    fn close_write(&mut self) -> io::Result<()> {
        if !self.closing {
            self.closing = true;
            if let Some(c) = &mut self.tls {
                c.send_close_notify();
            }
        }
        if let Some(c) = &mut self.tls {
            flush(c, self.sock)?;
        }
        if !self.shut && !self.wants_write() {
            self.shut = true;
            // the peer may already be gone; the other direction still runs
            let _ = self.sock.shutdown(Shutdown::Write);
        }
        Ok(())
    }
}

/// One direction's chunk: `buf[start..end]` still to be written.
struct Flow {
    dir: Dir,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
}

impl Flow {
    fn drained(&self) -> bool {
        self.start >= self.end
    }
}

/// A relay stop: how the relay ended, and a TLS failure on a side.
type Stop = (End, Option<(Side, String)>);

fn stop_io(e: io::Error) -> Stop {
    if is_reset(&e) {
        (End::Reset, None)
    } else {
        (End::Failed(e), None)
    }
}

/// Move what can move now in `f` (from `src` to `dst`) without waiting:
/// true if anything did.
fn pump(
    f: &mut Flow,
    src: &mut Peer,
    dst: &mut Peer,
    totals: &mut Totals,
    active: &mut Instant,
    tap: &mut dyn Tap,
) -> Result<bool, Stop> {
    let mut moved = false;
    if !f.drained() {
        let n = dst.write_plain(&f.buf[f.start..f.end]).map_err(stop_io)?;
        if n > 0 {
            moved = true;
            f.start += n;
            add_written(totals, f.dir, n);
            *active = Instant::now();
            if f.drained() {
                tap.forwarded(f.dir, &f.buf[..f.end]);
            }
        }
    } else if !f.eof {
        match src.read_plain(&mut f.buf).map_err(stop_io)? {
            None => {}
            Some(0) => {
                moved = true;
                f.eof = true;
                f.start = 0;
                f.end = 0;
                tap.eof(f.dir, totals);
            }
            Some(n) => {
                moved = true;
                f.start = 0;
                f.end = n;
                add_read(totals, f.dir, n);
                *active = Instant::now();
                // forward first, then the recorder and the sniffer
                let w = dst.write_plain(&f.buf[..n]).map_err(stop_io)?;
                f.start = w;
                add_written(totals, f.dir, w);
                tap.chunk(f.dir, &f.buf[..n], totals);
                if f.drained() {
                    tap.forwarded(f.dir, &f.buf[..n]);
                }
            }
        }
    }
    if f.eof && f.drained() && !dst.shut {
        let was = dst.closing;
        dst.close_write().map_err(stop_io)?;
        moved |= !was;
    }
    if let Some(c) = &mut dst.tls {
        flush(c, dst.sock).map_err(stop_io)?;
    }
    Ok(moved)
}

fn add_read(t: &mut Totals, dir: Dir, n: usize) {
    match dir {
        Dir::FromClient => t.from_client += n as u64,
        Dir::ToClient => t.from_server += n as u64,
    }
}

fn add_written(t: &mut Totals, dir: Dir, n: usize) {
    match dir {
        Dir::FromClient => t.to_server += n as u64,
        Dir::ToClient => t.to_client += n as u64,
    }
}

fn side_of(i: usize) -> Side {
    if i == 0 {
        Side::Client
    } else {
        Side::Destination
    }
}

/// The relay loop of a terminated session: `peers` are client and
/// destination.
fn relay(
    peers: &mut [Peer; 2],
    ctx: &Ctx,
    totals: &mut Totals,
    tap: &mut dyn Tap,
) -> (End, Option<(Side, String)>) {
    let mut flows = [
        Flow {
            dir: Dir::FromClient,
            buf: vec![0u8; ctx.bufsize],
            start: 0,
            end: 0,
            eof: false,
        },
        Flow {
            dir: Dir::ToClient,
            buf: vec![0u8; ctx.bufsize],
            start: 0,
            end: 0,
            eof: false,
        },
    ];
    let mut active = Instant::now();
    let r: Result<(), Stop> = (|| {
        loop {
            if (ctx.stop)() {
                return Err((End::Killed, None));
            }
            // everything that moves without waiting; after PUMP_ROUNDS
            // rounds of steady progress, a look at the sockets (and the
            // signals, the deadlines) without sleeping: plaintext rustls
            // still holds shows on no socket
            let mut rounds = 0;
            let busy = loop {
                let [c, s] = &mut *peers;
                let [fc, fs] = &mut flows;
                let a = pump(fc, c, s, totals, &mut active, tap)?;
                let b = pump(fs, s, c, totals, &mut active, tap)?;
                rounds += 1;
                if !(a || b) {
                    break false;
                }
                if rounds >= PUMP_ROUNDS || (ctx.stop)() {
                    break true;
                }
            };
            if flows.iter().all(|f| f.eof && f.drained())
                && peers.iter().all(|p| p.shut && !p.wants_write())
            {
                return Ok(());
            }
            // what each leg waits for
            let mut ev = [PollFlags::empty(); 2];
            for (i, p) in peers.iter().enumerate() {
                let from = &flows[i];
                let to = &flows[1 - i];
                match &p.tls {
                    Some(c) => {
                        if !p.tcp_eof && c.wants_read() && !from.eof {
                            ev[i] |= PollFlags::POLLIN;
                        }
                        if c.wants_write() {
                            ev[i] |= PollFlags::POLLOUT;
                        }
                    }
                    None => {
                        if from.drained() && !from.eof {
                            ev[i] |= PollFlags::POLLIN;
                        }
                        if !to.drained() {
                            ev[i] |= PollFlags::POLLOUT;
                        }
                    }
                }
            }
            let idle_at = ctx.idle.map(|d| active + d);
            let now_if_busy = busy.then(Instant::now);
            let deadline = [idle_at, tap.deadline(), now_if_busy]
                .into_iter()
                .flatten()
                .min();
            let fds: Vec<(BorrowedFd, PollFlags)> = peers
                .iter()
                .zip(ev)
                .map(|(p, e)| {
                    if e.is_empty() && p.parked {
                        (ctx.pipe.fd(), PollFlags::empty())
                    } else {
                        (p.sock.as_fd(), e)
                    }
                })
                .collect();
            let rev = wait(&fds, deadline, ctx).map_err(|f| match f {
                Fail::Killed => (End::Killed, None),
                Fail::Io(e) => (End::Failed(e), None),
                _ => (End::Closed, None),
            })?;
            let now = Instant::now();
            if tap.deadline().is_some_and(|d| d <= now) {
                tap.tick(now, totals);
            }
            for i in 0..2 {
                let p = &mut peers[i];
                let r = rev[i];
                if ev[i].is_empty() && !p.parked {
                    if r.contains(PollFlags::POLLERR) {
                        match p.sock.take_error() {
                            Ok(Some(e)) | Err(e) => return Err(stop_io(e)),
                            Ok(None) => p.parked = true,
                        }
                    }
                    if r.contains(PollFlags::POLLHUP) {
                        p.parked = true;
                    }
                }
                let Some(c) = &mut p.tls else {
                    continue;
                };
                if ev[i].contains(PollFlags::POLLIN)
                    && r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
                {
                    match take_tls(c, p.sock) {
                        Ok(true) => {}
                        Ok(false) => p.tcp_eof = true,
                        Err(TlsIo::Tls(e)) => {
                            return Err((End::Closed, Some((side_of(i), e.to_string()))));
                        }
                        Err(TlsIo::Io(e)) => return Err(stop_io(e)),
                    }
                }
            }
            if ctx.idle.is_some_and(|d| active + d <= Instant::now()) {
                return Err((End::Idle, None));
            }
        }
    })();
    match r {
        Ok(()) => (End::Closed, None),
        Err((end, why)) => {
            if matches!(end, End::Reset) {
                socket::reset_on_close(peers[0].sock);
                socket::reset_on_close(peers[1].sock);
            }
            (end, why)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_greeting_capabilities() {
        // protocol 10, "5.5.5-10.11\0", thread id, scramble, filler, caps
        let mut p = vec![10];
        p.extend_from_slice(b"5.5.5-10.11.6-MariaDB\0");
        p.extend_from_slice(&[1, 0, 0, 0]);
        p.extend_from_slice(b"abcdefgh");
        p.push(0);
        p.extend_from_slice(&[0xfe, 0xff]);
        assert_eq!(mysql_caps(&p), Some(0xfffe));
        assert!(mysql_caps(&p).unwrap() & MYSQL_CLIENT_SSL != 0);
        assert_eq!(mysql_caps(&p[..p.len() - 1]), None);
        assert_eq!(mysql_caps(&[10]), None);
        assert_eq!(mysql_caps(&[]), None);
    }

    #[test]
    fn scram_plus_is_seen_and_told_once() {
        struct Null;
        impl Tap for Null {
            fn chunk(&mut self, _: Dir, _: &[u8], _: &Totals) {}
            fn eof(&mut self, _: Dir, _: &Totals) {}
            fn deadline(&self) -> Option<Instant> {
                None
            }
            fn tick(&mut self, _: Instant, _: &Totals) {}
        }
        let mut null = Null;
        let mut w = Watch {
            inner: &mut null,
            scram: Scram::Watching,
            conn: 1,
        };
        let t = Totals::default();
        let mut resp = vec![b'p', 0, 0, 0, 40];
        resp.extend_from_slice(SCRAM_PLUS);
        w.see(Dir::FromClient, &resp, &t);
        assert!(w.scram == Scram::Plus);
        // AuthenticationOk: the login went on
        w.see(Dir::ToClient, &[b'R', 0, 0, 0, 8, 0, 0, 0, 0], &t);
        assert!(w.scram == Scram::Done);
        let mut w2 = Watch {
            inner: &mut null,
            scram: Scram::Watching,
            conn: 2,
        };
        let mut plain = vec![b'p', 0, 0, 0, 40];
        plain.extend_from_slice(b"SCRAM-SHA-256\0");
        w2.see(Dir::FromClient, &plain, &t);
        assert!(w2.scram == Scram::Watching);
    }
}
