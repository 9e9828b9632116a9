//! The secure step of the engine loop: verification with the rolling code from Redis, and
//! secure teach-ins.
//!
//! Every accepted code is stored with a compare-and-set before the telegram is published,
//! so a code accepted once (by any engine, before any restart) is a replay ever after,
//! except for the stream entry that stored it, which may be delivered again (see
//! `crate::rlc`). The last code per device is cached; the cache is refilled from Redis
//! whenever the device copy changes, and a refused compare-and-set corrects it.

use std::collections::HashMap;
use std::sync::Arc;

use enocean::secure::{self, Plain, SEC_D, SEC_TI, SecureContext, TeachInAssembler};
use enocean::telegram::Telegram;
use iotc_core::backoff::Backoff;
use iotc_core::keys;
use iotc_core::model::EnOceanSensor;
use iotc_core::ops::unix_millis;
use iotc_core::redis::Redis;
use redis::RedisResult;
use tokio::sync::watch;
use tracing::{info, warn};

use super::context::Contexts;
use super::outcome::{self, failed, metric};
use super::settings::{Settings, TeachInFacts, TeachInPolicy};
use super::teach_in::{self, NotApplied};
use super::{is_secure_rorg, is_verifiable};
use crate::decode::{self, DeviceResult, Outcome};
use crate::rlc::{self, Advance, Order};

/// A teach-in's telegrams must all arrive within this time.
const TEACH_IN_TIMEOUT_MS: u64 = 5_000;
/// Devices with an incomplete teach-in tracked at once.
const TEACH_IN_MAX_OPEN: usize = 256;

/// The last accepted code of a device, as read for one device copy and key.
struct Known {
    device: Arc<EnOceanSensor>,
    fingerprint: String,
    code: Code,
}

/// The last accepted code, the one before it and the stream entry that stored it.
#[derive(Default, Clone)]
struct Code {
    last: Option<u32>,
    prev: Option<u32>,
    entry: Option<String>,
}

impl Code {
    fn just(last: Option<u32>) -> Code {
        Code {
            last,
            ..Code::default()
        }
    }

    /// The code to verify a telegram of stream entry `entry` against.
    fn before(&self, entry: &str) -> Option<u32> {
        if !entry.is_empty() && self.entry.as_deref() == Some(entry) {
            self.prev
        } else {
            self.last
        }
    }

    /// After `code` was accepted from `entry`.
    fn advanced(&self, code: u32, entry: &str) -> Code {
        if self.entry.as_deref() == Some(entry) && self.last == Some(code) {
            return self.clone();
        }
        Code {
            last: Some(code),
            prev: self.last,
            entry: Some(entry.to_string()),
        }
    }
}

/// State of secure handling in one engine.
pub struct Stage {
    settings: Settings,
    contexts: Contexts,
    teach_ins: TeachInAssembler,
    codes: HashMap<String, Known>,
}

impl Stage {
    pub fn new(settings: Settings) -> Stage {
        Stage {
            settings,
            contexts: Contexts::default(),
            teach_ins: TeachInAssembler::new(TEACH_IN_TIMEOUT_MS, TEACH_IN_MAX_OPEN),
            codes: HashMap::new(),
        }
    }

    /// Resolves a [`DeviceResult::Secure`] outcome of stream entry `entry`; other outcomes
    /// pass unchanged. `None` when asked to stop while Redis is unreachable (the entry stays
    /// unacknowledged).
    pub async fn settle(
        &mut self,
        redis: &Redis,
        stop: &watch::Receiver<bool>,
        outcome: Outcome,
        entry: &str,
    ) -> Option<Outcome> {
        let Outcome::Device(mut dt) = outcome else {
            return Some(outcome);
        };
        dt.result = match dt.result {
            DeviceResult::Secure(telegram) => {
                let mut io = Io { redis, stop, entry };
                self.resolve(&mut io, &dt.device, &dt.eurid, telegram)
                    .await?
            }
            other => self.plain(other),
        };
        Some(Outcome::Device(dt))
    }

    /// A result decoded without verification: dropped with `ONLY_SECURE_DEVICES`.
    fn plain(&self, result: DeviceResult) -> DeviceResult {
        if self.settings.only_secure && result.is_success() {
            metric("only_secure");
            return failed(
                "ONLY_SECURE_DEVICES is set: telegram of a device without AESKey and slf dropped",
            );
        }
        result
    }

    async fn resolve(
        &mut self,
        io: &mut Io<'_>,
        device: &Arc<EnOceanSensor>,
        eurid: &str,
        telegram: Telegram,
    ) -> Option<DeviceResult> {
        if telegram.rorg == SEC_TI {
            return self.teach_in(io, device, eurid, telegram).await;
        }
        let ctx = match self.contexts.get(eurid, device) {
            Ok(Some(ctx)) => ctx,
            Ok(None) if is_secure_rorg(telegram.rorg) => {
                metric("no_key");
                return Some(failed(format!(
                    "secure telegram (R-ORG {:#04x}) from a device onboarded without AESKey and slf",
                    telegram.rorg
                )));
            }
            Ok(None) => return Some(self.plain(decode::classify(device, telegram))),
            Err(e) => {
                metric("refused");
                return Some(failed(format!(
                    "the device's AESKey/slf cannot be used: {e}"
                )));
            }
        };
        if !is_verifiable(telegram.rorg) {
            return Some(outcome::unsecure(eurid, telegram.rorg));
        }
        self.verify(io, device, eurid, &ctx, telegram).await
    }

    async fn verify(
        &mut self,
        io: &mut Io<'_>,
        device: &Arc<EnOceanSensor>,
        eurid: &str,
        ctx: &SecureContext,
        telegram: Telegram,
    ) -> Option<DeviceResult> {
        let fingerprint = rlc::fingerprint(ctx);
        let known = self.last_code(io, device, eurid, &fingerprint).await?;
        let last = known.before(io.entry);
        let plain = match secure::verify_and_decrypt(ctx, telegram.rorg, &telegram.data, last) {
            Ok(plain) => plain,
            Err(e) => return Some(outcome::refused(eurid, e)),
        };
        if let Some(code) = plain.rlc {
            let order = Order::of(ctx.slf.rlc_mode());
            let entry = io.entry;
            let advanced = io
                .retry("storing a rolling code", |mut r| {
                    let fingerprint = fingerprint.clone();
                    async move {
                        rlc::advance(&mut r, eurid, &fingerprint, code, order, entry).await
                    }
                })
                .await?;
            match advanced {
                Advance::Stored => {
                    let next = known.advanced(code, entry);
                    self.remember(device, eurid, fingerprint, next);
                }
                // Another engine accepted this code (or a newer one) already.
                Advance::Behind { last } => {
                    self.remember(device, eurid, fingerprint, Code::just(Some(last)));
                    return Some(outcome::replay(eurid, code, last));
                }
            }
        }
        if plain.rorg == SEC_D {
            metric("no_meaning");
            return Some(failed(
                "authentic secure telegram without a meaning for this device (R-ORG 0x30 data)",
            ));
        }
        metric("verified");
        Some(decode::classify(device, inner(telegram, plain)))
    }

    /// The accepted codes for this device copy and key: cached, else from Redis.
    async fn last_code(
        &mut self,
        io: &mut Io<'_>,
        device: &Arc<EnOceanSensor>,
        eurid: &str,
        fingerprint: &str,
    ) -> Option<Code> {
        if let Some(k) = self.codes.get(eurid)
            && k.fingerprint == fingerprint
            && Arc::ptr_eq(&k.device, device)
        {
            return Some(k.code.clone());
        }
        let stored = io
            .retry("reading a rolling code", |mut r| async move {
                rlc::load(&mut r, eurid).await
            })
            .await?;
        let code = match stored {
            Some(s) if s.fingerprint == fingerprint => Code {
                last: s.rlc,
                prev: s.prev,
                entry: s.entry,
            },
            _ => Code::default(),
        };
        self.remember(device, eurid, fingerprint.to_string(), code.clone());
        Some(code)
    }

    fn remember(
        &mut self,
        device: &Arc<EnOceanSensor>,
        eurid: &str,
        fingerprint: String,
        code: Code,
    ) {
        self.codes.insert(
            eurid.to_string(),
            Known {
                device: device.clone(),
                fingerprint,
                code,
            },
        );
    }

    async fn teach_in(
        &mut self,
        io: &mut Io<'_>,
        device: &Arc<EnOceanSensor>,
        eurid: &str,
        telegram: Telegram,
    ) -> Option<DeviceResult> {
        let pushed = self.teach_ins.push(
            telegram.sender,
            &telegram.data,
            unix_millis(),
            self.settings.psk.as_ref(),
        );
        let taught = match pushed {
            Ok(None) => return Some(failed("secure teach-in telegram; waiting for the others")),
            Ok(Some(t)) => t,
            Err(secure::SecureError::PskRequired) => {
                metric("teach_in_refused");
                return Some(failed(
                    "secure teach-in is encrypted with a pre-shared key; IOT_SECURE_PSK is not set",
                ));
            }
            Err(e) => {
                metric("teach_in_refused");
                return Some(failed(format!("secure teach-in refused: {e}")));
            }
        };
        if let Err(why) = self.authorised(io, device, eurid, &taught).await? {
            return Some(outcome::teach_in_refused(eurid, why));
        }
        let field = keys::device_field(&device.source_eurid, device.destination());
        let applied = io
            .retry("applying a secure teach-in", |mut r| {
                let (field, taught) = (&field, &taught);
                async move { teach_in::apply(&mut r, field, eurid, taught).await }
            })
            .await?;
        match applied {
            Ok(a) => {
                metric("teach_in");
                info!(%eurid, slf = format!("{:02x}", a.ctx.slf.byte()), ptm = a.ctx.is_ptm,
                      same_key = a.same_key, psk = taught.info.psk(),
                      "secure teach-in applied: key and SLF stored");
                self.remember(device, eurid, a.fingerprint, Code::just(a.last));
                self.contexts.taught(eurid, a.before, a.ctx);
                Some(failed("secure teach-in applied; not published"))
            }
            Err(NotApplied::Removed) => Some(failed("secure teach-in of a device just removed")),
            Err(NotApplied::Unusable(why)) => {
                warn!(%eurid, %why, "secure teach-in not applied");
                Some(failed(format!("secure teach-in not applied: {why}")))
            }
        }
    }
}

impl Stage {
    /// Whether a complete teach-in may be applied. One that repeats the device's key and
    /// SLF changes nothing but moves the code forward, so it needs no authority (a teach-in
    /// delivered again after a crash is one); a new key needs the policy's consent.
    async fn authorised(
        &mut self,
        io: &mut Io<'_>,
        device: &Arc<EnOceanSensor>,
        eurid: &str,
        taught: &secure::SecureTeachIn,
    ) -> Option<Result<(), &'static str>> {
        let new = taught.context();
        let present = self.contexts.get(eurid, device).ok().flatten();
        let same = present
            .as_ref()
            .is_some_and(|p| p.key == new.key && p.slf == new.slf);
        if same && self.settings.teach_in != TeachInPolicy::Off {
            return Some(Ok(()));
        }
        let authority = io
            .retry("reading the learn window", |mut r| async move {
                teach_in::authority(&mut r, eurid).await
            })
            .await?;
        let api_key = present
            .is_some_and(|p| authority.taught.as_deref() != Some(rlc::fingerprint(&p).as_str()));
        let facts = TeachInFacts {
            psk: taught.info.psk(),
            window: authority.window,
            api_key,
        };
        Some(self.settings.teach_in.judge(facts))
    }
}

/// The decrypted inner telegram, with the security level that was verified.
fn inner(received: Telegram, plain: Plain) -> Telegram {
    Telegram {
        rorg: plain.rorg,
        status: plain.status(received.status),
        security_level: Some(plain.security_level),
        data: plain.data,
        ..received
    }
}

/// Redis access of one settle call, retried until it works or the engine stops.
struct Io<'a> {
    redis: &'a Redis,
    stop: &'a watch::Receiver<bool>,
    /// The stream entry being settled.
    entry: &'a str,
}

impl Io<'_> {
    async fn retry<T, F, Fut>(&mut self, what: &str, mut call: F) -> Option<T>
    where
        F: FnMut(Redis) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let mut backoff = Backoff::default();
        loop {
            match call(self.redis.clone()).await {
                Ok(v) => return Some(v),
                Err(e) => {
                    metrics::counter!("iotc_engine_redis_errors_total").increment(1);
                    warn!(error = %e, "{what} failed; retrying");
                }
            }
            if *self.stop.borrow() {
                return None;
            }
            let mut stop = self.stop.clone();
            tokio::select! {
                _ = backoff.wait() => {}
                _ = stop.changed() => {}
            }
        }
    }
}
