//! The whole connector under steady load while the MQTT broker is down for 60 s: simulated
//! APs keep sending through the ingress, the engine holds what it cannot publish and sends it
//! once the broker is back. Every telegram the ingress accepted arrives; none is published
//! more often than the documented bound (once per connection loss it lived through, plus the
//! original: at most twice here). The broker's own redeliveries to the subscriber (DUP set,
//! its persistent session after the restart) are the broker's copies, not the engine's, and
//! are not counted against that bound. Prints a `FAULT` line for docs/reliability.md.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use iotc_e2e::load::{Load, Tally, accepted, key_of};
use iotc_e2e::{Mosquitto, Stack, Subscriber};
use serde_json::json;

/// Ten devices shared by two APs, each AP sending every 40 ms: 50 telegrams/s.
const APS: u8 = 2;
const PERIOD: Duration = Duration::from_millis(40);
const BEFORE: Duration = Duration::from_secs(3);
const OUTAGE: Duration = Duration::from_secs(60);
const AFTER: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_telegram_arrives_after_a_broker_outage() {
    // A quick reconnect back-off keeps the test short. Publish calls time out every 7 s, so
    // the engine retries several times while the broker is down (those retries must not add
    // copies), and no timeout falls right on the moment the broker returns (60 s, between
    // 56 and 63), when a retry could legitimately add one more copy.
    let env = [("MQTT_RECONNECT_MAX", "2"), ("MQTT_PUBLISH_TIMEOUT", "7")];
    let mut stack = Stack::start_with(&env).await;
    // A broker that keeps the subscriber's session across the outage, so what the engine
    // publishes while the subscriber reconnects is queued for it, not lost.
    stack.mqtt = Mosquitto::start_persistent(stack.dir.path());
    let sub = Subscriber::start_persistent(stack.mqtt.port, "sensor/+/telemetry").await;
    stack.restart_engine(&env).await;

    let devices: Vec<u32> = (0..10).map(|i| 0x0190_0b01 + i).collect();
    for id in &devices {
        stack
            .onboard(&json!({"sourceEurid": format!("{id:08x}"),
                "friendlyID": format!("outage {id:08x}"), "eep": "A5-02-05"}))
            .await;
    }
    let load = Load::start(&stack, APS, &devices, PERIOD);

    tokio::time::sleep(BEFORE).await;
    assert!(!sub.all().is_empty(), "nothing published before the outage");
    stack.mqtt.stop();
    let stopped = load.sent_count();
    tokio::time::sleep(OUTAGE).await;
    stack.mqtt.start_again();
    let back = Instant::now();
    let restarted = load.sent_count();
    let from = load.sent_count();
    let recovered = loop {
        let later = load.sent().split_off(from);
        if sub.all().iter().any(|m| later.contains(&key_of(m))) {
            break back.elapsed().as_secs_f64();
        }
        assert!(
            back.elapsed() < Duration::from_secs(60),
            "nothing new published"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(AFTER).await;
    let sent = load.stop().await;

    let accepted = accepted(&mut stack.redis.conn().await).await;
    let all_arrived = sub
        .wait_until(Duration::from_secs(30), |m| {
            let got: BTreeSet<_> = m.iter().map(key_of).collect();
            accepted.is_subset(&got)
        })
        .await;
    // Give late duplicates time to show up before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let tally = Tally::new(&sent, accepted, &sub.all());
    let published: Vec<_> = sub.all().into_iter().filter(|m| !m.dup).collect();
    let redelivered = sub.all().len() - published.len();
    let most = Tally::new(&sent, tally.accepted.clone(), &published)
        .arrived
        .values()
        .copied()
        .max()
        .unwrap_or(0);
    println!(
        "{} recovery {recovered:.1} s ({} sent while the broker was down, at most {most} copies \
         published, {redelivered} redelivered by the broker) peak MiB ingress {:.1} engine {:.1}",
        tally.line("broker-down-60s"),
        restarted - stopped,
        stack.ingress.peak_rss_kib().unwrap_or(0) as f64 / 1024.0,
        stack.engine.proc.peak_rss_kib().unwrap_or(0) as f64 / 1024.0,
    );
    let lost = tally.lost();
    assert!(
        all_arrived && lost.is_empty(),
        "{} of {} accepted telegrams missing, e.g. {:?}",
        lost.len(),
        tally.accepted.len(),
        &lost[..lost.len().min(5)]
    );
    assert_eq!(
        tally.accepted, tally.sent,
        "the ingress accepts without the broker"
    );
    assert_eq!(tally.unknown(), 0, "telegrams never sent");
    assert!(
        most <= 2,
        "a telegram was published {most} times after one connection loss"
    );
    assert!(
        restarted > stopped,
        "nothing was sent while the broker was down"
    );
}
