//! The child, top to bottom: connect to the destination (`upstream`),
//! create the data log, relay (`relay`) with the recorder and the identity
//! sniffer on the tap (`tap`), write the close entry, then exec the hook
//! (`hook`). Runs only in a forked child; [`run`] returns only the child's
//! exit status.

pub mod hook;
pub mod relay;
pub mod tap;
pub mod tls;
pub mod upstream;

use std::net::{SocketAddr, TcpStream};

use crate::config::Config;
use crate::config::addr::{ip_text, sock_text};
use crate::log::conninfo::{ConnInfo, Status};
use crate::log::timefmt::LocalTime;
use crate::os::mmap::SharedBits;
use crate::os::signals::{self, SelfPipe};
use crate::os::socket;
use crate::record::sink::{self, Recorder};
use relay::End;
use tap::SessionTap;

/// What stays the same for every connection of a run.
pub struct Shared<'a> {
    pub config: &'a Config,
    /// FLEXlm vendor ports already announced in this run.
    pub vendor_ports: Option<&'a SharedBits>,
    /// [`upstream::numeric`] of the `-P` list, parsed in the parent.
    pub numeric_dests: &'a [Option<SocketAddr>],
}

fn close_line(info: &ConnInfo) {
    crate::log::info(&format!(
        "close {} {} {} in {} out {} secs {}",
        info.conn,
        sock_text(info.client),
        info.status.as_str(),
        info.bytes_in,
        info.bytes_out,
        info.secs()
    ));
}

/// The accepted client connection, as the parent hands it over.
pub struct Accepted {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    /// Our address of the connection (the parent knows it already).
    pub local: SocketAddr,
    /// Keepalive and no-Nagle are set already (inherited from the
    /// listener).
    pub tuned: bool,
}

/// Run one connection in the child; returns the exit status of the child
/// (the hook replaced the process if it ran).
pub fn run(pipe: SelfPipe, client: Accepted, conn: u64, start: LocalTime, shared: &Shared) -> i32 {
    let config = shared.config;
    let Accepted {
        stream: client,
        peer,
        local,
        tuned,
    } = client;
    let mut info = ConnInfo::new(start, peer, local, conn, Status::Ok);
    if !tuned {
        socket::tune_relayed(&client);
    }

    let server = match upstream::connect_any(
        &config.dests,
        shared.numeric_dests,
        config.connect_timeout,
        &pipe,
        &signals::term_pending,
    ) {
        Ok((s, a)) => {
            info.dest = Some(a);
            crate::log::published::dest(a);
            s
        }
        Err(st) => {
            info.status = st;
            info.end = crate::os::time::now_local();
            if config.verbose {
                close_line(&info);
            }
            crate::log::connlog::append(config, &config.format, &info);
            return 0;
        }
    };
    socket::tune_relayed(&server);
    if config.verbose {
        crate::log::info(&format!(
            "open {conn} {} -> {}",
            sock_text(peer),
            info.dest.map(sock_text).unwrap_or_default()
        ));
    }

    // the data log exists only once the destination accepted
    let mut record_error = false;
    let recorder = match &config.datalog {
        None => None,
        Some(d) => {
            let path = sink::file_name(d, &start, conn, &ip_text(peer.ip()));
            match Recorder::create(d, path.clone(), config.shows_sha256()) {
                Ok(r) => {
                    info.file = Some(path);
                    Some(r)
                }
                Err(e) => {
                    crate::log::error(&format!(
                        "-f: cannot create data log {}: {e}; relaying unrecorded",
                        path.display()
                    ));
                    record_error = true;
                    None
                }
            }
        }
    };

    // both sockets are non-blocking already (accept4, SOCK_NONBLOCK)
    let dest_addr = info.dest;
    let mut tap = SessionTap::new(shared, &mut info, recorder);
    // TLS termination takes the session if its first bytes ask for TLS;
    // otherwise (and without --tls-cert) the plain relay, untouched
    let terminated = tls::setup().and_then(|t| {
        let ctx = tls::Ctx {
            conn,
            dest_host: dest_addr
                .map(|a| tls::dest_host(&config.dests, a))
                .unwrap_or(""),
            bufsize: config.bufsize,
            idle: config.idle_timeout,
            handshake_timeout: config.connect_timeout,
            pipe: &pipe,
            stop: &signals::term_pending,
        };
        tls::run(t, &client, &server, &ctx, &mut tap)
    });
    let mut tls_error = false;
    let mut tls_state = None;
    let (end, totals) = match terminated {
        Some(r) => {
            tls_error = r.tls_error;
            if r.terminated {
                tls_state = Some(crate::log::conninfo::TLS_TERMINATED);
            }
            (r.end, r.totals)
        }
        None => relay::run(
            &client,
            &server,
            config.bufsize,
            config.idle_timeout,
            &pipe,
            &signals::term_pending,
            &mut tap,
        ),
    };
    drop(client);
    drop(server);
    if let Some(r) = tap.finish(&totals) {
        let done = r.finish();
        record_error |= !done.ok;
        info.sha256 = done.sha256;
    }
    info.end = crate::os::time::now_local();
    info.bytes_in = totals.from_client;
    info.bytes_out = totals.to_client;
    info.tls = tls_state;
    info.status = match end {
        _ if tls_error => Status::TlsError,
        End::Killed => Status::Killed,
        End::Idle => Status::Idle,
        _ if record_error => Status::RecordError,
        End::Failed(e) => {
            crate::log::error(&format!("conn {conn}: relay failed: {e}"));
            Status::Error
        }
        End::Closed | End::Reset => Status::Ok,
    };
    if config.verbose {
        close_line(&info);
    }
    crate::log::connlog::append(config, &config.format, &info);

    match (&config.hook, &info.file) {
        (Some(h), Some(f)) => hook::exec(h, &info, &f.to_string_lossy()),
        _ => 0,
    }
}
