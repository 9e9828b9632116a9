//! The AP register as the ingress sees it (docs/security.md, "AP register"): logins are checked
//! against Redis, and the set of registered MACs is kept in memory, reloaded when the API bumps
//! the register's version, so every connection notices a revocation within a second.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use iotc_core::redis::Redis;
use redis::AsyncCommands;
use tokio::sync::watch;

use iotc_core::aps::{ApRecord, verify_password};
use iotc_core::keys;

/// How often the register's version is read.
pub const POLL: Duration = Duration::from_secs(1);

/// Registered MACs, each with the fingerprint of its required client certificate, if any.
pub type Macs = Arc<HashMap<String, Option<String>>>;

#[derive(Clone)]
pub struct Register {
    redis: Redis,
    macs: watch::Receiver<Macs>,
}

impl Register {
    /// Starts the poller; the MAC set is empty (everyone refused) until the first load.
    pub fn start(redis: Redis) -> Register {
        let (tx, macs) = watch::channel(Macs::default());
        tokio::spawn(poll(redis.clone(), tx));
        Register { redis, macs }
    }

    /// The MAC of the registered AP with this login, `None` when unknown or wrong.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
    ) -> redis::RedisResult<Option<String>> {
        let mut redis = self.redis.clone();
        let Some(mac): Option<String> = redis.hget(keys::AP_USERS, username).await? else {
            return Ok(None);
        };
        let json: Option<String> = redis.hget(keys::AP_REGISTER, &mac).await?;
        let Some(record) = json.and_then(|j| serde_json::from_str::<ApRecord>(&j).ok()) else {
            return Ok(None);
        };
        if record.username != username {
            return Ok(None);
        }
        // PBKDF2 costs tens of milliseconds of CPU: off the async workers.
        let password = password.to_string();
        let hash = record.password_hash;
        let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
            .await
            .unwrap_or(false);
        Ok(ok.then_some(mac))
    }

    /// Whether `mac` is registered right now (in memory).
    pub fn contains(&self, mac: &str) -> bool {
        self.macs.borrow().contains_key(mac)
    }

    /// The certificate fingerprint `mac` must present, if its registration has one.
    pub fn certificate(&self, mac: &str) -> Option<String> {
        self.macs.borrow().get(mac).cloned().flatten()
    }

    /// Changes of the MAC set, for connections to re-check their AP.
    pub fn watch(&self) -> watch::Receiver<Macs> {
        self.macs.clone()
    }
}

async fn poll(mut redis: Redis, tx: watch::Sender<Macs>) {
    let mut seen: Option<i64> = None;
    let mut tick = tokio::time::interval(POLL);
    loop {
        tick.tick().await;
        match load_if_changed(&mut redis, seen).await {
            Ok(Some((version, macs))) => {
                seen = Some(version);
                metrics::gauge!("iotc_ingress_ap_register_size").set(macs.len() as f64);
                tx.send_replace(Arc::new(macs));
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "AP register not readable; keeping the last one"),
        }
    }
}

/// The version and MAC set when the version differs from `seen`.
async fn load_if_changed(
    redis: &mut Redis,
    seen: Option<i64>,
) -> redis::RedisResult<Option<(i64, HashMap<String, Option<String>>)>> {
    let version: Option<i64> = redis.get(keys::AP_REGISTER_VERSION).await?;
    let version = version.unwrap_or(0);
    if seen == Some(version) {
        return Ok(None);
    }
    let all: Vec<(String, String)> = redis.hgetall(keys::AP_REGISTER).await?;
    let macs = all
        .into_iter()
        .map(|(mac, json)| {
            // An unreadable record keeps the AP registered but demands a certificate no one
            // has: refused rather than let through without its certificate.
            let cert = match serde_json::from_str::<ApRecord>(&json) {
                Ok(r) => r.certificate_sha256,
                Err(_) => Some(String::new()),
            };
            (mac, cert)
        })
        .collect();
    Ok(Some((version, macs)))
}
