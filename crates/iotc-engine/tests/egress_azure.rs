//! Azure IoT Hub egress against a local TLS mosquitto standing in for the hub, plus a TLS
//! listener of the test that reads the CONNECT packet to check the client id, user name and
//! SAS token exactly.

mod egress_common;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use egress_common::*;
use iotc_core::tls;
use iotc_engine::egress::azure::{DeviceConnection, sas_token};
use iotc_engine::egress::{Egress, EgressError, OutMessage};
use tokio::io::AsyncReadExt;

const WAIT: Duration = Duration::from_secs(10);
const KEY_B64: &str = "cGFzc3dvcmQ="; // base64("password")
const USER_DEV1: &str = "localhost/dev1/?api-version=2021-04-12";

fn connstring(device: &str) -> String {
    format!("HostName=localhost;DeviceId={device};SharedAccessKey={KEY_B64}")
}

/// A hub stand-in: TLS listener whose ACL lets only dev1's IoT Hub user name publish, and
/// only on dev1's events topic.
fn hub() -> Mosquitto {
    Mosquitto::start(|dir, port| {
        make_certs(dir, &["localhost"]);
        let acl = dir.join("acl");
        std::fs::write(
            &acl,
            format!("user {USER_DEV1}\ntopic write devices/dev1/messages/events/\n"),
        )
        .unwrap();
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nacl_file {}\n{}",
            acl.display(),
            tls_lines(dir)
        )
    })
}

fn azure_args<'a>(conn: &'a str, port: &'a str, ca: &'a str) -> Vec<&'a str> {
    vec![
        "--iot-azure-enable",
        "1",
        "--iot-azure-connstring",
        conn,
        "--iot-azure-port",
        port,
        "--iot-azure-ca-file",
        ca,
    ]
}

#[tokio::test]
async fn hub_receives_device_events_under_the_hub_user_name() {
    let hub = hub();
    let mut sub = Subscriber::start(hub.sub_port, "#", false).await;
    let ca = hub.path("ca.pem");
    let (port, conn) = (hub.port.to_string(), connstring("dev1"));
    let egress = connected_egress(&azure_args(&conn, &port, ca.to_str().unwrap())).await;
    let payload = r#"{"sensor":{"id":"a1b2c3d4"}}"#;
    egress
        .publish(vec![OutMessage::retained(
            egress.topics().sensor_telemetry("a1b2c3d4"),
            payload,
        )])
        .await
        .expect("confirmed by the hub");
    let got = sub.next(WAIT).await.expect("event arrives");
    assert_eq!(got.topic, "devices/dev1/messages/events/");
    assert_eq!(got.payload, payload.as_bytes());
    assert!(!got.retain, "IoT Hub gets no retain flag");
    let log = hub.log();
    assert!(
        log.contains("as dev1 (p2"),
        "client id is the device id (MQTT 3.1.1)"
    );
    assert!(log.contains("(d0, q1, r0"), "QoS 1 without retain");
    assert!(log.contains(&format!("u'{USER_DEV1}'")), "hub user name");
}

#[tokio::test]
async fn another_device_name_is_refused_by_the_acl() {
    // Proves the ACL really checks the user name: dev2's messages never reach subscribers.
    let hub = hub();
    let mut sub = Subscriber::start(hub.sub_port, "#", false).await;
    let ca = hub.path("ca.pem");
    let (port, conn) = (hub.port.to_string(), connstring("dev2"));
    let egress = connected_egress(&azure_args(&conn, &port, ca.to_str().unwrap())).await;
    egress
        .publish(vec![OutMessage::new("x", "denied")])
        .await
        .expect("MQTT 3.1.1 brokers acknowledge denied publishes too");
    assert_eq!(sub.next(Duration::from_secs(2)).await, None);
    assert!(hub.log().contains("Denied PUBLISH from dev2"));
}

#[tokio::test]
async fn mqtt_and_hub_together_confirm_only_when_both_did() {
    let hub = hub();
    let mut sub = Subscriber::start(hub.sub_port, "#", false).await;
    let ca = hub.path("ca.pem");
    let (port, conn) = (hub.port.to_string(), connstring("dev1"));
    let mqtt = format!("127.0.0.1:{}", hub.sub_port);
    let mut args = azure_args(&conn, &port, ca.to_str().unwrap());
    args.extend(["--mqtt-connstring", &mqtt]);
    let egress = connected_egress(&args).await;
    egress
        .publish(vec![OutMessage::new("sensor/a1b2c3d4/telemetry", "both")])
        .await
        .unwrap();
    let mut topics = vec![
        sub.next_on("sensor/a1b2c3d4/telemetry", WAIT)
            .await
            .map(|m| m.topic),
    ];
    let mut sub2 = Subscriber::start(hub.sub_port, "devices/#", false).await;
    egress
        .publish(vec![OutMessage::new("sensor/a1b2c3d4/telemetry", "both2")])
        .await
        .unwrap();
    topics.push(sub2.next(WAIT).await.map(|m| m.topic));
    assert_eq!(
        topics,
        [
            Some("sensor/a1b2c3d4/telemetry".to_string()),
            Some("devices/dev1/messages/events/".to_string())
        ]
    );

    // With the hub unreachable, the MQTT broker's confirmation alone is not enough.
    let dead = free_port().to_string();
    let mut args = azure_args(&conn, &dead, ca.to_str().unwrap());
    args.extend(["--mqtt-connstring", &mqtt, "--mqtt-publish-timeout", "2"]);
    let half = Egress::start(&egress_args(&args)).await.unwrap();
    let err = half
        .publish(vec![OutMessage::new("sensor/a1b2c3d4/telemetry", "half")])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            EgressError::Timeout {
                egress: "azure",
                ..
            }
        ),
        "{err}"
    );
    assert!(!half.connected());
}

/// What a client sent in its CONNECT packet.
#[derive(Debug)]
struct Connect {
    level: u8,
    client_id: String,
    username: Option<String>,
    password: Option<String>,
}

fn parse_connect(p: &[u8]) -> Connect {
    let mut at = 0;
    let mut field = |p: &[u8]| {
        let len = u16::from_be_bytes([p[at], p[at + 1]]) as usize;
        let s = String::from_utf8(p[at + 2..at + 2 + len].to_vec()).unwrap();
        at += 2 + len;
        s
    };
    assert_eq!(field(p), "MQTT");
    let (level, flags) = (p[6], p[7]);
    let mut rest = &p[10..];
    let mut take = || {
        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        let s = String::from_utf8_lossy(&rest[2..2 + len]).to_string();
        rest = &rest[2 + len..];
        s
    };
    let client_id = take();
    if flags & 0x04 != 0 {
        take();
        take();
    }
    let username = (flags & 0x80 != 0).then(&mut take);
    let password = (flags & 0x40 != 0).then(&mut take);
    Connect {
        level,
        client_id,
        username,
        password,
    }
}

/// Accepts one TLS connection and returns its CONNECT packet.
async fn capture_connect(listener: tokio::net::TcpListener, dir: &std::path::Path) -> Connect {
    let certs = tls::read_certs(&dir.join("server.pem")).unwrap();
    let key = tls::read_key(&dir.join("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let (tcp, _) = listener.accept().await.unwrap();
    let mut tls = acceptor.accept(tcp).await.unwrap();
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 1024];
        let n = tls.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before CONNECT");
        buf.extend_from_slice(&chunk[..n]);
        // Fixed header: type 1 (CONNECT), then the remaining length (variable length integer).
        assert_eq!(buf[0] >> 4, 1, "first packet is CONNECT");
        let (mut len, mut shift, mut i) = (0usize, 0, 1);
        while i < buf.len() {
            len |= ((buf[i] & 0x7f) as usize) << shift;
            shift += 7;
            i += 1;
            if buf[i - 1] & 0x80 == 0 {
                break;
            }
        }
        if buf.len() >= i + len {
            return parse_connect(&buf[i..i + len]);
        }
    }
}

#[tokio::test]
async fn connect_carries_device_id_user_name_and_a_valid_sas_token() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path(), &["localhost"]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let ca = dir.path().join("ca.pem");
    let conn = connstring("dev1");
    let mut args = azure_args(&conn, &port, ca.to_str().unwrap());
    args.extend(["--iot-azure-sas-ttl", "600"]);
    let egress = Egress::start(&egress_args(&args)).await.unwrap();
    let connect = tokio::time::timeout(WAIT, capture_connect(listener, dir.path()))
        .await
        .expect("the egress connects");
    drop(egress);

    assert_eq!(connect.level, 4, "MQTT 3.1.1");
    assert_eq!(connect.client_id, "dev1");
    assert_eq!(connect.username.as_deref(), Some(USER_DEV1));
    let token = connect.password.expect("SAS token as password");
    let se: u64 = token
        .rsplit_once("&se=")
        .and_then(|(_, se)| se.parse().ok())
        .expect("expiry");
    let now = iotc_core::ops::unix_seconds();
    assert!(
        se > now + 590 && se <= now + 601,
        "expiry {se} is ttl from now {now}"
    );
    let key = base64::engine::general_purpose::STANDARD
        .decode(KEY_B64)
        .unwrap();
    assert_eq!(token, sas_token("localhost/devices/dev1", &key, se));
    assert!(token.starts_with("SharedAccessSignature sr=localhost%2Fdevices%2Fdev1&sig="));
    let parsed = DeviceConnection::parse(&conn).unwrap();
    assert_eq!(parsed.sas_token(se), token);
}

#[tokio::test]
async fn token_is_renewed_by_reconnecting_without_losing_messages() {
    let hub = hub();
    let mut sub = Subscriber::start(hub.sub_port, "#", false).await;
    let ca = hub.path("ca.pem");
    let (port, conn) = (hub.port.to_string(), connstring("dev1"));
    let mut args = azure_args(&conn, &port, ca.to_str().unwrap());
    // A 10 s token is replaced after 8 s.
    args.extend(["--iot-azure-sas-ttl", "10"]);
    let egress = connected_egress(&args).await;
    let first = egress.connects();
    let mut sent = 0;
    while egress.connects() == first && sent < 200 {
        egress
            .publish(vec![OutMessage::new("t", sent.to_string())])
            .await
            .expect("confirmed across the renewal");
        sent += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(egress.connects() > first, "reconnected with a new token");
    egress
        .publish(vec![OutMessage::new("t", sent.to_string())])
        .await
        .unwrap();
    sent += 1;
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < sent {
        let m = sub.next(WAIT).await.expect("every message arrives");
        seen.insert(
            String::from_utf8(m.payload)
                .unwrap()
                .parse::<usize>()
                .unwrap(),
        );
    }
    assert_eq!(seen, (0..sent).collect());
    assert_eq!(
        hub.log().matches("as dev1 (p2").count(),
        2,
        "two connections"
    );
}
