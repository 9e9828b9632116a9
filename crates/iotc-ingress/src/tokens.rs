//! Access tokens: issued at /auth/aruba and kept in Redis with their lifetime as TTL, so that
//! every ingress instance accepts them; or one static token from the configuration.

use std::time::{Duration, Instant};

use iotc_core::redis::Redis;
use redis::AsyncCommands;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use iotc_core::keys::{AP_TOKEN_VALUE_PREFIX, AUTH_TOKEN_PREFIX};

/// The verdict on a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStatus {
    /// Valid; `until` is when it expires (`None`: no expiry).
    Valid {
        until: Option<Instant>,
    },
    Invalid,
}

#[derive(Clone)]
pub struct TokenStore {
    redis: Redis,
    lifetime: Duration,
    static_token: Option<String>,
}

impl TokenStore {
    pub fn new(redis: Redis, lifetime: Duration, static_token: Option<String>) -> Self {
        TokenStore {
            redis,
            lifetime,
            static_token,
        }
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// A new random token, stored for its lifetime. `client` (the AP's client id) is kept
    /// with it for diagnosis.
    pub async fn issue(&self, client: &str) -> redis::RedisResult<String> {
        let token = hex::encode(rand::random::<[u8; 32]>());
        let mut redis = self.redis.clone();
        let _: () = redis
            .set_ex(storage_key(&token), client, self.lifetime.as_secs())
            .await?;
        Ok(token)
    }

    /// A token bound to a registered AP: messages carrying it must come from that MAC.
    pub async fn issue_for_ap(&self, mac: &str) -> redis::RedisResult<String> {
        self.issue(&format!("{AP_TOKEN_VALUE_PREFIX}{mac}")).await
    }

    /// The MAC an issued token is bound to (`None`: not bound, unknown or expired).
    pub async fn bound_ap(&self, token: &str) -> redis::RedisResult<Option<String>> {
        let mut redis = self.redis.clone();
        let value: Option<String> = redis.get(storage_key(token)).await?;
        Ok(value.and_then(|v| v.strip_prefix(AP_TOKEN_VALUE_PREFIX).map(str::to_string)))
    }

    /// Checks a token: the static one (constant time), else an issued one in Redis.
    pub async fn check(&self, token: &str) -> redis::RedisResult<TokenStatus> {
        if token.is_empty() {
            return Ok(TokenStatus::Invalid);
        }
        if let Some(fixed) = &self.static_token
            && bool::from(fixed.as_bytes().ct_eq(token.as_bytes()))
        {
            return Ok(TokenStatus::Valid { until: None });
        }
        let mut redis = self.redis.clone();
        let ttl_ms: i64 = redis.pttl(storage_key(token)).await?;
        Ok(match ttl_ms {
            -2 => TokenStatus::Invalid,
            ms if ms < 0 => TokenStatus::Valid { until: None },
            ms => TokenStatus::Valid {
                until: Some(Instant::now() + Duration::from_millis(ms as u64)),
            },
        })
    }
}

/// Only a hash of the token is stored: a Redis dump does not reveal usable tokens.
fn storage_key(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    format!("{AUTH_TOKEN_PREFIX}{}", hex::encode(digest))
}

/// A connection's memory of the last token that passed, so that a stream of messages does
/// not cost a Redis round trip each; expiry is still enforced per message.
#[derive(Default)]
pub struct TokenCache {
    last: Option<(String, Option<Instant>)>,
}

impl TokenCache {
    /// True when `token` is the remembered one and has not expired.
    pub fn admits(&self, token: &str) -> bool {
        match &self.last {
            Some((known, until)) => {
                bool::from(known.as_bytes().ct_eq(token.as_bytes()))
                    && until.is_none_or(|u| Instant::now() < u)
            }
            None => false,
        }
    }

    pub fn remember(&mut self, token: &str, until: Option<Instant>) {
        self.last = Some((token.to_string(), until));
    }

    pub fn forget(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_admits_only_the_same_unexpired_token() {
        let mut cache = TokenCache::default();
        assert!(!cache.admits("a"));
        cache.remember("a", Some(Instant::now() + Duration::from_secs(60)));
        assert!(cache.admits("a"));
        assert!(!cache.admits("b"));
        cache.remember("a", Some(Instant::now() - Duration::from_millis(1)));
        assert!(!cache.admits("a"));
        cache.remember("c", None);
        assert!(cache.admits("c"));
    }

    #[test]
    fn storage_key_hides_the_token() {
        let key = storage_key("secret-token");
        assert!(key.starts_with(AUTH_TOKEN_PREFIX));
        assert!(!key.contains("secret"));
        assert_eq!(key.len(), AUTH_TOKEN_PREFIX.len() + 64);
    }
}
