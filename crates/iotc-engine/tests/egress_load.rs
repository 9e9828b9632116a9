//! Load figures (printed, not asserted): confirmed messages per second through a local
//! mosquitto for each QoS and protocol version. Run with
//! `cargo test --release -p iotc-engine --test egress_load -- --nocapture`.

mod egress_common;

use std::time::{Duration, Instant};

use egress_common::*;
use iotc_engine::egress::OutMessage;

const MESSAGES: usize = 20_000;
const BATCH: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_throughput() {
    // The subscriber may fall behind: let the broker queue without limit for it.
    let broker = Mosquitto::start(|_, port| {
        format!("max_queued_messages 0\nlistener {port} 127.0.0.1\nallow_anonymous true\n")
    });
    let conn = format!("127.0.0.1:{}", broker.port);
    // A telemetry-sized payload.
    let payload = vec![b'x'; 600];
    for (version, qos) in [("3.1.1", "0"), ("3.1.1", "1"), ("3.1.1", "2"), ("5", "1")] {
        let mut sub = Subscriber::start(broker.sub_port, "load/#", false).await;
        let egress = connected_egress(&[
            "--mqtt-connstring",
            &conn,
            "--mqtt-version",
            version,
            "--mqtt-qos",
            qos,
        ])
        .await;
        let started = Instant::now();
        for b in 0..MESSAGES / BATCH {
            let batch = (0..BATCH)
                .map(|i| OutMessage::new(format!("load/{}", (b * BATCH + i) % 50), payload.clone()))
                .collect();
            egress.publish(batch).await.expect("confirmed");
        }
        let took = started.elapsed();
        let mut received = 0;
        while received < MESSAGES {
            sub.next(Duration::from_secs(10))
                .await
                .expect("all delivered");
            received += 1;
        }
        println!(
            "MQTT {version} QoS {qos}: {MESSAGES} messages of {} bytes in batches of {BATCH}: {:.0} confirmed/s",
            payload.len(),
            MESSAGES as f64 / took.as_secs_f64()
        );
    }
}
