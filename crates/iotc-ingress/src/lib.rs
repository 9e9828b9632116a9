//! iotc-ingress: Aruba APs authenticate at `/auth/aruba` and stream `Telemetry` messages over
//! the `/aruba` WebSocket; EnOcean telegrams go, every AP's copy, to the Redis telegram
//! stream (the engines drop the copies), and AP health to the gateway registry and the
//! gateway event stream.

mod append;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod frames;
pub mod gate;
pub mod gateway;
mod group;
pub mod limits;
pub mod register;
pub mod server;
pub mod session;
pub mod south;
pub mod status;
pub mod store;
pub mod tls;
pub mod tokens;
pub mod ws;

use config::Config;
use store::Store;
use tokens::TokenStore;

/// What every request and connection shares.
pub struct App {
    pub config: Config,
    pub store: Store,
    pub tokens: TokenStore,
    /// The AP register, when enforced (`IOTC_AP_REGISTER`).
    pub register: Option<register::Register>,
    /// Southbound messages (commands) for the APs connected here.
    pub south: std::sync::Arc<south::South>,
    /// Losses and backpressure, for the heartbeat.
    pub status: std::sync::Arc<status::Status>,
    /// Turns true when the process shuts down; AP connections then close with 1001.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}
