//! Partition leases: each partition of the telegram stream is read by one engine at a time,
//! the one whose consumer name is in the partition's lease key (`SET NX PX`, renewed every
//! third of its lifetime). Engines announce themselves in [`ENGINES`]; each aims at
//! `ceil(P / live engines)` partitions, so engines added or removed while running share the
//! partitions out again within a few renewals.
//!
//! Taking a partition over: the new holder first claims every entry still pending in it
//! (XAUTOCLAIM, idle 0, from whichever consumer had them), then reads them before new ones,
//! so nothing is lost and one device's telegrams keep their order. Giving one up: the engine
//! stops reading it, waits until its own entries there are acknowledged (at most one lease
//! lifetime), then deletes the lease.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use iotc_core::keys;
use iotc_core::partition::Layout;
use iotc_core::redis::Redis;
use redis::{RedisResult, Script, Value};
use tokio::sync::watch;
use tracing::{info, warn};

/// Sorted set of live engines: consumer name → last renewal (unix ms).
pub const ENGINES: &str = "iotc:engines";

/// Entries claimed per XAUTOCLAIM call on a takeover.
const CLAIM_COUNT: usize = 1000;

/// KEYS: lease. ARGV: consumer, lifetime ms. 1 while the lease is ours (renewed), else 0.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
";

/// KEYS: lease. ARGV: consumer. Deletes the lease only if it is ours.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// The telegram streams this engine may read now (changes as leases come and go).
#[derive(Clone)]
pub struct Held(watch::Receiver<Arc<Vec<String>>>);

impl Held {
    pub fn current(&self) -> Arc<Vec<String>> {
        self.0.borrow().clone()
    }

    /// A set that never changes (a reader without leases, as tests build one).
    pub fn fixed(streams: Vec<String>) -> Held {
        Held(watch::channel(Arc::new(streams)).1)
    }
}

pub struct Leases {
    redis: Redis,
    layout: Layout,
    me: String,
    lifetime: Duration,
    held: BTreeSet<u16>,
    /// Partitions being given up: no longer read, lease kept until this deadline at most.
    releasing: BTreeMap<u16, Instant>,
    tx: watch::Sender<Arc<Vec<String>>>,
    renew: Script,
    release: Script,
}

/// Starts keeping leases for consumer `me`; the returned set follows them.
pub fn spawn(redis: Redis, layout: Layout, me: String, lifetime: Duration) -> Held {
    let (tx, rx) = watch::channel(Arc::new(Vec::new()));
    let leases = Leases {
        redis,
        layout,
        me,
        lifetime,
        held: BTreeSet::new(),
        releasing: BTreeMap::new(),
        tx,
        renew: Script::new(RENEW),
        release: Script::new(RELEASE),
    };
    tokio::spawn(leases.run());
    Held(rx)
}

impl Leases {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(self.lifetime / 3);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.tick().await {
                metrics::counter!("iotc_engine_redis_errors_total").increment(1);
                warn!(error = %e, "keeping the partition leases failed; retrying");
            }
            metrics::gauge!("iotc_engine_partitions_held").set(self.held.len() as f64);
        }
    }

    async fn tick(&mut self) -> RedisResult<()> {
        let engines = self.announce().await?;
        self.renew_all().await?;
        let target = usize::from(self.layout.partitions()).div_ceil(engines.max(1));
        while self.held.len() > target {
            let p = *self.held.last().expect("not empty");
            self.held.remove(&p);
            self.releasing.insert(p, Instant::now() + self.lifetime);
            info!(partition = p, "giving the partition up to another engine");
        }
        self.publish();
        self.finish_releases().await?;
        if self.held.len() < target {
            self.acquire(target).await?;
        }
        Ok(())
    }

    /// Marks this engine alive; returns how many engines are.
    async fn announce(&mut self) -> RedisResult<usize> {
        let now = iotc_core::ops::unix_millis();
        let stale = now.saturating_sub(self.lifetime.as_millis() as u64);
        let (live,): (usize,) = redis::pipe()
            .cmd("ZADD")
            .arg(ENGINES)
            .arg(now)
            .arg(&self.me)
            .ignore()
            .cmd("ZREMRANGEBYSCORE")
            .arg(ENGINES)
            .arg("-inf")
            .arg(stale)
            .ignore()
            .cmd("ZCARD")
            .arg(ENGINES)
            .query_async(&mut self.redis)
            .await?;
        Ok(live)
    }

    async fn renew_all(&mut self) -> RedisResult<()> {
        let ours: Vec<u16> = self
            .held
            .iter()
            .chain(self.releasing.keys())
            .copied()
            .collect();
        for p in ours {
            let kept: i64 = self
                .renew
                .key(self.layout.lease(p))
                .arg(&self.me)
                .arg(self.lifetime.as_millis() as u64)
                .invoke_async(&mut self.redis)
                .await?;
            if kept == 0 {
                warn!(partition = p, "partition lease lost to another engine");
                self.held.remove(&p);
                self.releasing.remove(&p);
                self.publish();
            }
        }
        Ok(())
    }

    /// Deletes the leases of partitions given up once our entries there are acknowledged.
    async fn finish_releases(&mut self) -> RedisResult<()> {
        let due: Vec<(u16, Instant)> = self.releasing.iter().map(|(p, t)| (*p, *t)).collect();
        for (p, deadline) in due {
            let pending = self.own_pending(p).await?;
            if pending > 0 && Instant::now() < deadline {
                continue;
            }
            let _: i64 = self
                .release
                .key(self.layout.lease(p))
                .arg(&self.me)
                .invoke_async(&mut self.redis)
                .await?;
            self.releasing.remove(&p);
            info!(partition = p, "partition released");
        }
        Ok(())
    }

    async fn own_pending(&mut self, p: u16) -> RedisResult<usize> {
        let reply: Value = redis::cmd("XPENDING")
            .arg(self.layout.stream(p))
            .arg(keys::ENGINE_GROUP)
            .arg("-")
            .arg("+")
            .arg(1)
            .arg(&self.me)
            .query_async(&mut self.redis)
            .await?;
        Ok(match reply {
            Value::Array(a) => a.len(),
            _ => 0,
        })
    }

    /// Takes free partitions until `target` are held, starting at a place that depends on
    /// the consumer name so that engines starting together try different ones first.
    async fn acquire(&mut self, target: usize) -> RedisResult<()> {
        let n = self.layout.partitions();
        let start = self
            .me
            .bytes()
            .fold(0u16, |h, b| h.wrapping_mul(31).wrapping_add(u16::from(b)))
            % n;
        for i in 0..n {
            if self.held.len() >= target {
                break;
            }
            let p = (start + i) % n;
            if self.held.contains(&p) || self.releasing.contains_key(&p) {
                continue;
            }
            if self.try_take(p).await? {
                self.take_over(p).await?;
                self.held.insert(p);
                self.publish();
                info!(partition = p, "partition taken");
            }
        }
        Ok(())
    }

    /// Sets the lease if free; an unexpired lease in our own name (a restart) is ours too.
    async fn try_take(&mut self, p: u16) -> RedisResult<bool> {
        let key = self.layout.lease(p);
        let set: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(&self.me)
            .arg("NX")
            .arg("PX")
            .arg(self.lifetime.as_millis() as u64)
            .query_async(&mut self.redis)
            .await?;
        if set.is_some() {
            return Ok(true);
        }
        let holder: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut self.redis)
            .await?;
        Ok(holder.as_deref() == Some(self.me.as_str()))
    }

    /// Moves every entry pending in the partition to this consumer, whoever had it.
    async fn take_over(&mut self, p: u16) -> RedisResult<()> {
        let stream = self.layout.stream(p);
        let mut cursor = "0-0".to_string();
        let mut moved = 0usize;
        loop {
            let reply: RedisResult<Value> = redis::cmd("XAUTOCLAIM")
                .arg(&stream)
                .arg(keys::ENGINE_GROUP)
                .arg(&self.me)
                .arg(0)
                .arg(&cursor)
                .arg("COUNT")
                .arg(CLAIM_COUNT)
                .arg("JUSTID")
                .query_async(&mut self.redis)
                .await;
            let reply = match reply {
                // No group yet: nothing was ever delivered in this partition.
                Err(e) if e.code() == Some("NOGROUP") => return Ok(()),
                other => other?,
            };
            let (next, n) = crate::stream::claim_cursor(reply);
            moved += n;
            if next == "0-0" || next.is_empty() {
                break;
            }
            cursor = next;
        }
        if moved > 0 {
            info!(partition = p, entries = moved, "took over pending entries");
        }
        Ok(())
    }

    fn publish(&self) {
        let streams = self.held.iter().map(|&p| self.layout.stream(p)).collect();
        self.tx.send_replace(Arc::new(streams));
    }
}
