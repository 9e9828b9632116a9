//! Real processes for service tests: a `redis-server` and an `iotc-ingress` on free ports in
//! temporary folders, killed when dropped (also when a test panics).

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Polls `check` until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed on drop.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `redis-server` without persistence, in its own temporary folder.
pub struct RedisServer {
    pub port: u16,
    dir: tempfile::TempDir,
    process: Option<Guard>,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut server = RedisServer {
            port: free_port(),
            dir,
            process: None,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            // As deployed: refuse writes when full, never evict.
            .args(["--maxmemory", "256mb", "--maxmemory-policy", "noeviction"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install -y redis-server)");
        self.process = Some(Guard(child));
        let url = self.url();
        wait_for(Duration::from_secs(10), || {
            let client = redis::Client::open(url.as_str()).ok()?;
            let mut con = client.get_connection().ok()?;
            redis::cmd("PING").query::<String>(&mut con).ok()
        })
        .expect("redis-server did not start");
    }

    /// Kills the server (its data is gone: no persistence).
    pub fn stop(&mut self) {
        self.process = None;
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url().as_str())
            .and_then(|c| c.get_connection())
            .expect("redis connection")
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
