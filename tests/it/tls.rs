//! TLS termination (`--tls-cert`): a test CA and certificates made here
//! (rcgen), a TLS echo server written here (rustls) behind ipprotd,
//! `openssl s_client` and a rustls client in front; bytes exact both
//! ways, the recording in clear, `%{tls}`, `tls-error` naming the side,
//! the start errors of bad certificate files; and the real PostgreSQL
//! with `ssl = on` (psql with sslmode=require / verify-full, plain-ok,
//! SCRAM and channel binding).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::harness::*;

/// The connection-log format of these tests.
const FMT: &str = "%x|%b|%B|%{proto}|%{tls}|%{user}|%{service}";

/// A certificate and its key, as PEM files.
struct Pair {
    cert: PathBuf,
    key: PathBuf,
}

/// A test CA with a proxy and a server certificate (SAN 127.0.0.1 and
/// localhost), and a server certificate of another CA.
struct Pki {
    ca: PathBuf,
    proxy: Pair,
    server: Pair,
    stranger: Pair,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn leaf(dir: &Path, name: &str, issuer: &Issuer<'_, KeyPair>) -> Pair {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.signed_by(&key, issuer).unwrap();
    let pair = Pair {
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}.key")),
    };
    std::fs::write(&pair.cert, cert.pem()).unwrap();
    std::fs::write(&pair.key, key.serialize_pem()).unwrap();
    pair
}

fn ca(dir: &Path, name: &str) -> (PathBuf, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    let path = dir.join(format!("{name}.pem"));
    std::fs::write(&path, cert.pem()).unwrap();
    (path, Issuer::new(params, key))
}

fn pki(dir: &Path) -> Pki {
    let (ca_path, issuer) = ca(dir, "test-ca");
    let (_, other) = ca(dir, "other-ca");
    Pki {
        ca: ca_path,
        proxy: leaf(dir, "proxy", &issuer),
        server: leaf(dir, "server", &issuer),
        stranger: leaf(dir, "stranger", &other),
    }
}

fn server_config(pair: &Pair) -> Arc<rustls::ServerConfig> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&pair.cert)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(&pair.key).unwrap();
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    )
}

fn client_config(ca: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// A TLS echo server with `pair`'s certificate: echoes the plaintext
/// until the client's close_notify or EOF, then closes its side with a
/// close_notify. With `limit`, it closes once it echoed that many bytes.
fn tls_echo(pair: &Pair, limit: Option<usize>) -> Backend {
    let config = server_config(pair);
    Backend::start(move |mut s| {
        let Ok(mut conn) = rustls::ServerConnection::new(config.clone()) else {
            return;
        };
        let mut tls = rustls::Stream::new(&mut conn, &mut s);
        let mut buf = vec![0u8; 65536];
        let mut echoed = 0;
        while limit.is_none_or(|l| echoed < l) {
            match tls.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tls.write_all(&buf[..n]).is_err() {
                        return;
                    }
                    echoed += n;
                }
            }
        }
        tls.conn.send_close_notify();
        let _ = tls.flush();
        let _ = tls.sock.shutdown(std::net::Shutdown::Write);
        let _ = read_all(tls.sock);
    })
}

fn tls_args<'a>(pki: &'a Pki, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "--tls-cert",
        p(&pki.proxy.cert),
        "--tls-key",
        p(&pki.proxy.key),
        "--tls-ca",
        p(&pki.ca),
    ];
    v.extend_from_slice(extra);
    v
}

/// A rustls client through the proxy: its TLS stream over `sock`.
fn tls_client(
    ca: &Path,
    sock: TcpStream,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let conn = rustls::ClientConnection::new(
        client_config(ca),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    rustls::StreamOwned::new(conn, sock)
}

#[test]
fn s_client_through_the_proxy_bytes_exact_and_recorded_in_clear() {
    if !need_tool("openssl", "the TLS termination test with openssl s_client") {
        return;
    }
    let dir = tmpdir("tls-sclient");
    let pki = pki(&dir);
    let msg = b"hello through TLS, both legs\n".to_vec();
    let b = tls_echo(&pki.server, Some(msg.len()));
    let prefix = dir.join("prot");
    let extra = tls_args(&pki, &["-f", p(&prefix), "-L"]);
    let (d, log) = Daemon::logged(&dir, &b.dest(), FMT, &extra, &[]);
    let mut c = Command::new("openssl");
    c.args([
        "s_client",
        "-connect",
        &format!("127.0.0.1:{}", d.port()),
        "-servername",
        "localhost",
        "-CAfile",
        p(&pki.ca),
        "-verify_return_error",
        "-quiet",
    ]);
    let out = run_limited(c, &msg, DEADLINE).unwrap();
    assert_eq!(
        out.stdout,
        msg,
        "s_client: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = wait_lines(&log, 1);
    let n = msg.len();
    assert_eq!(
        lines[0],
        format!("ok|{n}|{n}|-|terminated|-|-"),
        "{}",
        d.stderr()
    );
    // both directions, plaintext, byte-exact
    let rec = std::fs::read(only_data_log(&dir)).unwrap();
    assert_eq!(rec, [msg.clone(), msg].concat());
}

#[test]
fn bulk_both_ways_with_half_close_and_a_split_client_hello() {
    let dir = tmpdir("tls-bulk");
    let pki = pki(&dir);
    let b = tls_echo(&pki.server, None);
    let prefix = dir.join("prot");
    let extra = tls_args(&pki, &["-f", p(&prefix), "-l", "-b", "7000"]);
    let (d, log) = Daemon::logged(&dir, &b.dest(), FMT, &extra, &[]);
    let data = random_bytes(1_000_003, 7);

    // the ClientHello one byte per packet
    let mut conn = rustls::ClientConnection::new(
        client_config(&pki.ca),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let mut hello = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut hello).unwrap();
    }
    let sock = d.connect();
    sock.set_nodelay(true).unwrap();
    for byte in &hello {
        (&sock).write_all(std::slice::from_ref(byte)).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut tls = rustls::StreamOwned::new(conn, sock);
    let writer_sock = tls.sock.try_clone().unwrap();
    // a reader thread, so the echo never blocks the writer
    let (tx, rx) = std::sync::mpsc::channel();
    let want = data.len();
    tls.write_all(b"").unwrap();
    tls.flush().unwrap();
    let mut tls = tls;
    let data2 = data.clone();
    let h = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        let mut sent = 0;
        while got.len() < want {
            if sent < data2.len() {
                let end = (sent + 8192).min(data2.len());
                tls.write_all(&data2[sent..end]).unwrap();
                sent = end;
                if sent == data2.len() {
                    // half-close: close_notify, then our write side
                    tls.conn.send_close_notify();
                    tls.flush().unwrap();
                    writer_sock.shutdown(std::net::Shutdown::Write).unwrap();
                }
            }
            tls.sock
                .set_read_timeout(Some(Duration::from_millis(if sent < want {
                    1
                } else {
                    20_000
                })))
                .unwrap();
            match tls.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => panic!("read: {e} after {}", got.len()),
            }
        }
        // the server's close_notify, then EOF
        let mut rest = Vec::new();
        tls.sock.set_read_timeout(Some(DEADLINE)).unwrap();
        let end = tls.read_to_end(&mut rest);
        tx.send((got, rest, end.is_ok())).unwrap();
    });
    let (got, rest, clean) = rx.recv_timeout(DEADLINE * 2).unwrap();
    h.join().unwrap();
    assert!(
        got == data,
        "echo differs: {} of {} bytes",
        got.len(),
        data.len()
    );
    assert!(rest.is_empty() && clean, "no clean close_notify at the end");
    let n = data.len();
    let lines = wait_lines(&log, 1);
    assert_eq!(
        lines[0],
        format!("ok|{n}|{n}|-|terminated|-|-"),
        "{}",
        d.stderr()
    );
    assert!(std::fs::read(only_data_log(&dir)).unwrap() == data);
}

#[test]
fn client_that_aborts_the_handshake_is_a_tls_error_of_the_client() {
    let dir = tmpdir("tls-abort");
    let pki = pki(&dir);
    let b = tls_echo(&pki.server, None);
    let (d, log) = Daemon::logged(&dir, &b.dest(), FMT, &tls_args(&pki, &[]), &[]);
    let mut conn = rustls::ClientConnection::new(
        client_config(&pki.ca),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    let mut s = d.connect();
    s.write_all(&hello).unwrap();
    // read the server's first flight, then go away
    let mut buf = [0u8; 512];
    let _ = read_some(&mut s, &mut buf);
    drop(s);
    let lines = wait_lines(&log, 1);
    assert!(lines[0].starts_with("tls-error|0|0|"), "{}", lines[0]);
    assert!(
        d.wait_stderr("tls-error: TLS with the client failed: "),
        "{}",
        d.stderr()
    );
}

#[test]
fn wrong_destination_certificate_verify_fails_insecure_passes() {
    let dir = tmpdir("tls-wrong");
    let pki = pki(&dir);
    let b = tls_echo(&pki.stranger, None);
    let (d, log) = Daemon::logged(&dir, &b.dest(), FMT, &tls_args(&pki, &[]), &[]);
    let mut c = tls_client(&pki.ca, d.connect());
    // the proxy fails the destination leg before it finishes ours
    let r = c.write_all(b"x").and_then(|_| c.flush());
    let mut buf = [0u8; 16];
    let read = c.read(&mut buf);
    assert!(r.is_err() || !matches!(read, Ok(1..)), "relayed anyway");
    let lines = wait_lines(&log, 1);
    assert!(lines[0].starts_with("tls-error|0|0|"), "{}", lines[0]);
    assert!(
        d.wait_stderr("tls-error: TLS with the destination failed: invalid peer certificate"),
        "{}",
        d.stderr()
    );

    let dir = tmpdir("tls-insecure");
    let extra = tls_args(&pki, &["--tls-upstream", "insecure"]);
    let (d, log) = Daemon::logged(&dir, &b.dest(), FMT, &extra, &[]);
    let mut c = tls_client(&pki.ca, d.connect());
    c.write_all(b"ping").unwrap();
    let mut got = [0u8; 4];
    c.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ping");
    c.conn.send_close_notify();
    c.flush().unwrap();
    c.sock.shutdown(std::net::Shutdown::Write).unwrap();
    let lines = wait_lines(&log, 1);
    assert_eq!(lines[0], "ok|4|4|-|terminated|-|-", "{}", d.stderr());
}

#[test]
fn without_a_certificate_tls_is_passthrough() {
    let dir = tmpdir("tls-passthrough");
    let pki = pki(&dir);
    let b = tls_echo(&pki.server, None);
    let (d, log) = Daemon::logged(&dir, &b.dest(), FMT, &[], &[]);
    let mut c = tls_client(&pki.ca, d.connect());
    // straight to the server: its certificate, our CA
    c.write_all(b"ping").unwrap();
    let mut got = [0u8; 4];
    c.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ping");
    c.conn.send_close_notify();
    c.flush().unwrap();
    c.sock.shutdown(std::net::Shutdown::Write).unwrap();
    let lines = wait_lines(&log, 1);
    assert!(lines[0].starts_with("ok|"), "{}", lines[0]);
    assert!(lines[0].ends_with("|tls|passthrough|-|-"), "{}", lines[0]);
}

#[test]
fn plain_clients_are_relayed_untouched_with_a_certificate() {
    let dir = tmpdir("tls-plain");
    let pki = pki(&dir);
    let b = Backend::echo();
    let (d, log) = Daemon::logged(&dir, &b.dest(), FMT, &tls_args(&pki, &[]), &[]);
    d.echo(b"GET / HTTP/1.0\r\n\r\n");
    let lines = wait_lines(&log, 1);
    assert_eq!(lines[0], "ok|18|18|-|-|-|-");
}

/// ipprotd's exit status and stderr for `args` (which fail at start).
fn start_fails(args: &[&str]) -> (Option<i32>, String) {
    let mut c = Command::new(BIN);
    c.args(["-p", "0@127.0.0.1"]).args(args);
    let out = run_limited(c, b"", DEADLINE).unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_certificate_files_are_start_errors() {
    let dir = tmpdir("tls-badfiles");
    let pki = pki(&dir);
    let missing = dir.join("missing.pem");
    let (code, err) = start_fails(&["--tls-cert", p(&missing), "--tls-key", p(&pki.proxy.key)]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "ipprotd: --tls-cert: cannot read {}: No such file or directory",
            missing.display()
        )),
        "{err}"
    );
    // a key of another certificate
    let (code, err) = start_fails(&[
        "--tls-cert",
        p(&pki.proxy.cert),
        "--tls-key",
        p(&pki.server.key),
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "ipprotd: --tls-key: cannot use {}: the key does not match the certificate of {}",
            pki.server.key.display(),
            pki.proxy.cert.display()
        )),
        "{err}"
    );
    // a key file where the certificate should be
    let (code, err) = start_fails(&[
        "--tls-cert",
        p(&pki.proxy.key),
        "--tls-key",
        p(&pki.proxy.key),
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "ipprotd: --tls-cert: cannot use {}: no PEM certificate",
            pki.proxy.key.display()
        )),
        "{err}"
    );
    // a certificate where the key should be
    let (code, err) = start_fails(&[
        "--tls-cert",
        p(&pki.proxy.cert),
        "--tls-key",
        p(&pki.proxy.cert),
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("ipprotd: --tls-key: cannot use "), "{err}");
    assert!(err.contains("no PEM private key"), "{err}");
    // usage errors
    let (code, err) = start_fails(&["--tls-cert", p(&pki.proxy.cert)]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("ipprotd: --tls-cert needs --tls-key"), "{err}");
    let (code, err) = start_fails(&[
        "--tls-cert",
        p(&pki.proxy.cert),
        "--tls-key",
        p(&pki.proxy.key),
        "--tls-upstream",
        "maybe",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--tls-upstream: invalid value 'maybe'"),
        "{err}"
    );
}
