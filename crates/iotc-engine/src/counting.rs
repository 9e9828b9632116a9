//! The gateway counters of one batch in one Redis script (the device counters are
//! [`crate::device_counts`]).
//!
//! Several engines count the same gateway, so these stay increments. A call retried after a
//! timeout may reach Redis twice (the first one ran, only its answer was lost). The script
//! therefore first claims the batch's idempotency key (a hash of the batch's stream entry ids,
//! kept for [`BATCH_MARKER_TTL_SECS`]); the second run finds it claimed and changes nothing.

use std::sync::LazyLock;

use iotc_core::keys;
use redis::aio::ConnectionLike;
use redis::{RedisResult, Script};
use sha2::{Digest, Sha256};

/// How long a batch's idempotency key is kept: longer than any retry of its counting.
pub const BATCH_MARKER_TTL_SECS: u64 = 600;

/// KEYS: marker, then one gateway stats key per increment. ARGV: marker TTL, then per
/// increment its field and amount. Returns 1 when counted, 0 when the marker was taken.
static COUNT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return 0
end
for k = 2, #KEYS do
  redis.call('HINCRBY', KEYS[k], ARGV[2 * k - 2], ARGV[2 * k - 1])
end
return 1
",
    )
});

/// Per gateway MAC and statistics field: the increment.
pub type GatewayCounts<'a> = [(&'a str, &'static str, i64)];

/// The idempotency key of a batch made of these stream entries.
pub fn batch_key<'a>(entries: impl IntoIterator<Item = &'a str>) -> String {
    let mut hash = Sha256::new();
    for id in entries {
        hash.update(id.as_bytes());
        hash.update(b"\n");
    }
    format!("iotc:batch:{}", hex::encode(&hash.finalize()[..12]))
}

/// Applies the gateway increments once per `batch_key`; true when this call counted them.
pub async fn count<C: ConnectionLike>(
    redis: &mut C,
    batch_key: &str,
    gateways: &GatewayCounts<'_>,
) -> RedisResult<bool> {
    if gateways.is_empty() {
        return Ok(false);
    }
    let mut call = COUNT.key(batch_key);
    call.arg(BATCH_MARKER_TTL_SECS);
    for (mac, field, n) in gateways {
        call.key(keys::gateway_stats(mac)).arg(*field).arg(*n);
    }
    let counted: i64 = call.invoke_async(redis).await?;
    Ok(counted == 1)
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
