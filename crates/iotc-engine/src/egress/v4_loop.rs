//! MQTT 3.1.1 connection loop that writes every waiting publish in one go.
//!
//! rumqttc's own `EventLoop::poll` takes one request at a time and flushes the socket after
//! each, so every PUBLISH costs a system call here and a wake-up and a read in the broker. This
//! loop uses the same protocol state (`MqttState`) and framing (`Network`), which rumqttc makes
//! public for this, but takes all the requests waiting in its channel (as many as the in-flight
//! window allows) before one flush. Connecting, reading and the state's checks (packet ids,
//! collisions, unanswered pings) stay rumqttc's.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use rumqttc::{Event, EventLoop, PingReq, Request};
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep, sleep, timeout};

/// Requests written before one flush, at most (the in-flight window is usually smaller).
const MAX_WRITES_PER_FLUSH: usize = 512;

/// The sending side: queues requests without waiting.
#[derive(Clone)]
pub struct V4Sender(mpsc::Sender<Request>);

impl V4Sender {
    /// Queues a publish (the link checked its topic); false when the channel is full or closed.
    pub fn try_publish(
        &self,
        topic: &str,
        qos: rumqttc::QoS,
        retain: bool,
        payload: Bytes,
    ) -> bool {
        let mut publish = rumqttc::Publish::from_bytes(topic, qos, payload);
        publish.retain = retain;
        self.0.try_send(Request::Publish(publish)).is_ok()
    }

    pub fn try_disconnect(&self) {
        let _ = self.0.try_send(Request::Disconnect(rumqttc::Disconnect));
    }
}

/// The connection: rumqttc's event loop, our request channel and the keep-alive timer.
pub struct V4Loop {
    el: EventLoop,
    requests: mpsc::Receiver<Request>,
    /// When the next PINGREQ is due; armed on connect, unless keep-alive is off.
    ping_at: Pin<Box<Sleep>>,
    pings: bool,
}

/// A loop and its sender; `cap` requests may wait in the channel.
pub fn new(options: rumqttc::MqttOptions, cap: usize) -> (V4Sender, V4Loop) {
    let (tx, requests) = mpsc::channel(cap);
    let el = EventLoop::new(options, 1);
    (
        V4Sender(tx),
        V4Loop {
            el,
            requests,
            ping_at: Box::pin(sleep(Duration::ZERO)),
            pings: false,
        },
    )
}

impl V4Loop {
    /// The next event: connects first, then reads, writes and pings as rumqttc does.
    pub async fn poll(&mut self) -> Result<Event, String> {
        if self.el.network.is_none() {
            let event = self.el.poll().await.map_err(|e| e.to_string())?;
            let keep_alive = self.el.mqtt_options.keep_alive();
            self.pings = !keep_alive.is_zero();
            self.ping_at.as_mut().reset(Instant::now() + keep_alive);
            return Ok(event);
        }
        loop {
            if let Some(event) = self.el.state.events.pop_front() {
                return Ok(event);
            }
            self.step().await?;
        }
    }

    /// One round: incoming packets, or the waiting requests, or a ping; then one flush.
    async fn step(&mut self) -> Result<(), String> {
        let el = &mut self.el;
        let network = el.network.as_mut().ok_or("not connected")?;
        let state = &mut el.state;
        let window = el.mqtt_options.inflight();
        let can_send = state.inflight() < window && state.collision.is_none();
        let flush_timeout = Duration::from_secs(el.network_options.connection_timeout());
        let mut outgoing = Vec::new();
        tokio::select! {
            read = network.readb(state) => read.map_err(|e| e.to_string())?,
            request = self.requests.recv(), if can_send => {
                let request = request.ok_or("request channel closed")?;
                outgoing.extend(handle(state, request)?);
                while outgoing.len() < MAX_WRITES_PER_FLUSH
                    && state.inflight() < window
                    && state.collision.is_none()
                {
                    let Ok(request) = self.requests.try_recv() else { break };
                    outgoing.extend(handle(state, request)?);
                }
            }
            _ = self.ping_at.as_mut(), if self.pings => {
                self.ping_at.as_mut().reset(Instant::now() + el.mqtt_options.keep_alive());
                outgoing.extend(handle(state, Request::PingReq(PingReq))?);
            }
        }
        for packet in outgoing {
            network.write(packet).await.map_err(|e| e.to_string())?;
        }
        match timeout(flush_timeout, network.flush()).await {
            Ok(flushed) => flushed.map_err(|e| e.to_string()),
            Err(_) => Err("flush timeout".into()),
        }
    }
}

/// Hands one request to the protocol state: the packet to write, if any.
fn handle(
    state: &mut rumqttc::MqttState,
    request: Request,
) -> Result<Option<rumqttc::Packet>, String> {
    state
        .handle_outgoing_packet(request)
        .map_err(|e| e.to_string())
}
