//! Reading the telegram and gateway event streams in the engine consumer group.
//!
//! Order on start: first this consumer's own unacknowledged entries (XREADGROUP with id 0,
//! left by a previous run under the same name), then new entries (`>`). Every
//! `claim_every`, entries that any consumer left unacknowledged for `claim_idle_ms` are taken
//! over with XAUTOCLAIM (an engine that crashed under another name). An entry is acknowledged
//! by the caller only after its messages were confirmed by the egress.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use iotc_core::keys;
use redis::Value;
use redis::aio::ConnectionManager;
use tracing::{debug, info};

/// Which stream an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Telegrams,
    GatewayEvents,
}

impl Source {
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
        [Source::Telegrams, Source::GatewayEvents]
            .into_iter()
            .find(|s| s.key().as_bytes() == key)
    }
}

/// One stream entry. `payload` is `None` when the entry was trimmed from the stream while
/// pending, or lacks its field: it is acknowledged without further work.
#[derive(Debug, Clone)]
pub struct Entry {
    pub source: Source,
    pub id: String,
    pub payload: Option<Vec<u8>>,
}

pub struct Settings {
    pub consumer: String,
    pub count: usize,
    pub block_ms: usize,
    pub claim_idle_ms: usize,
    pub claim_every: Duration,
}

enum Phase {
    /// Re-reading own pending entries after these ids (telegrams, gateway events).
    OwnPending(String, String),
    Live,
}

pub struct Reader {
    redis: ConnectionManager,
    settings: Settings,
    phase: Phase,
    next_claim: Instant,
}

impl Reader {
    /// `redis` must allow responses slower than `block_ms`.
    pub fn new(redis: ConnectionManager, settings: Settings) -> Self {
        let next_claim = Instant::now();
        Reader {
            redis,
            settings,
            phase: Phase::OwnPending("0".into(), "0".into()),
            next_claim,
        }
    }

    /// Creates the consumer group on both streams (and the streams) if missing. The group
    /// starts at the beginning, so entries written before the first engine started count.
    pub async fn ensure_groups(&mut self) -> redis::RedisResult<()> {
        for source in [Source::Telegrams, Source::GatewayEvents] {
            let created: redis::RedisResult<()> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(source.key())
                .arg(keys::ENGINE_GROUP)
                .arg("0")
                .arg("MKSTREAM")
                .query_async(&mut self.redis)
                .await;
            match created {
                Ok(()) => info!(stream = source.key(), "consumer group created"),
                Err(e) if e.code() == Some("BUSYGROUP") => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Whether the next [`Reader::next_batch`] runs a claim (and so needs the held ids).
    pub fn claim_due(&self) -> bool {
        Instant::now() >= self.next_claim
    }

    /// The next batch: claimed entries when a claim is due, else own pending entries, else
    /// new ones (waiting up to `block_ms`). `held` are ids this engine keeps pending on
    /// purpose (parts of an open chain); claiming does not hand them out twice.
    pub async fn next_batch(&mut self, held: &HashSet<String>) -> redis::RedisResult<Vec<Entry>> {
        let result = self.read(held).await;
        if let Err(e) = &result
            && e.code() == Some("NOGROUP")
        {
            // Redis lost its data (restart without persistence): start over.
            self.ensure_groups().await?;
            self.phase = Phase::OwnPending("0".into(), "0".into());
        }
        result
    }

    async fn read(&mut self, held: &HashSet<String>) -> redis::RedisResult<Vec<Entry>> {
        if Instant::now() >= self.next_claim {
            self.next_claim = Instant::now() + self.settings.claim_every;
            let claimed = self.claim(held).await?;
            if !claimed.is_empty() {
                info!(
                    entries = claimed.len(),
                    "took over entries left unacknowledged"
                );
                return Ok(claimed);
            }
        }
        if let Phase::OwnPending(tel, gw) = &self.phase {
            let (tel, gw) = (tel.clone(), gw.clone());
            let entries = self.read_group(&[tel.as_str(), gw.as_str()], None).await?;
            if entries.is_empty() {
                debug!("own pending entries done");
                self.phase = Phase::Live;
            } else {
                self.advance_pending(&entries);
                return Ok(entries);
            }
        }
        self.read_group(&[">", ">"], Some(self.settings.block_ms))
            .await
    }

    fn advance_pending(&mut self, entries: &[Entry]) {
        if let Phase::OwnPending(tel, gw) = &mut self.phase {
            for e in entries {
                match e.source {
                    Source::Telegrams => *tel = e.id.clone(),
                    Source::GatewayEvents => *gw = e.id.clone(),
                }
            }
        }
    }

    async fn read_group(
        &mut self,
        ids: &[&str; 2],
        block_ms: Option<usize>,
    ) -> redis::RedisResult<Vec<Entry>> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(keys::ENGINE_GROUP)
            .arg(&self.settings.consumer)
            .arg("COUNT")
            .arg(self.settings.count);
        if let Some(ms) = block_ms {
            cmd.arg("BLOCK").arg(ms);
        }
        cmd.arg("STREAMS")
            .arg(Source::Telegrams.key())
            .arg(Source::GatewayEvents.key())
            .arg(ids[0])
            .arg(ids[1]);
        let reply: Value = cmd.query_async(&mut self.redis).await?;
        Ok(parse_read_reply(reply))
    }

    async fn claim(&mut self, held: &HashSet<String>) -> redis::RedisResult<Vec<Entry>> {
        let mut out = Vec::new();
        for source in [Source::Telegrams, Source::GatewayEvents] {
            let mut cursor = "0-0".to_string();
            loop {
                let reply: Value = redis::cmd("XAUTOCLAIM")
                    .arg(source.key())
                    .arg(keys::ENGINE_GROUP)
                    .arg(&self.settings.consumer)
                    .arg(self.settings.claim_idle_ms)
                    .arg(&cursor)
                    .arg("COUNT")
                    .arg(self.settings.count)
                    .query_async(&mut self.redis)
                    .await?;
                let (next, entries) = parse_claim_reply(source, reply);
                out.extend(entries.into_iter().filter(|e| !held.contains(&e.id)));
                if next == "0-0" || next.is_empty() || out.len() >= self.settings.count {
                    break;
                }
                cursor = next;
            }
        }
        self.forget_idle_consumers().await?;
        Ok(out)
    }

    /// Removes consumers that own nothing and have not read for an hour (engines that were
    /// replaced under another name); a live one is recreated by its next read.
    async fn forget_idle_consumers(&mut self) -> redis::RedisResult<()> {
        for source in [Source::Telegrams, Source::GatewayEvents] {
            let reply: Value = redis::cmd("XINFO")
                .arg("CONSUMERS")
                .arg(source.key())
                .arg(keys::ENGINE_GROUP)
                .query_async(&mut self.redis)
                .await?;
            for (name, pending, idle_ms) in parse_consumers(reply) {
                if name != self.settings.consumer && pending == 0 && idle_ms > CONSUMER_IDLE_MS {
                    let _: i64 = redis::cmd("XGROUP")
                        .arg("DELCONSUMER")
                        .arg(source.key())
                        .arg(keys::ENGINE_GROUP)
                        .arg(&name)
                        .query_async(&mut self.redis)
                        .await?;
                    info!(consumer = %name, stream = source.key(), "removed idle consumer");
                }
            }
        }
        Ok(())
    }
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
        let Some(source) = bytes(key).and_then(|k| Source::from_key(&k)) else {
            continue;
        };
        out.extend(
            items(entries)
                .into_iter()
                .filter_map(|e| parse_entry(source, e)),
        );
    }
    out
}

/// XAUTOCLAIM reply: `[next, [entries], [deleted ids]]`. Deleted ids come back as entries
/// without payload so that they are acknowledged.
fn parse_claim_reply(source: Source, reply: Value) -> (String, Vec<Entry>) {
    let mut parts = items(reply).into_iter();
    let next = parts.next().map(text).unwrap_or_default();
    let mut entries: Vec<Entry> = parts
        .next()
        .map(items)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| parse_entry(source, e))
        .collect();
    if let Some(deleted) = parts.next() {
        entries.extend(items(deleted).into_iter().map(|id| Entry {
            source,
            id: text(id),
            payload: None,
        }));
    }
    (next, entries)
}

fn parse_entry(source: Source, entry: Value) -> Option<Entry> {
    let mut parts = items(entry).into_iter();
    let id = text(parts.next()?);
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
        let (next, entries) = parse_claim_reply(Source::Telegrams, reply);
        assert_eq!(next, "0-0");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].id, "5-1");
        assert_eq!(entries[1].id, "4-0");
        assert!(entries[1].payload.is_none());
    }
}
