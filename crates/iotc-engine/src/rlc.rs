//! The last accepted rolling code (RLC) of each secure device, kept in Redis
//! (`keys::device_rlc`), so that it survives engine restarts and is shared by all engines.
//!
//! The value is a hash `{k: <key fingerprint>, rlc: <last accepted code>, p: <the code
//! before it>, e: <stream entry that advanced it>, t: <fingerprint of a key a teach-in
//! set>}`. The code belongs to the key (and SLF) it was accepted with: when the device gets
//! another key (API or teach-in) the stored code no longer applies and the counter starts
//! over. A hash without `rlc` means "nothing accepted yet with this key".
//!
//! [`advance`] moves the code forward only, atomically (a Lua compare-and-set): an engine
//! with an outdated copy cannot move it back, and learns the newer code instead. The stream
//! entry that advanced the code may advance it again: an entry delivered a second time
//! (engine crash before the acknowledgement, XAUTOCLAIM) is the same telegram, not a replay,
//! and is verified against the code before it (`p`), as a network server treats a
//! retransmission. Any other entry with that code is a replay.

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
/// Field of the code accepted before the last one.
const FIELD_PREV: &str = "p";
/// Field of the stream entry that stored the last code.
const FIELD_ENTRY: &str = "e";
/// Field of the fingerprint of a key that a radio teach-in set.
const FIELD_TAUGHT: &str = "t";

/// ARGV: fingerprint, code, modulus (0 = plain order), window, stream entry id. Returns
/// `{1, code}` when the code was stored (or this entry stored it before), `{0, stored}` when
/// the stored code (same key) is not older.
static ADVANCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local stored = redis.call('HMGET', KEYS[1], 'k', 'rlc', 'e')
if stored[1] == ARGV[1] and stored[2] then
  if ARGV[5] ~= '' and stored[3] == ARGV[5] and stored[2] == ARGV[2] then
    return {1, ARGV[2]}
  end
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
  redis.call('HSET', KEYS[1], 'p', stored[2])
else
  redis.call('HDEL', KEYS[1], 'p')
end
redis.call('HSET', KEYS[1], 'k', ARGV[1], 'rlc', ARGV[2], 'e', ARGV[5])
return {1, ARGV[2]}
",
    )
});

/// What Redis holds for a device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stored {
    /// Fingerprint of the key the code belongs to.
    pub fingerprint: String,
    /// The last accepted code; `None`: nothing accepted yet with that key.
    pub rlc: Option<u32>,
    /// The code accepted before `rlc`.
    pub prev: Option<u32>,
    /// The stream entry that stored `rlc`.
    pub entry: Option<String>,
    /// Fingerprint of the last key a radio teach-in set.
    pub taught: Option<String>,
}

impl Stored {
    /// The last accepted code if it belongs to the key with `fingerprint`.
    pub fn last_for(&self, fingerprint: &str) -> Option<u32> {
        self.rlc.filter(|_| self.fingerprint == fingerprint)
    }

    /// The code a telegram of stream entry `entry` is verified against: the one before the
    /// last when this entry stored the last one (it is delivered again).
    pub fn last_before(&self, fingerprint: &str, entry: &str) -> Option<u32> {
        if self.entry.as_deref() == Some(entry) && !entry.is_empty() {
            return self.prev.filter(|_| self.fingerprint == fingerprint);
        }
        self.last_for(fingerprint)
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
    type Fields = (
        Option<String>,
        Option<u32>,
        Option<u32>,
        Option<String>,
        Option<String>,
    );
    let (fingerprint, rlc, prev, entry, taught): Fields = redis::cmd("HMGET")
        .arg(keys::device_rlc(eurid))
        .arg(&[FIELD_KEY, FIELD_RLC, FIELD_PREV, FIELD_ENTRY, FIELD_TAUGHT])
        .query_async(redis)
        .await?;
    if fingerprint.is_none() && taught.is_none() {
        return Ok(None);
    }
    Ok(Some(Stored {
        fingerprint: fingerprint.unwrap_or_default(),
        rlc,
        prev,
        entry,
        taught,
    }))
}

/// Stores `rlc` as the last accepted code if it is newer than the stored one of the same
/// key (or the stored one belongs to another key), or if stream entry `entry` stored it
/// before (`""`: no entry). Atomic.
pub async fn advance<C: ConnectionLike>(
    redis: &mut C,
    eurid: &str,
    fingerprint: &str,
    rlc: u32,
    order: Order,
    entry: &str,
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
        .arg(entry)
        .invoke_async(redis)
        .await?;
    Ok(if stored == 1 {
        Advance::Stored
    } else {
        Advance::Behind { last: code }
    })
}

/// Starts the code of a key a radio teach-in set over: `rlc` is the last accepted code
/// (`None`: the next telegram may carry any code). Unconditional. The key is remembered as
/// taught by radio (not set through the API).
pub async fn reset<C: ConnectionLike>(
    redis: &mut C,
    eurid: &str,
    fingerprint: &str,
    rlc: Option<u32>,
) -> RedisResult<()> {
    let key = keys::device_rlc(eurid);
    let mut fields = vec![
        (FIELD_KEY, fingerprint.to_string()),
        (FIELD_TAUGHT, fingerprint.to_string()),
    ];
    if let Some(rlc) = rlc {
        fields.push((FIELD_RLC, rlc.to_string()));
    }
    let mut pipe = redis::pipe();
    pipe.atomic()
        .del(&key)
        .ignore()
        .hset_multiple(&key, &fields)
        .ignore();
    pipe.query_async(redis).await
}
