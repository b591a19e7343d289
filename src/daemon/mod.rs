//! The parent process, in the order it runs: start-time checks
//! (`preflight`), the listening socket (`listen`), the pid file
//! (`pidfile`), detaching and the privilege drop (`detach`), then the loop
//! that accepts and forks one child per connection (`server`). Everything
//! here runs in the one long-lived process; the children start in
//! `session`.

pub mod activation;
pub mod detach;
pub mod listen;
pub mod pidfile;
pub mod preflight;
pub mod restart;
pub mod server;
