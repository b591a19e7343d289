//! ipprotd: a TCP proxy that records connections.
//!
//! The data path, in the order of the modules below: the command line
//! becomes a [`config::Config`] (`cli`); start-time checks (`preflight`),
//! the listening socket (`listen`), the pid file and detaching (`pidfile`,
//! `daemon`) happen in the foreground; then the parent loop (`server`)
//! accepts, checks the allow-list (`acl`) and forks one child per
//! connection. The child (`session`) connects to the destination
//! (`upstream`), relays with two fixed buffers (`relay`), hands every chunk
//! to the recorder (`record`) and the identity sniffer (`identity`), writes
//! one connection-log entry (`template`, `connlog`) and execs the hook
//! (`hook`).
//!
//! Pure modules (no I/O, no `unsafe`): `addr`, `acl`, `timefmt`, `template`,
//! `conninfo`, `identity`, `record::block`, `hexdump`. The reader
//! `ipprotcat` (`cat`, `src/bin/ipprotcat.rs`) shares `record::block`. `unsafe` lives only in
//! `sys` and `signals`.

pub mod acl;
pub mod audit;
pub mod addr;
pub mod cat;
pub mod cli;
pub mod config;
pub mod conninfo;
pub mod connlog;
pub mod daemon;
pub mod error;
pub mod hexdump;
pub mod hook;
pub mod identity;
pub mod listen;
pub mod log;
pub mod pidfile;
pub mod preflight;
pub mod record;
pub mod report;
pub mod relay;
pub mod server;
pub mod session;
pub mod signals;
pub mod sys;
pub mod template;
pub mod timefmt;
pub mod upstream;
