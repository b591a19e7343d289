//! The tap of one connection: the relay hands it every chunk once it has
//! written it on (as far as the destination took it at once), and it fans
//! the chunk out to the recorder (data log), the identity sniffer and the
//! `--verbose` first-packet dumps. Identification ends when the sniffer is
//! done or [`IDENTIFY_WINDOW`] after the client's first byte (a client
//! that waits before its first byte is still identified); the open entry
//! is written then, or [`IDENTIFY_WINDOW`] after the connection opened if
//! the client has sent nothing by then (with what is known so far). Once a
//! chunk has been written on whole, the statement audit
//! (`--statement-log`) decodes it and appends the records it completes.
//! Once none of them needs the bytes of a direction any more (not
//! recorded, identified, dumped, no audit), it says so, and the relay
//! splices that direction and reports its chunks by size only: the data
//! log still gets their marker and stamp lines. Never touches the sockets.

use std::time::{Duration, Instant};

use super::Shared;
use super::relay::{Tap, Totals};
use crate::audit::{Auditor, Conn, Record};
use crate::identity::Sniffer;
use crate::log::conninfo::{ConnInfo, Status};
use crate::log::stmtlog::StatementLog;
use crate::record::block::Dir;
use crate::record::sink::Recorder;

/// How long identification may take after the client's first byte; also
/// when the open entry of a client that stays silent is due, after the
/// connection opened.
pub const IDENTIFY_WINDOW: Duration = Duration::from_secs(1);
/// How much of a first packet `--verbose` dumps.
pub const VERBOSE_DUMP_BYTES: usize = 512;

/// The tap of one connection: recorder, sniffer, open entry, verbose dumps.
pub struct SessionTap<'a> {
    shared: &'a Shared<'a>,
    info: &'a mut ConnInfo,
    recorder: Option<Recorder>,
    sniffer: Sniffer,
    opened: Instant,
    client_first: Option<Instant>,
    /// Identification ended and its consequences are done.
    identified: bool,
    /// The open entry was written (or none is wanted).
    open_written: bool,
    dumped_client: bool,
    dumped_server: bool,
    audit: Option<Audit>,
}

/// The live statement audit of one connection (`--statement-log`): fed
/// each chunk once it has been written on, both directions whatever
/// `-l`/`-L` record.
struct Audit {
    auditor: Auditor,
    log: StatementLog,
    conn: Conn,
    /// When the chunk now being relayed in each direction was read
    /// (epoch microseconds): from the client, to the client.
    read_us: [i64; 2],
    records: Vec<Record>,
    /// Epoch minute and the UTC offset in force then.
    tz_cache: (i64, i32),
}

impl Audit {
    fn write(&mut self) {
        // the UTC offset looked up once a minute, not once a record
        let cache = std::cell::Cell::new(self.tz_cache);
        let tz = |secs: i64| {
            let (minute, offset) = cache.get();
            if minute == secs.div_euclid(60) {
                return offset;
            }
            let offset = crate::os::time::local_offset(secs);
            cache.set((secs.div_euclid(60), offset));
            offset
        };
        // the date and time to the second made once per second, as the
        // reader does; one line buffer for the batch
        let mut times = crate::audit::TimeText::new(&tz);
        let mut line = String::with_capacity(512);
        for r in self.records.drain(..) {
            line.clear();
            crate::audit::push_json(&mut line, &r, &self.conn, &mut times);
            self.log.write(&line);
        }
        self.tz_cache = cache.get();
    }
}

fn slot(dir: Dir) -> usize {
    match dir {
        Dir::FromClient => 0,
        Dir::ToClient => 1,
    }
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

impl<'a> SessionTap<'a> {
    /// The tap of a connection that opened just now.
    pub fn new(
        shared: &'a Shared<'a>,
        info: &'a mut ConnInfo,
        recorder: Option<Recorder>,
    ) -> SessionTap<'a> {
        let conn = Conn {
            conn: Some(info.conn),
            client_ip: Some(crate::config::addr::ip_text(info.client.ip())),
            client_port: Some(info.client.port()),
        };
        let audit = shared.config.statement_log.as_ref().map(|path| Audit {
            auditor: Auditor::new(shared.config.redact),
            log: StatementLog::new(Some(path.clone()), shared.config.syslog),
            conn,
            read_us: [0; 2],
            records: Vec::new(),
            tz_cache: (i64::MIN, 0),
        });
        SessionTap {
            shared,
            info,
            recorder,
            sniffer: Sniffer::new(),
            opened: Instant::now(),
            client_first: None,
            identified: false,
            open_written: shared.config.open_format.is_none(),
            dumped_client: false,
            dumped_server: false,
            audit,
        }
    }

    /// The relay ended: identification ends now if it has not yet (the
    /// open entry is written), and the recorder is handed back to be
    /// finished.
    pub fn finish(&mut self, totals: &Totals) -> Option<Recorder> {
        if !self.identified {
            self.sniffer.expire();
            self.identified(totals);
        }
        if let Some(a) = &mut self.audit {
            a.auditor.finish(&mut a.records);
            a.write();
        }
        self.recorder.take()
    }

    /// When identification ends at the latest: the window after the
    /// client's first byte (none while the client is silent).
    fn identify_deadline(&self) -> Option<Instant> {
        if self.identified {
            return None;
        }
        self.client_first.map(|t| t + IDENTIFY_WINDOW)
    }

    /// When the open entry of a client silent so far is due.
    fn open_deadline(&self) -> Option<Instant> {
        if self.open_written || self.client_first.is_some() {
            return None;
        }
        Some(self.opened + IDENTIFY_WINDOW)
    }

    /// Identification ended: take the fields, write the open entry if it
    /// is still due.
    fn identified(&mut self, totals: &Totals) {
        if self.identified {
            return;
        }
        self.identified = true;
        self.info.identity = self.sniffer.identity().clone();
        crate::log::published::identity(&self.info.identity);
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
        self.write_open(totals);
    }

    /// Write the open entry, once, with the identity known so far (its
    /// byte counts: what was read from each side so far).
    fn write_open(&mut self, totals: &Totals) {
        if std::mem::replace(&mut self.open_written, true) {
            return;
        }
        if let Some(template) = &self.shared.config.open_format {
            let mut open = self.info.clone();
            open.identity = self.sniffer.identity().clone();
            open.status = Status::Open;
            open.end = crate::os::time::now_local();
            open.bytes_in = totals.from_client;
            open.bytes_out = totals.from_server;
            crate::log::connlog::append(self.shared.config, template, &open);
        }
    }

    fn check_sniffer(&mut self, totals: &Totals) {
        if !self.identified && self.sniffer.is_done() {
            self.identified(totals);
        }
    }
}

impl Tap for SessionTap<'_> {
    fn chunk(&mut self, dir: Dir, data: &[u8], totals: &Totals) {
        // one clock reading for the data-log marker and the audit record
        let read_us = self.audit.as_mut().map(|a| {
            let t = now_us();
            a.read_us[slot(dir)] = t;
            u64::try_from(t).unwrap_or(0)
        });
        if let Some(r) = self.recorder.as_mut() {
            r.chunk_read_at(dir, data, read_us);
        }
        match dir {
            Dir::FromClient => {
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
                if self.shared.config.verbose && !self.dumped_server {
                    self.dumped_server = true;
                    dump(self.info.conn, "server", data);
                }
                if !self.sniffer.is_done() {
                    self.sniffer.server(data);
                }
            }
        }
        // for a crashed entry: what was read for the client counts as sent
        crate::log::published::bytes(totals.from_client, totals.from_server);
        self.check_sniffer(totals);
    }

    fn wants_bytes(&self, dir: Dir) -> bool {
        let dumping = self.shared.config.verbose
            && match dir {
                Dir::FromClient => !self.dumped_client,
                Dir::ToClient => !self.dumped_server,
            };
        !self.identified
            || self.audit.is_some()
            || dumping
            || self.recorder.as_ref().is_some_and(|r| r.records(dir))
    }

    fn moved(&mut self, dir: Dir, n: usize, totals: &Totals) {
        // only once identification is over and no payload of `dir` is
        // recorded: marker and stamp lines are all the data log gets
        if let Some(r) = self.recorder.as_mut() {
            r.chunk_read_at(dir, &[], None);
        }
        let _ = n;
        crate::log::published::bytes(totals.from_client, totals.from_server);
    }

    fn forwarded(&mut self, dir: Dir, data: &[u8]) {
        if let Some(a) = &mut self.audit {
            a.auditor
                .feed(dir, a.read_us[slot(dir)], data, &mut a.records);
            if !a.records.is_empty() {
                a.write();
            }
        }
    }

    fn eof(&mut self, dir: Dir, totals: &Totals) {
        match dir {
            Dir::FromClient => self.sniffer.client_eof(),
            Dir::ToClient => self.sniffer.server_eof(),
        }
        self.check_sniffer(totals);
    }

    fn deadline(&self) -> Option<Instant> {
        let rec = self.recorder.as_ref().and_then(|r| r.deadline());
        [rec, self.identify_deadline(), self.open_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    fn tick(&mut self, now: Instant, totals: &Totals) {
        if let Some(r) = self
            .recorder
            .as_mut()
            .filter(|r| r.deadline().is_some_and(|d| d <= now))
        {
            r.flush();
        }
        if self.identify_deadline().is_some_and(|d| d <= now) {
            self.sniffer.expire();
            self.identified(totals);
        }
        if self.open_deadline().is_some_and(|d| d <= now) {
            // the client is silent: identification goes on
            self.write_open(totals);
        }
    }
}

fn dump(conn: u64, side: &str, data: &[u8]) {
    let shown = &data[..data.len().min(VERBOSE_DUMP_BYTES)];
    crate::log::info(&format!(
        "conn {conn}: first {side} packet, {} bytes:\n{}",
        data.len(),
        crate::log::hexdump::hexdump(shown).trim_end()
    ));
}
