//! The telegram stream's bound under an engine outage: the engine is stopped while the
//! simulator offers four times the bound. The ingress pushes the APs back (it stops reading,
//! then closes with 1013) instead of trimming unread entries; once the engine is back, every
//! telegram the ingress accepted is published, each once, and none was trimmed.

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use iotc_e2e::{AP_PASSWORD, AP_USER, API_PASSWORD, API_USER, EngineProc, Proc, Stack, Subscriber};
use iotc_e2e::{bin, free_port, wait_port};

/// The stream bound for this test (IOTC_TELEGRAM_STREAM_MAXLEN).
const BOUND: u64 = 400;
const OFFERED: u64 = 4 * BOUND;

/// The value of one line of /metrics (`name{labels}`), 0 when absent.
async fn metric(port: u16, series: &str) -> f64 {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("ingress /metrics")
        .text()
        .await
        .unwrap_or_default();
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

/// An integer field of `XINFO STREAM` or of the engine group in `XINFO GROUPS`.
async fn stream_info(stack: &Stack, group: bool, field: &str) -> i64 {
    let mut con = stack.redis.conn().await;
    let reply: redis::Value = if group {
        let groups: Vec<redis::Value> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(iotc_core::keys::TELEGRAM_STREAM)
            .query_async(&mut con)
            .await
            .unwrap();
        groups.into_iter().next().expect("the engine group")
    } else {
        redis::cmd("XINFO")
            .arg("STREAM")
            .arg(iotc_core::keys::TELEGRAM_STREAM)
            .query_async(&mut con)
            .await
            .unwrap()
    };
    let map: std::collections::HashMap<String, redis::Value> =
        redis::from_redis_value(reply).unwrap();
    match map.get(field) {
        Some(redis::Value::Int(n)) => *n,
        other => panic!("{field}: {other:?}"),
    }
}

/// An ingress with a small stream bound, replacing the stack's own.
fn start_ingress(stack: &Stack) -> (Proc, u16) {
    let port = free_port();
    let mut cmd = Command::new(bin("iotc-ingress"));
    cmd.env("REDIS_URL", stack.redis.url())
        .env("IOTC_INGRESS_PORT", port.to_string())
        .env("IOTC_INGRESS_BIND", "127.0.0.1")
        .env("IOT_GATEWAY_USERNAME", AP_USER)
        .env("IOT_GATEWAY_PASSWORD", AP_PASSWORD)
        .env("IOTC_TELEGRAM_STREAM_MAXLEN", BOUND.to_string())
        .env("IOTC_INGRESS_BACKPRESSURE_WAIT_S", "1");
    let mut proc = Proc::spawn("iotc-ingress-bounded", cmd, stack.dir.path());
    wait_port(port, &mut proc);
    (proc, port)
}

/// `iotc simulate` offering `OFFERED` telegrams of distinct devices; returns its output.
fn simulate(stack: &Stack, ingress_port: u16) -> String {
    let out = Command::new(bin("iotc"))
        .args(iotc_e2e::simulate_args(ingress_port))
        .args(["--onboard", &stack.api_url("")])
        .args(["--api-username", API_USER, "--api-password", API_PASSWORD])
        .args(["--gateways", "2", "--devices", &OFFERED.to_string()])
        .args(["--eep", "A5-02-05", "--shared", "0", "--rate", "800"])
        .args(["--count", &OFFERED.to_string()])
        .output()
        .expect("run iotc simulate");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "simulate failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_telegrams_survive_an_engine_outage_at_four_times_the_bound() {
    let mut stack = Stack::start().await;
    stack.ingress.kill();
    let (_ingress, port) = start_ingress(&stack);
    let subscriber = Subscriber::start(stack.mqtt.port, "sensor/+/telemetry").await;
    // The engine created its consumer group; now it is down.
    stack.engine.proc.kill();

    let report = simulate(&stack, port);
    // The simulator may leave before the ingress read its last messages: wait until every
    // connection is closed, so the counters are final.
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(port, "iotc_ingress_ws_connections").await > 0.0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let accepted = metric(port, "iotc_ingress_telegrams_forwarded_total").await as usize;
    let refused = metric(port, "iotc_ingress_telegrams_refused_total").await;
    let waits = metric(port, "iotc_ingress_backpressure_waits_total").await;
    let closes = metric(port, "iotc_ingress_backpressure_closes_total").await;
    let lost = metric(port, "iotc_ingress_telegrams_lost_total").await;
    println!("{report}accepted {accepted}, refused {refused}, waits {waits}, 1013 closes {closes}");
    assert!(accepted >= BOUND as usize / 2, "accepted only {accepted}");
    assert!(
        accepted <= BOUND as usize,
        "accepted {accepted} beyond the bound"
    );
    assert!(
        waits >= 1.0 && closes >= 1.0,
        "the APs were not pushed back"
    );
    assert!(refused >= 1.0, "no telegram was refused");
    assert_eq!(lost, 0.0);
    assert!(report.contains("pushed back (1013)"), "{report}");
    // Nothing was trimmed: every entry ever added is still in the stream.
    let added = stream_info(&stack, false, "entries-added").await;
    assert_eq!(added as usize, accepted);
    assert_eq!(stream_info(&stack, false, "length").await, added);

    stack.engine = EngineProc::start(stack.dir.path(), &stack.redis, &stack.mqtt, &[]).await;
    let all_arrived = subscriber
        .wait_until(Duration::from_secs(60), |got| got.len() >= accepted)
        .await;
    let got = subscriber.all();
    assert!(all_arrived, "{} of {accepted} arrived", got.len());
    let senders: HashSet<String> = got
        .iter()
        .map(|m| m.json()["raw"]["sender"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(senders.len(), accepted, "each accepted telegram once");
    assert_eq!(got.len(), accepted, "no copies");
    assert_eq!(stream_info(&stack, true, "entries-read").await, added);
}
