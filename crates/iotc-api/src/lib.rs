//! iotc's REST API: IoTC's operations under `/api.beta/v1` on Redis.

pub mod app;
pub mod aps;
pub mod auth;
pub mod backup;
pub mod command;
pub mod config;
pub mod device_data;
pub mod devices;
pub mod error;
pub mod extract;
pub mod gateways;
pub mod heartbeat;
pub mod learn;
pub mod openapi;
pub mod queue;
pub mod restore;
pub mod stats;
pub mod store;
pub mod system;
pub mod teach;
pub mod time;
pub mod unknown;
pub mod validate;
