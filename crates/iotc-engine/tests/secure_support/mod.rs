//! Shared by the secure tests: a real redis-server on a free port, killed on drop, and
//! secure telegrams built with the protocol crate.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use enocean::secure::{self, SecureContext};
use enocean::telegram::{BROADCAST, Telegram};

pub struct Redis {
    pub port: u16,
    _dir: tempfile::TempDir,
    child: Child,
}

impl Redis {
    pub fn start() -> Redis {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--maxmemory", "256mb", "--maxmemory-policy", "noeviction"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server does not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis {
            port,
            _dir: dir,
            child,
        }
    }

    pub fn client(&self) -> redis::Client {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).expect("client")
    }

    pub async fn manager(&self) -> redis::aio::ConnectionManager {
        redis::aio::ConnectionManager::new(self.client())
            .await
            .expect("redis connection")
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A received ERP1 telegram as the stick reports it (security level 0: not processed).
pub fn telegram(rorg: u8, data: Vec<u8>, sender: u32, status: u8) -> Telegram {
    Telegram {
        rorg,
        data,
        sender,
        destination: BROADCAST,
        status,
        sub_tel_num: Some(1),
        dbm: Some(-60),
        security_level: Some(0),
    }
}

/// The ESP3 frame of a telegram.
pub fn frame(t: &Telegram) -> Vec<u8> {
    t.to_erp1_packet().encode()
}

/// A 0x31 telegram carrying `inner_rorg` + `data` under code `rlc`.
pub fn sec_r(ctx: &SecureContext, rlc: u32, inner_rorg: u8, data: &[u8], sender: u32) -> Telegram {
    let payload = secure::encrypt_sec_r(ctx, rlc, inner_rorg, data).expect("encrypt");
    telegram(secure::SEC_R, payload, sender, 0)
}
