//! What the ingress reports in its heartbeat (`iotc:heartbeat:ingress`, shown by the API's
//! `/system/health`): whether APs are being pushed back, and telegrams lost.

use std::sync::atomic::{AtomicU64, Ordering};

/// A loss stays visible in the heartbeat's status this long.
pub const LOSS_VISIBLE_S: u64 = 600;
/// Backpressure stays visible this long after the last message that had to wait.
pub const BACKPRESSURE_VISIBLE_S: u64 = 30;

#[derive(Default)]
pub struct Status {
    lost: AtomicU64,
    refused: AtomicU64,
    pushbacks: AtomicU64,
    last_loss: AtomicU64,
    last_pushback: AtomicU64,
}

impl Status {
    /// Telegrams the ingress had accepted from an AP and could not store (Redis refused the
    /// write or stayed unreachable).
    pub fn lost(&self, telegrams: u64, now: u64) {
        self.lost.fetch_add(telegrams, Ordering::Relaxed);
        self.last_loss.store(now, Ordering::Relaxed);
    }

    /// A message had to wait for room in the telegram stream.
    pub fn pushed_back(&self, now: u64) {
        self.pushbacks.fetch_add(1, Ordering::Relaxed);
        self.last_pushback.store(now, Ordering::Relaxed);
    }

    /// Telegrams not taken because the stream stayed full (the AP was told to retry).
    pub fn refused(&self, telegrams: u64) {
        self.refused.fetch_add(telegrams, Ordering::Relaxed);
    }

    /// `degraded` after a recent loss, `backpressure` while APs are held back, else
    /// `running`.
    pub fn state(&self, now: u64) -> &'static str {
        let recent = |at: &AtomicU64, window: u64| {
            let at = at.load(Ordering::Relaxed);
            at != 0 && now.saturating_sub(at) < window
        };
        if recent(&self.last_loss, LOSS_VISIBLE_S) {
            "degraded"
        } else if recent(&self.last_pushback, BACKPRESSURE_VISIBLE_S) {
            "backpressure"
        } else {
            "running"
        }
    }

    /// The heartbeat value.
    pub fn heartbeat(&self, now: u64) -> serde_json::Value {
        serde_json::json!({
            "status": self.state(now),
            "timestamp": now,
            "telegramsLost": self.lost.load(Ordering::Relaxed),
            "telegramsRefused": self.refused.load(Ordering::Relaxed),
            "backpressureWaits": self.pushbacks.load(Ordering::Relaxed),
            "lastLoss": self.last_loss.load(Ordering::Relaxed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_outranks_backpressure_and_fades() {
        let status = Status::default();
        assert_eq!(status.state(1000), "running");
        status.pushed_back(1000);
        assert_eq!(status.state(1010), "backpressure");
        status.lost(3, 1010);
        assert_eq!(status.state(1020), "degraded");
        assert_eq!(status.heartbeat(1020)["telegramsLost"], 3);
        assert_eq!(status.state(1010 + LOSS_VISIBLE_S), "running");
    }
}
