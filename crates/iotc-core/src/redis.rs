//! One Redis connection type for every service: a single server (a `ConnectionManager`
//! that reconnects by itself) or a Redis Cluster (the `redis` crate's cluster client, which
//! follows slot moves and failovers by itself).
//!
//! `REDIS_URL` names a cluster when it lists several addresses separated by commas
//! (`redis-1:6379,redis-2:6379`) or uses the scheme `redis-cluster://` (`rediss-cluster://`
//! with TLS). Anything else is a single server, as before.

use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use ::redis::cluster::ClusterClient;
use ::redis::cluster_async::ClusterConnection;
use ::redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};
use tokio::sync::OnceCell;

/// Timeouts of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Longest wait for one answer (allow for a blocking read's own wait).
    pub response_timeout: Duration,
    pub connection_timeout: Duration,
    /// Reconnection attempts per failed command (single server), and the longest pause.
    pub retries: usize,
    pub max_delay: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            response_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(2),
            retries: 6,
            max_delay: Duration::from_secs(2),
        }
    }
}

/// A connection to a single Redis or to a Redis Cluster; cheap to clone (clones share it).
#[derive(Clone)]
pub enum Redis {
    Single(ConnectionManager),
    Cluster(Cluster),
}

/// A cluster connection opened on first use, so that a service starts while Redis is down.
#[derive(Clone)]
pub struct Cluster(Arc<(ClusterClient, OnceCell<ClusterConnection>)>);

impl Cluster {
    async fn get(&self) -> RedisResult<ClusterConnection> {
        let (client, cell) = &*self.0;
        let conn = cell
            .get_or_try_init(|| client.get_async_connection())
            .await?;
        Ok(conn.clone())
    }
}

/// The addresses of a cluster named by `raw`, or `None` for a single server.
pub fn cluster_seeds(raw: &str) -> Option<Vec<String>> {
    let raw = raw.trim();
    for (scheme, plain) in [
        ("redis-cluster://", "redis://"),
        ("rediss-cluster://", "rediss://"),
    ] {
        if let Some(rest) = raw.strip_prefix(scheme) {
            let seeds = rest.split(',').map(|a| format!("{plain}{}", a.trim()));
            return Some(seeds.collect());
        }
    }
    raw.contains(',').then(|| {
        raw.split(',')
            .map(crate::ops::redis_url)
            .filter(|a| a != "redis://:6379")
            .collect()
    })
}

/// Whether `REDIS_URL` is a usable address (without connecting).
pub fn check(raw: &str) -> RedisResult<()> {
    let urls = cluster_seeds(raw).unwrap_or_else(|| vec![crate::ops::redis_url(raw)]);
    for url in urls {
        ::redis::Client::open(url)?;
    }
    Ok(())
}

/// A connection for `REDIS_URL` (see the module comment); does not wait for Redis.
pub fn connect(raw: &str, options: Options) -> RedisResult<Redis> {
    match cluster_seeds(raw) {
        Some(seeds) => {
            let client = ClusterClient::builder(seeds)
                .response_timeout(options.response_timeout)
                .connection_timeout(options.connection_timeout)
                .build()?;
            Ok(Redis::Cluster(Cluster(Arc::new((client, OnceCell::new())))))
        }
        None => {
            let client = ::redis::Client::open(crate::ops::redis_url(raw))?;
            let config = ConnectionManagerConfig::new()
                .set_response_timeout(Some(options.response_timeout))
                .set_connection_timeout(Some(options.connection_timeout))
                .set_number_of_retries(options.retries)
                .set_max_delay(options.max_delay);
            Ok(Redis::Single(ConnectionManager::new_lazy_with_config(
                client, config,
            )?))
        }
    }
}

impl From<ConnectionManager> for Redis {
    fn from(c: ConnectionManager) -> Redis {
        Redis::Single(c)
    }
}

impl Redis {
    pub fn is_cluster(&self) -> bool {
        matches!(self, Redis::Cluster(_))
    }
}

impl ConnectionLike for Redis {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Redis::Single(c) => c.req_packed_command(cmd),
            Redis::Cluster(c) => {
                Box::pin(async move { c.get().await?.req_packed_command(cmd).await })
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        // The client refuses an empty pipeline ("empty command"); nothing asked, nothing to
        // answer, so a loop over no devices needs no special case.
        if pipeline.is_empty() {
            return Box::pin(async { Ok(Vec::new()) });
        }
        match self {
            Redis::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Redis::Cluster(c) => Box::pin(async move {
                let conn = c.get().await?;
                // MULTI/EXEC (`offset` past the commands) must stay whole: one slot only.
                if offset == 0 && count == pipeline.len() {
                    split_pipeline(conn, pipeline).await
                } else {
                    let mut conn = conn;
                    conn.req_packed_commands(pipeline, offset, count).await
                }
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Redis::Single(c) => c.get_db(),
            Redis::Cluster(_) => 0,
        }
    }
}

/// A plain pipeline on a cluster: one sub-pipeline per slot, side by side, the answers put
/// back in the pipeline's order. Acknowledgements (XACK) run after everything else, so that
/// a stream entry is never acknowledged before the other writes of the same pipeline.
async fn split_pipeline(conn: ClusterConnection, pipeline: &Pipeline) -> RedisResult<Vec<Value>> {
    let mut groups: Vec<(u16, bool, Vec<usize>, Pipeline)> = Vec::new();
    for (i, cmd) in pipeline.cmd_iter().enumerate() {
        let (slot, ack) = route(cmd);
        let group = match groups.iter_mut().position(|g| g.0 == slot && g.1 == ack) {
            Some(g) => g,
            None => {
                groups.push((slot, ack, Vec::new(), Pipeline::new()));
                groups.len() - 1
            }
        };
        groups[group].2.push(i);
        groups[group].3.add_command(cmd.clone());
    }
    let mut out = vec![Value::Nil; pipeline.len()];
    for wave in [false, true] {
        let runs = groups.iter().filter(|g| g.1 == wave).map(|g| {
            let mut conn = conn.clone();
            async move { conn.req_packed_commands(&g.3, 0, g.3.len()).await }
        });
        let answers = futures_util::future::join_all(runs).await;
        for (g, answer) in groups.iter().filter(|g| g.1 == wave).zip(answers) {
            for (i, v) in g.2.iter().zip(answer?) {
                out[*i] = v;
            }
        }
    }
    Ok(out)
}

/// The slot of a command's first key, and whether it is an acknowledgement.
fn route(cmd: &Cmd) -> (u16, bool) {
    let args: Vec<&[u8]> = cmd
        .args_iter()
        .filter_map(|a| match a {
            ::redis::Arg::Simple(b) => Some(b),
            _ => None,
        })
        .collect();
    let name = args
        .first()
        .map(|n| n.to_ascii_uppercase())
        .unwrap_or_default();
    let key_at = match name.as_slice() {
        b"EVAL" | b"EVALSHA" | b"FCALL" => 3,
        _ => 1,
    };
    let slot = args.get(key_at).map_or(0, |k| slot(k));
    (slot, name == b"XACK")
}

/// The cluster hash slot of a key (CRC16 of its hash tag, or of the whole key), as Redis
/// computes it: keys of one slot may share a script or a multi-key command.
pub fn slot(key: &[u8]) -> u16 {
    crc16::State::<crc16::XMODEM>::calculate(hash_tag(key)) % 16384
}

/// The part of a key that is hashed: the first non-empty `{...}`, else the whole key.
fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{')
        && let Some(len) = key[open + 1..].iter().position(|&b| b == b'}')
        && len > 0
    {
        return &key[open + 1..open + 1 + len];
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_as_redis_computes_them() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(slot(b"123456789"), 0x31C3);
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        assert_eq!(slot(b"foo{}{bar}"), slot(b"foo{}{bar}"));
        assert_ne!(slot(b"foo{}{bar}"), slot(b"bar"));
        assert_eq!(slot(b"iotc:dev:{0a1b2c3d}:stats"), slot(b"0a1b2c3d"));
    }

    #[test]
    fn cluster_addresses() {
        assert_eq!(cluster_seeds("redis"), None);
        assert_eq!(cluster_seeds("redis://a:1"), None);
        assert_eq!(
            cluster_seeds("a:1, b:2").unwrap(),
            vec!["redis://a:1", "redis://b:2"]
        );
        assert_eq!(
            cluster_seeds("redis-cluster://a:1").unwrap(),
            vec!["redis://a:1"]
        );
        assert_eq!(
            cluster_seeds("rediss-cluster://a:1,b:2").unwrap(),
            vec!["rediss://a:1", "rediss://b:2"]
        );
    }
}
