//! The last accepted rolling code (RLC) of each secure device, kept in Redis
//! (`keys::device_rlc`), so that it survives engine restarts and is shared by all engines.
//!
//! The value is a hash `{k: <key fingerprint>, rlc: <last accepted code>}`. The code belongs
//! to the key (and SLF) it was accepted with: when the device gets another key (API or
//! teach-in) the stored code no longer applies and the counter starts over. A hash without
//! `rlc` means "nothing accepted yet with this key".
//!
//! [`advance`] moves the code forward only, atomically (a Lua compare-and-set): an engine
//! with an outdated copy cannot move it back, and learns the newer code instead.

use std::sync::LazyLock;

use enocean::secure::{RlcMode, SecureContext, rlc::IMPLICIT_WINDOW};
use iotc_core::keys;
use redis::aio::ConnectionLike;
use redis::{RedisResult, Script};
use sha2::{Digest, Sha256};

/// Field of the key fingerprint.
const FIELD_KEY: &str = "k";
/// Field of the last accepted code.
const FIELD_RLC: &str = "rlc";

/// ARGV: fingerprint, code, modulus (0 = plain order), window. Returns `{1, code}` when the
/// code was stored, `{0, stored}` when the stored code (same key) is not older.
static ADVANCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local stored = redis.call('HMGET', KEYS[1], 'k', 'rlc')
if stored[1] == ARGV[1] and stored[2] then
  local code, last = tonumber(ARGV[2]), tonumber(stored[2])
  local modulus = tonumber(ARGV[3])
  local newer
  if modulus > 0 then
    local ahead = (code - last) % modulus
    newer = ahead > 0 and ahead <= tonumber(ARGV[4])
  else
    newer = code > last
  end
  if not newer then
    return {0, stored[2]}
  end
end
redis.call('HSET', KEYS[1], 'k', ARGV[1], 'rlc', ARGV[2])
return {1, ARGV[2]}
",
    )
});

/// What Redis holds for a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Fingerprint of the key the code belongs to.
    pub fingerprint: String,
    /// The last accepted code; `None`: nothing accepted yet with that key.
    pub rlc: Option<u32>,
}

impl Stored {
    /// The last accepted code if it belongs to the key with `fingerprint`.
    pub fn last_for(&self, fingerprint: &str) -> Option<u32> {
        self.rlc.filter(|_| self.fingerprint == fingerprint)
    }
}

/// Result of [`advance`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advance {
    /// The code is stored as the last accepted one.
    Stored,
    /// Redis already holds this code or a newer one (another engine accepted it): the
    /// telegram is a replay.
    Behind { last: u32 },
}

/// How codes of an SLF compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Explicit codes: newer means greater.
    Linear,
    /// Implicit codes wrap at `modulus`: newer means at most `window` steps ahead.
    Wrapping { modulus: u64, window: u32 },
}

impl Order {
    pub fn of(mode: RlcMode) -> Order {
        if mode.is_implicit() {
            Order::Wrapping {
                modulus: u64::from(mode.max()) + 1,
                window: IMPLICIT_WINDOW,
            }
        } else {
            Order::Linear
        }
    }
}

/// A short, one-way fingerprint of a device's key and SLF (the key itself never goes into
/// the code store).
pub fn fingerprint(ctx: &SecureContext) -> String {
    let mut hash = Sha256::new();
    hash.update(b"iotc rolling code\0");
    hash.update(ctx.key);
    hash.update([ctx.slf.byte()]);
    hex::encode(&hash.finalize()[..8])
}

/// Reads the stored code of a device; `None` when there is none.
pub async fn load<C: ConnectionLike>(redis: &mut C, eurid: &str) -> RedisResult<Option<Stored>> {
    let (fingerprint, rlc): (Option<String>, Option<u32>) = redis::cmd("HMGET")
        .arg(keys::device_rlc(eurid))
        .arg(FIELD_KEY)
        .arg(FIELD_RLC)
        .query_async(redis)
        .await?;
    Ok(fingerprint.map(|fingerprint| Stored { fingerprint, rlc }))
}

/// Stores `rlc` as the last accepted code if it is newer than the stored one of the same
/// key (or the stored one belongs to another key). Atomic.
pub async fn advance<C: ConnectionLike>(
    redis: &mut C,
    eurid: &str,
    fingerprint: &str,
    rlc: u32,
    order: Order,
) -> RedisResult<Advance> {
    let (modulus, window) = match order {
        Order::Linear => (0, 0),
        Order::Wrapping { modulus, window } => (modulus, window),
    };
    let (stored, code): (i64, u32) = ADVANCE
        .key(keys::device_rlc(eurid))
        .arg(fingerprint)
        .arg(rlc)
        .arg(modulus)
        .arg(window)
        .invoke_async(redis)
        .await?;
    Ok(if stored == 1 {
        Advance::Stored
    } else {
        Advance::Behind { last: code }
    })
}

/// Starts the code of a new key over: `rlc` is the last accepted code (`None`: the next
/// telegram may carry any code). Unconditional, for a teach-in with a new key.
pub async fn reset<C: ConnectionLike>(
    redis: &mut C,
    eurid: &str,
    fingerprint: &str,
    rlc: Option<u32>,
) -> RedisResult<()> {
    let key = keys::device_rlc(eurid);
    let mut pipe = redis::pipe();
    pipe.atomic().del(&key).ignore();
    match rlc {
        Some(rlc) => pipe.hset_multiple(
            &key,
            &[
                (FIELD_KEY, fingerprint.to_string()),
                (FIELD_RLC, rlc.to_string()),
            ],
        ),
        None => pipe.hset(&key, FIELD_KEY, fingerprint),
    }
    .ignore();
    pipe.query_async(redis).await
}
