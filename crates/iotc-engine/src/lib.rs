//! iotc-engine as a library, so that integration tests reach its modules.

pub mod config;
pub mod control;
pub mod counting;
pub mod counting_cluster;
pub mod decode;
pub mod dedup;
pub mod device_counts;
pub mod device_pack;
pub mod devices;
pub mod egress;
pub mod engine;
pub mod heartbeat;
pub mod lease;
pub mod live;
pub mod periodic;
pub mod pipeline;
pub mod rlc;
pub mod secure;
pub mod sensor_info;
pub mod stream;
pub mod telemetry;
