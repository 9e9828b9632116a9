//! iotc's REST API: IoTC's operations under `/api.beta/v1` on Redis.

pub mod app;
pub mod aps;
pub mod auth;
pub mod availability;
pub mod backup;
pub mod config;
pub mod console;
pub mod device_data;
pub mod devices;
pub mod error;
pub mod extract;
pub mod gateways;
pub mod heartbeat;
pub mod learn;
pub mod list_cache;
pub mod openapi;
pub mod restore;
pub mod restore_stream;
pub mod staging;
pub mod stats;
pub mod store;
pub mod system;
pub mod time;
pub mod validate;
