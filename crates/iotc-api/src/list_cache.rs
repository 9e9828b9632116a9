//! The serialised answer of `GET /devices` (all devices), kept per API instance and valid while
//! the registry's version in Redis is unchanged. Every writer of the registry increments
//! `keys::DEVICES_VERSION` in the same transaction, so several API instances stay exact: each
//! request costs one round trip (version and count) instead of reading every device.

use std::future::Future;

use axum::body::Bytes;
use tokio::sync::Mutex;

/// Largest answer kept (bytes): about 170,000 devices. A larger list is built per request, so
/// the cache never holds more than this.
pub const MAX_CACHED_BYTES: usize = 32 * 1024 * 1024;

/// What identifies one state of the registry: the change counter and the number of devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub counter: u64,
    pub len: u64,
}

#[derive(Default)]
pub struct ListCache {
    /// The lock also makes concurrent misses build the list once.
    slot: Mutex<Option<(Version, Bytes)>>,
}

impl ListCache {
    /// The cached answer when it is of `current`, else a fresh one from `build` (which reads
    /// the list and its version together).
    pub async fn get_or_build<F, Fut, E>(&self, current: Version, build: F) -> Result<Bytes, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(Version, Bytes), E>>,
    {
        let mut slot = self.slot.lock().await;
        if let Some((version, bytes)) = slot.as_ref()
            && *version == current
        {
            metrics::counter!("iotc_api_device_list_cache_total", "result" => "hit").increment(1);
            return Ok(bytes.clone());
        }
        metrics::counter!("iotc_api_device_list_cache_total", "result" => "miss").increment(1);
        let (version, bytes) = build().await?;
        *slot = (bytes.len() <= MAX_CACHED_BYTES).then(|| (version, bytes.clone()));
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(counter: u64) -> Version {
        Version { counter, len: 1 }
    }

    #[tokio::test]
    async fn rebuilds_only_when_the_version_changes() {
        let cache = ListCache::default();
        let build = |n: u64, text: &'static str| {
            move || async move { Ok::<_, ()>((v(n), Bytes::from_static(text.as_bytes()))) }
        };
        assert_eq!(
            cache.get_or_build(v(1), build(1, "a")).await,
            Ok("a".into())
        );
        assert_eq!(
            cache.get_or_build(v(1), build(1, "b")).await,
            Ok("a".into())
        );
        assert_eq!(
            cache.get_or_build(v(2), build(2, "c")).await,
            Ok("c".into())
        );
        let other_len = Version { counter: 2, len: 5 };
        assert_eq!(
            cache.get_or_build(other_len, build(2, "d")).await,
            Ok("d".into())
        );
    }
}
