//! `redis-server`: a single server (optionally with an append-only file, to survive SIGKILL)
//! and a Redis Cluster of 3 masters with 3 replicas.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::proc::{Proc, free_port, temp_dir, wait_for, wait_port};

/// What the server keeps across a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// Nothing: a restarted server is empty.
    None,
    /// Append-only file, fsync once per second: a crash loses at most about one second.
    AofEverySec,
    /// Append-only file, fsync before every reply: a crash loses nothing acknowledged.
    AofAlways,
}

impl Persistence {
    fn args(self) -> &'static [&'static str] {
        match self {
            Persistence::None => &["--appendonly", "no"],
            Persistence::AofEverySec => &["--appendonly", "yes", "--appendfsync", "everysec"],
            Persistence::AofAlways => &["--appendonly", "yes", "--appendfsync", "always"],
        }
    }
}

/// A `redis-server` on a free loopback port; killed on drop.
pub struct Redis {
    pub port: u16,
    pub proc: Proc,
    dir: PathBuf,
    persistence: Persistence,
    _temp: Option<tempfile::TempDir>,
}

impl Redis {
    /// A server without persistence, its files and log in `dir`.
    pub fn start(dir: &Path) -> Redis {
        Self::start_with(dir, Persistence::None)
    }

    /// A server without persistence in its own temporary folder.
    pub fn start_temp() -> Redis {
        let temp = temp_dir();
        let mut redis = Self::start(temp.path());
        redis._temp = Some(temp);
        redis
    }

    pub fn start_with(dir: &Path, persistence: Persistence) -> Redis {
        let port = free_port();
        Redis {
            port,
            proc: spawn(dir, port, persistence, &[]),
            dir: dir.to_path_buf(),
            persistence,
            _temp: None,
        }
    }

    /// `REDIS_URL` for the services (`host:port`).
    pub fn url(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.redis_url()).expect("redis client")
    }

    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        self.client()
            .get_multiplexed_async_connection()
            .await
            .expect("redis connection")
    }

    pub async fn manager(&self) -> redis::aio::ConnectionManager {
        redis::aio::ConnectionManager::new(self.client())
            .await
            .expect("redis connection")
    }

    /// A blocking connection.
    pub fn sync_conn(&self) -> redis::Connection {
        self.client().get_connection().expect("redis connection")
    }

    /// SIGKILL: what was not yet written to disk (per the persistence) is lost.
    pub fn kill(&mut self) {
        self.proc.kill();
    }

    /// Starts the server again on the same port, folder and settings (with an append-only
    /// file it loads what it had); waits until it answers PING.
    pub fn start_again(&mut self) {
        self.proc = spawn(&self.dir, self.port, self.persistence, &[]);
    }

    /// Kills the server and starts it again (empty without persistence).
    pub fn restart(&mut self) {
        self.kill();
        self.start_again();
    }
}

/// Starts `redis-server` and waits until it answers PING (not LOADING).
fn spawn(dir: &Path, port: u16, persistence: Persistence, extra: &[&str]) -> Proc {
    let mut cmd = Command::new("redis-server");
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--protected-mode", "no"])
        // As deployed: refuse writes when full, never evict (an evicted stream entry would be
        // a telegram lost without a trace).
        .args(["--maxmemory", "256mb", "--maxmemory-policy", "noeviction"])
        .args(persistence.args())
        .args(extra)
        .arg("--dir")
        .arg(dir);
    let mut proc = Proc::spawn(&format!("redis-server-{port}"), cmd, dir);
    wait_port(port, &mut proc);
    let url = format!("redis://127.0.0.1:{port}/");
    let ready = wait_for(Duration::from_secs(30), || {
        let mut conn = redis::Client::open(url.as_str())
            .ok()?
            .get_connection()
            .ok()?;
        redis::cmd("PING").query::<String>(&mut conn).ok()
    });
    assert!(
        ready.is_some(),
        "redis-server on {port} does not answer PING"
    );
    proc
}

/// A Redis Cluster: 3 masters and 3 replicas on free loopback ports (each port + 10000 is
/// its cluster bus), each node in its own folder; killed on drop.
pub struct RedisCluster {
    pub nodes: Vec<Redis>,
    _temp: tempfile::TempDir,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        let temp = temp_dir();
        let nodes: Vec<Redis> = (0..6).map(|_| cluster_node(temp.path())).collect();
        let addrs: Vec<String> = nodes.iter().map(Redis::url).collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli runs");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = RedisCluster { nodes, _temp: temp };
        cluster.wait_ok();
        cluster
    }

    /// `redis://` URLs of every node (seeds for a cluster client, which needs the redis
    /// crate's `cluster-async` feature).
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(Redis::redis_url).collect()
    }

    /// Waits until every node reports `cluster_state:ok` and sees the 3 replicas.
    fn wait_ok(&self) {
        for node in &self.nodes {
            let ok = wait_for(Duration::from_secs(30), || {
                let mut conn = node.client().get_connection().ok()?;
                let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut conn).ok()?;
                let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(&mut conn).ok()?;
                let ready =
                    info.contains("cluster_state:ok") && nodes.matches("slave").count() == 3;
                ready.then_some(())
            });
            assert!(ok.is_some(), "cluster node {} not ready", node.port);
        }
    }
}

/// A free port whose cluster bus port (+10000) is free too.
fn cluster_port() -> u16 {
    loop {
        let port = free_port();
        if port < 55_535 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

fn cluster_node(root: &Path) -> Redis {
    let port = cluster_port();
    let dir = root.join(port.to_string());
    std::fs::create_dir_all(&dir).expect("node folder");
    let extra = ["--cluster-enabled", "yes", "--cluster-node-timeout", "5000"];
    Redis {
        port,
        proc: spawn(&dir, port, Persistence::None, &extra),
        dir,
        persistence: Persistence::None,
        _temp: None,
    }
}
