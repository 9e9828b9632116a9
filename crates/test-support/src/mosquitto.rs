//! `mosquitto` with a configuration written by the test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::proc::{Proc, current_user, free_port, wait_port};

/// A mosquitto broker; killed on drop.
pub struct Mosquitto {
    /// The first listener (plain, anonymous unless the configuration says otherwise).
    pub port: u16,
    pub proc: Proc,
    pub conf: PathBuf,
    dir: PathBuf,
    ports: Vec<u16>,
}

impl Mosquitto {
    /// One anonymous plain listener, no persistence.
    pub fn start(dir: &Path) -> Mosquitto {
        Self::start_with(dir, false)
    }

    /// A broker that keeps sessions and queued messages across [`Mosquitto::stop`] and
    /// [`Mosquitto::start_again`].
    pub fn start_persistent(dir: &Path) -> Mosquitto {
        Self::start_with(dir, true)
    }

    fn start_with(dir: &Path, persistent: bool) -> Mosquitto {
        let port = free_port();
        let persistence = if persistent {
            format!(
                "persistence true\npersistence_location {}/\n",
                dir.display()
            )
        } else {
            "persistence false\n".to_string()
        };
        // No limit on a subscriber's queue: mosquitto would otherwise drop what exceeds 1,000
        // messages behind, which a test would count as the engine's loss.
        let body = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n{persistence}"
        );
        Self::start_conf(dir, &body, &[port])
    }

    /// A broker with `body` as configuration (after a `user` line that keeps it running as
    /// this user, and logging to `mosquitto.log`); waits until each of `ports` listens. The
    /// first port is [`Mosquitto::port`].
    pub fn start_conf(dir: &Path, body: &str, ports: &[u16]) -> Mosquitto {
        let conf = dir.join("mosquitto.conf");
        let text = format!(
            "user {}\nlog_dest file {}/mosquitto.log\nlog_type all\n{body}\n",
            current_user(),
            dir.display()
        );
        std::fs::write(&conf, text).expect("write mosquitto.conf");
        let proc = spawn(&conf, dir, ports);
        Mosquitto {
            port: ports[0],
            proc,
            conf,
            dir: dir.to_path_buf(),
            ports: ports.to_vec(),
        }
    }

    /// Stops the broker the way an orderly shutdown does (SIGTERM: sessions are saved).
    pub fn stop(&mut self) {
        self.proc.terminate(Duration::from_secs(10));
    }

    /// SIGKILL: a crash.
    pub fn kill(&mut self) {
        self.proc.kill();
    }

    /// Starts the broker again on the same ports with the same settings.
    pub fn start_again(&mut self) {
        self.proc = spawn(&self.conf, &self.dir, &self.ports);
    }

    /// `MQTT_CONNSTRING` for the engine.
    pub fn connstring(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What the broker logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }
}

fn spawn(conf: &Path, dir: &Path, ports: &[u16]) -> Proc {
    let mut cmd = Command::new("mosquitto");
    cmd.arg("-c").arg(conf);
    let mut proc = Proc::spawn("mosquitto", cmd, dir);
    for &port in ports {
        wait_port(port, &mut proc);
    }
    proc
}
