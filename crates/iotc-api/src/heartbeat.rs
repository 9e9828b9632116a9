//! The API's heartbeat (`iotc:heartbeat:api`), read by `/system/health`.

use std::time::Duration;

use crate::store::Store;

/// How often the heartbeat is written, and how long one stays valid.
pub const INTERVAL: Duration = Duration::from_secs(10);
pub const TTL_SECS: u64 = 30;

/// Writes the heartbeat every [`INTERVAL`] until the task is dropped.
pub async fn run(store: Store) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        let now = iotc_core::ops::unix_seconds();
        match store.write_heartbeat("api", now, TTL_SECS).await {
            Ok(()) if failing => {
                tracing::info!("heartbeat written again: redis is back");
                failing = false;
            }
            Ok(()) => {}
            Err(e) if !failing => {
                tracing::warn!(error = %e, "cannot write heartbeat");
                failing = true;
            }
            Err(_) => {}
        }
    }
}
