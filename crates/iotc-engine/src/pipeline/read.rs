//! The read stage: while the prepare stage decodes and counts one batch, the next is read
//! from the streams, so preparing does not wait for Redis's answer to a read. Only behind a
//! full batch, though: after a batch smaller than the read size (no backlog) the next read
//! waits until that batch is prepared, so entries gather as they did before and a lightly
//! loaded engine does not pay for twice as many small batches. Batches keep the order they
//! were read in.

use iotc_core::backoff::Backoff;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::warn;

use super::retry;
use crate::stream::{Entry, Reader};

/// Batches read and not yet taken by the prepare stage, besides the one being read.
pub const READ_AHEAD: usize = 1;

/// The prepare stage's end of the read stage.
pub struct Batches {
    rx: mpsc::Receiver<Vec<Entry>>,
    /// How many batches the prepare stage is done with.
    prepared: watch::Sender<u64>,
}

impl Batches {
    /// The next batch (empty ones too: an idle read lets the prepare stage close abandoned
    /// chains); `None` once the stage stopped.
    pub async fn recv(&mut self) -> Option<Vec<Entry>> {
        self.rx.recv().await
    }

    /// Tells the reader the batch taken last is prepared.
    pub fn prepared(&self) {
        self.prepared.send_modify(|n| *n += 1);
    }

    /// Stops the reader; batches already read can still be received.
    pub fn close(&mut self) {
        self.rx.close();
    }
}

/// Starts reading. Stops on shutdown or when the receiving end is closed.
pub fn spawn(reader: Reader, shutdown: watch::Receiver<bool>) -> (Batches, JoinHandle<()>) {
    let (out, rx) = mpsc::channel(READ_AHEAD);
    let (prepared, done) = watch::channel(0);
    let task = tokio::spawn(run(reader, out, done, shutdown));
    (Batches { rx, prepared }, task)
}

async fn run(
    mut reader: Reader,
    out: mpsc::Sender<Vec<Entry>>,
    mut prepared: watch::Receiver<u64>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::default();
    let mut sent = 0u64;
    // Also ends when the prepare stage is gone, even with Redis away and no shutdown.
    while !*shutdown.borrow() && !out.is_closed() {
        let read = tokio::select! {
            r = reader.next_batch() => r,
            _ = shutdown.changed() => break,
        };
        match read {
            Ok(entries) => {
                backoff.reset();
                let full = entries.len() >= reader.batch_size();
                if out.send(entries).await.is_err() {
                    break;
                }
                sent += 1;
                if !full {
                    tokio::select! {
                        done = prepared.wait_for(|n| *n >= sent) => if done.is_err() { break },
                        _ = shutdown.changed() => break,
                    }
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
