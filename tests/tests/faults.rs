//! The whole connector under steady load from simulated APs while one part fails: Redis
//! killed with SIGKILL (append-only file, `appendfsync always` and `everysec`), the ingress
//! killed and restarted, the engine killed and restarted. Every test counts what the APs sent, what the
//! ingress accepted (the telegram stream) and what arrived on MQTT, prints one `FAULT` line
//! (docs/reliability.md; `scripts/faults.sh` collects them) and asserts that nothing the
//! ingress accepted is lost. The last test checks that `iotc simulate`'s APs wait for a
//! restarted ingress. The 60 s broker outage is in broker_outage.rs.

use std::time::{Duration, Instant};

use iotc_e2e::load::{Load, Tally, accepted, key_of};
use iotc_e2e::{Persistence, Stack, Subscriber};
use serde_json::json;

/// Ten devices shared by two APs, each AP sending every 40 ms: 50 telegrams/s.
const APS: u8 = 2;
const PERIOD: Duration = Duration::from_millis(40);
const BEFORE: Duration = Duration::from_secs(3);
const DOWN: Duration = Duration::from_secs(3);
const AFTER: Duration = Duration::from_secs(3);

fn devices(base: u32) -> Vec<u32> {
    (0..10).map(|i| base + i).collect()
}

async fn onboard(stack: &Stack, devices: &[u32]) {
    for id in devices {
        stack
            .onboard(&json!({"sourceEurid": format!("{id:08x}"),
                "friendlyID": format!("fault {id:08x}"), "eep": "A5-02-05"}))
            .await;
    }
}

/// Seconds from `since` until a telegram the APs sent after `since` is published.
async fn recovery(load: &Load, sub: &Subscriber, since: Instant) -> f64 {
    let from = load.sent_count();
    loop {
        let later: Vec<_> = load.sent().split_off(from);
        if sub.all().iter().any(|m| later.contains(&key_of(m))) {
            return since.elapsed().as_secs_f64();
        }
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "nothing new published within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every accepted telegram arrived (or 30 s passed), then a little longer for
/// late duplicates; the tally.
async fn settle(stack: &Stack, sub: &Subscriber, sent: &[iotc_e2e::load::Key]) -> Tally {
    let accepted = accepted(&mut stack.redis.conn().await).await;
    sub.wait_until(Duration::from_secs(30), |m| {
        let got: std::collections::BTreeSet<_> = m.iter().map(key_of).collect();
        accepted.is_subset(&got)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    Tally::new(sent, accepted, &sub.all())
}

/// Peak resident memory of each process, in MiB.
fn peaks(stack: &Stack) -> String {
    let mib = |p: &iotc_e2e::Proc| p.peak_rss_kib().map_or(0.0, |k| k as f64 / 1024.0);
    format!(
        "peak MiB ingress {:.1} engine {:.1} api {:.1} redis {:.1} mosquitto {:.1}",
        mib(&stack.ingress),
        mib(&stack.engine.proc),
        mib(&stack.api),
        mib(&stack.redis.proc),
        mib(&stack.mqtt.proc)
    )
}

fn assert_nothing_lost(tally: &Tally) {
    let lost = tally.lost();
    assert!(
        lost.is_empty(),
        "{} accepted telegrams never arrived, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    assert_eq!(tally.unknown(), 0, "telegrams nobody sent");
    assert!(
        tally.sent.len() > 100,
        "too little load: {}",
        tally.sent.len()
    );
}

/// Redis killed with SIGKILL for [`DOWN`] under load and started again on its files.
async fn redis_killed(persistence: Persistence, fault: &str) -> Tally {
    let mut stack = Stack::start_persistent(&[], persistence).await;
    let ids = devices(0x0191_0a00);
    onboard(&stack, &ids).await;
    let sub = Subscriber::start(stack.mqtt.port, "sensor/+/telemetry").await;
    let load = Load::start(&stack, APS, &ids, PERIOD);

    tokio::time::sleep(BEFORE).await;
    stack.redis.kill();
    tokio::time::sleep(DOWN).await;
    stack.redis.start_again();
    let back = Instant::now();
    let recovered = recovery(&load, &sub, back).await;
    tokio::time::sleep(AFTER).await;
    let sent = load.stop().await;

    let tally = settle(&stack, &sub, &sent).await;
    println!(
        "{} recovery {recovered:.1} s {}",
        tally.line(fault),
        peaks(&stack)
    );
    assert_nothing_lost(&tally);
    assert!(
        stack.ingress.running() && stack.engine.proc.running(),
        "a service exited"
    );
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_under_load_loses_nothing_acknowledged() {
    let tally = redis_killed(Persistence::AofAlways, "redis-sigkill-aof-always").await;
    // appendfsync always: every XADD the ingress got an answer for is on disk, and the
    // ingress holds a message while Redis is away (IOTC_INGRESS_REDIS_RETRY_S, 30 s), so
    // everything the APs wrote was accepted and kept.
    assert_eq!(tally.accepted, tally.sent, "accepted differs from sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_with_everysec_loses_at_most_two_seconds() {
    // The deployments' policy. Redis documents that everysec loses at most about 2 s of
    // writes (1 s between fsyncs, 1 more when a fsync is late); at 50 telegrams/s that is
    // 100 telegrams. A SIGKILL leaves the kernel's page cache intact, so in practice none.
    let tally = redis_killed(Persistence::AofEverySec, "redis-sigkill-aof-everysec").await;
    let missing = tally.sent.difference(&tally.accepted).count();
    assert!(missing <= 100, "{missing} telegrams lost with everysec");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_killed_under_load_loses_nothing_it_accepted() {
    let mut stack = Stack::start().await;
    let ids = devices(0x0191_0b00);
    onboard(&stack, &ids).await;
    let sub = Subscriber::start(stack.mqtt.port, "sensor/+/telemetry").await;
    let load = Load::start(&stack, APS, &ids, PERIOD);

    tokio::time::sleep(BEFORE).await;
    let connects_before = load.connects();
    stack.ingress.kill();
    tokio::time::sleep(DOWN).await;
    stack.restart_ingress();
    let back = Instant::now();
    let recovered = recovery(&load, &sub, back).await;
    tokio::time::sleep(AFTER).await;
    let connects = load.connects();
    let sent = load.stop().await;

    let tally = settle(&stack, &sub, &sent).await;
    println!(
        "{} recovery {recovered:.1} s reconnects {} {}",
        tally.line("ingress-sigkill"),
        connects - connects_before,
        peaks(&stack)
    );
    assert_nothing_lost(&tally);
    assert!(
        connects >= connects_before + u64::from(APS),
        "the APs did not reconnect by themselves ({connects_before} then {connects})"
    );
    // What was written to a socket the kill closed may be gone; at most a few messages
    // per AP, never what the ingress had written to the stream.
    let unaccepted = tally.sent.difference(&tally.accepted).count();
    assert!(
        unaccepted <= 10 * usize::from(APS),
        "{unaccepted} sent but not accepted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_killed_under_load_loses_nothing() {
    let mut stack = Stack::start().await;
    let ids = devices(0x0191_0c00);
    onboard(&stack, &ids).await;
    let sub = Subscriber::start(stack.mqtt.port, "sensor/+/telemetry").await;
    let load = Load::start(&stack, APS, &ids, PERIOD);

    tokio::time::sleep(BEFORE).await;
    stack.engine.proc.kill();
    tokio::time::sleep(DOWN).await;
    let back = Instant::now();
    // The same consumer name: the new engine reads its predecessor's pending entries first.
    stack.restart_engine(&[]).await;
    let recovered = recovery(&load, &sub, back).await;
    tokio::time::sleep(AFTER).await;
    let sent = load.stop().await;

    let tally = settle(&stack, &sub, &sent).await;
    println!(
        "{} recovery {recovered:.1} s {}",
        tally.line("engine-sigkill"),
        peaks(&stack)
    );
    assert_nothing_lost(&tally);
    assert_eq!(
        tally.accepted, tally.sent,
        "the ingress accepts without the engine"
    );
}

/// `iotc simulate` (the load generator operators use) while the ingress is away for longer
/// than an AP's first connection attempts (5 s): its APs wait and reconnect by themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_aps_reconnect_after_an_ingress_restart() {
    let mut stack = Stack::start().await;
    // The stream length then only grows (the ingress trims what every group acknowledged).
    iotc_e2e::load::keep_every_entry(&stack);
    let mut cmd = std::process::Command::new(iotc_e2e::bin("iotc"));
    cmd.args(stack.simulate_args())
        .args([
            "--gateways",
            "2",
            "--devices",
            "100",
            "--rate",
            "20",
            "--shared",
            "0",
        ])
        .args(["--duration", "16"]);
    let mut sim = iotc_e2e::Proc::spawn("iotc-simulate", cmd, stack.dir.path());

    tokio::time::sleep(Duration::from_secs(3)).await;
    stack.ingress.kill();
    tokio::time::sleep(Duration::from_secs(8)).await;
    stack.restart_ingress();
    let mut redis = stack.redis.conn().await;
    let len = |r: &mut redis::aio::MultiplexedConnection| {
        let mut r = r.clone();
        async move {
            redis::cmd("XLEN")
                .arg(iotc_core::keys::TELEGRAM_STREAM)
                .query_async::<u64>(&mut r)
                .await
                .unwrap()
        }
    };
    let at_restart = len(&mut redis).await;

    let deadline = Instant::now() + Duration::from_secs(60);
    while sim.running() {
        assert!(Instant::now() < deadline, "the simulator does not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = sim.log_tail(20);
    println!("{out}");
    assert!(out.contains("sent "), "the simulator failed:\n{out}");
    let reconnected = out
        .lines()
        .filter(|l| l.contains("  gateway ") && !l.contains(" 1 connections"))
        .count();
    assert_eq!(reconnected, 2, "each AP connected again:\n{out}");
    assert!(
        len(&mut redis).await > at_restart,
        "nothing accepted after the restart"
    );
}
