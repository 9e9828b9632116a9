//! The ingress writes on a Redis Cluster, where one script may touch one slot only: the
//! telegram's partition stream in one script, the gateway's counters and registry record
//! beside it. The gateway's figures are then no longer written in the same step as the
//! telegram; each is still written once per call.

use redis::{RedisResult, Script};

use crate::store::{Forwarded, GatewayRef, Store, forwarded};
use iotc_core::keys;

/// KEYS: partition stream. ARGV: stream bound, entry.
/// Returns the entry ID, -1 when the stream is full (as `forward_one`).
const APPEND: &str = r#"
if not has_room(KEYS[1], tonumber(ARGV[1])) then
  return -1
end
return redis.call('XADD', KEYS[1], '*', 't', ARGV[2])
"#;

/// KEYS: gateway registry. ARGV: MAC, unix seconds, first-sight record.
const REGISTRY_TOUCH: &str = r#"
touch(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
return 1
"#;

/// KEYS: gateway event stream. ARGV: bound, event. 1 when added, 0 when full.
const EVENT: &str = r#"
if not has_room(KEYS[1], tonumber(ARGV[1])) then
  return 0
end
redis.call('XADD', KEYS[1], '*', 'j', ARGV[2])
return 1
"#;

#[derive(Clone)]
pub struct Scripts {
    append: Script,
    registry_touch: Script,
    event: Script,
}

impl Scripts {
    /// From the shared Lua functions of `store.rs`.
    pub fn new(touch_fn: &str, floor_fn: &str) -> Scripts {
        Scripts {
            append: Script::new(&format!("{floor_fn}{APPEND}")),
            registry_touch: Script::new(&format!("{touch_fn}{REGISTRY_TOUCH}")),
            event: Script::new(&format!("{floor_fn}{EVENT}")),
        }
    }
}

impl Store {
    pub(crate) async fn forward_cluster(
        &self,
        gateway: &GatewayRef<'_>,
        partition: u16,
        entry: &[u8],
        now: u64,
    ) -> RedisResult<Forwarded> {
        let reply: redis::Value = self
            .cluster
            .append
            .key(self.layout.stream(partition))
            .arg(self.telegram_maxlen)
            .arg(entry)
            .invoke_async(&mut self.redis.clone())
            .await?;
        let result = forwarded(reply);
        // As on a single Redis: a refused telegram was not received as far as counting goes.
        if result != Forwarded::Full {
            self.count_gateway(gateway, 1, 0, now).await?;
        }
        Ok(result)
    }

    pub(crate) async fn touch_cluster(
        &self,
        gateway: &GatewayRef<'_>,
        broken: u64,
        now: u64,
    ) -> RedisResult<()> {
        self.count_gateway(gateway, broken, broken, now).await
    }

    /// Gateway statistics (one key) and the registry's `lastSeen` (another key).
    async fn count_gateway(
        &self,
        gateway: &GatewayRef<'_>,
        total: u64,
        not_processed: u64,
        now: u64,
    ) -> RedisResult<()> {
        let stats = keys::gateway_stats(gateway.mac);
        // Not MULTI/EXEC: the cluster client follows a slot moved by a failover for plain
        // commands, while a transaction fails with MOVED until something else refreshes it.
        let mut pipe = redis::pipe();
        if total > 0 {
            pipe.hincr(&stats, keys::stats::TOTAL, total).ignore();
        }
        if not_processed > 0 {
            pipe.hincr(&stats, keys::stats::NOT_PROCESSED, not_processed)
                .ignore();
        }
        pipe.hset(&stats, keys::stats::LAST_SEEN, now).ignore();
        let _: () = pipe.query_async(&mut self.redis.clone()).await?;
        let _: i64 = self
            .cluster
            .registry_touch
            .key(keys::GATEWAYS)
            .arg(gateway.mac)
            .arg(now)
            .arg(gateway.first_sight)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(())
    }

    pub(crate) async fn health_cluster(
        &self,
        mac: &str,
        record_json: &str,
        event_json: &str,
        now: u64,
    ) -> RedisResult<bool> {
        let mut redis = self.redis.clone();
        let _: () = redis::cmd("HSET")
            .arg(keys::GATEWAYS)
            .arg(mac)
            .arg(record_json)
            .query_async(&mut redis)
            .await?;
        let _: () = redis::cmd("HSET")
            .arg(keys::gateway_stats(mac))
            .arg(keys::stats::LAST_SEEN)
            .arg(now)
            .query_async(&mut redis)
            .await?;
        let added: i64 = self
            .cluster
            .event
            .key(keys::GATEWAY_EVENT_STREAM)
            .arg(self.event_maxlen)
            .arg(event_json)
            .invoke_async(&mut redis)
            .await?;
        Ok(added == 1)
    }
}
