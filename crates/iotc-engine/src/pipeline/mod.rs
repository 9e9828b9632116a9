//! The engine's pipeline stages (see `crate::engine` for how they are wired):
//!
//! - [`read`]: read the next batch while the one before is prepared;
//! - [`prepare`]: decode a batch, verify secure telegrams, count in Redis (one script),
//!   assemble the messages ([`assemble`]);
//! - [`publish`]: several batches in flight on the egress at once, so the broker's window
//!   stays full; batches leave in the order they came;
//! - [`commit`]: most-recent lists, first-time markers, dead letters and XACK of the confirmed
//!   batches waiting, in one pipeline.

pub mod assemble;
pub mod batch;
pub mod commit;
pub mod prepare;
pub mod publish;
pub mod read;
pub mod retry;
