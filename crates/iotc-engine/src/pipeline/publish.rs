//! The publish stage: up to [`BATCHES_IN_FLIGHT`] batches are delivered at once, so the
//! egress always has messages waiting for the broker's window (QoS 1/2) instead of waiting
//! for a whole batch's acknowledgements before sending the next. Batches leave for the
//! commit stage in the order they were read, each once every egress confirmed all of its
//! messages.

use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use iotc_core::backoff::Backoff;
use tokio::sync::{mpsc, watch};
use tracing::warn;

use super::batch::{Confirmed, Prepared};
use super::retry;
use crate::egress::{Delivery, Egress};

/// Batches being delivered at once. With the default batch of 256 that is about 2,000
/// messages: more than the MQTT window (100 by default), so it never runs dry.
pub const BATCHES_IN_FLIGHT: usize = 8;

/// Runs until the prepare stage is gone and every batch in flight is settled, or shutdown.
pub async fn run(
    egress: Arc<Egress>,
    mut input: mpsc::Receiver<Prepared>,
    out: mpsc::Sender<Confirmed>,
    shutdown: watch::Receiver<bool>,
) {
    let mut flying = FuturesOrdered::new();
    let mut open = true;
    loop {
        let room = flying.len() < BATCHES_IN_FLIGHT;
        tokio::select! {
            biased;
            Some(done) = flying.next(), if !flying.is_empty() => {
                let Some(confirmed) = done else { return }; // stopping
                if out.send(confirmed).await.is_err() {
                    return;
                }
            }
            next = input.recv(), if open && room => match next {
                Some(p) => flying.push_back(deliver(egress.clone(), p, shutdown.clone())),
                None => open = false,
            },
            else => return,
        }
    }
}

/// Publishes one batch until every message is confirmed or refused for good; `None` on
/// shutdown (its entries stay pending for the next start).
async fn deliver(
    egress: Arc<Egress>,
    prepared: Prepared,
    mut shutdown: watch::Receiver<bool>,
) -> Option<Confirmed> {
    let mut delivery = Delivery::new(prepared.messages);
    let mut backoff = Backoff::default();
    loop {
        let result = tokio::select! {
            r = egress.deliver(&mut delivery) => r,
            _ = shutdown.changed() => return None,
        };
        match result {
            Ok(()) => break,
            Err(e) => {
                metrics::counter!("iotc_engine_egress_retries_total").increment(1);
                warn!(error = %e, "egress did not confirm; publishing again");
            }
        }
        if *shutdown.borrow() {
            return None;
        }
        retry::pause(&mut shutdown, backoff.next_pause()).await;
    }
    Some(Confirmed {
        delivery,
        after: prepared.after,
    })
}
