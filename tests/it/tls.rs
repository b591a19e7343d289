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

// ---------------------------------------------------------------------
// PostgreSQL with ssl = on
// ---------------------------------------------------------------------

/// The SCRAM user of the PostgreSQL tests and its password.
const PG_USER: &str = "alice";
const PG_PASSWORD: &str = "s3cret-pw";
/// How long one psql may run.
const PSQL_LIMIT: Duration = Duration::from_secs(60);

/// A PostgreSQL cluster with `ssl` on or off (the server certificate of
/// `pki`), `host` lines trusting postgres and asking `alice` for a SCRAM
/// password; alice exists. `None` (skip note printed) without PostgreSQL.
fn pg_cluster(name: &str, files: &Path, pki: &Pki, ssl: bool) -> Option<(PgCluster, PathBuf)> {
    let hba = files.join(format!("{name}-hba.conf"));
    std::fs::write(
        &hba,
        format!(
            "local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all {PG_USER} 127.0.0.1/32 scram-sha-256\n"
        ),
    )
    .unwrap();
    // the server reads its key only when it owns it, mode 0600
    if is_root() {
        let st = Command::new("chown")
            .args(["postgres:", p(&pki.server.key)])
            .status()
            .unwrap();
        assert!(st.success());
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pki.server.key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let settings = [
        format!("ssl={}", if ssl { "on" } else { "off" }),
        format!("ssl_cert_file={}", p(&pki.server.cert)),
        format!("ssl_key_file={}", p(&pki.server.key)),
        format!("hba_file={}", p(&hba)),
        "password_encryption=scram-sha-256".to_string(),
        "lc_messages=C".to_string(),
    ];
    let s: Vec<&str> = settings.iter().map(String::as_str).collect();
    let cluster = PgCluster::start(name, &s)?;
    let Some(psql) = cluster.client("psql") else {
        skip("postgresql not installed (no psql)");
        return None;
    };
    let direct = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=disable",
        cluster.port.port()
    );
    let (ok, out) = psql_run(
        &psql,
        &direct,
        &format!("CREATE ROLE {PG_USER} LOGIN PASSWORD '{PG_PASSWORD}'"),
        &[],
    );
    assert!(ok, "create role: {out}");
    Some((cluster, psql))
}

/// psql with connection string `conn` running `sql`; success and output.
fn psql_run(psql: &Path, conn: &str, sql: &str, env: &[(&str, &str)]) -> (bool, String) {
    let mut c = Command::new(psql);
    c.args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql, conn])
        .env("PGCONNECT_TIMEOUT", "10");
    for (k, v) in env {
        c.env(k, v);
    }
    run_ok(c, PSQL_LIMIT)
}

#[test]
fn postgres_ssl_require_and_verify_full_are_terminated_and_recorded_in_clear() {
    let files = tmpdir("tls-pg-files");
    let pki = pki(&files);
    let Some((cluster, psql)) = pg_cluster("tls_pg", &files, &pki, true) else {
        return;
    };
    let dir = tmpdir("tls-pg");
    let prefix = dir.join("prot");
    let stmts = dir.join("statements.log");
    let extra = tls_args(
        &pki,
        &["-L", "-f", p(&prefix), "--statement-log", p(&stmts)],
    );
    let (d, log) = Daemon::logged(&dir, &cluster.dest(), FMT, &extra, &[]);
    let port = d.port();
    let sql = "SELECT 'ssl=' || ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid(); SELECT 'marker-' || 6*7";
    let require =
        format!("host=127.0.0.1 port={port} user=postgres dbname=postgres sslmode=require");
    let (ok, out) = psql_run(&psql, &require, sql, &[]);
    assert!(ok, "psql sslmode=require: {out}\n{}", d.stderr());
    assert!(
        out.contains("ssl=true") && out.contains("marker-42"),
        "{out}"
    );
    // verify-full: the proxy's name and the test CA
    let full = format!(
        "host=localhost hostaddr=127.0.0.1 port={port} user=postgres dbname=postgres sslmode=verify-full sslrootcert={}",
        p(&pki.ca)
    );
    let (ok, out) = psql_run(&psql, &full, sql, &[]);
    assert!(ok, "psql sslmode=verify-full: {out}\n{}", d.stderr());
    assert!(
        out.contains("ssl=true") && out.contains("marker-42"),
        "{out}"
    );
    let lines = wait_lines(&log, 2);
    for l in &lines {
        assert!(l.starts_with("ok|"), "{l}");
        assert!(l.ends_with("|postgres|terminated|postgres|postgres"), "{l}");
    }
    // the statements in clear in both recordings and in the statement log
    let logs = data_logs(&dir);
    assert_eq!(logs.len(), 2, "{logs:?}");
    for f in &logs {
        let rec = std::fs::read(f).unwrap();
        let text = String::from_utf8_lossy(&rec);
        assert!(text.contains("SELECT 'marker-' || 6*7"), "{text}");
        assert!(text.contains("marker-42"), "{text}");
    }
    assert!(wait_until(DEADLINE, || {
        std::fs::read_to_string(&stmts)
            .unwrap_or_default()
            .matches("marker-")
            .count()
            >= 2
    }));

    // PostgreSQL 17 direct TLS (a ClientHello with ALPN postgresql, no
    // SSLRequest), as libpq 17 sends it with sslnegotiation=direct:
    // ipprotd selects ALPN postgresql and reaches this server (15) with
    // an SSLRequest
    let mut config = rustls::ClientConfig::clone(&client_config(&pki.ca));
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    let conn =
        rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap())
            .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, d.connect());
    let mut startup = Vec::new();
    let body = b"\x00\x03\x00\x00user\0postgres\0database\0postgres\0\0";
    startup.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    startup.extend_from_slice(body);
    let q = b"SELECT 'direct-ssl=' || ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()\0";
    startup.push(b'Q');
    startup.extend_from_slice(&((q.len() + 4) as u32).to_be_bytes());
    startup.extend_from_slice(q);
    tls.write_all(&startup).unwrap();
    tls.flush().unwrap();
    assert_eq!(tls.conn.alpn_protocol(), Some(&b"postgresql"[..]));
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("direct-ssl=") || !got.ends_with(b"Z\0\0\0\x05I")
    {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    assert!(
        String::from_utf8_lossy(&got).contains("direct-ssl=true"),
        "{}\n{}",
        String::from_utf8_lossy(&got),
        d.stderr()
    );
    tls.write_all(b"X\0\0\0\x04").unwrap();
    tls.conn.send_close_notify();
    tls.flush().unwrap();
    let lines = wait_lines(&log, 3);
    assert!(
        lines[2].ends_with("|postgres|terminated|postgres|postgres"),
        "{}",
        lines[2]
    );
}

#[test]
fn postgres_scram_channel_binding_and_the_plain_upstream() {
    let files = tmpdir("tls-pg-scram-files");
    let pki = pki(&files);
    let Some((cluster, psql)) = pg_cluster("tls_pg_scram", &files, &pki, true) else {
        return;
    };
    let env = [("PGPASSWORD", PG_PASSWORD)];
    let sql = "SELECT 'ssl=' || ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    let conn = |port: u16, more: &str| {
        format!("host=127.0.0.1 port={port} user={PG_USER} dbname=postgres {more}")
    };

    // TLS on both legs, libpq's default channel_binding=prefer: the
    // server refuses, ipprotd says why
    let dir = tmpdir("tls-pg-scram");
    let (d, log) = Daemon::logged(&dir, &cluster.dest(), FMT, &tls_args(&pki, &[]), &[]);
    let (ok, out) = psql_run(&psql, &conn(d.port(), "sslmode=require"), sql, &env);
    assert!(!ok, "channel binding passed the proxy: {out}");
    // the real server's words (PostgreSQL 15)
    assert!(out.contains("SCRAM channel binding check failed"), "{out}");
    assert!(
        d.wait_stderr("cannot pass TLS termination: the client binds to ipprotd's certificate"),
        "{}",
        d.stderr()
    );
    assert_eq!(
        d.stderr().matches("SCRAM-SHA-256-PLUS").count(),
        1,
        "{}",
        d.stderr()
    );
    // ... channel_binding=disable logs in over the TLS upstream
    let (ok, out) = psql_run(
        &psql,
        &conn(d.port(), "sslmode=require channel_binding=disable"),
        sql,
        &env,
    );
    assert!(ok, "channel_binding=disable: {out}\n{}", d.stderr());
    assert!(out.contains("ssl=true"), "{out}");
    let lines = wait_lines(&log, 2);
    assert!(lines[1].starts_with("ok|"), "{}", lines[1]);
    assert!(
        lines[1].ends_with("|postgres|terminated|alice|postgres"),
        "{}",
        lines[1]
    );

    // --tls-upstream plain: default psql (sslmode=prefer, channel
    // binding prefer) logs in with plain SCRAM, TLS with ipprotd only
    let dir = tmpdir("tls-pg-plain");
    let extra = tls_args(&pki, &["--tls-upstream", "plain"]);
    let (d, log) = Daemon::logged(&dir, &cluster.dest(), FMT, &extra, &[]);
    let (ok, out) = psql_run(&psql, &conn(d.port(), ""), sql, &env);
    assert!(ok, "plain upstream: {out}\n{}", d.stderr());
    assert!(out.contains("ssl=false"), "the server saw TLS: {out}");
    let lines = wait_lines(&log, 1);
    assert!(lines[0].starts_with("ok|"), "{}", lines[0]);
    assert!(
        lines[0].ends_with("|postgres|terminated|alice|postgres"),
        "{}",
        lines[0]
    );
    assert!(!d.stderr().contains("SCRAM-SHA-256-PLUS"), "{}", d.stderr());
}

#[test]
fn postgres_without_ssl_plain_ok_goes_on_in_clear_verify_fails() {
    let files = tmpdir("tls-pg-nossl-files");
    let pki = pki(&files);
    let Some((cluster, psql)) = pg_cluster("tls_pg_nossl", &files, &pki, false) else {
        return;
    };
    let sql = "SELECT 'ssl=' || ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    let dir = tmpdir("tls-pg-plainok");
    let extra = tls_args(&pki, &["--tls-upstream", "plain-ok"]);
    let (d, log) = Daemon::logged(&dir, &cluster.dest(), FMT, &extra, &[]);
    let conn = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=require",
        d.port()
    );
    let (ok, out) = psql_run(&psql, &conn, sql, &[]);
    assert!(ok, "plain-ok: {out}\n{}", d.stderr());
    assert!(out.contains("ssl=false"), "{out}");
    let lines = wait_lines(&log, 1);
    assert!(lines[0].starts_with("ok|"), "{}", lines[0]);
    assert!(
        lines[0].ends_with("|postgres|terminated|postgres|postgres"),
        "{}",
        lines[0]
    );

    let dir = tmpdir("tls-pg-verify-nossl");
    let (d, log) = Daemon::logged(&dir, &cluster.dest(), FMT, &tls_args(&pki, &[]), &[]);
    let conn = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=require",
        d.port()
    );
    let (ok, out) = psql_run(&psql, &conn, sql, &[]);
    assert!(!ok, "went on in clear without plain-ok: {out}");
    let lines = wait_lines(&log, 1);
    assert!(lines[0].starts_with("tls-error|"), "{}", lines[0]);
    assert!(
        d.wait_stderr("TLS with the destination failed: the destination does not offer TLS"),
        "{}",
        d.stderr()
    );
}

// ---------------------------------------------------------------------
// MariaDB with TLS
// ---------------------------------------------------------------------

#[test]
fn mariadb_ssl_is_terminated_with_a_password_login_and_recorded_in_clear() {
    use crate::audit_mysql::MariaDb;
    let files = tmpdir("tls-mariadb-files");
    let pki = pki(&files);
    let Some(db) = MariaDb::start(
        "tls-mariadb",
        &[
            format!("--ssl-cert={}", p(&pki.server.cert)),
            format!("--ssl-key={}", p(&pki.server.key)),
            format!("--ssl-ca={}", p(&pki.ca)),
        ],
    ) else {
        return;
    };
    let (user, password) = ("tlsuser", "tls-pw-1");
    db.root(&format!(
        "CREATE DATABASE shop; CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'; \
         GRANT ALL ON *.* TO '{user}'@'%';"
    ));
    let dir = tmpdir("tls-mariadb");
    let prefix = dir.join("prot");
    let stmts = dir.join("statements.log");
    let extra = tls_args(
        &pki,
        &["-L", "-f", p(&prefix), "--statement-log", p(&stmts)],
    );
    let (d, log) = Daemon::logged(&dir, &db.dest(), FMT, &extra, &[]);
    let mut c = Command::new("mariadb");
    c.arg("--no-defaults")
        .args(["-h", "127.0.0.1", "-P", &d.port().to_string()])
        .args(["-u", user, &format!("-p{password}")])
        .args(["--ssl", "--ssl-verify-server-cert"])
        .arg(format!("--ssl-ca={}", p(&pki.ca)))
        .args([
            "--connect-timeout=10",
            "-N",
            "-e",
            "SELECT 'over tls', 6*7; SHOW SESSION STATUS LIKE 'Ssl_version'",
            "shop",
        ]);
    let out = run_limited(c, b"", Duration::from_secs(60)).expect("mariadb --ssl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}\n{}", d.stderr());
    assert!(text.contains("over tls\t42"), "{text}");
    // the server's side of the session is TLS too
    assert!(text.contains("Ssl_version\tTLSv1."), "{text}");
    let lines = wait_lines(&log, 1);
    assert!(lines[0].starts_with("ok|"), "{}", lines[0]);
    assert!(
        lines[0].ends_with(&format!("|mysql|terminated|{user}|shop")),
        "{}",
        lines[0]
    );
    let rec = std::fs::read(only_data_log(&dir)).unwrap();
    let rec = String::from_utf8_lossy(&rec);
    assert!(rec.contains("SELECT 'over tls', 6*7"), "{rec}");
    assert!(
        wait_until(DEADLINE, || std::fs::read_to_string(&stmts)
            .unwrap_or_default()
            .contains("SELECT 'over tls', 6*7")),
        "{}",
        std::fs::read_to_string(&stmts).unwrap_or_default()
    );
}

#[test]
fn terminated_sessions_keep_idle_timeout_sigterm_and_resets() {
    let dir = tmpdir("tls-idle");
    let pki = pki(&dir);
    let b = tls_echo(&pki.server, None);
    let ping = |c: &mut rustls::StreamOwned<rustls::ClientConnection, TcpStream>| {
        c.write_all(b"ping").unwrap();
        let mut got = [0u8; 4];
        c.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ping");
    };
    // --idle-timeout
    let extra = tls_args(&pki, &["--idle-timeout", "1"]);
    let (d, log) = Daemon::logged(&dir, &b.dest(), FMT, &extra, &[]);
    let mut c = tls_client(&pki.ca, d.connect());
    ping(&mut c);
    let lines = wait_lines(&log, 1);
    assert_eq!(lines[0], "idle|4|4|-|terminated|-|-", "{}", d.stderr());
    drop(c);

    // SIGTERM to the child
    let dir = tmpdir("tls-term");
    let (d, log) = Daemon::logged(&dir, &b.dest(), FMT, &tls_args(&pki, &[]), &[]);
    let mut c = tls_client(&pki.ca, d.connect());
    ping(&mut c);
    signal(d.the_child(), libc::SIGTERM);
    let lines = wait_lines(&log, 1);
    assert_eq!(lines[0], "killed|4|4|-|terminated|-|-", "{}", d.stderr());
    drop(c);

    // a reset by the client ends both legs (status ok, as a plain relay)
    let dir = tmpdir("tls-reset");
    let (d, log) = Daemon::logged(&dir, &b.dest(), FMT, &tls_args(&pki, &[]), &[]);
    let mut c = tls_client(&pki.ca, d.connect());
    ping(&mut c);
    set_linger_zero(&c.sock);
    drop(c);
    let lines = wait_lines(&log, 1);
    assert_eq!(lines[0], "ok|4|4|-|terminated|-|-", "{}", d.stderr());
}
