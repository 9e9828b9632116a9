//! Test harness: a real redis-server (test-support) on a free port in a temp dir, and the API
//! served in-process.
#![allow(dead_code)]

use iotc_api::app::{AppState, HttpSettings, app};
use iotc_api::auth::Credentials;
use iotc_api::store::Store;
use redis::AsyncCommands;
use serde_json::Value;

pub const USER: &str = "admin";
pub const PASS: &str = "s3cret-pass";

#[allow(unused_imports)] // not every test file uses it
pub use test_support::free_port;

/// A redis-server without persistence in its own temporary folder (test-support), killed on
/// drop.
pub struct Redis {
    pub port: u16,
    inner: test_support::Redis,
}

impl Redis {
    pub fn start() -> Redis {
        let inner = test_support::Redis::start_temp();
        Redis {
            port: inner.port,
            inner,
        }
    }

    pub fn url(&self) -> String {
        self.inner.redis_url()
    }

    pub fn stop(&mut self) {
        self.inner.kill();
    }

    /// Starts it again on the same port (empty: nothing is saved).
    pub fn restart(&mut self) {
        self.inner.restart();
    }

    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        self.inner.conn().await
    }
}

pub struct Options {
    pub only_secure: bool,
    pub max_body_bytes: usize,
    pub max_backup_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            only_secure: false,
            max_body_bytes: 1024 * 1024,
            max_backup_bytes: 64 * 1024 * 1024,
        }
    }
}

/// The API on a free port, talking to its own Redis.
pub struct Api {
    pub base: String,
    pub redis: Redis,
    pub http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Api {
    pub async fn start() -> Api {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> Api {
        let redis = Redis::start();
        let (base, server) = serve(&redis.url(), &opts).await;
        Api {
            base,
            redis,
            http: client(),
            server,
        }
    }

    /// A second API instance on the same Redis (what several replicas behind a proxy are).
    pub async fn another_instance(&self) -> Instance {
        let (base, server) = serve(&self.redis.url(), &Options::default()).await;
        Instance { base, server }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// An authenticated request to `/api.beta/v1<path>`.
    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(&format!("/api.beta/v1{path}")))
            .basic_auth(USER, Some(PASS))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        send(self.req(reqwest::Method::GET, path)).await
    }

    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
    ) -> (u16, Value) {
        send(self.req(method, path).json(body)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send_json(reqwest::Method::POST, path, body).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        send(self.req(reqwest::Method::DELETE, path)).await
    }

    /// The raw device JSON stored in Redis.
    pub async fn stored(&self, field: &str) -> Option<Value> {
        let json: Option<String> = self
            .redis
            .conn()
            .await
            .hget(iotc_core::keys::DEVICES, field)
            .await
            .unwrap();
        json.map(|j| serde_json::from_str(&j).unwrap())
    }
}

/// Another API instance sharing an [`Api`]'s Redis; stopped on drop.
pub struct Instance {
    pub base: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Instance {
    pub async fn get(&self, http: &reqwest::Client, path: &str) -> (u16, Value) {
        let url = format!("{}/api.beta/v1{path}", self.base);
        send(http.get(url).basic_auth(USER, Some(PASS))).await
    }
}

/// Serves the API in-process on a free port: its base URL and task.
async fn serve(redis_url: &str, opts: &Options) -> (String, tokio::task::JoinHandle<()>) {
    let state = AppState {
        store: Store::connect(redis_url).unwrap(),
        only_secure: opts.only_secure,
        gateway_timeout_secs: 300,
        max_backup_bytes: opts.max_backup_bytes,
    };
    let http = HttpSettings {
        credentials: Credentials::new(USER, PASS),
        max_body_bytes: opts.max_body_bytes,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(listener, app(state, http)).await.unwrap();
    });
    (base, server)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Sends a request; the status and the JSON body (`Null` when empty).
pub async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
    };
    (status, body)
}

/// Asserts an IoTC `Error` body with this code whose message mentions `needle`.
pub fn assert_error(status: u16, body: &Value, want_status: u16, code: &str, needle: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    let message = body["message"].as_str().expect("message is a string");
    assert!(
        message.contains(needle),
        "message {message:?} should mention {needle:?}"
    );
    assert_eq!(
        body.as_object().unwrap().len(),
        2,
        "only code and message: {body}"
    );
}

pub fn device(source: &str, eep: &str) -> Value {
    serde_json::json!({"eep": eep, "friendlyID": format!("dev {source}"), "location": "Level 2", "sourceEurid": source})
}
