//! The processing pipeline: four stages in their own tasks, joined by bounded channels.
//!
//! ```text
//! read ──(1 batch)──▶ prepare ──(2 batches)──▶ publish (8 batches in flight) ──▶ commit ──┐
//!  XREADGROUP,         decode, secure,            the egress window stays full    recent lists, markers,
//!  claims              count (1 script), assemble                                 XACK (1 pipeline)
//!                        ▲─────────────────── acknowledged ids, marked devices ───────────┘
//! ```
//!
//! While one batch waits for the broker's acknowledgements the next ones are read, counted
//! and sent. An entry is acknowledged only after every message it produced was confirmed:
//! delivery stays at-least-once, and batches are committed in the order they were read
//! (see docs/engine.md).

use std::sync::Arc;

use iotc_core::redis::Redis;
use tokio::sync::{mpsc, watch};

use crate::decode::Decoder;
use crate::device_counts::DeviceCounts;
use crate::egress::Egress;
use crate::pipeline::{commit, prepare::Prepare, publish, read};
use crate::secure;
use crate::stream::Reader;

/// Counted batches waiting for the publish stage.
const PREPARED_AHEAD: usize = 2;

pub struct Engine {
    pub redis: Redis,
    pub reader: Reader,
    pub decoder: Decoder,
    /// Verification of secure telegrams and secure teach-ins (needs Redis per telegram).
    pub secure: secure::Stage,
    pub egress: Arc<Egress>,
    pub shutdown: watch::Receiver<bool>,
    /// Home Assistant state, availability and button events, when enabled.
    pub ha: Option<crate::egress::ha::Ha>,
    /// Devices whose counters are kept in memory at most.
    pub counter_cache: usize,
}

impl Engine {
    /// Runs until shutdown is requested and the stages have stopped.
    pub async fn run(self) {
        let (to_publish, prepared) = mpsc::channel(PREPARED_AHEAD);
        let (to_commit, confirmed) = mpsc::channel(publish::BATCHES_IN_FLIGHT);
        let (back, committed) = mpsc::unbounded_channel();
        let publishing = tokio::spawn(publish::run(
            self.egress.clone(),
            prepared,
            to_commit,
            self.shutdown.clone(),
        ));
        let committing = tokio::spawn(commit::run(
            self.redis.clone(),
            confirmed,
            back,
            self.shutdown.clone(),
        ));
        let dedup = self.reader.dedup.clone();
        let partitions = self.reader.partitions();
        let (batches, reading) = read::spawn(self.reader, self.shutdown.clone());
        Prepare {
            redis: self.redis,
            batches,
            dedup,
            partitions,
            decoder: self.decoder,
            secure: self.secure,
            egress: self.egress,
            shutdown: self.shutdown,
            ha: self.ha,
            out: to_publish,
            committed,
            in_flight: Default::default(),
            first_pending: Default::default(),
            counts: DeviceCounts::new(self.counter_cache),
        }
        .run()
        .await;
        let _ = reading.await;
        let _ = publishing.await;
        let _ = committing.await;
    }
}
