//! Real processes for service tests: a `redis-server` (test-support) and an `iotc-ingress` on
//! free ports in temporary folders, killed when dropped (also when a test panics).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[allow(unused_imports)] // not every test file uses it
pub use test_support::{free_port, wait_for};

/// A child process killed on drop.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `redis-server` without persistence, in its own temporary folder (test-support).
pub struct RedisServer {
    pub port: u16,
    inner: test_support::Redis,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let inner = test_support::Redis::start_temp();
        RedisServer {
            port: inner.port,
            inner,
        }
    }

    /// Kills the server (its data is gone: no persistence).
    pub fn stop(&mut self) {
        self.inner.kill();
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.inner.restart();
    }

    pub fn url(&self) -> String {
        self.inner.redis_url()
    }

    pub fn conn(&self) -> redis::Connection {
        self.inner.sync_conn()
    }
}

/// A running `iotc-ingress`.
pub struct Ingress {
    pub port: u16,
    pub tls: bool,
    _process: Guard,
}

/// The ingress binary of this package.
pub fn ingress_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_iotc-ingress"))
}

pub const USER: &str = "ap-user";
pub const PASSWORD: &str = "ap-password";
pub const STATIC_TOKEN: &str = "c3RhdGljLXRva2Vu";

impl Ingress {
    /// Starts the ingress against `redis_url` with the test credentials (user name,
    /// password and static token) plus `env`, and waits until `/healthz` answers.
    pub fn start(redis_url: &str, env: &[(&str, &str)]) -> Ingress {
        Self::start_binary(&ingress_binary(), redis_url, env)
    }

    pub fn start_binary(binary: &Path, redis_url: &str, env: &[(&str, &str)]) -> Ingress {
        let port = free_port();
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("IOTC_INGRESS_BIND", "127.0.0.1")
            .env("IOTC_INGRESS_PORT", port.to_string())
            .env("REDIS_URL", redis_url)
            .env("IOT_GATEWAY_USERNAME", USER)
            .env("IOT_GATEWAY_PASSWORD", PASSWORD)
            .env("IOT_GATEWAY_TOKEN", STATIC_TOKEN)
            .env("LOG_LEVEL", "warn")
            .stdout(Stdio::null());
        let tls = env.iter().any(|(k, _)| *k == "IOTC_INGRESS_TLS_CERT");
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().expect("start iotc-ingress");
        let ingress = Ingress {
            port,
            tls,
            _process: Guard(child),
        };
        wait_for(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        })
        .expect("iotc-ingress did not start listening");
        ingress
    }

    pub fn http_url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://localhost:{}{path}", self.port)
    }

    pub fn ws_url(&self, path: &str) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://localhost:{}{path}", self.port)
    }
}

/// The value of one line of the ingress's /metrics (`name{labels}`), 0 when absent.
pub async fn metric(ingress: &Ingress, series: &str) -> f64 {
    let text = reqwest::get(ingress.http_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or(0.0)
}
