//! The staging hash of a restore: devices are written there in batches while the backup is
//! read, then committed in one step (a `RENAME` onto the registry, or one script that merges),
//! so readers and engines see the old registry or the new one, never a part. The staging key
//! carries the registry's name as prefix (same hash tag in a cluster) and expires by itself if
//! the API dies in the middle.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use iotc_core::keys;
use iotc_core::redis::Redis;
use redis::Script;

use crate::store::{Store, StoreResult};

/// Seconds an abandoned staging hash lives after its last batch.
const TTL_SECS: i64 = 600;

/// Copies the staging hash into the registry page by page, inside one script (atomic).
static MERGE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local cursor = '0'
repeat
  local r = redis.call('HSCAN', KEYS[1], cursor, 'COUNT', 1000)
  cursor = r[1]
  if #r[2] > 0 then redis.call('HSET', KEYS[2], unpack(r[2])) end
until cursor == '0'
redis.call('DEL', KEYS[1])
redis.call('INCR', KEYS[3])
redis.call('PUBLISH', ARGV[1], '*')
return 0
",
    )
});

pub struct Staging {
    conn: Redis,
    key: String,
    written: u64,
}

impl Staging {
    pub fn new(store: &Store) -> Staging {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Staging {
            conn: store.redis(),
            key: format!(
                "{{{}}}:restore:{nanos:x}-{}-{n}",
                keys::DEVICES,
                std::process::id()
            ),
            written: 0,
        }
    }

    /// Adds a batch of `(field, device JSON)`.
    pub async fn write(&mut self, batch: &[(String, String)]) -> StoreResult<()> {
        redis::pipe()
            .hset_multiple(&self.key, batch)
            .ignore()
            .expire(&self.key, TTL_SECS)
            .ignore()
            .query_async::<()>(&mut self.conn)
            .await?;
        self.written += batch.len() as u64;
        Ok(())
    }

    /// Makes the staged devices the registry (`replace`) or merges them into it, bumps the
    /// registry's version and announces the change, all at once.
    pub async fn commit(mut self, replace: bool) -> StoreResult<()> {
        if !replace {
            MERGE
                .key(&self.key)
                .key(keys::DEVICES)
                .key(keys::DEVICES_VERSION)
                .arg(keys::DEVICES_CHANGED)
                .invoke_async::<i64>(&mut self.conn)
                .await?;
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        if self.written > 0 {
            pipe.rename(&self.key, keys::DEVICES)
                .ignore()
                .persist(keys::DEVICES)
                .ignore();
        } else {
            pipe.del(keys::DEVICES).ignore();
        }
        pipe.incr(keys::DEVICES_VERSION, 1)
            .ignore()
            .publish(keys::DEVICES_CHANGED, "*")
            .ignore();
        pipe.query_async::<()>(&mut self.conn).await?;
        Ok(())
    }

    /// Drops what was staged (best effort: the key expires anyway).
    pub async fn abort(&mut self) {
        let _ = redis::cmd("DEL")
            .arg(&self.key)
            .query_async::<()>(&mut self.conn)
            .await;
    }
}
