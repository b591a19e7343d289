//! The integration tests of ipprotd and ipprotcat: ONE test crate (one
//! build, one link), one module per topic, the shared set-up in
//! [`harness`]. Every test starts the real binaries on loopback in front
//! of backends written in the test or real servers. Run one topic with
//! `cargo test --test it <module>::`, e.g. `cargo test --test it relay::`.
//! A new topic is a new `tests/it/<topic>.rs` listed below, never a new
//! top-level `tests/*.rs` crate.

mod harness;
mod pcap;
mod vectors;

mod activation;
mod audit_mysql;
mod audit_postgres;
mod backoff;
mod cli;
mod connlog;
mod daemon;
mod datalog;
mod docs;
mod hook;
mod hooks;
mod identity;
mod installed;
mod integrity;
mod ipprotcat;
mod ipprotcat_e2e;
mod parent;
mod privileges;
mod relay;
mod report;
mod report_flexlm;
mod restart;
mod rsyslog;
mod smoke;
mod splice;
mod syslog;
mod tls;
mod urgent;
