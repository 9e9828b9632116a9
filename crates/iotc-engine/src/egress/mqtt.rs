//! One MQTT connection with confirmed publishing.
//!
//! rumqttc's `publish` only queues a request; the broker's PUBACK (QoS 1) or PUBCOMP (QoS 2)
//! arrives later as an event of the event loop, identified by packet id. The event loop hands
//! out packet ids in the order it takes requests, and reports each with
//! `Outgoing::Publish(pkid)`; so a message handed over together with its place in a queue
//! (under one lock) is matched to its packet id when that event arrives, and settled by the
//! PUBACK/PUBCOMP.
//!
//! The link keeps every message until it is settled, numbered in the order it was published.
//! Every connection attempt uses a fresh client and event loop (a "generation"). When a
//! connection ends, the whole generation is dropped with the requests still in its channel;
//! the next connection is handed every message not yet settled again, in their order, before
//! any newer one. That keeps the matching exact (no request of an old connection can turn up on
//! a new one), keeps each device's order across reconnects, and makes loss impossible: a
//! message counts as delivered only after its acknowledgement on the connection that carried
//! it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use iotc_core::backoff::Backoff;
use rumqttc::{Outgoing, QoS, TlsConfiguration, Transport};
use tokio::sync::{Notify, watch};
use tokio::time::{Instant, timeout_at};

use super::config::{BrokerAddr, MqttVersion, Scheme};
use super::v4_loop::{self, V4Loop, V4Sender};
use super::{EgressError, OutMessage};

/// Requests that may wait in one generation's channel. Callers bound what they send at once
/// (the pipeline: 8 batches; the others publish in chunks), so this is only a safety limit:
/// past it, the link keeps the rest and hands them over, in order, as the channel empties.
const CHANNEL_CAP: usize = 65_536;
/// Largest packet we accept from the broker.
const MAX_INCOMING: usize = 256 * 1024;
/// Bytes an MQTT PUBLISH adds to its topic and payload, at most: fixed header (5), topic
/// length (2), packet id (2), MQTT 5 property length (4), rounded up.
const PUBLISH_OVERHEAD: usize = 16;
/// First pause before reconnecting; doubles up to the configured maximum.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// A connection that lasted this long resets the back-off (a flapping one does not).
const STABLE: Duration = Duration::from_secs(10);

/// Produces the user name and password for the next connection attempt (IoT Hub: a new token).
pub type Credentials = Arc<dyn Fn() -> Result<Option<(String, String)>, EgressError> + Send + Sync>;

/// Everything needed to (re)connect.
pub struct LinkSpec {
    /// Short name for logs and metrics: `mqtt` or `azure`.
    pub name: &'static str,
    pub version: MqttVersion,
    pub addr: BrokerAddr,
    pub client_id: String,
    pub credentials: Credentials,
    pub keep_alive: Duration,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Last Will, published retained by the broker when we vanish.
    pub will: Option<(String, Vec<u8>)>,
    /// Published (retained) right after every connect, e.g. `online`.
    pub on_connect: Vec<OutMessage>,
    pub qos: QoS,
    /// Unacknowledged publishes on the wire at once.
    pub inflight: u16,
    /// Whether the retain flag is passed on (IoT Hub does not support it).
    pub retain: bool,
    pub reconnect_max: Duration,
    /// Reconnect with fresh credentials after this long (IoT Hub token renewal).
    pub renew_after: Option<Duration>,
    /// Largest packet we send; an MQTT 5 broker's own smaller limit (CONNACK) also applies.
    pub max_packet: usize,
}

/// Why a message was not confirmed: the broker refused it (MQTT 5 reason code);
/// `permanent` when sending it again cannot succeed.
#[derive(Debug)]
struct Refusal {
    reason: String,
    permanent: bool,
}

/// The messages of one [`Link::publish_all`] call and their outcomes so far: one waiter for a
/// whole batch, not one channel and one timer per message.
struct Group {
    state: Mutex<GroupState>,
    /// Woken when the last message is settled.
    done: Notify,
}

struct GroupState {
    outcomes: Vec<Option<Result<(), Refusal>>>,
    left: usize,
}

impl Group {
    fn new(len: usize) -> Group {
        Group {
            state: Mutex::new(GroupState {
                outcomes: (0..len).map(|_| None).collect(),
                left: len,
            }),
            done: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the outcome of member `index` (the first one counts).
    fn settle(&self, index: usize, outcome: Result<(), Refusal>) {
        let mut g = self.lock();
        if g.outcomes[index].is_some() {
            return;
        }
        g.outcomes[index] = Some(outcome);
        g.left -= 1;
        if g.left == 0 {
            self.done.notify_one();
        }
    }

    fn left(&self) -> usize {
        self.lock().left
    }
}

/// A published message the link holds until it is settled or its caller gives up.
struct Entry {
    topic: String,
    /// Shared with each connection it is handed to, not copied again.
    payload: Bytes,
    retain: bool,
    group: Arc<Group>,
    /// Its place among the group's members.
    index: usize,
    /// When the current connection was handed it (`None`: waiting for a connection).
    handed_at: Option<Instant>,
    /// Connections it was handed to so far.
    attempts: u32,
}

#[derive(Default)]
struct State {
    publisher: Option<Publisher>,
    /// Every message not settled yet, by publication number.
    entries: BTreeMap<u64, Entry>,
    next_seq: u64,
    /// Publication number from which the current connection has not been handed messages.
    cursor: u64,
    /// Handed to the connection, no packet id yet, in request order (`None`: an on-connect
    /// message nobody waits for).
    queued: VecDeque<Option<u64>>,
    /// By packet id: sent and awaiting PUBACK/PUBCOMP.
    sent: HashMap<u16, u64>,
    /// No new requests: waiting for the in-flight ones before a planned reconnect.
    draining: bool,
}

impl State {
    fn idle(&self) -> bool {
        self.queued.is_empty() && self.sent.is_empty()
    }

    /// Hands the connection, in order, every message it has not been handed yet.
    fn pump(&mut self, qos: QoS, name: &'static str) {
        let State {
            publisher,
            entries,
            cursor,
            queued,
            draining,
            ..
        } = self;
        let Some(publisher) = publisher.as_ref().filter(|_| !*draining) else {
            return;
        };
        let now = Instant::now();
        for (&seq, e) in entries.range_mut(*cursor..) {
            if !publisher.try_publish(&e.topic, qos, e.retain, e.payload.clone()) {
                break; // channel full: the rest follows after the next event
            }
            if e.attempts > 0 {
                metrics::counter!("iotc_egress_resent_total", "egress" => name).increment(1);
            }
            e.attempts += 1;
            e.handed_at = Some(now);
            queued.push_back(Some(seq));
            *cursor = seq + 1;
        }
    }

    /// Numbers a message and keeps it until it is settled; its publication number. The
    /// caller hands it over with [`pump`](Self::pump).
    fn add(&mut self, msg: &OutMessage, retain: bool, group: &Arc<Group>, index: usize) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        let entry = Entry {
            topic: msg.topic.clone(),
            payload: msg.payload.clone(),
            retain: msg.retain && retain,
            group: group.clone(),
            index,
            handed_at: None,
            attempts: 0,
        };
        self.entries.insert(seq, entry);
        seq
    }

    /// The connection ended: nothing is on a wire any more; the next one starts from the
    /// oldest message not settled.
    fn lost_connection(&mut self) {
        self.publisher = None;
        self.draining = false;
        self.queued.clear();
        self.sent.clear();
        for e in self.entries.values_mut() {
            e.handed_at = None;
        }
        self.cursor = self.entries.keys().next().copied().unwrap_or(self.next_seq);
    }

    fn settle(&mut self, seq: u64, outcome: Result<(), Refusal>) {
        if let Some(e) = self.entries.remove(&seq) {
            e.group.settle(e.index, outcome);
        }
    }
}

struct Shared {
    state: Mutex<State>,
    /// True while requests are accepted (connected and not draining).
    open: watch::Sender<bool>,
    connected: AtomicBool,
    /// Successful connections so far.
    connects: AtomicU64,
    /// Maximum packet size the broker announced in its CONNACK (0: none).
    broker_max_packet: AtomicU32,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running connection to one broker.
pub struct Link {
    name: &'static str,
    qos: QoS,
    retain: bool,
    max_packet: usize,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Link {
    /// Starts the connection task; connecting happens in the background.
    pub fn start(spec: LinkSpec) -> Link {
        let (open, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            open,
            connected: AtomicBool::new(false),
            connects: AtomicU64::new(0),
            broker_max_packet: AtomicU32::new(0),
        });
        let (name, qos, retain, max_packet) = (spec.name, spec.qos, spec.retain, spec.max_packet);
        let task = tokio::spawn(run(shared.clone(), spec));
        Link {
            name,
            qos,
            retain,
            max_packet,
            shared,
            task,
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn connected(&self) -> bool {
        self.shared.connected.load(Ordering::Relaxed)
    }

    /// How many times the link has connected (changes after every reconnect).
    pub fn connects(&self) -> u64 {
        self.shared.connects.load(Ordering::Relaxed)
    }

    /// Waits until the connection accepts requests, or the deadline passes.
    pub async fn wait_open(&self, deadline: Instant) -> bool {
        let mut rx = self.shared.open.subscribe();
        matches!(timeout_at(deadline, rx.wait_for(|o| *o)).await, Ok(Ok(_)))
    }

    /// Publishes one message and waits for its confirmation until `deadline`
    /// ([`publish_all`](Self::publish_all) of one).
    pub async fn publish(&self, msg: &OutMessage, deadline: Instant) -> Result<(), EgressError> {
        let mut results = self.publish_all(&[msg], deadline).await;
        results.pop().unwrap_or(Ok(()))
    }

    /// Publishes messages and waits until each is confirmed, or `deadline`; the outcome of
    /// each, in their order. The link sends each again, in its place, after each lost
    /// connection.
    ///
    /// The messages are handed to the link when this is called, not when the future is first
    /// polled: messages published one after the other leave in that order, whatever order
    /// their futures are polled in. Dropping the future, or its timeout, takes the messages
    /// not confirmed back (a copy already on the wire still goes out).
    pub fn publish_all<'a>(
        &'a self,
        msgs: &[&OutMessage],
        deadline: Instant,
    ) -> impl Future<Output = Vec<Result<(), EgressError>>> + 'a {
        let mut results: Vec<Option<Result<(), EgressError>>> = Vec::with_capacity(msgs.len());
        // The messages handed to the link, by their place in `msgs`: the group's members.
        let mut members = Vec::with_capacity(msgs.len());
        for (index, msg) in msgs.iter().enumerate() {
            match self.check(msg) {
                Ok(()) => {
                    members.push(index);
                    results.push(None);
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        let group = Arc::new(Group::new(members.len()));
        let mut seqs = Vec::with_capacity(members.len());
        {
            let mut st = self.shared.lock();
            for (member, &index) in members.iter().enumerate() {
                seqs.push(st.add(msgs[index], self.retain, &group, member));
            }
            st.pump(self.qos, self.name);
        }
        let patience = deadline.saturating_duration_since(Instant::now());
        // Made here, not in the future, so that a future dropped before it is ever polled
        // takes its messages back too.
        let taken_back = TakeBack {
            shared: &self.shared,
            group: group.clone(),
            seqs,
        };
        async move {
            let mut wait_until = deadline;
            while group.left() > 0 {
                if timeout_at(wait_until, group.done.notified()).await.is_ok() {
                    continue;
                }
                // A message on the wire gets the whole patience for its confirmation even
                // when a reconnect late in the wait handed it over again: giving up at once
                // would only make the caller add one more copy.
                match taken_back.latest_handed() {
                    Some(at) if at + patience > Instant::now() => wait_until = at + patience,
                    _ => break,
                }
            }
            drop(taken_back);
            let outcomes = std::mem::take(&mut group.lock().outcomes);
            let mut confirmed = 0;
            for (index, outcome) in members.into_iter().zip(outcomes) {
                results[index] = Some(match outcome {
                    Some(Ok(())) => {
                        confirmed += 1;
                        Ok(())
                    }
                    Some(Err(Refusal { reason, permanent })) => {
                        metrics::counter!("iotc_egress_rejected_total", "egress" => self.name)
                            .increment(1);
                        Err(EgressError::Rejected {
                            egress: self.name,
                            reason,
                            permanent,
                        })
                    }
                    None => Err(self.timeout()),
                });
            }
            metrics::counter!("iotc_egress_confirmed_total", "egress" => self.name)
                .increment(confirmed);
            results.into_iter().flatten().collect()
        }
    }

    fn timeout(&self) -> EgressError {
        EgressError::Timeout {
            egress: self.name,
            connected: self.connected(),
        }
    }

    /// The packet limit in force: ours, or the broker's if it announced a smaller one.
    pub fn packet_limit(&self) -> usize {
        match self.shared.broker_max_packet.load(Ordering::Relaxed) {
            0 => self.max_packet,
            broker => self.max_packet.min(broker as usize),
        }
    }

    /// A message over the packet limit, or to a topic with wildcards, is refused for good
    /// without being sent: the client library would refuse it (the link keeps messages in
    /// order, so it would hold up every later one) or drop the connection over it, and the
    /// broker would refuse it anyway.
    fn check(&self, msg: &OutMessage) -> Result<(), EgressError> {
        let size = msg.topic.len() + msg.payload.len() + PUBLISH_OVERHEAD;
        let limit = self.packet_limit();
        let reason = if !rumqttc::valid_topic(&msg.topic) {
            format!("{INVALID_TOPIC}: {}", msg.topic)
        } else if size > limit {
            format!("{TOO_LARGE}: {size} bytes, limit {limit}")
        } else {
            return Ok(());
        };
        metrics::counter!("iotc_egress_rejected_total", "egress" => self.name).increment(1);
        Err(EgressError::Rejected {
            egress: self.name,
            reason,
            permanent: true,
        })
    }
}

/// Takes the messages of a group not settled yet back from the link when their caller stops
/// waiting for them.
struct TakeBack<'a> {
    shared: &'a Shared,
    group: Arc<Group>,
    seqs: Vec<u64>,
}

impl TakeBack<'_> {
    /// When the current connection was last handed one of the messages still unsettled.
    fn latest_handed(&self) -> Option<Instant> {
        let st = self.shared.lock();
        self.seqs
            .iter()
            .filter_map(|seq| st.entries.get(seq)?.handed_at)
            .max()
    }
}

impl Drop for TakeBack<'_> {
    fn drop(&mut self) {
        if self.group.left() == 0 {
            return;
        }
        let mut st = self.shared.lock();
        for seq in &self.seqs {
            st.entries.remove(seq);
        }
    }
}

/// Reconnects forever with back-off; each pass is one generation.
async fn run(shared: Arc<Shared>, spec: LinkSpec) {
    let mut backoff = Backoff::new(FIRST_BACKOFF, spec.reconnect_max);
    let mut last_problem: Option<String> = None;
    loop {
        let mut connected_at = None;
        let ended = match Generation::new(&spec) {
            Ok(generation) => {
                generation
                    .drive(&shared, &spec, &mut last_problem, &mut connected_at)
                    .await
            }
            Err(e) => Ended::Failed(e.to_string()),
        };
        shared.lock().lost_connection();
        shared.open.send_replace(false);
        shared.connected.store(false, Ordering::Relaxed);
        metrics::gauge!("iotc_egress_connected", "egress" => spec.name).set(0.0);
        match ended {
            Ended::Renew => {
                tracing::info!(egress = spec.name, "reconnecting with fresh credentials");
                backoff.reset();
                continue;
            }
            Ended::Failed(problem) => {
                if connected_at.is_some_and(|at: Instant| at.elapsed() >= STABLE) {
                    backoff.reset();
                }
                // Log each change of state once, not every retry.
                if last_problem.as_deref() != Some(&problem) {
                    tracing::warn!(egress = spec.name, broker = %spec.addr.host, port = spec.addr.port,
                        "MQTT connection down: {problem}; retrying with back-off");
                    last_problem = Some(problem);
                }
            }
        }
        backoff.wait().await;
    }
}

enum Ended {
    /// Planned reconnect (new credentials).
    Renew,
    Failed(String),
}

/// Start of the reason of a message over the packet limit.
pub const TOO_LARGE: &str = "PacketTooLarge";
/// Start of the reason of a message to a topic with wildcards (`+`, `#`).
pub const INVALID_TOPIC: &str = "TopicNameInvalid";

/// Normalised event of either protocol version.
enum Ev {
    /// Connected; the broker's maximum packet size if it announced one (MQTT 5).
    ConnAck(Option<u32>),
    /// A publish went out with this packet id (0 for QoS 0).
    Sent(u16),
    /// PUBACK (QoS 1) or PUBCOMP (QoS 2).
    Confirmed(u16),
    Rejected(u16, String, bool),
    Disconnect,
    Other,
}

#[derive(Clone)]
enum Publisher {
    V4(V4Sender),
    V5(rumqttc::v5::AsyncClient),
}

impl Publisher {
    fn try_publish(&self, topic: &str, qos: QoS, retain: bool, payload: Bytes) -> bool {
        match self {
            Publisher::V4(c) => c.try_publish(topic, qos, retain, payload),
            Publisher::V5(c) => c.try_publish(topic, v5_qos(qos), retain, payload).is_ok(),
        }
    }

    fn try_disconnect(&self) {
        match self {
            Publisher::V4(c) => c.try_disconnect(),
            Publisher::V5(c) => {
                let _ = c.try_disconnect();
            }
        }
    }
}

fn v5_qos(qos: QoS) -> rumqttc::v5::mqttbytes::QoS {
    match qos {
        QoS::AtMostOnce => rumqttc::v5::mqttbytes::QoS::AtMostOnce,
        QoS::AtLeastOnce => rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
        QoS::ExactlyOnce => rumqttc::v5::mqttbytes::QoS::ExactlyOnce,
    }
}

enum Events {
    V4(Box<V4Loop>),
    V5(Box<rumqttc::v5::EventLoop>),
}

impl Events {
    async fn next(&mut self) -> Result<Ev, String> {
        match self {
            Events::V4(el) => {
                use rumqttc::{Event, Packet};
                Ok(match el.poll().await? {
                    Event::Incoming(Packet::ConnAck(_)) => Ev::ConnAck(None),
                    Event::Incoming(Packet::PubAck(a)) => Ev::Confirmed(a.pkid),
                    Event::Incoming(Packet::PubComp(c)) => Ev::Confirmed(c.pkid),
                    Event::Outgoing(o) => outgoing(o),
                    _ => Ev::Other,
                })
            }
            Events::V5(el) => {
                use rumqttc::v5::Event;
                use rumqttc::v5::mqttbytes::v5::{
                    Packet, PubAckReason, PubCompReason, PubRecReason,
                };
                Ok(match el.poll().await.map_err(|e| e.to_string())? {
                    Event::Incoming(Packet::ConnAck(c)) => {
                        Ev::ConnAck(c.properties.and_then(|p| p.max_packet_size))
                    }
                    Event::Incoming(Packet::PubAck(a)) => match a.reason {
                        // "No matching subscribers" still means the broker took it.
                        PubAckReason::Success | PubAckReason::NoMatchingSubscribers => {
                            Ev::Confirmed(a.pkid)
                        }
                        r => Ev::Rejected(a.pkid, format!("{r:?}"), permanent_puback(r)),
                    },
                    Event::Incoming(Packet::PubRec(r)) => match r.reason {
                        PubRecReason::Success | PubRecReason::NoMatchingSubscribers => Ev::Other,
                        reason => {
                            let permanent = matches!(
                                reason,
                                PubRecReason::TopicNameInvalid | PubRecReason::PayloadFormatInvalid
                            );
                            Ev::Rejected(r.pkid, format!("{reason:?}"), permanent)
                        }
                    },
                    Event::Incoming(Packet::PubComp(c)) => match c.reason {
                        PubCompReason::Success => Ev::Confirmed(c.pkid),
                        r => Ev::Rejected(c.pkid, format!("{r:?}"), false),
                    },
                    Event::Incoming(Packet::Disconnect(d)) => {
                        return Err(format!("broker disconnected: {:?}", d.reason_code));
                    }
                    Event::Outgoing(o) => outgoing(o),
                    _ => Ev::Other,
                })
            }
        }
    }
}

/// Reason codes that will not change when the same message is sent again. "Not authorized"
/// is not one: an operator fixes an ACL, and the messages then go through (docs/egress.md).
fn permanent_puback(r: rumqttc::v5::mqttbytes::v5::PubAckReason) -> bool {
    use rumqttc::v5::mqttbytes::v5::PubAckReason::*;
    matches!(r, TopicNameInvalid | PayloadFormatInvalid)
}

fn outgoing(o: Outgoing) -> Ev {
    match o {
        Outgoing::Publish(pkid) => Ev::Sent(pkid),
        Outgoing::Disconnect => Ev::Disconnect,
        _ => Ev::Other,
    }
}

/// One client + event loop pair, used for one connection.
struct Generation {
    publisher: Publisher,
    events: Events,
}

impl Generation {
    fn new(spec: &LinkSpec) -> Result<Generation, EgressError> {
        let credentials = (spec.credentials)()?;
        let transport = transport(spec)?;
        let host = spec.addr.client_host();
        let port = spec.addr.port;
        Ok(match spec.version {
            MqttVersion::V311 => {
                let mut o = rumqttc::MqttOptions::new(&spec.client_id, host, port);
                o.set_transport(transport)
                    .set_keep_alive(spec.keep_alive.max(Duration::from_secs(1)))
                    .set_clean_session(true)
                    .set_inflight(spec.inflight)
                    .set_max_packet_size(MAX_INCOMING, spec.max_packet);
                if let Some((user, pass)) = credentials {
                    o.set_credentials(user, pass);
                }
                if let Some((topic, payload)) = &spec.will {
                    o.set_last_will(rumqttc::LastWill::new(
                        topic,
                        payload.clone(),
                        spec.qos,
                        true,
                    ));
                }
                let (client, el) = v4_loop::new(o, CHANNEL_CAP);
                Generation {
                    publisher: Publisher::V4(client),
                    events: Events::V4(Box::new(el)),
                }
            }
            MqttVersion::V5 => {
                let mut o = rumqttc::v5::MqttOptions::new(&spec.client_id, host, port);
                o.set_transport(transport)
                    .set_keep_alive(spec.keep_alive.max(Duration::from_secs(5)))
                    .set_clean_start(true)
                    .set_outgoing_inflight_upper_limit(spec.inflight)
                    .set_max_packet_size(Some(MAX_INCOMING as u32));
                if let Some((user, pass)) = credentials {
                    o.set_credentials(user, pass);
                }
                if let Some((topic, payload)) = &spec.will {
                    o.set_last_will(rumqttc::v5::mqttbytes::v5::LastWill::new(
                        topic,
                        payload.clone(),
                        v5_qos(spec.qos),
                        true,
                        None,
                    ));
                }
                let (client, el) = rumqttc::v5::AsyncClient::new(o, CHANNEL_CAP);
                Generation {
                    publisher: Publisher::V5(client),
                    events: Events::V5(Box::new(el)),
                }
            }
        })
    }

    /// Runs until the connection ends.
    async fn drive(
        mut self,
        shared: &Arc<Shared>,
        spec: &LinkSpec,
        last_problem: &mut Option<String>,
        connected_at: &mut Option<Instant>,
    ) -> Ended {
        let mut renew = None;
        loop {
            let ev = match self.events.next().await {
                Ok(ev) => ev,
                Err(e) => return Ended::Failed(e),
            };
            match ev {
                Ev::ConnAck(broker_max) => {
                    let broker_max = broker_max.unwrap_or(0);
                    shared
                        .broker_max_packet
                        .store(broker_max, Ordering::Relaxed);
                    shared.connected.store(true, Ordering::Relaxed);
                    shared.connects.fetch_add(1, Ordering::Relaxed);
                    *connected_at = Some(Instant::now());
                    metrics::gauge!("iotc_egress_connected", "egress" => spec.name).set(1.0);
                    tracing::info!(egress = spec.name, broker = %spec.addr.host, port = spec.addr.port, "MQTT connected");
                    *last_problem = None;
                    {
                        // The on-connect messages first, then every message not settled, in
                        // order: those an earlier connection took with it, then newer ones.
                        let mut st = shared.lock();
                        self.announce(&mut st, spec);
                        st.publisher = Some(self.publisher.clone());
                        st.pump(spec.qos, spec.name);
                    }
                    shared.open.send_replace(true);
                    renew = spec.renew_after.map(|d| Instant::now() + d);
                }
                Ev::Sent(pkid) => {
                    let mut st = shared.lock();
                    if let Some(Some(seq)) = st.queued.pop_front() {
                        if pkid == 0 {
                            // QoS 0: written to the connection is all the confirmation there is.
                            st.settle(seq, Ok(()));
                        } else {
                            st.sent.insert(pkid, seq);
                        }
                    }
                    if st.cursor < st.next_seq {
                        st.pump(spec.qos, spec.name); // the channel was full
                    }
                }
                Ev::Confirmed(pkid) => {
                    let mut st = shared.lock();
                    if let Some(seq) = st.sent.remove(&pkid) {
                        st.settle(seq, Ok(()));
                    }
                }
                Ev::Rejected(pkid, reason, permanent) => {
                    let mut st = shared.lock();
                    if let Some(seq) = st.sent.remove(&pkid) {
                        st.settle(seq, Err(Refusal { reason, permanent }));
                    }
                }
                Ev::Disconnect => return Ended::Renew,
                Ev::Other => {}
            }
            if renew.is_some_and(|at| Instant::now() >= at) {
                let mut st = shared.lock();
                if !st.draining {
                    st.draining = true;
                    shared.open.send_replace(false);
                }
                if st.idle() {
                    self.publisher.try_disconnect();
                    renew = None;
                }
            }
        }
    }

    /// Sends the on-connect messages (e.g. `online`); their confirmation is not awaited.
    fn announce(&self, st: &mut State, spec: &LinkSpec) {
        for msg in &spec.on_connect {
            let retain = msg.retain && spec.retain;
            if self
                .publisher
                .try_publish(&msg.topic, spec.qos, retain, msg.payload.clone())
            {
                st.queued.push_back(None);
            }
        }
    }
}

pub(crate) fn transport(spec: &LinkSpec) -> Result<Transport, EgressError> {
    let tls = || {
        spec.tls
            .clone()
            .map(TlsConfiguration::Rustls)
            .ok_or_else(|| EgressError::Config("TLS scheme without TLS settings".into()))
    };
    Ok(match spec.addr.scheme {
        Scheme::Tcp => Transport::Tcp,
        Scheme::Tls => Transport::Tls(tls()?),
        Scheme::Ws => Transport::Ws,
        Scheme::Wss => Transport::Wss(tls()?),
        Scheme::Unix => Transport::Unix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::{config::test_args, mqtt_spec, topics::Topics};

    /// A link to a port nobody listens on: it never connects, so nothing is confirmed.
    fn unreachable_link() -> Link {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conn = format!("127.0.0.1:{port}");
        let args = test_args(&["--mqtt-connstring", &conn]);
        Link::start(mqtt_spec(&args, &Topics::from_args(&args)).unwrap())
    }

    fn held(link: &Link) -> usize {
        link.shared.lock().entries.len()
    }

    #[tokio::test]
    async fn a_group_not_confirmed_in_time_times_out_in_place_and_is_taken_back() {
        let link = unreachable_link();
        let msgs = [
            OutMessage::new("a/1", "one"),
            OutMessage::new("a/+", "wildcard"),
            OutMessage::new("a/2", "two"),
        ];
        let refs: Vec<&OutMessage> = msgs.iter().collect();
        let deadline = Instant::now() + Duration::from_millis(200);
        let results = link.publish_all(&refs, deadline).await;
        assert_eq!(results.len(), 3);
        assert!(matches!(results[0], Err(EgressError::Timeout { .. })));
        assert!(
            matches!(
                &results[1],
                Err(EgressError::Rejected {
                    permanent: true,
                    ..
                })
            ),
            "refused before it reaches the link: {:?}",
            results[1]
        );
        assert!(matches!(results[2], Err(EgressError::Timeout { .. })));
        assert_eq!(held(&link), 0, "the link keeps nothing it gave up on");
    }

    #[tokio::test]
    async fn a_group_dropped_unpolled_is_taken_back() {
        let link = unreachable_link();
        let msg = OutMessage::new("a/1", "one");
        let future = link.publish_all(&[&msg, &msg], Instant::now() + Duration::from_secs(60));
        assert_eq!(held(&link), 2, "handed to the link when called");
        drop(future);
        assert_eq!(held(&link), 0);
    }
}
