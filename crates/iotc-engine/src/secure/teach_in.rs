//! Applying a complete secure teach-in: the device's key, SLF and PTM flag are written to
//! the device registry (so the API and every engine see them) and its rolling code starts
//! over.
//!
//! The device JSON is replaced only if nobody changed it in between (compare-and-set,
//! retried), and `DEVICES_CHANGED` announces it like an API change. A teach-in repeating the
//! key already known moves the code forward only: a recorded teach-in played back later
//! cannot reopen old codes.
//!
//! Whether a teach-in that brings a new key may be applied is the policy's decision
//! ([`super::TeachInPolicy::judge`]) from what [`authority`] reads: the learn window and
//! whether the present key came from an earlier teach-in. Applying one closes the device's
//! learn window: it lets in one new key.

use std::sync::LazyLock;

use enocean::secure::{SecureContext, SecureTeachIn};
use iotc_core::keys;
use iotc_core::model::EnOceanSensor;
use redis::aio::ConnectionLike;
use redis::{RedisResult, Script};

use super::context::Fields;
use crate::rlc::{self, Order};

/// KEYS[1] devices hash; ARGV field, expected JSON, new JSON, channel. 1 when replaced.
static REPLACE_DEVICE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[4], ARGV[1])
return 1
",
    )
});

/// Attempts when the device JSON keeps changing under us.
const ATTEMPTS: usize = 5;

/// A teach-in written to Redis.
pub(super) struct Applied {
    /// The security fields the registry held before.
    pub before: Fields,
    pub ctx: SecureContext,
    pub fingerprint: String,
    /// The last accepted code now stored for the new settings.
    pub last: Option<u32>,
    /// The key and SLF were already the device's.
    pub same_key: bool,
}

/// Why a teach-in was not applied.
pub(super) enum NotApplied {
    /// The device is no longer in the registry.
    Removed,
    /// Its JSON does not parse, or changed on every attempt.
    Unusable(String),
}

/// What decides whether a new key may replace the present one.
pub(super) struct Authority {
    /// A learn window is open for the device or for all devices.
    pub window: bool,
    /// Fingerprint of the last key a radio teach-in set.
    pub taught: Option<String>,
}

/// Reads the learn windows and the device's teach-in record in one round trip.
pub(super) async fn authority<C: ConnectionLike>(
    redis: &mut C,
    eurid: &str,
) -> RedisResult<Authority> {
    let (device, all): (bool, bool) = redis::pipe()
        .exists(keys::device_learn(eurid))
        .exists(keys::LEARN_ALL)
        .query_async(redis)
        .await?;
    let taught = rlc::load(redis, eurid).await?.and_then(|s| s.taught);
    Ok(Authority {
        window: device || all,
        taught,
    })
}

/// Writes the teach-in of the device stored under `field`.
pub(super) async fn apply<C: ConnectionLike>(
    redis: &mut C,
    field: &str,
    eurid: &str,
    teach_in: &SecureTeachIn,
) -> RedisResult<Result<Applied, NotApplied>> {
    let ctx = teach_in.context();
    for _ in 0..ATTEMPTS {
        let Some(old_json) = redis::cmd("HGET")
            .arg(keys::DEVICES)
            .arg(field)
            .query_async::<Option<String>>(redis)
            .await?
        else {
            return Ok(Err(NotApplied::Removed));
        };
        let old: EnOceanSensor = match serde_json::from_str(&old_json) {
            Ok(d) => d,
            Err(e) => return Ok(Err(NotApplied::Unusable(format!("device JSON: {e}")))),
        };
        let before = Fields::of(&old);
        let new = with_settings(&old, &ctx);
        let same_key = before.same_key(&Fields::of(&new));
        if new != old {
            let new_json = serde_json::to_string(&new).expect("a device serialises");
            let replaced: i64 = REPLACE_DEVICE
                .key(keys::DEVICES)
                .key(keys::DEVICES_VERSION)
                .arg(field)
                .arg(&old_json)
                .arg(&new_json)
                .arg(keys::DEVICES_CHANGED)
                .invoke_async(redis)
                .await?;
            if replaced == 0 {
                continue;
            }
        }
        let fingerprint = rlc::fingerprint(&ctx);
        let announced = teach_in.last_rlc();
        let last = if same_key {
            // Forward only; a code the device announces below the stored one is kept out.
            match announced {
                Some(code) => match rlc::advance(
                    redis,
                    eurid,
                    &fingerprint,
                    code,
                    Order::of(ctx.slf.rlc_mode()),
                    "",
                )
                .await?
                {
                    rlc::Advance::Stored => Some(code),
                    rlc::Advance::Behind { last } => Some(last),
                },
                None => rlc::load(redis, eurid)
                    .await?
                    .and_then(|s| s.last_for(&fingerprint)),
            }
        } else {
            rlc::reset(redis, eurid, &fingerprint, announced).await?;
            redis::cmd("DEL")
                .arg(keys::device_learn(eurid))
                .query_async::<()>(redis)
                .await?;
            announced
        };
        return Ok(Ok(Applied {
            before,
            ctx,
            fingerprint,
            last,
            same_key,
        }));
    }
    Ok(Err(NotApplied::Unusable(
        "device JSON changed on every attempt".into(),
    )))
}

/// The device with the teach-in's key (lower-case hex), SLF and PTM flag.
fn with_settings(device: &EnOceanSensor, ctx: &SecureContext) -> EnOceanSensor {
    EnOceanSensor {
        aes_key: Some(hex::encode(ctx.key)),
        slf: Some(format!("{:02x}", ctx.slf.byte())),
        is_ptm: ctx.is_ptm,
        ..device.clone()
    }
}
