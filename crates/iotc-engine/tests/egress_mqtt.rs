//! MQTT egress against real mosquitto brokers: plain, TLS, client certificates, user name and
//! password, WebSocket, QoS 0/1/2, MQTT 5, the Last Will.

mod egress_common;

use std::time::Duration;

use egress_common::*;
use iotc_engine::egress::{Delivery, Egress, EgressError, OutMessage};

const WAIT: Duration = Duration::from_secs(10);

fn plain(_: &std::path::Path, port: u16) -> String {
    format!("listener {port} 127.0.0.1\nallow_anonymous true\n")
}

fn connstring(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// Publishes telemetry and a retained message and checks both arrive unchanged.
async fn assert_delivers(egress: &Egress, sub: &mut Subscriber, tag: &str) {
    let topic = egress.topics().sensor_telemetry("a1b2c3d4");
    let payload = format!(r#"{{"tag":"{tag}","value":21.5}}"#);
    let info = egress.topics().sensor_info("a1b2c3d4");
    egress
        .publish(vec![
            OutMessage::new(topic.clone(), payload.clone()),
            OutMessage::retained(info.clone(), format!("info-{tag}")),
        ])
        .await
        .expect("publish confirmed");
    let got = sub.next_on(&topic, WAIT).await.expect("telemetry arrives");
    assert_eq!(got.payload, payload.as_bytes());
    assert!(!got.retain);
    let got = sub.next_on(&info, WAIT).await.expect("info arrives");
    assert_eq!(got.payload, format!("info-{tag}").as_bytes());
}

#[tokio::test]
async fn plain_broker_delivers_with_each_qos() {
    let broker = Mosquitto::start(plain);
    let mut sub = Subscriber::start(broker.sub_port, "#", false).await;
    for qos in ["0", "1", "2"] {
        let conn = connstring(broker.port);
        let egress = connected_egress(&["--mqtt-connstring", &conn, "--mqtt-qos", qos]).await;
        assert!(egress.connected());
        assert_delivers(&egress, &mut sub, &format!("qos{qos}")).await;
    }
    // The broker saw each QoS on the wire.
    let log = broker.log();
    for q in ["q0", "q1", "q2"] {
        assert!(
            log.contains(&format!("(d0, {q}, r0")),
            "broker log shows {q} publishes"
        );
    }
}

#[tokio::test]
async fn url_forms_and_mqtt5() {
    let broker = Mosquitto::start(plain);
    let mut sub = Subscriber::start(broker.sub_port, "#", false).await;
    for (conn, version) in [
        (format!("mqtt://127.0.0.1:{}", broker.port), "3.1.1"),
        (format!("tcp://127.0.0.1:{}", broker.port), "5"),
    ] {
        let egress = connected_egress(&[
            "--mqtt-connstring",
            &conn,
            "--mqtt-version",
            version,
            "--mqtt-qos",
            "2",
        ])
        .await;
        assert_delivers(&egress, &mut sub, version).await;
    }
    let log = broker.log();
    assert!(log.contains("(p2, c1"), "an MQTT 3.1.1 client connected");
    assert!(log.contains("(p5, c1"), "an MQTT 5 client connected");
}

#[tokio::test]
async fn client_id_and_topic_overrides() {
    let broker = Mosquitto::start(plain);
    let mut sub = Subscriber::start(broker.sub_port, "#", false).await;
    let conn = connstring(broker.port);
    let egress = connected_egress(&[
        "--mqtt-connstring",
        &conn,
        "--iot-mqtt-client-id",
        "IoTC:site-7",
        "--sensor-telemetry",
        "devices/telegram/<ID>",
        "--mqtt-topic-prefix",
        "lab/",
    ])
    .await;
    egress
        .publish(vec![OutMessage::new(
            egress.topics().sensor_telemetry("0a0b0c0d"),
            "x",
        )])
        .await
        .unwrap();
    let got = sub.next_on("lab/devices/telegram/0a0b0c0d", WAIT).await;
    assert_eq!(got.expect("arrives on the custom topic").payload, b"x");
    assert!(broker.log().contains("as IoTC:site-7"), "client id used");
}

#[tokio::test]
async fn availability_is_retained_with_a_last_will() {
    let broker = Mosquitto::start(plain);
    let conn = connstring(broker.port);
    let egress = connected_egress(&["--mqtt-connstring", &conn]).await;
    let mut sub = Subscriber::start(broker.sub_port, "system/availability", false).await;
    let online = sub.next(WAIT).await.expect("retained availability");
    assert_eq!(
        (online.payload.as_slice(), online.retain),
        (&b"online"[..], true)
    );
    // Vanishing without a DISCONNECT makes the broker publish the will.
    drop(egress);
    let offline = sub.next(WAIT).await.expect("last will");
    assert_eq!(offline.payload, b"offline");
    let mut late = Subscriber::start(broker.sub_port, "system/availability", false).await;
    let kept = late.next(WAIT).await.expect("retained will");
    assert_eq!(
        (kept.payload.as_slice(), kept.retain),
        (&b"offline"[..], true)
    );
}

#[tokio::test]
async fn tls_with_a_test_ca() {
    let broker = Mosquitto::start(|dir, port| {
        make_certs(dir, &["localhost", "127.0.0.1"]);
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\n{}",
            tls_lines(dir)
        )
    });
    let mut sub = Subscriber::start(broker.sub_port, "#", false).await;
    let ca = broker.path("ca.pem");
    let ca = ca.to_str().unwrap();
    for conn in [
        format!("mqtts://localhost:{}", broker.port),
        format!("ssl://localhost:{}", broker.port),
    ] {
        let egress = connected_egress(&["--mqtt-connstring", &conn, "--mqtt-ca-file", ca]).await;
        assert_delivers(&egress, &mut sub, "tls").await;
    }
    // host:port with MQTT_USE_TLS, as IoTC configures it.
    let conn = format!("localhost:{}", broker.port);
    let egress = connected_egress(&[
        "--mqtt-connstring",
        &conn,
        "--mqtt-use-tls",
        "True",
        "--mqtt-ca-file",
        ca,
    ])
    .await;
    assert_delivers(&egress, &mut sub, "use-tls").await;
}

#[tokio::test]
async fn tls_verification_and_its_relaxations() {
    let broker = Mosquitto::start(|dir, port| {
        make_certs(dir, &["broker.example"]);
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\n{}",
            tls_lines(dir)
        )
    });
    let mut sub = Subscriber::start(broker.sub_port, "#", false).await;
    let ca = broker.path("ca.pem");
    let ca = ca.to_str().unwrap();
    let conn = format!("mqtts://localhost:{}", broker.port);

    // The certificate names another host: refused unless host name checks are off.
    let strict = Egress::start(&egress_args(&[
        "--mqtt-connstring",
        &conn,
        "--mqtt-ca-file",
        ca,
        "--mqtt-publish-timeout",
        "2",
    ]))
    .await
    .unwrap();
    let err = strict
        .publish(vec![OutMessage::new("t", "x")])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            EgressError::Timeout {
                connected: false,
                ..
            }
        ),
        "{err}"
    );

    let relaxed = connected_egress(&[
        "--mqtt-connstring",
        &conn,
        "--mqtt-ca-file",
        ca,
        "--mqtt-tls-no-hostname-verify",
        "1",
    ])
    .await;
    assert_delivers(&relaxed, &mut sub, "no-hostname").await;

    // No verification at all (MQTT_USE_TLS_VERIFY=False) connects without the CA.
    let unverified =
        connected_egress(&["--mqtt-connstring", &conn, "--mqtt-use-tls-verify", "False"]).await;
    assert_delivers(&unverified, &mut sub, "no-verify").await;
}

#[tokio::test]
async fn client_certificate_only() {
    let broker = Mosquitto::start(|dir, port| {
        make_certs(dir, &["localhost"]);
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous false\nrequire_certificate true\n\
             use_identity_as_username true\n{}",
            tls_lines(dir)
        )
    });
    let mut sub = Subscriber::start(broker.sub_port, "#", false).await;
    let (ca, cert, key) = (
        broker.path("ca.pem"),
        broker.path("client.pem"),
        broker.path("client.key"),
    );
    let conn = format!("mqtts://localhost:{}", broker.port);
    let without = Egress::start(&egress_args(&[
        "--mqtt-connstring",
        &conn,
        "--mqtt-ca-file",
        ca.to_str().unwrap(),
        "--mqtt-publish-timeout",
        "2",
    ]))
    .await
    .unwrap();
    assert!(
        without
            .publish(vec![OutMessage::new("t", "x")])
            .await
            .is_err()
    );

    let with = connected_egress(&[
        "--mqtt-connstring",
        &conn,
        "--mqtt-ca-file",
        ca.to_str().unwrap(),
        "--mqtt-client-cert-file",
        cert.to_str().unwrap(),
        "--mqtt-client-key-file",
        key.to_str().unwrap(),
    ])
    .await;
    assert_delivers(&with, &mut sub, "mtls").await;
    assert!(
        broker.log().contains("u'client1'"),
        "identity used as user name"
    );
}

/// IoTC users make their client certificate with mosquitto's own recipe: an X.509 v1
/// certificate, which mosquitto (OpenSSL) accepts. The egress must start and publish with it.
/// The topics are IoTC's table with its trailing slashes, used exactly as configured.
#[tokio::test]
async fn v1_client_certificate_from_mosquittos_recipe() {
    let broker = Mosquitto::start(|dir, port| {
        make_certs_with_openssl(dir);
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous false\nrequire_certificate true\n\
             use_identity_as_username true\n{}",
            tls_lines(dir)
        )
    });
    let version = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(broker.path("client.pem"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&version.stdout).contains("Version: 1 (0x0)"),
        "the recipe makes a v1 certificate"
    );
    let mut sub = Subscriber::start(broker.sub_port, "#", false).await;
    let conn = format!("mqtts://localhost:{}", broker.port);
    let (ca, cert, key) = (
        broker.path("ca.pem"),
        broker.path("client.pem"),
        broker.path("client.key"),
    );
    let egress = connected_egress(&[
        "--mqtt-connstring",
        &conn,
        "--mqtt-ca-file",
        ca.to_str().unwrap(),
        "--mqtt-client-cert-file",
        cert.to_str().unwrap(),
        "--mqtt-client-key-file",
        key.to_str().unwrap(),
        "--sensor-event",
        "sensor/<ID>/meta/event/",
        "--system-health",
        "system/health/",
    ])
    .await;
    assert_delivers(&egress, &mut sub, "v1").await;
    assert!(
        broker.log().contains("u'client1'"),
        "identity used as user name"
    );
    for topic in [
        egress.topics().sensor_event("a1b2c3d4"),
        egress.topics().system_health(),
    ] {
        egress
            .publish(vec![OutMessage::new(topic.clone(), "slash")])
            .await
            .unwrap();
        let got = sub.next_on(&topic, WAIT).await.expect("arrives");
        assert!(topic.ends_with('/'), "{topic}");
        assert_eq!(got.payload, b"slash");
    }
}

#[tokio::test]
async fn username_and_password() {
    let broker = Mosquitto::start(|dir, port| {
        let file = dir.join("passwd");
        let ok = std::process::Command::new("mosquitto_passwd")
            .args(["-b", "-c"])
            .arg(&file)
            .args(["iotc", "s3cret"])
            .status()
            .expect("mosquitto_passwd runs");
        assert!(ok.success());
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\n",
            file.display()
        )
    });
    let mut sub = Subscriber::start(broker.sub_port, "#", false).await;
    let conn = connstring(broker.port);
    let base = [
        "--mqtt-connstring",
        &conn,
        "--mqtt-auth",
        "1",
        "--mqtt-username",
        "iotc",
    ];

    let mut wrong = base.to_vec();
    wrong.extend(["--mqtt-password", "nope", "--mqtt-publish-timeout", "2"]);
    let denied = Egress::start(&egress_args(&wrong)).await.unwrap();
    assert!(
        denied
            .publish(vec![OutMessage::new("t", "x")])
            .await
            .is_err()
    );
    assert!(!denied.connected());

    let mut right = base.to_vec();
    right.extend(["--mqtt-password", "s3cret"]);
    let egress = connected_egress(&right).await;
    assert_delivers(&egress, &mut sub, "auth").await;

    // Credentials are only sent with MQTT_AUTH on.
    let mut off = vec![
        "--mqtt-connstring",
        conn.as_str(),
        "--mqtt-username",
        "iotc",
    ];
    off.extend(["--mqtt-password", "s3cret", "--mqtt-publish-timeout", "2"]);
    let anonymous = Egress::start(&egress_args(&off)).await.unwrap();
    assert!(
        anonymous
            .publish(vec![OutMessage::new("t", "x")])
            .await
            .is_err()
    );
}

#[tokio::test]
async fn websocket_listener() {
    let broker = Mosquitto::start(|_, port| {
        format!("listener {port} 127.0.0.1\nprotocol websockets\nallow_anonymous true\n")
    });
    let mut sub = Subscriber::start(broker.sub_port, "#", false).await;
    for version in ["3.1.1", "5"] {
        let conn = format!("ws://127.0.0.1:{}/mqtt", broker.port);
        let egress =
            connected_egress(&["--mqtt-connstring", &conn, "--mqtt-version", version]).await;
        assert_delivers(&egress, &mut sub, &format!("ws-{version}")).await;
    }
}

#[tokio::test]
async fn bad_settings_fail_at_start_naming_the_variable() {
    for (args, var) in [
        (vec!["--mqtt-connstring", "ftp://x"], "MQTT_CONNSTRING"),
        (vec!["--enable-mqtt", "1"], "MQTT_CONNSTRING"),
        (
            vec![
                "--mqtt-connstring",
                "mqtts://h",
                "--mqtt-ca-file",
                "/no/such.pem",
            ],
            "MQTT_CA_FILE",
        ),
        (
            vec!["--mqtt-connstring", "h:1", "--mqtt-auth", "1"],
            "MQTT_USERNAME",
        ),
        (vec!["--iot-azure-enable", "1"], "IOT_AZURE_CONNSTRING"),
    ] {
        let err = Egress::start(&egress_args(&args))
            .await
            .err()
            .expect("refused");
        assert!(err.to_string().contains(var), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn mqtt5_refusals_are_errors_not_confirmations() {
    let broker = Mosquitto::start(|dir, port| {
        let acl = dir.join("acl");
        std::fs::write(&acl, "topic write allowed/#\n").unwrap();
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nacl_file {}\n",
            acl.display()
        )
    });
    let conn = connstring(broker.port);
    for qos in ["1", "2"] {
        let egress = connected_egress(&[
            "--mqtt-connstring",
            &conn,
            "--mqtt-version",
            "5",
            "--mqtt-qos",
            qos,
        ])
        .await;
        egress
            .publish(vec![OutMessage::new("allowed/x", "ok")])
            .await
            .expect("allowed topic confirmed");
        let err = egress
            .publish(vec![OutMessage::new("denied/x", "no")])
            .await
            .unwrap_err();
        assert!(
            matches!(&err, EgressError::Rejected { reason, .. } if reason.contains("NotAuthorized")),
            "QoS {qos}: {err}"
        );
    }
}

/// A batch with a message the broker refuses (MQTT 5, not for good): the delivery fails
/// with that refusal, the others of the batch are confirmed, and publishing the batch again
/// sends only the refused one.
#[tokio::test]
async fn a_refusal_in_a_batch_settles_the_others() {
    let broker = Mosquitto::start(|dir, port| {
        let acl = dir.join("acl");
        std::fs::write(&acl, "topic readwrite allowed/#\n").unwrap();
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nacl_file {}\n",
            acl.display()
        )
    });
    let mut sub = Subscriber::start(broker.port, "allowed/#", false).await;
    let conn = connstring(broker.port);
    let egress = connected_egress(&["--mqtt-connstring", &conn, "--mqtt-version", "5"]).await;
    let mut delivery = Delivery::new(vec![
        OutMessage::new("allowed/1", "one"),
        OutMessage::new("denied/x", "no"),
        OutMessage::new("allowed/2", "two"),
    ]);
    for attempt in 0..2 {
        let err = egress.deliver(&mut delivery).await.unwrap_err();
        assert!(
            matches!(&err, EgressError::Rejected { reason, permanent: false, .. }
                if reason.contains("NotAuthorized")),
            "attempt {attempt}: {err}"
        );
    }
    assert!(delivery.dead_letters().is_empty(), "not refused for good");
    let mut got = Vec::new();
    while let Some(m) = sub.next(Duration::from_secs(1)).await {
        got.push(String::from_utf8(m.payload.to_vec()).unwrap());
    }
    assert_eq!(got, ["one", "two"], "each allowed message once, in order");
}

/// An idle connection stays up: the engine pings within its keep-alive, and mosquitto drops a
/// client that stays silent for one and a half keep-alive periods.
#[tokio::test]
async fn an_idle_connection_is_kept_alive() {
    let broker = Mosquitto::start(plain);
    let mut sub = Subscriber::start(broker.sub_port, "#", false).await;
    let conn = connstring(broker.port);
    let egress = connected_egress(&["--mqtt-connstring", &conn, "--mqtt-keep-alive", "1"]).await;
    let connects = egress.connects();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(egress.connects(), connects, "no reconnect while idle");
    assert_delivers(&egress, &mut sub, "after-idle").await;
    assert!(broker.log().contains("PINGREQ"), "the broker saw pings");
}

/// Many messages at once, more than the in-flight window: every one is confirmed and arrives,
/// in order, whichever order the runtime polls their futures in (MQTT 3.1.1 writes the
/// publishes waiting together, and its window still holds).
#[tokio::test]
async fn a_burst_larger_than_the_window_arrives_whole_and_in_order() {
    // mosquitto drops what exceeds a subscriber's queue (1,000 by default): not under test.
    let broker = Mosquitto::start(|dir, port| plain(dir, port) + "max_queued_messages 100000\n");
    let mut sub = Subscriber::start(broker.sub_port, "#", false).await;
    let conn = connstring(broker.port);
    for (version, window) in [("3.1.1", "3"), ("3.1.1", "100"), ("5", "100")] {
        let egress = connected_egress(&[
            "--mqtt-connstring",
            &conn,
            "--mqtt-version",
            version,
            "--mqtt-max-inflight",
            window,
        ])
        .await;
        let topic = egress.topics().sensor_telemetry("0badcafe");
        let burst: Vec<_> = (0..1500)
            .map(|i| OutMessage::new(topic.clone(), format!("{version}-{window}-{i}")))
            .collect();
        egress.publish(burst).await.expect("all confirmed");
        for i in 0..1500 {
            let got = sub
                .next_on(&topic, WAIT)
                .await
                .unwrap_or_else(|| panic!("{version}-{window}-{i} arrives"));
            assert_eq!(got.payload, format!("{version}-{window}-{i}").as_bytes());
        }
    }
}

/// A message to a topic with a wildcard is refused for good (a dead letter) before it reaches
/// the connection, and the messages after it, which the link keeps in order, are not held up.
#[tokio::test]
async fn a_topic_with_a_wildcard_is_refused_and_holds_nothing_up() {
    let broker = Mosquitto::start(plain);
    let mut sub = Subscriber::start(broker.sub_port, "#", false).await;
    let conn = connstring(broker.port);
    let egress =
        connected_egress(&["--mqtt-connstring", &conn, "--mqtt-publish-timeout", "3"]).await;
    let good = egress.topics().sensor_telemetry("0badcafe");
    let mut delivery = Delivery::new(vec![
        OutMessage::new("sensor/+/telemetry", "bad"),
        OutMessage::new(good.clone(), "good"),
    ]);
    egress
        .deliver(&mut delivery)
        .await
        .expect("the good one confirmed");
    let dead = delivery.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].topic, "sensor/+/telemetry");
    assert_eq!(dead[0].reason_label(), "TopicNameInvalid");
    let got = sub
        .next_on(&good, WAIT)
        .await
        .expect("the good one arrives");
    assert_eq!(got.payload, b"good");
}
