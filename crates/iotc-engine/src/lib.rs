//! iotc-engine as a library, so that integration tests reach its modules.

pub mod config;
pub mod counting;
pub mod counting_cluster;
pub mod decode;
pub mod devices;
pub mod egress;
pub mod engine;
pub mod heartbeat;
pub mod lease;
pub mod periodic;
pub mod rlc;
pub mod secure;
pub mod stream;
pub mod telemetry;
