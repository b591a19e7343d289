//! Recording: the block format (pure, shared with `ipprotcat`) and the
//! per-connection data-log file.

pub mod block;
pub mod sink;
