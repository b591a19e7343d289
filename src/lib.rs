//! ipprotd: a TCP proxy that records connections.
//!
//! The data path of one connection, in the order of the modules below. The
//! command line becomes a validated [`config::Config`]. In the foreground,
//! the parent runs its start-time checks, binds the listener, opens the pid
//! file and detaches ([`daemon`]); then its loop accepts a connection,
//! checks the allow-list and forks a child. The child ([`session`])
//! connects to the destination with failover and relays between the two
//! sockets with fixed buffers; its tap hands every chunk to the data-log
//! recorder ([`record`]) and to the identity sniffer ([`identity`]), and,
//! when the sniffer is done, writes the open entry. When the relay ends the
//! child finishes the data log, writes one connection-log entry ([`log`])
//! and execs the hook.
//!
//! Beside the path: [`audit`] (statements seen by the tap), [`report`]
//! (reading connection logs back), [`cat`] (the `ipprotcat` reader, sharing
//! `record::block`). Everything touching the OS below std and nix is in
//! [`os`], the only module with `unsafe`.

// the command line, the validated Config, addresses and the allow-list
#[cfg(test)]
mod testutil;

pub mod config;
// the one error enum for start and usage errors
pub mod error;
// diagnostics, and the connection log with its template and time formats
pub mod log;
// raw libc: processes, sockets, memory maps, time, syslog, signals
pub mod os;
// the parent: preflight, listen, pid file, detach, the accept/fork loop
pub mod daemon;
// the child: upstream, relay, tap, hook
pub mod session;
// the data log: block format and the file writer
pub mod record;
// the identity sniffer and its protocol decoders
pub mod identity;
// statement audit, fed by the tap
pub mod audit;
// usage reports from connection logs
pub mod report;
// the ipprotcat reader of data logs
pub mod cat;
