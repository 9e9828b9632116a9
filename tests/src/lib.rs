//! End-to-end test harness: the processes come from `test-support` (real `redis-server`,
//! `mosquitto` and the service binaries on free loopback ports in temporary folders, killed
//! on drop); here are the whole stack, an MQTT subscriber, helpers that build real telegrams
//! and, in [`load`], simulated APs that send numbered telegrams and reconnect by themselves.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;

pub use test_support::{
    Mosquitto, Persistence, Proc, Redis, bin, free_port, repo_root, temp_dir, wait_port,
};

pub mod browser;
pub mod load;

/// One message received by [`Subscriber`].
#[derive(Debug, Clone)]
pub struct Received {
    pub topic: String,
    pub payload: Vec<u8>,
    /// The broker sent it again (DUP): a copy it delivered before, not a new publication.
    pub dup: bool,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.payload)
            .unwrap_or_else(|e| panic!("{} is not JSON ({e})", self.topic))
    }
}

/// An MQTT client subscribed to a filter, collecting everything it receives.
pub struct Subscriber {
    _client: AsyncClient,
    got: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Subscriber {
    /// Subscribes at QoS 1 and returns once the broker acknowledged the subscription.
    pub async fn start(port: u16, filter: &str) -> Subscriber {
        Self::start_with(port, filter, true).await
    }

    /// A subscriber with a persistent session: what is published while it is away (broker
    /// restart) is delivered when it reconnects.
    pub async fn start_persistent(port: u16, filter: &str) -> Subscriber {
        Self::start_with(port, filter, false).await
    }

    async fn start_with(port: u16, filter: &str, clean: bool) -> Subscriber {
        let id = format!("e2e-sub-{}", rand::random::<u32>());
        let mut opts = MqttOptions::new(id, "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(5));
        opts.set_clean_session(clean);
        opts.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut events) = AsyncClient::new(opts, 1000);
        client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        let got = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let sink = got.clone();
        let task = tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(tx) = ready.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        sink.lock().unwrap().push(Received {
                            topic: p.topic.clone(),
                            payload: p.payload.to_vec(),
                            dup: p.dup,
                        });
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), ready_rx)
            .await
            .expect("SUBACK in time")
            .expect("subscriber task");
        Subscriber {
            _client: client,
            got,
            task,
        }
    }

    /// Everything received so far.
    pub fn all(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Messages received so far on `topic`.
    pub fn on(&self, topic: &str) -> Vec<Received> {
        self.all()
            .into_iter()
            .filter(|m| m.topic == topic)
            .collect()
    }

    /// Waits until at least `n` messages arrived on `topic`; returns them all.
    pub async fn wait_for(&self, topic: &str, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.on(topic);
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `pred` holds for the messages received so far.
    pub async fn wait_until(&self, timeout: Duration, pred: impl Fn(&[Received]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.all()) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The engine binary, configured for a test's Redis and broker.
pub struct EngineProc {
    pub proc: Proc,
    pub http_port: u16,
}

impl EngineProc {
    /// Starts the engine and waits until `/readyz` answers 200 (Redis and broker reached).
    pub async fn start(
        dir: &Path,
        redis: &Redis,
        mqtt: &Mosquitto,
        env: &[(&str, &str)],
    ) -> EngineProc {
        let http_port = free_port();
        let mut cmd = Command::new(bin("iotc-engine"));
        cmd.env("REDIS_URL", redis.url())
            .env("MQTT_CONNSTRING", mqtt.connstring())
            .env("IOT_ENABLE_MQTT", "1")
            .env("IOTC_ENGINE_HTTP_PORT", http_port.to_string())
            .env("IOTC_ENGINE_CONSUMER", "e2e-engine")
            .env("LOG_LEVEL", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut proc = Proc::spawn("iotc-engine", cmd, dir);
        wait_port(http_port, &mut proc);
        let mut engine = EngineProc { proc, http_port };
        engine.wait_ready().await;
        engine
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let url = format!("http://127.0.0.1:{}{path}", self.http_port);
        match reqwest::get(&url).await {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(_) => (0, String::new()),
        }
    }

    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.get("/readyz").await.0 == 200 {
                return;
            }
            assert!(
                self.proc.running(),
                "engine exited:\n{}",
                self.proc.log_tail(30)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("engine not ready:\n{}", self.proc.log_tail(30));
    }
}

/// Telegrams as a USB stick delivers them.
pub mod radio {
    use enocean::esp3::Packet;
    use enocean::telegram::{BROADCAST, Telegram};
    use enocean::{Eep, eep};

    /// A plain reception: one sub-telegram, `dbm`, not secure.
    pub fn telegram(rorg: u8, data: Vec<u8>, sender: u32, status: u8, dbm: i16) -> Telegram {
        Telegram {
            rorg,
            data,
            sender,
            destination: BROADCAST,
            status,
            sub_tel_num: Some(1),
            dbm: Some(dbm),
            security_level: Some(0),
        }
    }

    /// The ESP3 frame of a telegram.
    pub fn frame(t: &Telegram) -> Vec<u8> {
        let p: Packet = t.to_erp1_packet();
        p.encode()
    }

    /// An ESP3 frame carrying `values` encoded with `eep` (fields not given are zero).
    pub fn eep_frame(eep_id: &str, values: &[(&str, f64)], sender: u32, dbm: i16) -> Vec<u8> {
        let id: Eep = eep_id.parse().expect("EEP");
        let (rorg, data, status) = eep::encode(id, values).expect("encodable values");
        frame(&telegram(rorg, data, sender, status, dbm))
    }
}

/// Stream entries as the ingress writes them.
pub mod stream {
    use iotc_core::bus::{FIELD, TelegramEntry};
    use iotc_core::keys;

    pub fn entry(mac: [u8; 6], received_ms: u64, esp3: Vec<u8>) -> TelegramEntry {
        TelegramEntry {
            gateway_mac: mac,
            received_ms,
            dbm: -70,
            usb_id: "ENOCEAN_USB:0123456789abcdef0123456789abcdef".into(),
            esp3,
        }
    }

    /// XADDs telegram entries in one pipeline.
    pub async fn add(redis: &mut redis::aio::MultiplexedConnection, entries: &[TelegramEntry]) {
        let mut pipe = redis::pipe();
        for e in entries {
            pipe.xadd(keys::TELEGRAM_STREAM, "*", &[(FIELD, e.encode())])
                .ignore();
        }
        let () = pipe.query_async(redis).await.expect("XADD");
    }
}

/// Unix seconds now.
pub fn now_s() -> u64 {
    iotc_core::ops::unix_seconds()
}

/// Credentials the full stack is started with.
pub const API_USER: &str = "e2e-admin";
pub const API_PASSWORD: &str = "e2e-password";
pub const AP_USER: &str = "e2e-ap";
pub const AP_PASSWORD: &str = "e2e-ap-password";

/// Redis, mosquitto, ingress, API and engine on free loopback ports.
pub struct Stack {
    pub engine: EngineProc,
    pub api: Proc,
    pub ingress: Proc,
    pub mqtt: Mosquitto,
    pub redis: Redis,
    pub api_port: u16,
    pub ingress_port: u16,
    pub dir: tempfile::TempDir,
}

impl Stack {
    pub async fn start() -> Stack {
        Self::start_with(&[]).await
    }

    /// The stack with extra environment for the engine.
    pub async fn start_with(engine_env: &[(&str, &str)]) -> Stack {
        Self::start_persistent(engine_env, Persistence::None).await
    }

    /// The stack with Redis keeping its data as `persistence` says (to survive SIGKILL).
    pub async fn start_persistent(engine_env: &[(&str, &str)], persistence: Persistence) -> Stack {
        let dir = temp_dir();
        let redis = Redis::start_with(dir.path(), persistence);
        let mqtt = Mosquitto::start(dir.path());

        let ingress_port = free_port();
        let ingress = spawn_ingress(dir.path(), &redis, ingress_port);

        let (api, api_port) = spawn_api(dir.path(), &redis, &[]);

        let engine = EngineProc::start(dir.path(), &redis, &mqtt, engine_env).await;
        Stack {
            engine,
            api,
            ingress,
            mqtt,
            redis,
            api_port,
            ingress_port,
            dir,
        }
    }

    /// Kills the ingress (SIGKILL) and starts a new one on the same port.
    pub fn restart_ingress(&mut self) {
        self.ingress.kill();
        self.ingress = spawn_ingress(self.dir.path(), &self.redis, self.ingress_port);
    }

    /// Kills the engine (SIGKILL) and starts a new one with `env`.
    pub async fn restart_engine(&mut self, env: &[(&str, &str)]) {
        self.engine.proc.kill();
        self.engine = EngineProc::start(self.dir.path(), &self.redis, &self.mqtt, env).await;
    }

    /// `http://127.0.0.1:<api>/api.beta/v1<path>`.
    pub fn api_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/api.beta/v1{path}", self.api_port)
    }

    /// `iotc simulate` arguments that reach this stack's ingress as an AP.
    pub fn simulate_args(&self) -> Vec<String> {
        simulate_args(self.ingress_port)
    }

    /// Onboards a device through the API; panics unless it is accepted.
    pub async fn onboard(&self, device: &Value) {
        let res = reqwest::Client::new()
            .post(self.api_url("/devices"))
            .basic_auth(API_USER, Some(API_PASSWORD))
            .json(device)
            .send()
            .await
            .expect("POST /devices");
        let status = res.status();
        let body = res.text().await.unwrap_or_default();
        assert!(status.is_success(), "onboarding answered {status}: {body}");
    }

    /// GET on the API with the credentials; the JSON answer.
    pub async fn api_get(&self, path: &str) -> (u16, Value) {
        let res = reqwest::Client::new()
            .get(self.api_url(path))
            .basic_auth(API_USER, Some(API_PASSWORD))
            .send()
            .await
            .expect("API GET");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Logs an AP in (`POST /auth/aruba`) and returns its token.
    pub async fn ap_token(&self) -> String {
        let res = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/auth/aruba", self.ingress_port))
            .json(
                &serde_json::json!({"grant_type": "password", "username": AP_USER,
                                       "password": AP_PASSWORD, "client_id": "e2e"}),
            )
            .send()
            .await
            .expect("POST /auth/aruba");
        assert_eq!(res.status(), 200, "AP login");
        let body: Value = res.json().await.expect("token JSON");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    /// A WebSocket to `/aruba` as an AP opens it.
    pub async fn ap_socket(&self) -> ap::Socket {
        let url = format!("ws://127.0.0.1:{}/aruba", self.ingress_port);
        let (ws, response) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("WebSocket to the ingress");
        assert_eq!(response.status(), 101);
        ws
    }
}

/// Starts the ingress binary for the stack; waits until it listens.
fn spawn_ingress(dir: &Path, redis: &Redis, port: u16) -> Proc {
    let mut cmd = Command::new(bin("iotc-ingress"));
    cmd.env("REDIS_URL", redis.url())
        .env("IOTC_INGRESS_PORT", port.to_string())
        .env("IOTC_INGRESS_BIND", "127.0.0.1")
        .env("IOT_GATEWAY_USERNAME", AP_USER)
        .env("IOT_GATEWAY_PASSWORD", AP_PASSWORD);
    let mut ingress = Proc::spawn("iotc-ingress", cmd, dir);
    wait_port(port, &mut ingress);
    ingress
}

/// Starts an API on a free port with the stack's credentials and extra `env`; waits until
/// it listens.
pub fn spawn_api(dir: &Path, redis: &Redis, env: &[(&str, &str)]) -> (Proc, u16) {
    let port = free_port();
    let mut cmd = Command::new(bin("iotc-api"));
    cmd.env("REDIS_URL", redis.url())
        .env("IOTC_API_PORT", port.to_string())
        .env("IOTC_API_BIND", "127.0.0.1")
        .env("BASIC_AUTH_USERNAME", API_USER)
        .env("BASIC_AUTH_PASSWORD", API_PASSWORD);
    cmd.envs(env.iter().copied());
    let mut api = Proc::spawn("iotc-api", cmd, dir);
    wait_port(port, &mut api);
    (api, port)
}

/// What an Aruba AP sends.
pub mod ap {
    use futures_util::SinkExt;
    use prost::Message as _;
    use tokio_tungstenite::tungstenite::Message;

    pub type Socket = tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >;

    pub const STICK: &str = "ENOCEAN_USB:0123456789abcdef0123456789abcdef";

    pub fn reporter(mac: [u8; 6]) -> aruba::Reporter {
        aruba::Reporter {
            name: Some(format!("e2e-ap-{:02x}", mac[5])),
            mac: Some(mac.to_vec()),
            hw_type: Some("AP-505".into()),
            sw_version: Some("8.10.0.0-8.10.0.0".into()),
            ..Default::default()
        }
    }

    /// Waits (at most 15 s) for the server's close frame; its code (`None`: closed without
    /// one).
    pub async fn close_code(ws: &mut Socket) -> Option<u16> {
        use futures_util::StreamExt;
        let wait = tokio::time::timeout(std::time::Duration::from_secs(15), async {
            while let Some(msg) = ws.next().await {
                match msg {
                    Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                    Ok(_) => continue,
                    Err(_) => return None,
                }
            }
            None
        });
        wait.await.ok().flatten()
    }

    /// Sends ESP3 frames as one serial-data telemetry message.
    pub async fn send(ws: &mut Socket, token: &str, mac: [u8; 6], frames: &[&[u8]]) {
        let msg = aruba::Telemetry::serial_data(token, reporter(mac), STICK, frames);
        ws.send(Message::Binary(msg.encode_to_vec().into()))
            .await
            .expect("send telemetry");
    }
}

impl Stack {
    /// Sends an AP health update (one healthy EnOcean stick).
    pub async fn ap_health(&self, ws: &mut ap::Socket, token: &str, mac: [u8; 6]) {
        use futures_util::SinkExt;
        use prost::Message as _;
        let health = aruba::ApHealthUpdate {
            ap_status: Some(aruba::HealthStatus::Healthy as i32),
            radio: Vec::new(),
            usb: vec![aruba::UsbDevice::new(
                ap::STICK,
                aruba::HealthStatus::Healthy,
            )],
        };
        let msg = aruba::Telemetry::health(token, ap::reporter(mac), health);
        ws.send(tokio_tungstenite::tungstenite::Message::Binary(
            msg.encode_to_vec().into(),
        ))
        .await
        .expect("send health");
    }
}

/// `iotc simulate` and the arguments that reach an ingress on `port` as an AP: WebSocket and
/// login URLs, user and password. Callers add what the run is about.
pub fn simulate_args(ingress_port: u16) -> Vec<String> {
    let base = format!("127.0.0.1:{ingress_port}");
    [
        "simulate".to_string(),
        "--url".into(),
        format!("ws://{base}/aruba"),
        "--auth-url".into(),
        format!("http://{base}/auth/aruba"),
        "--username".into(),
        AP_USER.into(),
        "--password".into(),
        AP_PASSWORD.into(),
    ]
    .into()
}

/// Asks `probe` every 100 ms until it gives a value; panics naming `what` after `timeout`.
pub async fn until<T>(
    timeout: Duration,
    what: &str,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let poll = async {
        loop {
            if let Some(v) = probe().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(timeout, poll)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {timeout:?}"))
}
