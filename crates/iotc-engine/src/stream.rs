//! Reading the telegram and gateway event streams in the engine consumer group.
//!
//! The telegram streams read are the partitions this engine holds a lease on
//! ([`crate::lease`]); with one partition and one engine that is `iotc:telegrams`, as always.
//! Per stream, first this consumer's own unacknowledged entries (XREADGROUP with id 0: left
//! by a previous run under the same name, or just taken over with a partition), then new
//! entries (`>`). Every `claim_every`, entries that any consumer left unacknowledged for
//! `claim_idle_ms` are taken over with XAUTOCLAIM. An entry is acknowledged by the caller
//! only after its messages were confirmed by the egress ([`add_acks`]).
//!
//! A claim, and a read of own pending entries, also return entries the caller is still
//! working on (batches in flight, parts of open chains): the caller skips the ids it has.
//!
//! On a Redis Cluster one command reaches one slot, so each stream is read by its own
//! command, without blocking; an idle engine asks again after [`CLUSTER_POLL`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use iotc_core::keys;
use iotc_core::partition::Layout;
use iotc_core::redis::Redis;
use redis::Value;
use tracing::{debug, info, warn};

use crate::dedup::Dedup;
use crate::lease::Held;

/// How long an idle engine waits between reads on a Redis Cluster.
pub const CLUSTER_POLL: Duration = Duration::from_millis(10);

/// Stream entry ids (assigned by Redis, so a fast hash is safe).
pub type IdSet = rustc_hash::FxHashSet<String>;

/// Which stream an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Telegrams,
    GatewayEvents,
}

impl Source {
    /// The stream of unqualified ids (see [`Entry::id`]).
    pub fn key(self) -> &'static str {
        match self {
            Source::Telegrams => keys::TELEGRAM_STREAM,
            Source::GatewayEvents => keys::GATEWAY_EVENT_STREAM,
        }
    }

    /// The entry field carrying the payload.
    pub fn field(self) -> &'static str {
        match self {
            Source::Telegrams => iotc_core::bus::FIELD,
            Source::GatewayEvents => "j",
        }
    }

    fn from_key(key: &[u8]) -> Option<Source> {
        if key == keys::GATEWAY_EVENT_STREAM.as_bytes() {
            Some(Source::GatewayEvents)
        } else {
            key.starts_with(keys::TELEGRAM_STREAM.as_bytes())
                .then_some(Source::Telegrams)
        }
    }
}

/// One stream entry. `payload` is `None` when the entry was trimmed from the stream while
/// pending, or lacks its field: it is acknowledged without further work.
#[derive(Debug, Clone)]
pub struct Entry {
    pub source: Source,
    /// The stream entry id; an entry of a partition other than `iotc:telegrams` carries its
    /// stream in front (`<stream> <id>`), so that ids stay unique across partitions.
    pub id: String,
    pub payload: Option<Vec<u8>>,
}

/// The key of an entry in sets of ids held back ([`IdSet`]): [`Entry::id`], with the stream
/// in front for a gateway event, whose plain ids may equal telegram ids (both streams number
/// their entries by the millisecond).
pub fn held_key(source: Source, id: &str) -> Cow<'_, str> {
    match source {
        Source::Telegrams => Cow::Borrowed(id),
        Source::GatewayEvents => Cow::Owned(format!("{} {id}", keys::GATEWAY_EVENT_STREAM)),
    }
}

impl Entry {
    pub fn held_key(&self) -> Cow<'_, str> {
        held_key(self.source, &self.id)
    }
}

/// Adds the XACKs of these entry ids (as [`Entry::id`] gives them) to `pipe`.
pub fn add_acks(pipe: &mut redis::Pipeline, source: Source, ids: &[String]) {
    let mut by_stream: HashMap<&str, Vec<&str>> = HashMap::new();
    for id in ids {
        let (stream, id) = split_id(source, id);
        by_stream.entry(stream).or_default().push(id);
    }
    for (stream, ids) in by_stream {
        pipe.xack(stream, keys::ENGINE_GROUP, &ids).ignore();
    }
}

/// The stream and the plain id of an [`Entry::id`].
pub fn split_id(source: Source, id: &str) -> (&str, &str) {
    id.rsplit_once(' ').unwrap_or((source.key(), id))
}

fn qualify(stream: &str, id: String) -> String {
    if stream == keys::TELEGRAM_STREAM || stream == keys::GATEWAY_EVENT_STREAM {
        id
    } else {
        format!("{stream} {id}")
    }
}

/// The de-duplication windows, shared by the reader and the prepare stage.
pub type SharedDedup = std::sync::Arc<std::sync::Mutex<Dedup>>;

/// The windows, also after a panic elsewhere (they stay consistent: every change is one call).
pub fn lock(dedup: &SharedDedup) -> std::sync::MutexGuard<'_, Dedup> {
    dedup.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct Settings {
    pub consumer: String,
    pub count: usize,
    pub block_ms: usize,
    pub claim_idle_ms: usize,
    pub claim_every: Duration,
    pub layout: Layout,
    /// The telegram streams to read (the partitions held).
    pub partitions: Held,
}

pub struct Reader {
    redis: Redis,
    settings: Settings,
    /// The de-duplication windows of the partitions held (the prepare stage asks it per
    /// entry; this reader teaches it the past of streams taken on and drops those let go).
    pub dedup: SharedDedup,
    /// Telegram streams just taken on: the de-duplication learns their recent past first.
    to_recall: Vec<String>,
    /// Per stream read: `Some(id)` while re-reading own pending entries after `id`, `None`
    /// once live.
    streams: HashMap<String, Option<String>>,
    next_claim: Instant,
}

impl Reader {
    /// `redis` must allow responses slower than `block_ms`.
    pub fn new(redis: Redis, settings: Settings, dedup: Dedup) -> Self {
        let next_claim = Instant::now();
        Reader {
            redis,
            settings,
            dedup: std::sync::Arc::new(std::sync::Mutex::new(dedup)),
            to_recall: Vec::new(),
            streams: HashMap::new(),
            next_claim,
        }
    }

    /// Creates the consumer group on every stream (and the streams) if missing. The group
    /// starts at the beginning, so entries written before the first engine started count.
    pub async fn ensure_groups(&mut self) -> redis::RedisResult<()> {
        let mut all = self.settings.layout.streams();
        all.push(keys::GATEWAY_EVENT_STREAM.to_string());
        for stream in all {
            let created: redis::RedisResult<()> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(&stream)
                .arg(keys::ENGINE_GROUP)
                .arg("0")
                .arg("MKSTREAM")
                .query_async(&mut self.redis)
                .await;
            match created {
                Ok(()) => info!(%stream, "consumer group created"),
                Err(e) if e.code() == Some("BUSYGROUP") => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The number of entries a read asks for (per stream).
    pub fn batch_size(&self) -> usize {
        self.settings.count
    }

    /// The telegram streams held now (changes as leases come and go).
    pub fn partitions(&self) -> Held {
        self.settings.partitions.clone()
    }

    /// The next batch: claimed entries when a claim is due, else own pending entries, else
    /// new ones (waiting up to `block_ms`).
    pub async fn next_batch(&mut self) -> redis::RedisResult<Vec<Entry>> {
        let result = self.read().await;
        if let Err(e) = &result {
            if e.code() == Some("NOGROUP") {
                // Redis lost its data (restart without persistence): start over.
                self.ensure_groups().await?;
                self.streams.clear();
            } else {
                self.read_own_pending_again();
            }
        }
        result
    }

    /// After a failed read: Redis may have delivered entries whose reply never arrived (the
    /// connection dropped, the reply came too late). They are pending under this consumer,
    /// so reading its own pending entries first again finds them, before any newer entry of
    /// their stream.
    fn read_own_pending_again(&mut self) {
        for cursor in self.streams.values_mut() {
            *cursor = Some("0".into());
        }
    }

    /// Follows the partitions held: a new one starts with its own pending entries.
    fn sync_streams(&mut self) {
        let mut wanted: Vec<String> = self.settings.partitions.current().to_vec();
        for k in &wanted {
            if !self.streams.contains_key(k) {
                self.to_recall.push(k.clone());
            }
        }
        wanted.push(keys::GATEWAY_EVENT_STREAM.to_string());
        let before = self.streams.len();
        self.streams.retain(|k, _| wanted.contains(k));
        if self.streams.len() < before {
            lock(&self.dedup).keep_only(&wanted);
        }
        for k in wanted {
            self.streams.entry(k).or_insert_with(|| Some("0".into()));
        }
    }

    /// Shows the de-duplication the entries delivered in the window before a stream was
    /// taken on (by this engine before a restart, or by the engine it took over from): a
    /// copy of one of them read later is then still a copy. Best effort: without it such a
    /// copy is published once more, as after any fault.
    async fn recall_new_streams(&mut self) {
        for stream in std::mem::take(&mut self.to_recall) {
            if let Err(e) = self.recall(&stream).await {
                warn!(%stream, error = %e, "recent entries not read; copies may be published once more");
            }
        }
    }

    async fn recall(&mut self, stream: &str) -> redis::RedisResult<()> {
        let groups: Value = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(stream)
            .query_async(&mut self.redis)
            .await?;
        let Some(last) = last_delivered(groups) else {
            return Ok(());
        };
        let Some(last_ms) = last
            .split_once('-')
            .and_then(|(ms, _)| ms.parse::<u64>().ok())
        else {
            return Ok(());
        };
        let since = last_ms.saturating_sub(lock(&self.dedup).window_ms());
        let reply: Value = redis::cmd("XREVRANGE")
            .arg(stream)
            .arg(&last)
            .arg(since)
            .arg("COUNT")
            .arg(crate::dedup::MAX_KEYS)
            .query_async(&mut self.redis)
            .await?;
        let mut entries: Vec<Entry> = items(reply)
            .into_iter()
            .filter_map(|e| parse_entry(Source::Telegrams, stream, e))
            .collect();
        entries.reverse();
        let n = entries.len();
        let mut dedup = lock(&self.dedup);
        for e in entries {
            let parsed = e
                .payload
                .as_deref()
                .map(iotc_core::bus::TelegramEntry::decode);
            if let Some(Ok(parsed)) = parsed {
                let (_, id) = split_id(Source::Telegrams, &e.id);
                dedup.remember(stream, id, &parsed.esp3);
            }
        }
        debug!(%stream, entries = n, "de-duplication window recalled");
        Ok(())
    }

    async fn read(&mut self) -> redis::RedisResult<Vec<Entry>> {
        self.sync_streams();
        self.recall_new_streams().await;
        if Instant::now() >= self.next_claim {
            self.next_claim = Instant::now() + self.settings.claim_every;
            let claimed = self.claim().await?;
            if !claimed.is_empty() {
                info!(
                    entries = claimed.len(),
                    "took over entries left unacknowledged"
                );
                return Ok(claimed);
            }
        }
        let pending: Vec<(String, String)> = self
            .streams
            .iter()
            .filter_map(|(k, id)| id.clone().map(|id| (k.clone(), id)))
            .collect();
        if !pending.is_empty() {
            let entries = self.read_group(&pending, None).await?;
            self.advance_pending(&pending, &entries);
            if !entries.is_empty() {
                return Ok(entries);
            }
        }
        let live: Vec<(String, String)> = self
            .streams
            .keys()
            .map(|k| (k.clone(), ">".to_string()))
            .collect();
        let entries = self.read_group(&live, Some(self.settings.block_ms)).await?;
        if entries.is_empty() && self.redis.is_cluster() {
            tokio::time::sleep(
                CLUSTER_POLL.min(Duration::from_millis(self.settings.block_ms as u64)),
            )
            .await;
        }
        Ok(entries)
    }

    /// After a read of own pending entries: a stream that gave nothing is done with them.
    fn advance_pending(&mut self, read: &[(String, String)], entries: &[Entry]) {
        let mut last: HashMap<&str, &str> = HashMap::new();
        for e in entries {
            let (stream, id) = split_id(e.source, &e.id);
            last.insert(stream, id);
        }
        for (stream, _) in read {
            let next = last.get(stream.as_str()).map(|id| id.to_string());
            if next.is_none() {
                debug!(%stream, "own pending entries done");
            }
            self.streams.insert(stream.clone(), next);
        }
    }

    /// One XREADGROUP over `streams` (stream, id); on a cluster one per stream, not blocking.
    async fn read_group(
        &mut self,
        streams: &[(String, String)],
        block_ms: Option<usize>,
    ) -> redis::RedisResult<Vec<Entry>> {
        if !self.redis.is_cluster() {
            return self.read_group_once(streams, block_ms).await;
        }
        let reads = streams.iter().map(|s| {
            let mut me = Reader::clone_conn(self);
            async move { me.read_one(s).await }
        });
        merge_reads(futures_util::future::join_all(reads).await)
    }

    fn clone_conn(&self) -> ReadConn {
        ReadConn {
            redis: self.redis.clone(),
            consumer: self.settings.consumer.clone(),
            count: self.settings.count,
        }
    }

    async fn read_group_once(
        &mut self,
        streams: &[(String, String)],
        block_ms: Option<usize>,
    ) -> redis::RedisResult<Vec<Entry>> {
        let mut conn = self.clone_conn();
        conn.read(streams, block_ms).await
    }

    async fn claim(&mut self) -> redis::RedisResult<Vec<Entry>> {
        let mut out = Vec::new();
        let streams: Vec<String> = self.streams.keys().cloned().collect();
        for stream in &streams {
            let Some(source) = Source::from_key(stream.as_bytes()) else {
                continue;
            };
            let mut cursor = "0-0".to_string();
            loop {
                let reply: Value = redis::cmd("XAUTOCLAIM")
                    .arg(stream)
                    .arg(keys::ENGINE_GROUP)
                    .arg(&self.settings.consumer)
                    .arg(self.settings.claim_idle_ms)
                    .arg(&cursor)
                    .arg("COUNT")
                    .arg(self.settings.count)
                    .query_async(&mut self.redis)
                    .await?;
                let (next, entries) = parse_claim_reply(source, stream, reply);
                out.extend(entries);
                if next == "0-0" || next.is_empty() || out.len() >= self.settings.count {
                    break;
                }
                cursor = next;
            }
        }
        self.forget_idle_consumers(&streams).await?;
        Ok(out)
    }

    /// Removes consumers that own nothing and have not read for an hour (engines that were
    /// replaced under another name); a live one is recreated by its next read.
    async fn forget_idle_consumers(&mut self, streams: &[String]) -> redis::RedisResult<()> {
        for stream in streams {
            let reply: Value = redis::cmd("XINFO")
                .arg("CONSUMERS")
                .arg(stream)
                .arg(keys::ENGINE_GROUP)
                .query_async(&mut self.redis)
                .await?;
            for (name, pending, idle_ms) in parse_consumers(reply) {
                if name != self.settings.consumer && pending == 0 && idle_ms > CONSUMER_IDLE_MS {
                    let _: i64 = redis::cmd("XGROUP")
                        .arg("DELCONSUMER")
                        .arg(stream)
                        .arg(keys::ENGINE_GROUP)
                        .arg(&name)
                        .query_async(&mut self.redis)
                        .await?;
                    info!(consumer = %name, %stream, "removed idle consumer");
                }
            }
        }
        Ok(())
    }
}

/// What one read needs, detached from the reader so that reads run side by side.
struct ReadConn {
    redis: Redis,
    consumer: String,
    count: usize,
}

impl ReadConn {
    async fn read_one(&mut self, stream: &(String, String)) -> redis::RedisResult<Vec<Entry>> {
        self.read(std::slice::from_ref(stream), None).await
    }

    async fn read(
        &mut self,
        streams: &[(String, String)],
        block_ms: Option<usize>,
    ) -> redis::RedisResult<Vec<Entry>> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(keys::ENGINE_GROUP)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(self.count);
        if let Some(ms) = block_ms {
            cmd.arg("BLOCK").arg(ms);
        }
        cmd.arg("STREAMS");
        for (stream, _) in streams {
            cmd.arg(stream);
        }
        for (_, id) in streams {
            cmd.arg(id);
        }
        let reply: Value = cmd.query_async(&mut self.redis).await?;
        Ok(parse_read_reply(reply))
    }
}

/// The entries of reads made side by side. Entries a read delivered are kept even when
/// another read failed (a node failing over): Redis counts them as delivered to this
/// consumer, so dropping them would leave them pending until a claim, behind newer entries
/// of their stream. The failure is an error only when no read delivered anything.
fn merge_reads(results: Vec<redis::RedisResult<Vec<Entry>>>) -> redis::RedisResult<Vec<Entry>> {
    let mut out = Vec::new();
    let mut failed = None;
    for result in results {
        match result {
            Ok(entries) => out.extend(entries),
            Err(e) => failed = Some(e),
        }
    }
    match failed {
        Some(e) if out.is_empty() => Err(e),
        Some(e) => {
            metrics::counter!("iotc_engine_redis_errors_total").increment(1);
            warn!(error = %e, entries = out.len(), "reading one stream failed; the others' entries go on");
            Ok(out)
        }
        None => Ok(out),
    }
}

/// The next cursor and the number of entries of an XAUTOCLAIM reply.
pub fn claim_cursor(reply: Value) -> (String, usize) {
    let mut parts = items(reply).into_iter();
    let next = parts.next().map(text).unwrap_or_default();
    let n = parts.next().map(items).map_or(0, |v| v.len());
    (next, n)
}

/// A consumer idle this long (ms) with nothing pending is removed from the group.
const CONSUMER_IDLE_MS: i64 = 3_600_000;

/// XINFO CONSUMERS reply: per consumer a map with `name`, `pending`, `idle`.
fn parse_consumers(reply: Value) -> Vec<(String, i64, i64)> {
    items(reply)
        .into_iter()
        .map(|c| {
            let mut name = String::new();
            let (mut pending, mut idle) = (0, 0);
            let mut kv = items(c).into_iter();
            while let (Some(k), Some(v)) = (kv.next(), kv.next()) {
                let num = match v {
                    Value::Int(n) => n,
                    ref other => text(other.clone()).parse().unwrap_or(0),
                };
                match text(k).as_str() {
                    "name" => name = text(v),
                    "pending" => pending = num,
                    "idle" => idle = num,
                    _ => {}
                }
            }
            (name, pending, idle)
        })
        .collect()
}

/// The engine group's `last-delivered-id` in an XINFO GROUPS reply; `None` before the first
/// delivery.
fn last_delivered(reply: Value) -> Option<String> {
    for group in items(reply) {
        let mut fields = items(group).into_iter();
        let (mut name, mut last) = (String::new(), String::new());
        while let (Some(k), Some(v)) = (fields.next(), fields.next()) {
            match text(k).as_str() {
                "name" => name = text(v),
                "last-delivered-id" => last = text(v),
                _ => {}
            }
        }
        if name == keys::ENGINE_GROUP && last != "0-0" && !last.is_empty() {
            return Some(last);
        }
    }
    None
}

fn items(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) | Value::Set(a) => a,
        Value::Map(m) => m.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => Vec::new(),
    }
}

fn bytes(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        _ => None,
    }
}

fn text(v: Value) -> String {
    bytes(v)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// XREADGROUP reply: `[[stream, [[id, [field, value, ...] | nil], ...]], ...]` (or a map).
fn parse_read_reply(reply: Value) -> Vec<Entry> {
    let mut out = Vec::new();
    let streams: Vec<(Value, Value)> = match reply {
        Value::Map(m) => m,
        other => items(other)
            .into_iter()
            .filter_map(|s| {
                let mut kv = items(s).into_iter();
                Some((kv.next()?, kv.next()?))
            })
            .collect(),
    };
    for (key, entries) in streams {
        let Some(key) = bytes(key) else { continue };
        let Some(source) = Source::from_key(&key) else {
            continue;
        };
        let stream = String::from_utf8_lossy(&key);
        out.extend(
            items(entries)
                .into_iter()
                .filter_map(|e| parse_entry(source, &stream, e)),
        );
    }
    out
}

/// XAUTOCLAIM reply: `[next, [entries], [deleted ids]]`. Deleted ids come back as entries
/// without payload so that they are acknowledged.
fn parse_claim_reply(source: Source, stream: &str, reply: Value) -> (String, Vec<Entry>) {
    let mut parts = items(reply).into_iter();
    let next = parts.next().map(text).unwrap_or_default();
    let mut entries: Vec<Entry> = parts
        .next()
        .map(items)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| parse_entry(source, stream, e))
        .collect();
    if let Some(deleted) = parts.next() {
        entries.extend(items(deleted).into_iter().map(|id| Entry {
            source,
            id: qualify(stream, text(id)),
            payload: None,
        }));
    }
    (next, entries)
}

fn parse_entry(source: Source, stream: &str, entry: Value) -> Option<Entry> {
    let mut parts = items(entry).into_iter();
    let id = qualify(stream, text(parts.next()?));
    let mut fields = parts.next().map(items).unwrap_or_default().into_iter();
    let mut payload = None;
    while let (Some(f), Some(v)) = (fields.next(), fields.next()) {
        if bytes(f).as_deref() == Some(source.field().as_bytes()) {
            payload = bytes(v);
        }
    }
    Some(Entry {
        source,
        id,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn parses_read_reply_with_trimmed_entry() {
        let reply = Value::Array(vec![
            Value::Array(vec![
                bulk(keys::TELEGRAM_STREAM),
                Value::Array(vec![
                    Value::Array(vec![bulk("1-0"), Value::Array(vec![bulk("t"), bulk("ab")])]),
                    Value::Array(vec![bulk("2-0"), Value::Nil]),
                ]),
            ]),
            Value::Array(vec![
                bulk(keys::GATEWAY_EVENT_STREAM),
                Value::Array(vec![Value::Array(vec![
                    bulk("3-0"),
                    Value::Array(vec![bulk("j"), bulk("{}")]),
                ])]),
            ]),
        ]);
        let entries = parse_read_reply(reply);
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].source, Source::Telegrams);
        assert_eq!(entries[0].payload.as_deref(), Some(&b"ab"[..]));
        assert_eq!(entries[1].id, "2-0");
        assert!(entries[1].payload.is_none());
        assert_eq!(entries[2].source, Source::GatewayEvents);
        assert_eq!(entries[2].payload.as_deref(), Some(&b"{}"[..]));
        assert!(parse_read_reply(Value::Nil).is_empty());
    }

    #[test]
    fn partition_ids_carry_their_stream() {
        let id = qualify("iotc:telegrams:{3}", "1-0".into());
        assert_eq!(id, "iotc:telegrams:{3} 1-0");
        assert_eq!(
            split_id(Source::Telegrams, &id),
            ("iotc:telegrams:{3}", "1-0")
        );
        assert_eq!(qualify(keys::TELEGRAM_STREAM, "1-0".into()), "1-0");
        assert_eq!(
            split_id(Source::Telegrams, "1-0"),
            ("iotc:telegrams", "1-0")
        );
        assert_eq!(
            split_id(Source::GatewayEvents, "2-0"),
            ("iotc:gateway-events", "2-0")
        );
    }

    #[test]
    fn entries_read_are_kept_when_another_read_fails() {
        let entry = |id: &str| Entry {
            source: Source::Telegrams,
            id: id.into(),
            payload: Some(b"x".to_vec()),
        };
        let failure = || redis::RedisError::from((redis::ErrorKind::Io, "node down"));
        let merged = merge_reads(vec![
            Ok(vec![entry("1-0"), entry("2-0")]),
            Err(failure()),
            Ok(vec![entry("3-0")]),
        ])
        .expect("entries delivered are not dropped");
        let ids: Vec<&str> = merged.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["1-0", "2-0", "3-0"]);
        assert!(merge_reads(vec![Ok(vec![]), Err(failure())]).is_err());
        assert!(
            merge_reads(vec![Ok(vec![]), Ok(vec![])])
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn parses_consumer_info() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("name"),
            bulk("old-engine"),
            bulk("pending"),
            Value::Int(0),
            bulk("idle"),
            Value::Int(7_200_000),
        ])]);
        assert_eq!(
            parse_consumers(reply),
            vec![("old-engine".to_string(), 0, 7_200_000)]
        );
    }

    #[test]
    fn parses_claim_reply_with_deleted_ids() {
        let reply = Value::Array(vec![
            bulk("0-0"),
            Value::Array(vec![Value::Array(vec![
                bulk("5-1"),
                Value::Array(vec![bulk("t"), bulk("x")]),
            ])]),
            Value::Array(vec![bulk("4-0")]),
        ]);
        let (next, entries) = parse_claim_reply(Source::Telegrams, keys::TELEGRAM_STREAM, reply);
        assert_eq!(next, "0-0");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].id, "5-1");
        assert_eq!(entries[1].id, "4-0");
        assert!(entries[1].payload.is_none());
    }
}
