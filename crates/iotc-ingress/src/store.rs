//! Everything ingress writes to Redis. Each telegram heard goes to its partition of the
//! telegram stream, every copy of it: the engine that reads the partition drops the copies
//! other APs heard (docs/engine.md, "De-duplication"). The telegrams waiting on one
//! connection go in one plain pipeline with the gateway's counter and the reception
//! records. A partition near its bound is written by a script instead, which refuses
//! entries over the bound. On a Redis Cluster a script may touch one slot only: the
//! gateway's counters and registry are then written beside it (`cluster.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use iotc_core::partition::Layout;
use iotc_core::redis::Redis;
use redis::{AsyncCommands, RedisResult, Script};

use iotc_core::keys;

/// Keeps the registry record's `lastSeen` current without rewriting the rest of it: a
/// record that does not exist yet is created from ARGV (the record of a first sight).
const TOUCH_FN: &str = r#"
local function touch(registry, mac, now, fresh)
  local rec = redis.call('HGET', registry, mac)
  if not rec then
    redis.call('HSET', registry, mac, fresh)
    return
  end
  local old = tonumber(string.match(rec, '"lastSeen":%s*(%d+)'))
  if old ~= nil and old < tonumber(now) then
    local updated = string.gsub(rec, '"lastSeen":%s*%d+', '"lastSeen":' .. now, 1)
    redis.call('HSET', registry, mac, updated)
  end
end
"#;

/// The oldest stream entry some consumer group still needs: its first pending entry, or
/// the entry after the last one delivered to it. `nil` when no group exists yet: then every
/// entry is still unread and none may be trimmed.
const FLOOR_FN: &str = r#"
local function id_less(a, b)
  local ams, aseq = string.match(a, '(%d+)-(%d+)')
  local bms, bseq = string.match(b, '(%d+)-(%d+)')
  ams, aseq, bms, bseq = tonumber(ams), tonumber(aseq), tonumber(bms), tonumber(bseq)
  return ams < bms or (ams == bms and aseq < bseq)
end
local function floor_id(stream)
  local best = nil
  if redis.call('EXISTS', stream) == 0 then return nil end
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    local info = {}
    for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
    local candidate
    if info['pending'] > 0 then
      candidate = redis.call('XPENDING', stream, info['name'])[2]
    else
      local ms, seq = string.match(info['last-delivered-id'], '(%d+)-(%d+)')
      candidate = ms .. '-' .. string.format('%d', tonumber(seq) + 1)
    end
    if best == nil or id_less(candidate, best) then best = candidate end
  end
  return best
end
-- Trims entries every group has acknowledged; returns the stream length. `exact` also
-- splits the last stream node (bounded work: one node), used only when the stream is full.
local function trim_acked(stream, exact)
  local floor = floor_id(stream)
  if floor ~= nil then
    if exact then
      redis.call('XTRIM', stream, 'MINID', floor)
    else
      redis.call('XTRIM', stream, 'MINID', '~', floor)
    end
  end
  return redis.call('XLEN', stream)
end
-- Whether the stream holds fewer than `bound` entries a group still needs, after trimming
-- the acknowledged ones (every 64 entries, and exactly when it looks full); and its length.
-- `len`: the length when the caller knows it (it wrote the stream itself), else nil.
local function has_room(stream, bound, len)
  len = len or redis.call('XLEN', stream)
  if len % 64 == 0 or len >= bound then
    len = trim_acked(stream, false)
  end
  if len >= bound then
    len = trim_acked(stream, true)
  end
  return len < bound, len
end
"#;

/// One telegram: appends it to its stream. Returns the new stream entry ID, or -1 when the
/// stream is full of entries not yet acknowledged (nothing is written then: the caller
/// retries or refuses). `lens` keeps the length of each stream this call wrote, so the
/// room check reads it once per call.
///
/// The stream is trimmed only below the oldest entry a consumer group still needs (MINID),
/// never by length, so an accepted telegram is never trimmed unread.
const FORWARD_FN: &str = r#"
local function forward_one(stream, bound, entry, lens)
  local room, len = has_room(stream, bound, lens[stream])
  lens[stream] = len
  if not room then
    return -1
  end
  lens[stream] = len + 1
  return redis.call('XADD', stream, '*', 't', entry)
end
"#;

/// The strict path: the telegrams of one gateway, in order, each only while its stream has
/// room, in one round trip, and the reception records of their devices. Used for a
/// partition near its bound; otherwise [`Store::forward`] writes a plain pipeline.
/// KEYS: gateway registry, gateway stats, then per telegram its stream, then per reception
/// record the device's heard hash.
/// ARGV: stream bound, unix seconds, telegram count, heard TTL s, gateway MAC, first-sight
/// record, touch flag, then per telegram its entry, then per reception record the gateway
/// MAC and the record.
/// Returns one answer per telegram (as `forward_one`), ending early with -1 at the first
/// refused telegram: those after it are not written, so a retry keeps their order. Each
/// telegram answered counts once in the gateway's `totalTelegramCount`; touch '1' writes
/// the gateway's `lastSeen` and registry record once a telegram was answered. The
/// reception records are written whatever the answers; a record's hash gets its time to
/// live when an AP is added to it (a new hash included), not at every reception.
const FORWARD_MANY: &str = r#"
local n = tonumber(ARGV[3])
local bound = tonumber(ARGV[1])
local results, lens, answered = {}, {}, 0
for i = 1, n do
  results[i] = forward_one(KEYS[2 + i], bound, ARGV[7 + i], lens)
  if results[i] == -1 then break end
  answered = i
end
if answered > 0 then
  redis.call('HINCRBY', KEYS[2], 'totalTelegramCount', answered)
  if ARGV[7] == '1' then
    redis.call('HSET', KEYS[2], 'lastSeen', ARGV[2])
    touch(KEYS[1], ARGV[5], ARGV[2], ARGV[6])
  end
end
local h, ha = 3 + n, 8 + n
for j = 0, #KEYS - h do
  if redis.call('HSET', KEYS[h + j], ARGV[ha + 2 * j], ARGV[ha + 2 * j + 1]) == 1 then
    redis.call('EXPIRE', KEYS[h + j], ARGV[4])
  end
end
return results
"#;

/// KEYS: a telegram stream. Trims the entries every consumer group acknowledged; returns
/// the stream's length.
const TRIM: &str = r#"
return trim_acked(KEYS[1], false)
"#;

/// KEYS: gateway registry, gateway stats, gateway event stream.
/// ARGV: MAC, registry record, unix seconds, event stream bound, event.
/// Returns 1 when the event was added, 0 when the event stream holds its bound of events
/// not yet acknowledged (the registry is updated all the same).
const HEALTH: &str = r#"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], 'lastSeen', ARGV[3])
if not has_room(KEYS[3], tonumber(ARGV[4])) then
  return 0
end
redis.call('XADD', KEYS[3], '*', 'j', ARGV[5])
return 1
"#;

/// KEYS: gateway stats, gateway registry. ARGV: unix seconds, MAC, first-sight record,
/// number of broken frames (counted as received and not processed).
const TOUCH: &str = r#"
redis.call('HSET', KEYS[1], 'lastSeen', ARGV[1])
local broken = tonumber(ARGV[4])
if broken > 0 then
  redis.call('HINCRBY', KEYS[1], 'totalTelegramCount', broken)
  redis.call('HINCRBY', KEYS[1], 'notProcessed', broken)
end
touch(KEYS[2], ARGV[2], ARGV[1], ARGV[3])
return 1
"#;

/// The answer of a forwarding script.
pub(crate) fn forwarded(reply: redis::Value) -> Forwarded {
    match reply {
        redis::Value::Int(-1) => Forwarded::Full,
        _ => Forwarded::New,
    }
}

/// The leading telegrams that share the first one's gateway (a connection's telegrams
/// normally all do; an AP that changes its reported MAC splits its calls).
fn one_gateway(telegrams: &[Pending]) -> &[Pending] {
    let Some(first) = telegrams.first() else {
        return telegrams;
    };
    let same = telegrams.iter().take_while(|t| t.mac == first.mac).count();
    &telegrams[..same]
}

/// A reception record: device, gateway MAC, unix ms, dBm, stick.
pub type Heard = (String, String, u64, i8, String);

/// Whether a telegram went on to the engines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forwarded {
    /// Appended.
    New,
    /// Not written: the stream holds its bound of entries a consumer group still needs.
    Full,
}

/// One AP's identity for the writes below.
pub struct GatewayRef<'a> {
    pub mac: &'a str,
    /// Registry record JSON to create if the gateway is not registered yet.
    pub first_sight: &'a str,
    /// Telegrams: write `lastSeen` and the registry record (the connection's first telegram
    /// of this second). Other writes always do.
    pub touch: bool,
}

/// A telegram waiting to be forwarded, with what its gateway's counters need.
#[derive(Debug, Clone)]
pub struct Pending {
    pub mac: String,
    /// Registry record JSON for a gateway not registered yet (empty unless `touch`).
    pub first_sight: String,
    /// See [`GatewayRef::touch`].
    pub touch: bool,
    /// The sender ID: it chooses the partition.
    pub sender: u32,
    /// The encoded stream entry.
    pub entry: Vec<u8>,
}

impl Pending {
    pub(crate) fn partition(&self, layout: &Layout) -> u16 {
        layout.of_sender(self.sender)
    }

    pub fn gateway(&self) -> GatewayRef<'_> {
        GatewayRef {
            mac: &self.mac,
            first_sight: &self.first_sight,
            touch: self.touch,
        }
    }
}

/// What the ingress knows of one partition's stream between writes.
#[derive(Default)]
pub(crate) struct PartitionState {
    /// Its length after the last write or trim this process saw.
    pub len: AtomicU64,
    /// Entries this process appended since it last trimmed it.
    pub since_trim: AtomicU64,
}

#[derive(Clone)]
pub struct Store {
    pub(crate) redis: Redis,
    forward: Script,
    pub(crate) trim: Script,
    touch: Script,
    health: Script,
    pub(crate) cluster: crate::cluster::Scripts,
    pub(crate) layout: Layout,
    /// Bound of each partition: the configured bound shared out over the partitions.
    pub(crate) telegram_maxlen: u64,
    pub(crate) event_maxlen: u64,
    pub(crate) partitions: Arc<Vec<PartitionState>>,
    /// Connections' appends waiting to share a round trip.
    pub(crate) group: Arc<crate::group::Group>,
}

impl Store {
    pub fn new(redis: Redis, layout: Layout, telegram_maxlen: u64, event_maxlen: u64) -> Self {
        Store {
            redis,
            forward: Script::new(&format!("{TOUCH_FN}{FLOOR_FN}{FORWARD_FN}{FORWARD_MANY}")),
            trim: Script::new(&format!("{FLOOR_FN}{TRIM}")),
            touch: Script::new(&format!("{TOUCH_FN}{TOUCH}")),
            health: Script::new(&format!("{FLOOR_FN}{HEALTH}")),
            cluster: crate::cluster::Scripts::new(TOUCH_FN, FLOOR_FN),
            layout,
            telegram_maxlen: telegram_maxlen.div_ceil(u64::from(layout.partitions())),
            event_maxlen,
            partitions: Arc::new(
                (0..layout.partitions())
                    .map(|_| PartitionState::default())
                    .collect(),
            ),
            group: Default::default(),
        }
    }

    /// Counts each reception and appends each telegram, in order, in one round trip, and
    /// writes the reception records `heard`. The answers may be fewer than the telegrams:
    /// they cover the leading telegrams of one gateway and stop at the first
    /// [`Forwarded::Full`]; nothing after the last answer was written.
    pub async fn forward(
        &self,
        telegrams: &[Pending],
        heard: &[Heard],
        now: u64,
    ) -> RedisResult<Vec<Forwarded>> {
        if self.redis.is_cluster() {
            let (_, results) = tokio::join!(
                crate::south::record_heard(&self.redis, heard),
                self.forward_each_cluster(telegrams, now)
            );
            return results;
        }
        let telegrams = one_gateway(telegrams);
        if telegrams.is_empty() {
            return Ok(Vec::new());
        }
        let parts = crate::append::partitions_of(telegrams, &self.layout);
        if self.near_bound(&parts, telegrams.len()) {
            self.forward_strictly(telegrams, &parts, heard, now).await
        } else {
            self.append(telegrams, &parts, heard, now).await
        }
    }

    /// Whether one of the partitions `parts` may pass its bound with `n` more entries: its
    /// length, as last seen, is then in the last eighth of the bound. Their telegrams go
    /// through the script, which checks the bound entry by entry.
    fn near_bound(&self, parts: &[u16], n: usize) -> bool {
        let margin = self.telegram_maxlen / 8;
        parts.iter().any(|p| {
            let len = self.partitions[usize::from(*p)].len.load(Ordering::Relaxed);
            len + n as u64 + margin >= self.telegram_maxlen
        })
    }

    /// The strict path: one script call that refuses telegrams over the bound.
    async fn forward_strictly(
        &self,
        telegrams: &[Pending],
        parts: &[u16],
        heard: &[Heard],
        now: u64,
    ) -> RedisResult<Vec<Forwarded>> {
        let first = &telegrams[0];
        let touching = telegrams.iter().find(|t| t.touch);
        let mut call = self.forward.key(keys::GATEWAYS);
        call.key(keys::gateway_stats(&first.mac))
            .arg(self.telegram_maxlen)
            .arg(now)
            .arg(telegrams.len())
            .arg(crate::south::HEARD_TTL_S)
            .arg(&first.mac)
            .arg(touching.map_or("", |t| t.first_sight.as_str()))
            .arg(if touching.is_some() { "1" } else { "0" });
        for t in telegrams {
            call.key(self.layout.stream(t.partition(&self.layout)))
                .arg(&t.entry);
        }
        for (eurid, mac, ms, dbm, stick) in heard {
            call.key(keys::device_heard(eurid))
                .arg(mac)
                .arg(crate::south::heard_record(*ms, *dbm, stick));
        }
        let replies: Vec<redis::Value> = call.invoke_async(&mut self.redis.clone()).await?;
        // The lengths now, so that the plain path takes over again once the engines have
        // caught up and the acknowledged entries are trimmed.
        for p in parts {
            self.trim_partition(*p).await;
        }
        Ok(replies.into_iter().map(forwarded).collect())
    }

    /// On a Redis Cluster one telegram after the other (each script touches one slot).
    async fn forward_each_cluster(
        &self,
        telegrams: &[Pending],
        now: u64,
    ) -> RedisResult<Vec<Forwarded>> {
        let mut results = Vec::with_capacity(telegrams.len());
        for t in telegrams {
            let p = t.partition(&self.layout);
            let result = self.forward_cluster(&t.gateway(), p, &t.entry, now).await?;
            let full = result == Forwarded::Full;
            results.push(result);
            if full {
                break;
            }
        }
        Ok(results)
    }

    /// Marks the gateway as seen now; `broken` frames count as received, not processed.
    pub async fn touch(&self, gateway: &GatewayRef<'_>, broken: u64, now: u64) -> RedisResult<()> {
        if self.redis.is_cluster() {
            return self.touch_cluster(gateway, broken, now).await;
        }
        let _: i64 = self
            .touch
            .key(keys::gateway_stats(gateway.mac))
            .key(keys::GATEWAYS)
            .arg(now)
            .arg(gateway.mac)
            .arg(gateway.first_sight)
            .arg(broken)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(())
    }

    /// Stores a health report: the full registry record and a gateway event, atomically.
    /// `false`: the event was not added, the event stream is full of unread events.
    pub async fn health(
        &self,
        mac: &str,
        record_json: &str,
        event_json: &str,
        now: u64,
    ) -> RedisResult<bool> {
        if self.redis.is_cluster() {
            return self.health_cluster(mac, record_json, event_json, now).await;
        }
        let added: i64 = self
            .health
            .key(keys::GATEWAYS)
            .key(keys::gateway_stats(mac))
            .key(keys::GATEWAY_EVENT_STREAM)
            .arg(mac)
            .arg(record_json)
            .arg(now)
            .arg(self.event_maxlen)
            .arg(event_json)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(added == 1)
    }

    /// Redis answers: for /readyz.
    pub async fn ping(&self) -> RedisResult<()> {
        let _: String = redis::cmd("PING")
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(())
    }

    /// Tells the API this service runs (expires unless renewed).
    pub async fn heartbeat(&self, value: &serde_json::Value) -> RedisResult<()> {
        let value = value.to_string();
        let _: () = self
            .redis
            .clone()
            .set_ex(keys::heartbeat("ingress"), value, 30)
            .await?;
        Ok(())
    }
}
