//! One AP connection's message handling, apart from the WebSocket itself: decode, check the
//! token, then serial data to the telegram stream and health to the gateway registry.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aruba::Telemetry;
use prost::Message;

use iotc_core::backoff::Backoff;
use iotc_core::bus::TelegramEntry;
use iotc_core::ops::{unix_millis, unix_seconds};

use crate::App;
use crate::frames::{Item, StickParsers};
use crate::gateway;
use crate::store::{Forwarded, GatewayRef, Heard, Pending};
use crate::tokens::{TokenCache, TokenStatus};

/// WebSocket close codes used by the ingress.
pub mod close {
    /// Invalid payload data: not an Aruba message.
    pub const INVALID: u16 = 1007;
    /// Policy violation: missing, wrong or expired token (as IoTC does).
    pub const POLICY: u16 = 1008;
    /// Internal error: Redis stayed unreachable.
    pub const ERROR: u16 = 1011;
    /// Try again later: the telegram stream stayed full (engines behind); nothing of the
    /// message from the first refused telegram on was taken.
    pub const RETRY: u16 = 1013;
}

/// What the connection should do after a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    Close { code: u16, reason: &'static str },
}

/// Why a message could not be stored.
enum Stop {
    /// Redis stayed unreachable (or refused writes) for the whole retry period.
    Unavailable,
    /// The telegram stream stayed full for the whole backpressure wait.
    Full,
}

/// Redis stayed unreachable for the whole retry period.
struct Unavailable;

impl Stop {
    fn verdict(&self) -> Verdict {
        match self {
            Stop::Unavailable => Verdict::Close {
                code: close::ERROR,
                reason: "storage unavailable",
            },
            Stop::Full => Verdict::Close {
                code: close::RETRY,
                reason: "telegram stream full, try again later",
            },
        }
    }
}

impl From<Unavailable> for Stop {
    fn from(_: Unavailable) -> Self {
        Stop::Unavailable
    }
}

pub struct Session {
    app: Arc<App>,
    peer: String,
    parsers: StickParsers,
    tokens: TokenCache,
    /// With the AP register on: the MAC the connection's token was issued to.
    ap: Option<String>,
    /// SHA-256 of the client certificate the connection presented (own TLS listener only).
    certificate: Option<String>,
    /// A message with a valid token arrived on this connection.
    authenticated: bool,
    /// The AP's MAC (hex) once a message named it.
    mac: Option<String>,
    /// Per stick, the replies waiting for a RESPONSE, oldest first, with their deadline.
    pending: HashMap<String, VecDeque<(String, Instant)>>,
    /// Unix second of this connection's last gateway `lastSeen` write: telegrams write it
    /// at most once a second (the field has one-second resolution).
    touched_at: u64,
    /// Device → unix second of its last reception record from this connection: one record
    /// a second per device is enough to rank APs, and saves a write per telegram.
    heard_at: HashMap<String, u64>,
    /// Telegrams of the messages taken so far, not yet stored ([`Session::on_messages`]).
    outbox: Vec<Pending>,
    /// Reception records of those messages.
    heard: Vec<Heard>,
}

/// Where a telegram came from: the message, its AP and stick, and the time it was taken.
#[derive(Clone, Copy)]
struct Source<'a> {
    msg: &'a Telemetry,
    mac: [u8; 6],
    mac_hex: &'a str,
    device: &'a str,
    now: u64,
}

/// Telegrams stored by one script call at most (bounds the time Redis spends on one call).
const FORWARD_BATCH: usize = 256;

/// Devices whose last reception record second a connection remembers (then it starts over).
const HEARD_MEMORY: usize = 4096;

/// How long a southbound packet waits for its RESPONSE; later ones answer the next packet.
pub const RESPONSE_WAIT: Duration = Duration::from_secs(5);

impl Session {
    pub fn new(app: Arc<App>, peer: String) -> Self {
        let limits = app.config.limits;
        Session {
            app,
            peer,
            parsers: StickParsers::new(limits.max_sticks, limits.max_frame_bytes),
            tokens: TokenCache::default(),
            ap: None,
            certificate: None,
            authenticated: false,
            mac: None,
            pending: HashMap::new(),
            touched_at: 0,
            heard_at: HashMap::new(),
            outbox: Vec::new(),
            heard: Vec::new(),
        }
    }

    /// Whether this device's reception is due for a record this second.
    fn heard_due(&mut self, eurid: &str, now: u64) -> bool {
        if self.heard_at.get(eurid) == Some(&now) {
            return false;
        }
        if self.heard_at.len() >= HEARD_MEMORY {
            self.heard_at.clear();
        }
        self.heard_at.insert(eurid.to_string(), now);
        true
    }

    pub fn set_certificate(&mut self, fingerprint: Option<String>) {
        self.certificate = fingerprint;
    }

    /// Whether a message with a valid token arrived (the authentication deadline is met).
    pub fn authenticated(&self) -> bool {
        self.authenticated
    }

    /// Handles one binary WebSocket message.
    pub async fn on_binary(&mut self, bytes: &[u8]) -> Verdict {
        self.on_messages(&[bytes]).await
    }

    /// Handles binary WebSocket messages that arrived together, in order: their telegrams
    /// are stored together in one round trip. A refused message closes the connection after
    /// the telegrams of the messages before it are stored.
    pub async fn on_messages<B: AsRef<[u8]>>(&mut self, messages: &[B]) -> Verdict {
        let mut verdict = Verdict::Continue;
        for bytes in messages {
            verdict = self.take(bytes.as_ref()).await;
            if verdict != Verdict::Continue {
                break;
            }
        }
        match self.flush().await {
            Ok(()) => verdict,
            Err(stop) => stop.verdict(),
        }
    }

    /// Checks and parses one message; its telegrams join the outbox.
    async fn take(&mut self, bytes: &[u8]) -> Verdict {
        let mut msg = match Telemetry::decode(bytes) {
            Ok(msg) => msg,
            Err(e) => {
                metrics::counter!("iotc_ingress_messages_invalid_total", "reason" => "protobuf")
                    .increment(1);
                tracing::warn!(peer = %self.peer, error = %e, "closing: message is not an Aruba Telemetry");
                return Verdict::Close {
                    code: close::INVALID,
                    reason: "not an Aruba Telemetry message",
                };
            }
        };
        if let Some(refusal) = self.authorize(&msg).await {
            return refusal;
        }
        crate::limits::bound(&mut msg);
        self.authenticated = true;
        let topic = msg.meta.nb_topic_known().map_or("unknown", topic_label);
        metrics::counter!("iotc_ingress_messages_total", "topic" => topic).increment(1);
        let Some(mac) = msg.reporter.mac_bytes() else {
            metrics::counter!("iotc_ingress_messages_invalid_total", "reason" => "no_mac")
                .increment(1);
            tracing::warn!(peer = %self.peer, "message without a 6-byte reporter MAC ignored");
            return Verdict::Continue;
        };
        if let Some(refusal) = self.check_ap(&msg) {
            return refusal;
        }
        if self.mac.is_none() {
            self.mac = Some(hex::encode(mac));
        }
        match self.process(&msg, mac).await {
            Ok(()) => Verdict::Continue,
            Err(stop) => {
                // Redis stayed away: the telegrams taken and not stored are lost.
                self.count_stopped(&stop, self.outbox.len() as u64);
                self.outbox.clear();
                stop.verdict()
            }
        }
    }

    /// `None` when the message's token is valid, else the verdict closing the connection.
    async fn authorize(&mut self, msg: &Telemetry) -> Option<Verdict> {
        let token = msg.access_token().unwrap_or_default();
        if token.is_empty() {
            return Some(self.refuse("missing_token", msg));
        }
        if token.len() > iotc_core::text::MAX_TOKEN {
            return Some(self.refuse("invalid_token", msg));
        }
        if self.tokens.admits(token) {
            return None;
        }
        let tokens = &self.app.tokens;
        match self.retry(|| tokens.check(token)).await {
            Ok(TokenStatus::Valid { until }) => {
                if self.app.register.is_some() {
                    match self.retry(|| tokens.bound_ap(token)).await {
                        Ok(ap) => self.ap = ap,
                        Err(Unavailable) => return Some(unavailable()),
                    }
                }
                self.tokens.remember(token, until);
                None
            }
            Ok(TokenStatus::Invalid) => {
                self.tokens.forget();
                Some(self.refuse("invalid_token", msg))
            }
            Err(Unavailable) => Some(unavailable()),
        }
    }

    /// With the AP register on: the token must be bound to a registered AP, and the message
    /// must come from that AP's MAC. `None` when the message may pass.
    fn check_ap(&self, msg: &Telemetry) -> Option<Verdict> {
        let register = self.app.register.as_ref()?;
        let reporter = msg.reporter.mac_hex().unwrap_or_default();
        let reason = match &self.ap {
            None => "not_registered",
            Some(ap) if !register.contains(ap) => "revoked",
            Some(ap) if *ap != reporter => "mac_mismatch",
            Some(ap) if !self.certificate_ok(register, ap) => "certificate",
            Some(_) => return None,
        };
        Some(self.refuse_ap(reason, &reporter))
    }

    /// Whether the connection presented the certificate `ap`'s registration pins, if any.
    fn certificate_ok(&self, register: &crate::register::Register, ap: &str) -> bool {
        match register.certificate(ap) {
            None => true,
            Some(want) => self.certificate.as_deref() == Some(want.as_str()),
        }
    }

    /// With the AP register on: the closing verdict when this connection's AP was revoked.
    pub fn revoked(&self) -> Option<Verdict> {
        let register = self.app.register.as_ref()?;
        let ap = self.ap.as_ref()?;
        let allowed = register.contains(ap) && self.certificate_ok(register, ap);
        (!allowed).then(|| self.refuse_ap("revoked", ap))
    }

    fn refuse_ap(&self, reason: &'static str, mac: &str) -> Verdict {
        metrics::counter!("iotc_ingress_ws_rejected_total", "reason" => reason).increment(1);
        tracing::warn!(peer = %self.peer, %mac, bound = ?self.ap, reason, "Disconnecting AP with code 1008: not allowed by the AP register");
        Verdict::Close {
            code: close::POLICY,
            reason: "AP not allowed",
        }
    }

    fn refuse(&self, reason: &'static str, msg: &Telemetry) -> Verdict {
        metrics::counter!("iotc_ingress_ws_rejected_total", "reason" => reason).increment(1);
        let mac = msg.reporter.mac_hex().unwrap_or_default();
        tracing::warn!(peer = %self.peer, %mac, reason, "Disconnecting AP with code 1008 due to invalid token");
        Verdict::Close {
            code: close::POLICY,
            reason: "invalid token",
        }
    }

    async fn process(&mut self, msg: &Telemetry, mac: [u8; 6]) -> Result<(), Stop> {
        let now = unix_seconds();
        let mac_hex = hex::encode(mac);
        let mut seen = false;
        if let Some(health) = &msg.ap_health {
            self.store_health(msg, health, &mac_hex, now).await?;
            seen = true;
        }
        let mut broken = 0u64;
        for data in &msg.nb_s_data {
            let payload = data.nb_serial_payload.as_deref().unwrap_or_default();
            let device = data.nb_device_id.as_deref().unwrap_or_default();
            for item in self.parsers.feed(mac, device, payload) {
                match item {
                    Item::Telegram { frame, dbm, sender } => {
                        let source = Source {
                            msg,
                            mac,
                            mac_hex: &mac_hex,
                            device,
                            now,
                        };
                        self.queue(&source, frame, dbm, sender);
                        seen = true;
                    }
                    Item::StickRefused => {
                        metrics::counter!("iotc_ingress_sticks_refused_total").increment(1);
                        tracing::warn!(peer = %self.peer, mac = %mac_hex, stick = device,
                            "USB stick beyond IOTC_INGRESS_MAX_STICKS on this connection; data dropped");
                    }
                    Item::Response { data } => self.answer(device, &data).await,
                    Item::Other { packet_type } => {
                        let label = format!("{packet_type:#04x}");
                        metrics::counter!("iotc_ingress_packets_ignored_total", "packet_type" => label).increment(1);
                    }
                    Item::Broken { reason } => {
                        metrics::counter!("iotc_ingress_frames_invalid_total", "reason" => reason)
                            .increment(1);
                        tracing::debug!(peer = %self.peer, mac = %mac_hex, reason, "broken ESP3 frame");
                        broken += 1;
                    }
                }
            }
        }
        if broken > 0 || !seen {
            let record = gateway::first_sight_record(&msg.reporter, &mac_hex, now);
            let first_sight = serde_json::to_string(&record).unwrap_or_default();
            let gw = GatewayRef {
                mac: &mac_hex,
                first_sight: &first_sight,
                touch: now > self.touched_at,
            };
            let store = &self.app.store;
            self.retry(|| store.touch(&gw, broken, now)).await?;
        }
        Ok(())
    }

    /// Puts a telegram in the outbox with its reception record (when due). The connection's
    /// first telegram of a second also writes the gateway's `lastSeen` and registry record.
    fn queue(&mut self, src: &Source, frame: Vec<u8>, dbm: i8, sender: u32) {
        let Source {
            msg,
            mac,
            mac_hex,
            device,
            now,
        } = *src;
        metrics::counter!("iotc_ingress_telegrams_received_total").increment(1);
        let ms = unix_millis();
        let eurid = format!("{sender:08x}");
        if self.heard_due(&eurid, now) {
            let heard = (eurid, mac_hex.to_string(), ms, dbm, device.to_string());
            self.heard.push(heard);
        }
        let touch = now > self.touched_at;
        let first_sight = if touch {
            self.touched_at = now;
            let record = gateway::first_sight_record(&msg.reporter, mac_hex, now);
            serde_json::to_string(&record).unwrap_or_default()
        } else {
            String::new()
        };
        let entry = TelegramEntry {
            gateway_mac: mac,
            received_ms: ms,
            dbm,
            usb_id: device.to_string(),
            esp3: frame,
        };
        self.outbox.push(Pending {
            mac: mac_hex.to_string(),
            first_sight,
            touch,
            sender,
            entry: entry.encode(),
        });
    }

    /// Stores the outbox in order, with the reception records.
    async fn flush(&mut self) -> Result<(), Stop> {
        let heard = std::mem::take(&mut self.heard);
        let outbox = std::mem::take(&mut self.outbox);
        self.forward(&outbox, &heard).await
    }

    /// The AP's MAC (hex), once known.
    pub fn mac(&self) -> Option<&str> {
        self.mac.as_deref()
    }

    /// The WebSocket message carrying a southbound packet to a stick; its RESPONSE will
    /// answer `item.reply` (packets of one stick are answered in order).
    pub fn southbound(&mut self, item: crate::south::SouthItem) -> Option<Vec<u8>> {
        let mac: [u8; 6] = hex::decode(self.mac.as_deref()?).ok()?.try_into().ok()?;
        let msg = aruba::IotSbMessage::serial_data(None, mac, &item.stick, &item.frame);
        if !item.reply.is_empty() {
            let queue = self.pending.entry(item.stick).or_default();
            if queue.len() >= crate::south::PER_AP_QUEUE {
                queue.pop_front();
            }
            queue.push_back((item.reply, Instant::now() + RESPONSE_WAIT));
        }
        metrics::counter!("iotc_ingress_south_total", "outcome" => "sent").increment(1);
        Some(msg.encode_to_vec())
    }

    /// A stick's RESPONSE: handed to the oldest packet of that stick still waiting.
    async fn answer(&mut self, stick: &str, data: &[u8]) {
        let now = Instant::now();
        let reply = self.pending.get_mut(stick).and_then(|queue| {
            while queue.front().is_some_and(|(_, deadline)| *deadline < now) {
                queue.pop_front();
            }
            queue.pop_front().map(|(reply, _)| reply)
        });
        let Some(reply) = reply else {
            metrics::counter!("iotc_ingress_responses_total", "outcome" => "unmatched")
                .increment(1);
            return;
        };
        metrics::counter!("iotc_ingress_responses_total", "outcome" => "matched").increment(1);
        self.app.south.reply(&reply, &hex::encode(data)).await;
    }

    /// Counts the telegrams of a message that were not stored: `lost` when Redis failed
    /// (they were taken from the AP), `refused` when the AP is told to retry.
    fn count_stopped(&self, stop: &Stop, telegrams: u64) {
        match stop {
            Stop::Unavailable => {
                metrics::counter!("iotc_ingress_telegrams_lost_total").increment(telegrams);
                self.app.status.lost(telegrams, unix_seconds());
                tracing::error!(peer = %self.peer, telegrams, "telegrams lost: Redis did not take them");
            }
            Stop::Full => {
                metrics::counter!("iotc_ingress_telegrams_refused_total").increment(telegrams);
                metrics::counter!("iotc_ingress_backpressure_closes_total").increment(1);
                self.app.status.refused(telegrams);
                tracing::warn!(peer = %self.peer, telegrams, "telegram stream full: closing with 1013 so the AP retries");
            }
        }
    }

    /// Stores telegrams in order, [`FORWARD_BATCH`] per round trip. While the stream is full
    /// it waits (the AP's messages queue up meanwhile) and carries on from the first refused
    /// telegram; each telegram waits at most the backpressure wait.
    async fn forward(&self, mut rest: &[Pending], heard: &[Heard]) -> Result<(), Stop> {
        // The reception records go with the first call.
        let mut heard = heard;
        let store = &self.app.store;
        let wait = self.app.config.backpressure_wait;
        let mut give_up = Instant::now() + wait;
        let mut pause = Duration::from_millis(20);
        let mut waited = false;
        while !rest.is_empty() {
            let batch = &rest[..rest.len().min(FORWARD_BATCH)];
            let now = unix_seconds();
            metrics::counter!("iotc_ingress_forward_calls_total").increment(1);
            let results = match self.retry(|| store.forward(batch, heard, now)).await {
                Ok(results) => {
                    heard = &[];
                    results
                }
                Err(Unavailable) => {
                    self.count_stopped(&Stop::Unavailable, rest.len() as u64);
                    return Err(Stop::Unavailable);
                }
            };
            if results.is_empty() {
                // Not an answer the script gives; never loop on it.
                self.count_stopped(&Stop::Unavailable, rest.len() as u64);
                return Err(Stop::Unavailable);
            }
            let stored = results
                .iter()
                .take_while(|r| **r != Forwarded::Full)
                .count();
            metrics::counter!("iotc_ingress_telegrams_forwarded_total").increment(stored as u64);
            rest = &rest[stored..];
            if stored > 0 {
                give_up = Instant::now() + wait;
                pause = Duration::from_millis(20);
            }
            if results.len() == stored {
                continue;
            }
            if Instant::now() + pause > give_up {
                self.count_stopped(&Stop::Full, rest.len() as u64);
                return Err(Stop::Full);
            }
            // Reading nothing meanwhile lets the AP's TCP window fill up.
            if !waited {
                waited = true;
                metrics::counter!("iotc_ingress_backpressure_waits_total").increment(1);
                self.app.status.pushed_back(unix_seconds());
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
        Ok(())
    }

    async fn store_health(
        &self,
        msg: &Telemetry,
        health: &aruba::ApHealthUpdate,
        mac: &str,
        now: u64,
    ) -> Result<(), Unavailable> {
        let record = gateway::health_record(&msg.reporter, mac, health, now);
        let event = gateway::health_event(&msg.reporter, mac, health, now);
        let record = serde_json::to_string(&record).unwrap_or_default();
        let event_json = serde_json::to_string(&event).unwrap_or_default();
        let store = &self.app.store;
        let added = self
            .retry(|| store.health(mac, &record, &event_json, now))
            .await?;
        if !added {
            metrics::counter!("iotc_ingress_gateway_events_dropped_total").increment(1);
            tracing::error!(%mac, "gateway event dropped: the gateway event stream is full of events no engine acknowledged");
        }
        metrics::counter!("iotc_ingress_health_updates_total").increment(1);
        tracing::info!("Aruba AP Health--> {}", gateway::describe(&event));
        Ok(())
    }

    /// Runs a Redis operation until it succeeds or the retry period is over. Redis restarts
    /// are bridged this way; the connection manager reconnects underneath.
    async fn retry<T, F, Fut>(&self, mut op: F) -> Result<T, Unavailable>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let deadline = Instant::now() + self.app.config.redis_retry;
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));
        loop {
            match op().await {
                Ok(value) => return Ok(value),
                Err(e) => {
                    metrics::counter!("iotc_ingress_redis_errors_total").increment(1);
                    if Instant::now() + backoff.peek() > deadline {
                        tracing::error!(peer = %self.peer, error = %e, "Redis unreachable; giving up on this message");
                        return Err(Unavailable);
                    }
                    tracing::warn!(peer = %self.peer, error = %e, "Redis error; retrying");
                    backoff.wait().await;
                }
            }
        }
    }
}

fn unavailable() -> Verdict {
    Verdict::Close {
        code: close::ERROR,
        reason: "token store unavailable",
    }
}

fn topic_label(topic: aruba::NbTopic) -> &'static str {
    use aruba::NbTopic::*;
    match topic {
        SerialDataNb => "serialDataNb",
        ApHealthUpdate => "apHealthUpdate",
        Telemetry => "telemetry",
        ActionResults => "actionResults",
        Characteristics => "characteristics",
        BleData => "bleData",
        WifiData => "wifiData",
        DeviceCount => "deviceCount",
        Status => "status",
        ZbNbData => "zbNbData",
    }
}
