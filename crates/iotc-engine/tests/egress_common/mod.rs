//! Test harness for the egress tests: real mosquitto (and redis-server) processes on free
//! ports in temporary folders, test certificates, and an MQTT subscriber.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clap::Parser;
use iotc_engine::egress::{Egress, EgressArgs};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;

#[allow(unused_imports)] // not every test file uses it
pub use test_support::free_port;

/// Waits until something accepts TCP connections on the port.
pub fn wait_listening(port: u16) {
    let up = test_support::wait_for(Duration::from_secs(5), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    assert!(up.is_some(), "nothing listens on port {port}");
}

/// A mosquitto process (test-support); killed on drop.
pub struct Mosquitto {
    pub dir: tempfile::TempDir,
    /// Plain anonymous listener for the test's subscriber.
    pub sub_port: u16,
    /// The listener under test.
    pub port: u16,
    broker: test_support::Mosquitto,
}

impl Mosquitto {
    /// Starts mosquitto with a plain anonymous listener for subscribers and `listener` (the
    /// listener under test, written for `port`) added by the caller; `files` are written
    /// into the temporary folder first.
    pub fn start(listener: impl Fn(&Path, u16) -> String) -> Mosquitto {
        let dir = tempfile::tempdir().expect("temp dir");
        let sub_port = free_port();
        let port = free_port();
        let conf = format!(
            "per_listener_settings true\n\
             persistence true\n\
             persistence_location {dir}/\n\
             listener {sub_port} 127.0.0.1\n\
             allow_anonymous true\n\
             {extra}\n",
            dir = dir.path().display(),
            extra = listener(dir.path(), port),
        );
        let broker = test_support::Mosquitto::start_conf(dir.path(), &conf, &[sub_port, port]);
        Mosquitto {
            dir,
            sub_port,
            port,
            broker,
        }
    }

    /// Stops the broker gracefully (it saves its persistent state).
    pub fn stop(&mut self) {
        self.broker.stop();
    }

    /// Starts it again on the same ports.
    pub fn restart(&mut self) {
        self.stop();
        self.broker.start_again();
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn log(&self) -> String {
        self.broker.log()
    }
}

/// A test CA with a server certificate and a client certificate, as PEM files in `dir`:
/// `ca.pem`, `server.pem`/`server.key` (for `server_names`), `client.pem`/`client.key`
/// (common name `client1`).
pub fn make_certs(dir: &Path, server_names: &[&str]) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "iotc test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();

    let names: Vec<String> = server_names.iter().map(|s| s.to_string()).collect();
    let mut server = CertificateParams::new(names).unwrap();
    server
        .distinguished_name
        .push(DnType::CommonName, server_names[0]);
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().unwrap();
    let cert = server.signed_by(&key, &ca).unwrap();
    std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();

    let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
    client
        .distinguished_name
        .push(DnType::CommonName, "client1");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    let cert = client.signed_by(&key, &ca).unwrap();
    std::fs::write(dir.join("client.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("client.key"), key.serialize_pem()).unwrap();
}

/// The same files as [`make_certs`], made with mosquitto's documented openssl recipe
/// (mosquitto-tls(7)): the client certificate comes from `openssl x509 -req` without
/// extensions, an X.509 v1 certificate. The server certificate gets a subjectAltName for
/// `localhost`, as any certificate a client checks by name needs.
pub fn make_certs_with_openssl(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    run(&[
        "req",
        "-new",
        "-x509",
        "-days",
        "2",
        "-extensions",
        "v3_ca",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=iotc test CA",
    ]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:localhost\n").unwrap();
    for (name, cn, ext) in [("server", "localhost", true), ("client", "client1", false)] {
        let (key, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        run(&["genrsa", "-out", &key, "2048"]);
        run(&[
            "req",
            "-out",
            &csr,
            "-key",
            &key,
            "-new",
            "-subj",
            &format!("/CN={cn}"),
        ]);
        let mut sign = vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
        ];
        if ext {
            sign.extend(["-extfile", "san.ext"]);
        }
        run(&sign);
    }
}

/// The TLS part of a mosquitto listener using the files of [`make_certs`].
pub fn tls_lines(dir: &Path) -> String {
    format!(
        "cafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\n",
        d = dir.display()
    )
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    egress: EgressArgs,
}

/// Egress settings from command-line style arguments (the long names of the variables).
pub fn egress_args(args: &[&str]) -> EgressArgs {
    let mut all = vec!["iotc-engine"];
    all.extend_from_slice(args);
    Cli::try_parse_from(all)
        .expect("valid test arguments")
        .egress
}

/// Starts the egress and waits until it is connected.
pub async fn connected_egress(args: &[&str]) -> Egress {
    let egress = Egress::start(&egress_args(args))
        .await
        .expect("egress starts");
    assert!(
        egress.wait_connected(Duration::from_secs(10)).await,
        "egress connected"
    );
    egress
}

/// One received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
    /// The broker sent it again (DUP): a copy it delivered before, not a new publication.
    pub dup: bool,
}

/// An MQTT subscriber on the broker's plain listener.
pub struct Subscriber {
    pub rx: mpsc::UnboundedReceiver<Received>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Subscriber {
    /// Subscribes to `filter` and returns once the broker confirmed the subscription.
    /// `persistent` keeps the session (and queued messages) across broker restarts.
    pub async fn start(port: u16, filter: &str, persistent: bool) -> Subscriber {
        let id = format!("test-sub-{}", free_port());
        let mut opts = MqttOptions::new(id, "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(5))
            .set_clean_session(!persistent)
            .set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut el) = AsyncClient::new(opts, 100);
        client
            .subscribe(filter, QoS::ExactlyOnce)
            .await
            .expect("subscribe queued");
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let _client = client;
            let mut ready = Some(ready_tx);
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send(Received {
                            topic: p.topic,
                            payload: p.payload.to_vec(),
                            retain: p.retain,
                            dup: p.dup,
                        });
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), ready_rx)
            .await
            .expect("subscription confirmed in time")
            .expect("subscriber running");
        Subscriber { rx, task }
    }

    /// The next message, or `None` after `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<Received> {
        tokio::time::timeout(wait, self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// The next message on `topic`, skipping others.
    pub async fn next_on(&mut self, topic: &str, wait: Duration) -> Option<Received> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let m = self.next(left).await?;
            if m.topic == topic {
                return Some(m);
            }
        }
    }
}

/// A redis-server on a free port in a temporary folder (test-support); killed on drop.
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
}
