//! The read stage: the next batch is read from the streams while the prepare stage decodes
//! and counts the one before, so preparing does not wait for Redis's answer to a read.
//! Batches keep the order they were read in.

use iotc_core::backoff::Backoff;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::warn;

use super::retry;
use crate::stream::{Entry, Reader};

/// Batches read and not yet taken by the prepare stage, besides the one being read.
pub const READ_AHEAD: usize = 1;

/// Starts reading; the batches (empty ones too: an idle read lets the prepare stage close
/// abandoned chains) come out of the receiver. Stops on shutdown or when the receiver is
/// closed.
pub fn spawn(
    reader: Reader,
    shutdown: watch::Receiver<bool>,
) -> (mpsc::Receiver<Vec<Entry>>, JoinHandle<()>) {
    let (out, batches) = mpsc::channel(READ_AHEAD);
    let task = tokio::spawn(run(reader, out, shutdown));
    (batches, task)
}

async fn run(
    mut reader: Reader,
    out: mpsc::Sender<Vec<Entry>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::default();
    while !*shutdown.borrow() {
        let read = tokio::select! {
            r = reader.next_batch() => r,
            _ = shutdown.changed() => break,
        };
        match read {
            Ok(entries) => {
                backoff.reset();
                if out.send(entries).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                metrics::counter!("iotc_engine_redis_errors_total").increment(1);
                warn!(error = %e, "reading the streams failed; retrying");
                retry::pause(&mut shutdown, backoff.next_pause()).await;
            }
        }
    }
}
