//! The plain path of forwarding: one gateway's telegrams appended with a pipeline, without
//! a script. A script call costs Redis about as much again as the commands it runs (its
//! arguments become Lua strings, every `redis.call` converts them back, the garbage is
//! collected), so the common case does without: every copy of a telegram is appended (the
//! engine drops the copies), the stream's length comes back with the answers, and a
//! partition near its bound goes to the strict path (`Store::forward_strictly`).

use std::sync::atomic::Ordering;

use iotc_core::keys::{self, stats};
use iotc_core::partition::Layout;
use redis::{RedisResult, Value};

use crate::store::{Forwarded, Heard, Pending, Store};

/// A process trims a partition's acknowledged entries after appending this many to it.
const TRIM_EVERY: u64 = 1024;

/// The distinct partitions of `telegrams`, in first-seen order.
pub(crate) fn partitions_of(telegrams: &[Pending], layout: &Layout) -> Vec<u16> {
    let mut out: Vec<u16> = Vec::new();
    for t in telegrams {
        let p = t.partition(layout);
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

impl Store {
    /// Appends `telegrams` (one gateway's) and writes its counter and the reception
    /// records `heard`, in one pipeline. Before it, once a second per connection, the
    /// gateway's `lastSeen` and registry record (a failure there is returned: nothing is
    /// appended yet, the call may be retried). After it, what depends on its answers: the
    /// time to live of a reception hash that gained an AP, a trim now and then; their
    /// failure is counted and logged, not returned, since a retry would append the
    /// telegrams again.
    /// `parts`: the partitions of `telegrams` ([`partitions_of`]).
    pub(crate) async fn append(
        &self,
        telegrams: &[Pending],
        parts: &[u16],
        heard: &[Heard],
        now: u64,
    ) -> RedisResult<Vec<Forwarded>> {
        if let Some(t) = telegrams.iter().find(|t| t.touch) {
            self.touch(&t.gateway(), 0, now).await?;
        }
        let mut commands = Vec::with_capacity(telegrams.len() + parts.len() + 1 + heard.len());
        for t in telegrams {
            let p = t.partition(&self.layout);
            self.partitions[usize::from(p)]
                .since_trim
                .fetch_add(1, Ordering::Relaxed);
            let mut xadd = redis::cmd("XADD");
            xadd.arg(self.layout.stream(p))
                .arg("*")
                .arg(iotc_core::bus::FIELD)
                .arg(&t.entry);
            commands.push(xadd);
        }
        for p in parts {
            commands.push(redis::cmd("XLEN").arg(self.layout.stream(*p)).to_owned());
        }
        let gateway = telegrams[0].gateway();
        let mut count = redis::cmd("HINCRBY");
        count
            .arg(keys::gateway_stats(gateway.mac))
            .arg(stats::TOTAL)
            .arg(telegrams.len());
        commands.push(count);
        for (eurid, mac, ms, dbm, stick) in heard {
            let mut record = redis::cmd("HSET");
            record
                .arg(keys::device_heard(eurid))
                .arg(mac)
                .arg(crate::south::heard_record(*ms, *dbm, stick));
            commands.push(record);
        }
        // With the commands of the other connections waiting meanwhile (`group`).
        let replies = self.group.query(&self.redis, commands).await?;
        // Redis answered every command (an error reply fails the whole query): each
        // telegram is appended.
        let rest = replies.get(telegrams.len()..).unwrap_or_default();
        let (lens, rest) = rest.split_at(parts.len().min(rest.len()));
        // After the gateway counter's answer, the reception records'.
        let added = rest.get(1..).unwrap_or_default();
        for (p, len) in parts.iter().zip(lens) {
            if let Value::Int(len) = len {
                let len = u64::try_from(*len).unwrap_or(0);
                self.partitions[usize::from(*p)]
                    .len
                    .store(len, Ordering::Relaxed);
            }
        }
        self.after_append(parts, heard, added).await;
        Ok(vec![Forwarded::New; telegrams.len()])
    }

    async fn after_append(&self, parts: &[u16], heard: &[Heard], added: &[Value]) {
        let mut pipe = redis::pipe();
        let mut expiring = 0;
        for ((eurid, ..), reply) in heard.iter().zip(added) {
            if *reply == Value::Int(1) {
                pipe.expire(keys::device_heard(eurid), crate::south::HEARD_TTL_S)
                    .ignore();
                expiring += 1;
            }
        }
        if expiring > 0
            && let Err(e) = pipe.query_async::<()>(&mut self.redis.clone()).await
        {
            failed("reception records' time to live", &e);
        }
        for p in parts {
            let state = &self.partitions[usize::from(*p)];
            if state.since_trim.load(Ordering::Relaxed) >= TRIM_EVERY {
                self.trim_partition(*p).await;
            }
        }
    }

    /// Trims a partition's acknowledged entries and notes its length.
    pub(crate) async fn trim_partition(&self, p: u16) {
        let state = &self.partitions[usize::from(p)];
        state.since_trim.store(0, Ordering::Relaxed);
        let len: RedisResult<u64> = self
            .trim
            .key(self.layout.stream(p))
            .invoke_async(&mut self.redis.clone())
            .await;
        match len {
            Ok(len) => state.len.store(len, Ordering::Relaxed),
            Err(e) => failed("trimming the telegram stream", &e),
        }
    }
}

fn failed(what: &str, e: &redis::RedisError) {
    metrics::counter!("iotc_ingress_redis_errors_total").increment(1);
    tracing::warn!(error = %e, "{what} not written");
}
