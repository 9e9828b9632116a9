//! The publish stage: up to [`BATCHES_IN_FLIGHT`] batches are delivered at once, so the
//! egress always has messages waiting for the broker's window (QoS 1/2) instead of waiting
//! for a whole batch's acknowledgements before sending the next. Batches leave for the
//! commit stage in the order they were read, each once every egress confirmed all of its
//! messages.
//!
//! When a batch is not confirmed in time (broker down or slow), the batches in flight are
//! let finish and the unconfirmed ones are sent again one batch after the other, in order,
//! with back-off; pipelining resumes once they are all confirmed.
//!
//! On shutdown the stage drains for at most [`DRAIN`]: it takes the batches the prepare stage
//! still hands over and lets every batch in flight be confirmed and committed, so that the
//! engine taking over its partitions does not publish and count them a second time.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use iotc_core::backoff::Backoff;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};
use tracing::warn;

use super::batch::{Confirmed, Prepared};
use super::retry;
use crate::egress::{Delivery, Egress, EgressError};

/// Batches being delivered at once. With the default batch of 256 that is about 2,000
/// messages: more than the MQTT window (100 by default), so it never runs dry.
pub const BATCHES_IN_FLIGHT: usize = 8;

/// How long a stopping engine goes on confirming the batches it has in flight (container
/// runtimes wait 10 s after SIGTERM by default).
pub const DRAIN: Duration = Duration::from_secs(5);

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
    let mut drain_until: Option<Instant> = None;
    loop {
        let room = flying.len() < BATCHES_IN_FLIGHT;
        let drained = sleep_until(drain_until.unwrap_or_else(Instant::now));
        tokio::select! {
            biased;
            _ = shutdown.changed(), if drain_until.is_none() => {
                drain_until = Some(Instant::now() + DRAIN);
            }
            _ = drained, if drain_until.is_some() => {
                warn!(batches = flying.len(), "stopping with batches still unconfirmed");
                return;
            }
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
