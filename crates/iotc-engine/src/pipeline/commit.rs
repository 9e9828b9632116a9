//! The commit stage: once batches are confirmed, one Redis pipeline stores their
//! most-recent messages (one ring field each), marks first-time senders, keeps dead letters
//! and acknowledges their entries. Confirmed batches that queued up meanwhile share the
//! pipeline.

use iotc_core::keys;
use iotc_core::ops::{unix_millis, unix_seconds};
use iotc_core::recent;
use iotc_core::redis::Redis;
use tokio::sync::{mpsc, watch};

use super::batch::{Committed, Confirmed};
use super::retry;
use crate::egress::DeadLetter;
use crate::stream::Source;

/// Confirmed batches committed in one round trip at most.
const MERGE_MAX: usize = 16;

/// Runs until the publish stage is gone, or shutdown while Redis is away.
pub async fn run(
    redis: Redis,
    mut input: mpsc::Receiver<Confirmed>,
    back: mpsc::UnboundedSender<Committed>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut waiting = Vec::with_capacity(MERGE_MAX);
    while input.recv_many(&mut waiting, MERGE_MAX).await > 0 {
        let batches = &waiting;
        let done = retry::redis(&redis, &mut shutdown, "acknowledging", |mut r| async move {
            commit(&mut r, batches).await
        });
        if done.await.is_none() {
            return;
        }
        for c in &waiting {
            let heard = c.after.heard.iter().map(|(d, g)| (d.as_str(), g.as_str()));
            crate::live::after_publish(&redis, c.delivery.messages(), heard).await;
        }
        for c in waiting.drain(..) {
            report(&c);
            let _ = back.send(Committed {
                first_seen: c.after.first_seen,
                acks: c.after.acks,
            });
        }
    }
}

fn report(c: &Confirmed) {
    let dead = c.delivery.dead_letters();
    count_dead_letters(dead);
    let published = c.delivery.len() - dead.len();
    metrics::counter!("iotc_engine_messages_published_total").increment(published as u64);
    metrics::histogram!("iotc_engine_batch_seconds")
        .record(c.after.read_at.elapsed().as_secs_f64());
    metrics::histogram!("iotc_engine_batch_entries").record(c.after.acks.len() as f64);
}

/// Most-recent lists, first-seen markers, dead letters and acknowledgements of `batches`,
/// in their order.
async fn commit(redis: &mut Redis, batches: &[Confirmed]) -> redis::RedisResult<()> {
    let mut pipe = redis::pipe();
    let now_s = unix_seconds();
    for c in batches {
        for letter in c.delivery.dead_letters() {
            add_dead_letter(&mut pipe, letter);
        }
        for eurid in &c.after.first_seen {
            pipe.set_nx(keys::device_seen(eurid), now_s).ignore();
        }
        let messages = c.delivery.messages();
        for r in &c.after.recent {
            let value = recent::value(r.seq, &messages[r.index].payload);
            pipe.hset(&r.ring, recent::field(r.seq), value).ignore();
            if let Some(list) = &r.old_list {
                pipe.unlink(list).ignore();
            }
        }
        let acks = [
            (Source::Telegrams, &c.after.acks.telegrams),
            (Source::GatewayEvents, &c.after.acks.gateway),
        ];
        for (source, ids) in acks {
            crate::stream::add_acks(&mut pipe, source, ids);
        }
    }
    pipe.query_async(redis).await
}

/// Largest part of a dead letter's payload kept in the stream, in bytes.
const DEAD_PAYLOAD_MAX: usize = 16 * 1024;

/// One entry of the dead-letter stream: where it was going, why it was refused, when, its
/// size and the start of its payload.
fn add_dead_letter(pipe: &mut redis::Pipeline, letter: &DeadLetter) {
    let kept = &letter.payload[..letter.payload.len().min(DEAD_PAYLOAD_MAX)];
    pipe.xadd_maxlen(
        keys::DEAD_LETTER_STREAM,
        redis::streams::StreamMaxlen::Approx(keys::DEAD_LETTER_MAXLEN),
        "*",
        &[
            ("egress", letter.egress.as_bytes()),
            ("topic", letter.topic.as_bytes()),
            ("reason", letter.reason.as_bytes()),
            ("time", unix_millis().to_string().as_bytes()),
            ("size", letter.payload.len().to_string().as_bytes()),
            ("payload", kept),
        ],
    )
    .ignore();
}

fn count_dead_letters(dead: &[DeadLetter]) {
    for letter in dead {
        let reason = letter.reason_label().to_string();
        metrics::counter!("iotc_engine_dead_letters_total", "egress" => letter.egress, "reason" => reason)
            .increment(1);
        tracing::error!(egress = letter.egress, topic = %letter.topic, reason = %letter.reason,
            size = letter.payload.len(), "broker refused a message for good; kept in {}", keys::DEAD_LETTER_STREAM);
    }
}
