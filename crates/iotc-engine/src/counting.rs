//! The counters of one batch in one Redis script: gateway statistics, and the statistics of
//! the devices this engine does not hold in memory yet, with whether each was seen before
//! (the others are [`crate::device_counts`]).
//!
//! A call retried after a timeout may reach Redis twice (the first one ran, only its answer
//! was lost). The script therefore first claims the batch's idempotency key (a hash of the
//! batch's stream entry ids, kept for [`BATCH_MARKER_TTL_SECS`]); the second run finds it
//! claimed, changes nothing and answers with the counters as they stand.

use std::sync::LazyLock;

use iotc_core::keys;
use redis::aio::ConnectionLike;
use redis::{RedisResult, Script};
use sha2::{Digest, Sha256};

use crate::device_counts::Outcome;

/// How long a batch's idempotency key is kept: longer than any retry of its counting.
pub const BATCH_MARKER_TTL_SECS: u64 = 600;

/// One read and one write per device telegram (the script runs alone, so reading and writing
/// back is as safe as HINCRBY, and half the calls of one HINCRBY per counter).
/// KEYS: marker, then per item its stats and seen keys, then gateway stats keys.
/// ARGV: now, marker TTL, item count n, n success flags, then per gateway field and
/// increment. Returns four numbers per item: total, successful, not processed, seen.
static COUNT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local fresh = redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2])
local n = tonumber(ARGV[3])
local out = {}
for i = 1, n do
  local st, seen = KEYS[2 * i], KEYS[2 * i + 1]
  local ok = tonumber(ARGV[3 + i])
  local v = redis.call('HMGET', st, 'totalTelegramCount', 'succesfullyProcessed', 'notProcessed')
  local t, s, np = tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0
  if fresh then
    t, s, np = t + 1, s + ok, np + 1 - ok
    redis.call('HSET', st, 'totalTelegramCount', t, 'succesfullyProcessed', s,
      'notProcessed', np, 'lastSeen', ARGV[1])
  end
  out[#out + 1] = t
  out[#out + 1] = s
  out[#out + 1] = np
  out[#out + 1] = redis.call('EXISTS', seen)
end
if fresh then
  local g = 3 + n
  for k = 2 + 2 * n, #KEYS do
    redis.call('HINCRBY', KEYS[k], ARGV[g + 1], ARGV[g + 2])
    g = g + 2
  end
end
return out
",
    )
});

/// What one batch counts.
#[derive(Default)]
pub struct Counts<'a> {
    /// Per telegram of an onboarded device: its EURID and what became of it.
    pub devices: Vec<(&'a str, Outcome)>,
    /// Per gateway MAC and statistics field: the increment.
    pub gateways: Vec<(&'a str, &'static str, i64)>,
}

/// The idempotency key of a batch made of these stream entries.
pub fn batch_key<'a>(entries: impl IntoIterator<Item = &'a str>) -> String {
    let mut hash = Sha256::new();
    for id in entries {
        hash.update(id.as_bytes());
        hash.update(b"\n");
    }
    format!("iotc:batch:{}", hex::encode(&hash.finalize()[..12]))
}

/// Applies the counts once per `batch_key`; returns total, successful, not processed and
/// seen (0/1) per device telegram.
pub async fn count<C: ConnectionLike>(
    redis: &mut C,
    batch_key: &str,
    counts: &Counts<'_>,
    now_s: u64,
) -> RedisResult<Vec<i64>> {
    if counts.devices.is_empty() && counts.gateways.is_empty() {
        return Ok(Vec::new());
    }
    let mut call = COUNT.key(batch_key);
    call.arg(now_s)
        .arg(BATCH_MARKER_TTL_SECS)
        .arg(counts.devices.len());
    for (eurid, outcome) in &counts.devices {
        call.key(keys::device_stats(eurid))
            .key(keys::device_seen(eurid))
            .arg(i64::from(outcome.ok()));
    }
    for (mac, field, n) in &counts.gateways {
        call.key(keys::gateway_stats(mac)).arg(*field).arg(*n);
    }
    call.invoke_async(redis).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_key_depends_on_every_entry() {
        let a = batch_key(["1-0", "2-0"]);
        assert_eq!(a, batch_key(["1-0", "2-0"]));
        assert_ne!(a, batch_key(["1-0", "2-1"]));
        assert_ne!(a, batch_key(["1-02-0"]));
        assert!(a.starts_with("iotc:batch:"));
    }
}
