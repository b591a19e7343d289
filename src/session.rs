//! The child, top to bottom: connect to the destination, create the data
//! log, relay with the recorder and the identity sniffer on the tap, write
//! the open and close entries, then exec the hook. Never returns.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::addr::{ip_text, sock_text};
use crate::config::Config;
use crate::conninfo::{ConnInfo, Status};
use crate::identity::Sniffer;
use crate::record::block::Dir;
use crate::record::sink::{self, Recorder};
use crate::relay::{self, End, Tap};
use crate::signals::SelfPipe;
use crate::sys::SharedBits;
use crate::timefmt::LocalTime;

/// How long identification may take after the client's first byte (or
/// after the connection opened, if the client stays silent).
pub const IDENTIFY_WINDOW: Duration = Duration::from_secs(1);
/// How much of a first packet `--verbose` dumps.
pub const VERBOSE_DUMP_BYTES: usize = 512;

/// What stays the same for every connection of a run.
pub struct Shared<'a> {
    pub config: &'a Config,
    /// FLEXlm vendor ports already announced in this run.
    pub vendor_ports: Option<&'a SharedBits>,
}

/// The tap of one connection: recorder, sniffer, open entry, verbose dumps.
struct SessionTap<'a> {
    shared: &'a Shared<'a>,
    info: &'a mut ConnInfo,
    recorder: Option<Recorder>,
    sniffer: Sniffer,
    opened: Instant,
    client_first: Option<Instant>,
    /// Identification ended and its consequences (open entry) are done.
    identified: bool,
    dumped_client: bool,
    dumped_server: bool,
    totals: (u64, u64),
}

impl SessionTap<'_> {
    fn identify_deadline(&self) -> Option<Instant> {
        if self.identified {
            return None;
        }
        Some(self.client_first.unwrap_or(self.opened) + IDENTIFY_WINDOW)
    }

    /// Identification ended: take the fields, write the open entry.
    fn identified(&mut self) {
        if self.identified {
            return;
        }
        self.identified = true;
        self.info.identity = self.sniffer.identity().clone();
        if let Some(port) = self.sniffer.vendor_port_seen() {
            let first = self
                .shared
                .vendor_ports
                .is_none_or(|b| b.set_first(usize::from(port)));
            if first {
                crate::log::notice(&format!(
                    "FLEXlm vendor daemon port {port} seen in lmgrd's reply: clients connect to it directly; \
                     pin it with PORT={port} on the VENDOR line of the license file and run a second ipprotd on port {port}"
                ));
            }
        }
        if self.shared.config.open_format.is_some() {
            let mut open = self.info.clone();
            open.status = Status::Open;
            open.end = crate::sys::now_local();
            open.bytes_in = self.totals.0;
            open.bytes_out = self.totals.1;
            crate::connlog::append(self.shared.config, &open, true);
        }
    }

    fn check_sniffer(&mut self) {
        if !self.identified && self.sniffer.is_done() {
            self.identified();
        }
    }
}

impl Tap for SessionTap<'_> {
    fn chunk(&mut self, dir: Dir, data: &[u8]) {
        if let Some(r) = self.recorder.as_mut() {
            r.chunk(dir, data);
        }
        match dir {
            Dir::FromClient => {
                self.totals.0 += data.len() as u64;
                if self.client_first.is_none() {
                    self.client_first = Some(Instant::now());
                }
                if self.shared.config.verbose && !self.dumped_client {
                    self.dumped_client = true;
                    dump(self.info.conn, "client", data);
                }
                if !self.sniffer.is_done() {
                    self.sniffer.client(data);
                }
            }
            Dir::ToClient => {
                self.totals.1 += data.len() as u64;
                if self.shared.config.verbose && !self.dumped_server {
                    self.dumped_server = true;
                    dump(self.info.conn, "server", data);
                }
                if !self.sniffer.is_done() {
                    self.sniffer.server(data);
                }
            }
        }
        self.check_sniffer();
    }

    fn eof(&mut self, dir: Dir) {
        match dir {
            Dir::FromClient => self.sniffer.client_eof(),
            Dir::ToClient => self.sniffer.server_eof(),
        }
        self.check_sniffer();
    }

    fn deadline(&self) -> Option<Instant> {
        let rec = self.recorder.as_ref().and_then(|r| r.deadline());
        match (rec, self.identify_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn tick(&mut self, now: Instant) {
        if let Some(r) = self
            .recorder
            .as_mut()
            .filter(|r| r.deadline().is_some_and(|d| d <= now))
        {
            r.flush();
        }
        if self.identify_deadline().is_some_and(|d| d <= now) {
            self.sniffer.expire();
            self.identified();
        }
    }
}

fn dump(conn: u64, side: &str, data: &[u8]) {
    let shown = &data[..data.len().min(VERBOSE_DUMP_BYTES)];
    crate::log::info(&format!(
        "conn {conn}: first {side} packet, {} bytes:\n{}",
        data.len(),
        crate::hexdump::hexdump(shown).trim_end()
    ));
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

/// Run one connection in the child; returns the exit status of the child
/// (the hook replaced the process if it ran).
pub fn run(
    pipe: SelfPipe,
    client: TcpStream,
    peer: SocketAddr,
    conn: u64,
    start: LocalTime,
    shared: &Shared,
) -> i32 {
    let config = shared.config;
    let local = client.local_addr().unwrap_or(peer);
    let mut info = ConnInfo::new(start, peer, local, conn, Status::Ok);
    tune(&client);

    let server = match crate::upstream::connect_any(&config.dests, config.connect_timeout, &pipe) {
        Ok((s, a)) => {
            info.dest = Some(a);
            s
        }
        Err(st) => {
            info.status = st;
            info.end = crate::sys::now_local();
            if config.verbose {
                close_line(&info);
            }
            crate::connlog::append(config, &info, false);
            return 0;
        }
    };
    tune(&server);
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
            match Recorder::create(d, path.clone()) {
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
    let mut tap = SessionTap {
        shared,
        info: &mut info,
        recorder,
        sniffer: Sniffer::new(),
        opened: Instant::now(),
        client_first: None,
        identified: false,
        dumped_client: false,
        dumped_server: false,
        totals: (0, 0),
    };
    let (end, totals) = relay::run(
        &client,
        &server,
        config.bufsize,
        config.idle_timeout,
        &pipe,
        &mut tap,
    );
    drop(client);
    drop(server);
    if !tap.identified {
        tap.sniffer.expire();
        tap.identified();
    }
    if let Some(r) = tap.recorder.take() {
        record_error |= !r.finish();
    }
    info.end = crate::sys::now_local();
    info.bytes_in = totals.from_client;
    info.bytes_out = totals.to_client;
    info.status = match end {
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
    crate::connlog::append(config, &info, false);

    match (&config.hook, &info.file) {
        (Some(h), Some(f)) => crate::hook::exec(h, &info, &f.to_string_lossy()),
        _ => 0,
    }
}

/// TCP keepalive (dead peers end the child) and no Nagle delay (we only
/// pass on what the peers already decided to send).
fn tune(s: &TcpStream) {
    use nix::sys::socket::{setsockopt, sockopt};
    let _ = setsockopt(s, sockopt::KeepAlive, &true);
    let _ = s.set_nodelay(true);
}
