//! The publish stage: up to [`BATCHES_IN_FLIGHT`] batches are delivered at once, so the
//! egress always has messages waiting for the broker's window (QoS 1/2) instead of waiting
//! for a whole batch's acknowledgements before sending the next. Batches leave for the
//! commit stage in the order they were read, each once every egress confirmed all of its
//! messages.
//!
//! When a batch is not confirmed in time (broker down or slow), the batches in flight are
//! let finish and the unconfirmed ones are sent again one batch after the other, in order,
//! with back-off; pipelining resumes once they are all confirmed.

use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use iotc_core::backoff::Backoff;
use tokio::sync::{mpsc, watch};
use tracing::warn;

use super::batch::{Confirmed, Prepared};
use super::retry;
use crate::egress::{Delivery, Egress, EgressError};

/// Batches being delivered at once. With the default batch of 256 that is about 2,000
/// messages: more than the MQTT window (100 by default), so it never runs dry.
pub const BATCHES_IN_FLIGHT: usize = 8;

/// One delivery attempt of a batch and its result.
type Attempt = (Confirmed, Result<(), EgressError>);

/// Runs until the prepare stage is gone and every batch in flight is settled, or shutdown.
pub async fn run(
    egress: Arc<Egress>,
    mut input: mpsc::Receiver<Prepared>,
    out: mpsc::Sender<Confirmed>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut flying = FuturesOrdered::new();
    let mut open = true;
    loop {
        let room = flying.len() < BATCHES_IN_FLIGHT;
        tokio::select! {
            biased;
            _ = shutdown.changed() => return,
            Some((batch, result)) = flying.next(), if !flying.is_empty() => {
                let mut done: Vec<Attempt> = vec![(batch, result)];
                if done[0].1.is_err() {
                    // Let the others finish, then resend in order.
                    while let Some(attempt) = flying.next().await {
                        done.push(attempt);
                    }
                }
                for attempt in done {
                    let Some(confirmed) = settle(&egress, attempt, &mut shutdown).await else {
                        return;
                    };
                    if out.send(confirmed).await.is_err() {
                        return;
                    }
                }
            }
            next = input.recv(), if open && room => match next {
                Some(p) => flying.push_back(attempt(egress.clone(), p)),
                None => open = false,
            },
            else => return,
        }
    }
}

/// Publishes a batch once.
async fn attempt(egress: Arc<Egress>, prepared: Prepared) -> Attempt {
    let mut delivery = Delivery::new(prepared.messages);
    let result = egress.deliver(&mut delivery).await;
    let batch = Confirmed {
        delivery,
        after: prepared.after,
    };
    (batch, result)
}

/// A confirmed batch, after sending again what an attempt left unconfirmed; `None` on
/// shutdown (its entries stay pending for the next start).
async fn settle(
    egress: &Egress,
    (mut batch, mut result): Attempt,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<Confirmed> {
    let mut backoff = Backoff::default();
    while let Err(e) = result {
        metrics::counter!("iotc_engine_egress_retries_total").increment(1);
        warn!(error = %e, "egress did not confirm; publishing again");
        if *shutdown.borrow() {
            return None;
        }
        retry::pause(shutdown, backoff.next_pause()).await;
        result = tokio::select! {
            r = egress.deliver(&mut batch.delivery) => r,
            _ = shutdown.changed() => return None,
        };
    }
    Some(batch)
}
