//! What the iotc services share: Redis keys and the telegram stream entry, the device and
//! gateway model, IoTC's JSON payloads, configuration helpers, metrics and TLS files.

pub mod aps;
pub mod backoff;
pub mod bus;
pub mod command;
pub mod health;
pub mod keys;
pub mod model;
pub mod ops;
pub mod partition;
pub mod payload;
pub mod recent;
pub mod redis;
pub mod text;
pub mod tls;
