//! One simulated Aruba AP: authenticates like an AP (POST to the authentication URL, or a
//! static token), holds a WebSocket, sends every received frame in a `serialDataNb` message
//! and an `apHealthUpdate` at start and then periodically. Closed by the server (e.g. 1008
//! after the token expired) it authenticates again and reconnects.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aruba::{ApHealthUpdate, HealthStatus, Reporter, Telemetry, UsbDevice};
use futures_util::{SinkExt, StreamExt};
use iotc_core::backoff::Backoff;
use prost::Message as _;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::tls::Trust;

/// Where and how the APs connect.
#[derive(Clone)]
pub struct Endpoint {
    pub url: String,
    pub auth_url: Option<String>,
    pub username: String,
    pub password: String,
    pub token: Option<String>,
    pub trust: Trust,
    pub health_interval: Duration,
}

/// Counters of one AP, read for the report.
#[derive(Default)]
pub struct GatewayStats {
    pub telegrams: AtomicU64,
    pub messages: AtomicU64,
    pub health: AtomicU64,
    pub connects: AtomicU64,
    pub failed: AtomicU64,
    /// Connections the ingress closed with 1013 (try again later: its stream was full).
    pub pushed_back: AtomicU64,
    /// Southbound ESP3 frames received, and those that were broken (no answer).
    pub south: AtomicU64,
    pub south_invalid: AtomicU64,
}

pub struct Gateway {
    pub mac: [u8; 6],
    pub stats: Arc<GatewayStats>,
}

impl Gateway {
    pub fn mac_hex(&self) -> String {
        hex::encode(self.mac)
    }

    /// The USB stick identifier this AP reports.
    pub fn usb_id(mac: [u8; 6]) -> String {
        format!(
            "{}{}{}",
            aruba::ENOCEAN_USB_PREFIX,
            hex::encode(mac),
            "0e0cea0000000000000a"
        )
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Session {
    ws: Ws,
    token: String,
    /// When to authenticate again (a little before the token expires).
    renew_at: Option<Instant>,
}

/// Runs one AP until `frames` is closed; every frame becomes one message. Reports on
/// `ready` once connected.
pub async fn run(
    mac: [u8; 6],
    endpoint: Endpoint,
    stats: Arc<GatewayStats>,
    mut frames: mpsc::Receiver<Vec<u8>>,
    ready: mpsc::Sender<()>,
) -> anyhow::Result<()> {
    let usb = Gateway::usb_id(mac);
    let http = endpoint.trust.http_client()?;
    let mut session = connect(&endpoint, &http, &stats, FIRST_CONNECT_PATIENCE).await?;
    send_health(&mut session, mac, &usb, &stats).await?;
    let _ = ready.send(()).await;
    drop(ready);
    let mut health = tokio::time::interval(endpoint.health_interval);
    health.tick().await;
    let mut refusals = Refusals::default();
    loop {
        if session.renew_at.is_some_and(|t| Instant::now() >= t) {
            let _ = session.ws.close(None).await;
            session = connect(&endpoint, &http, &stats, RECONNECT_PATIENCE).await?;
        }
        tokio::select! {
            frame = frames.recv() => {
                let Some(frame) = frame else { break };
                match send_waiting(&mut session, mac, &usb, frame, &mut frames).await {
                    Ok(count) => {
                        stats.telegrams.fetch_add(count, Ordering::Relaxed);
                        stats.messages.fetch_add(count, Ordering::Relaxed);
                    }
                    Err(lost) => {
                        stats.failed.fetch_add(lost, Ordering::Relaxed);
                        session = connect(&endpoint, &http, &stats, RECONNECT_PATIENCE).await?;
                    }
                }
            }
            _ = health.tick() => send_health(&mut session, mac, &usb, &stats).await?,
            incoming = session.ws.next() => match incoming {
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.as_ref().map(|f| u16::from(f.code));
                    refusals.note(code == Some(1008))?;
                    if code == Some(1013) {
                        stats.pushed_back.fetch_add(1, Ordering::Relaxed);
                    }
                    eprintln!("gateway {}: server closed the connection ({code:?}); reconnecting", hex::encode(mac));
                    session = connect(&endpoint, &http, &stats, RECONNECT_PATIENCE).await?;
                }
                Some(Ok(Message::Binary(bytes))) => {
                    if answer_south(&mut session, mac, &usb, &bytes, &stats).await.is_err() {
                        session = connect(&endpoint, &http, &stats, RECONNECT_PATIENCE).await?;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => session = connect(&endpoint, &http, &stats, RECONNECT_PATIENCE).await?,
            },
        }
    }
    let _ = session.ws.close(None).await;
    Ok(())
}

/// Most frames written with one system call; each is still a message of its own.
const FRAMES_PER_WRITE: u64 = 64;

/// Sends `first` and the frames already waiting behind it, each in its own `serialDataNb`
/// message as an AP does, and writes them to the socket together (the load generator shares
/// the machine it measures). Returns how many were sent, or how many were lost.
async fn send_waiting(
    session: &mut Session,
    mac: [u8; 6],
    usb: &str,
    first: Vec<u8>,
    frames: &mut mpsc::Receiver<Vec<u8>>,
) -> Result<u64, u64> {
    let mut next = Some(first);
    let mut count = 0;
    while let Some(frame) = next.take() {
        let msg = Telemetry::serial_data(&session.token, reporter(mac), usb, &[&frame]);
        count += 1;
        if session
            .ws
            .feed(Message::Binary(msg.encode_to_vec().into()))
            .await
            .is_err()
        {
            return Err(count);
        }
        if count < FRAMES_PER_WRITE {
            next = frames.try_recv().ok();
        }
    }
    session.ws.flush().await.map(|()| count).map_err(|_| count)
}

/// Plays the stick for a southbound message: each ESP3 frame for this AP's stick is checked
/// and answered with a RESPONSE northbound.
async fn answer_south(
    session: &mut Session,
    mac: [u8; 6],
    usb: &str,
    bytes: &[u8],
    stats: &GatewayStats,
) -> anyhow::Result<()> {
    let Ok(msg) = aruba::IotSbMessage::decode(bytes) else {
        stats.south_invalid.fetch_add(1, Ordering::Relaxed);
        return Ok(());
    };
    for data in &msg.sb_s_data {
        stats.south.fetch_add(1, Ordering::Relaxed);
        let payload = data.sb_serial_payload.as_deref().unwrap_or_default();
        let Some(response) = super::stick::answer(mac, payload) else {
            stats.south_invalid.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let reply = Telemetry::serial_data(&session.token, reporter(mac), usb, &[&response]);
        session
            .ws
            .send(Message::Binary(reply.encode_to_vec().into()))
            .await?;
        stats.messages.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Stops a loop of reconnects when the server keeps refusing the token.
#[derive(Default)]
struct Refusals {
    recent: Vec<Instant>,
}

impl Refusals {
    fn note(&mut self, refused: bool) -> anyhow::Result<()> {
        if !refused {
            return Ok(());
        }
        let now = Instant::now();
        self.recent
            .retain(|t| now.duration_since(*t) < Duration::from_secs(10));
        self.recent.push(now);
        if self.recent.len() >= 3 {
            bail!("the server refuses the access token (WebSocket closed with 1008)");
        }
        Ok(())
    }
}

async fn send_health(
    session: &mut Session,
    mac: [u8; 6],
    usb: &str,
    stats: &GatewayStats,
) -> anyhow::Result<()> {
    let health = ApHealthUpdate {
        ap_status: Some(HealthStatus::Healthy as i32),
        radio: Vec::new(),
        usb: vec![UsbDevice::new(usb, HealthStatus::Healthy)],
    };
    let msg = Telemetry::health(&session.token, reporter(mac), health);
    session
        .ws
        .send(Message::Binary(msg.encode_to_vec().into()))
        .await?;
    stats.health.fetch_add(1, Ordering::Relaxed);
    stats.messages.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

fn reporter(mac: [u8; 6]) -> Reporter {
    Reporter {
        name: Some(hex::encode(mac)),
        mac: Some(mac.to_vec()),
        ipv4: None,
        ipv6: None,
        hw_type: Some("AP-505".into()),
        sw_version: Some("8.10.0.8-8.10.0.8".into()),
        sw_build: Some("87765".into()),
        time: Some(iotc_core::ops::unix_seconds()),
    }
}

/// How long an AP keeps trying to reach the server: briefly at start (a wrong URL is reported
/// at once), longer once it ran (a restarted ingress is waited for, as a real AP does).
/// Read buffer of one simulated AP's WebSocket; what the ingress sends is small.
const READ_BUFFER_BYTES: usize = 4096;
const FIRST_CONNECT_PATIENCE: Duration = Duration::from_secs(5);
const RECONNECT_PATIENCE: Duration = Duration::from_secs(120);

/// Authenticates (when configured) and opens the WebSocket; retries with back-off for
/// `patience`.
async fn connect(
    endpoint: &Endpoint,
    http: &reqwest::Client,
    stats: &GatewayStats,
    patience: Duration,
) -> anyhow::Result<Session> {
    let give_up = Instant::now() + patience;
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(2));
    loop {
        match try_connect(endpoint, http).await {
            Ok(session) => {
                stats.connects.fetch_add(1, Ordering::Relaxed);
                return Ok(session);
            }
            Err(e) if Instant::now() + backoff.peek() > give_up => return Err(e),
            Err(_) => backoff.wait().await,
        }
    }
}

async fn try_connect(endpoint: &Endpoint, http: &reqwest::Client) -> anyhow::Result<Session> {
    let (token, renew_at, url) = match &endpoint.auth_url {
        Some(auth_url) => {
            let grant =
                authenticate(http, auth_url, &endpoint.username, &endpoint.password).await?;
            let renew_at = grant
                .expires_in
                .map(|s| Instant::now() + Duration::from_secs(s.saturating_sub(30).max(1)));
            (
                grant.access_token,
                renew_at,
                grant.api_url.unwrap_or_else(|| endpoint.url.clone()),
            )
        }
        None => {
            let token = endpoint
                .token
                .clone()
                .context("no --token and no --auth-url")?;
            (token, None, endpoint.url.clone())
        }
    };
    let connector = endpoint.trust.ws_connector()?;
    // The library's default read buffer (128 KiB) is zero-filled again before reads: with
    // a small one the simulator spends its time on the APs' traffic instead.
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES);
    let (ws, _) =
        tokio_tungstenite::connect_async_tls_with_config(&url, Some(config), false, connector)
            .await
            .with_context(|| format!("WebSocket {url}"))?;
    Ok(Session {
        ws,
        token,
        renew_at,
    })
}

#[derive(serde::Deserialize)]
struct Grant {
    access_token: String,
    expires_in: Option<u64>,
    api_url: Option<String>,
}

/// The AP's pre-authentication: a JSON POST with the password grant.
async fn authenticate(
    http: &reqwest::Client,
    url: &str,
    username: &str,
    password: &str,
) -> anyhow::Result<Grant> {
    let body = serde_json::json!({
        "grant_type": "password",
        "username": username,
        "password": password,
        "client_id": "iotc-simulator",
        "scope": "Aruba_IoT_Framework",
    });
    let response = http
        .post(url)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        bail!("POST {url}: {status} {text}");
    }
    response
        .json()
        .await
        .with_context(|| format!("POST {url}: answer"))
}
