//! Past one machine: two ingress instances and three engines, the telegram stream in six
//! partitions, on one Redis and on a Redis Cluster of three masters and three replicas
//! (docs/scaling.md). On both:
//!
//! 1. No fault: every telegram the APs sent is published exactly once, and the six
//!    partition leases are shared out two per engine.
//! 2. One engine killed (SIGKILL) under load: nothing is lost, its partitions are taken over
//!    by the two others.
//!
//! On the cluster only:
//!
//! 3. One master killed under load, its replica promoted by the cluster: the services carry
//!    on by themselves; what asynchronous replication lost is printed (`SCALE` lines), and
//!    every telegram sent after the failover is published.
//!
//! Also on one Redis: device counters stay exact, and nothing is published twice, while
//! partitions move to an engine that joins and back when it leaves (each engine keeps the
//! counters of its partitions in memory; the one leaving drains what it has in flight).
//!
//! No duration is asserted; waits are bounded only so that a broken build fails.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use iotc_e2e::load::{Key, Load, key_of};
use iotc_e2e::{
    AP_PASSWORD, AP_USER, API_PASSWORD, API_USER, EngineProc, Mosquitto, Proc, Subscriber, bin,
    free_port, temp_dir, wait_port,
};
use redis::AsyncCommands;
use test_support::RedisCluster;

const PARTITIONS: u16 = 6;
const LEASE_MS: &str = "3000";
const PERIOD: Duration = Duration::from_millis(20);
const APS: u8 = 4;

/// Twelve devices per phase, so that the numbered telegrams of two phases never collide.
fn devices(phase: u32) -> Vec<u32> {
    (0..12).map(|i| 0x0510_0000 + phase * 0x100 + i).collect()
}

fn spawn_ingress(dir: &Path, url: &str) -> (Proc, u16) {
    let port = free_port();
    let mut cmd = Command::new(bin("iotc-ingress"));
    cmd.env("REDIS_URL", url)
        .env("IOTC_PARTITIONS", PARTITIONS.to_string())
        .env("IOTC_INGRESS_PORT", port.to_string())
        .env("IOTC_INGRESS_BIND", "127.0.0.1")
        .env("IOT_GATEWAY_USERNAME", AP_USER)
        .env("IOT_GATEWAY_PASSWORD", AP_PASSWORD);
    let mut proc = Proc::spawn(&format!("iotc-ingress-{port}"), cmd, dir);
    wait_port(port, &mut proc);
    (proc, port)
}

async fn spawn_engine(dir: &Path, url: &str, mqtt: &Mosquitto, name: &str) -> EngineProc {
    let http_port = free_port();
    let mut cmd = Command::new(bin("iotc-engine"));
    cmd.env("REDIS_URL", url)
        .env("IOTC_PARTITIONS", PARTITIONS.to_string())
        .env("IOTC_ENGINE_LEASE_MS", LEASE_MS)
        .env("MQTT_CONNSTRING", mqtt.connstring())
        .env("IOT_ENABLE_MQTT", "1")
        .env("IOTC_ENGINE_HTTP_PORT", http_port.to_string())
        .env("IOTC_ENGINE_CONSUMER", name);
    let mut proc = Proc::spawn(name, cmd, dir);
    wait_port(http_port, &mut proc);
    let mut engine = EngineProc { proc, http_port };
    engine.wait_ready().await;
    engine
}

fn spawn_api(dir: &Path, url: &str) -> (Proc, u16) {
    let port = free_port();
    let mut cmd = Command::new(bin("iotc-api"));
    cmd.env("REDIS_URL", url)
        .env("IOTC_API_PORT", port.to_string())
        .env("IOTC_API_BIND", "127.0.0.1")
        .env("BASIC_AUTH_USERNAME", API_USER)
        .env("BASIC_AUTH_PASSWORD", API_PASSWORD);
    let mut proc = Proc::spawn("iotc-api", cmd, dir);
    wait_port(port, &mut proc);
    (proc, port)
}

async fn onboard(api_port: u16, ids: &[u32]) {
    let client = reqwest::Client::new();
    for id in ids {
        let res = client
            .post(format!("http://127.0.0.1:{api_port}/api.beta/v1/devices"))
            .basic_auth(API_USER, Some(API_PASSWORD))
            .json(&serde_json::json!({"sourceEurid": format!("{id:08x}"),
                "friendlyID": format!("scale {id:08x}"), "eep": "A5-02-05"}))
            .send()
            .await
            .expect("POST /devices");
        assert!(
            res.status().is_success(),
            "onboarding answered {}",
            res.status()
        );
    }
}

/// Lease holder of each partition.
async fn leases(redis: &mut iotc_core::redis::Redis) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for p in 0..PARTITIONS {
        let key = format!("iotc:lease:{{{p}}}");
        out.push(redis.get(key).await.unwrap_or(None));
    }
    out
}

/// Waits (at most 60 s) until `pred` holds for the leases; the last leases seen.
async fn wait_leases(
    redis: &mut iotc_core::redis::Redis,
    pred: impl Fn(&[Option<String>]) -> bool,
) -> Vec<Option<String>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = leases(redis).await;
        if pred(&now) || Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn per_engine(leases: &[Option<String>]) -> BTreeMap<String, usize> {
    let mut count = BTreeMap::new();
    for holder in leases.iter().flatten() {
        *count.entry(holder.clone()).or_insert(0) += 1;
    }
    count
}

/// Waits until every key in `sent` was received (at most `cap`), then a second for late
/// duplicates; returns (lost, duplicates).
async fn settle(sub: &Subscriber, sent: &[Key], cap: Duration) -> (Vec<Key>, usize) {
    let wanted: BTreeSet<&Key> = sent.iter().collect();
    sub.wait_until(cap, |m| {
        let got: BTreeSet<Key> = m.iter().map(key_of).collect();
        wanted.iter().all(|k| got.contains(*k))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut times: BTreeMap<Key, usize> = BTreeMap::new();
    for m in sub.all() {
        *times.entry(key_of(&m)).or_insert(0) += 1;
    }
    let lost = wanted
        .iter()
        .filter(|k| !times.contains_key(**k))
        .map(|k| (*k).clone())
        .collect();
    let duplicates = wanted
        .iter()
        .map(|k| times.get(*k).copied().unwrap_or(0).saturating_sub(1))
        .sum();
    (lost, duplicates)
}

/// Runs the load on both ingress instances for `secs` seconds; what was sent.
async fn load_for(ports: &[u16], phase: u32, secs: u64) -> Vec<Key> {
    let load = Load::start_on(ports, APS, &devices(phase), PERIOD);
    tokio::time::sleep(Duration::from_secs(secs)).await;
    load.stop().await
}

/// Index of a master node, and whether the cluster (seen from another node) promoted a
/// replica once it is killed.
fn master_index(cluster: &RedisCluster) -> usize {
    cluster
        .nodes
        .iter()
        .position(|n| {
            let mut c = n.sync_conn();
            let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut c).unwrap();
            matches!(&role[0], redis::Value::BulkString(b) if b == b"master")
        })
        .expect("a master")
}

/// Waits (at most 60 s) until a surviving node marks the killed one failed and reports the
/// cluster healthy with 3 masters.
fn wait_failover(cluster: &RedisCluster, killed: usize) -> bool {
    let node = &cluster.nodes[(killed + 1) % cluster.nodes.len()];
    let dead = format!(":{}@", cluster.nodes[killed].port);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let mut c = node.sync_conn();
        let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut c).unwrap();
        let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(&mut c).unwrap();
        let live_masters = nodes
            .lines()
            .filter(|l| l.contains("master") && !l.contains("fail"))
            .count();
        let marked = nodes.lines().any(|l| {
            l.contains(&dead)
                && l.split(' ')
                    .nth(2)
                    .is_some_and(|f| f.split(',').any(|x| x == "fail"))
        });
        if marked && info.contains("cluster_state:ok") && live_masters == 3 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// Phases 1 and 2 on the services at `url`; returns the ingress ports and engines.
async fn no_fault_then_engine_killed(url: &str, dir: &Path, t0: Instant) -> Services {
    let mqtt = Mosquitto::start(dir);
    let (api, api_port) = spawn_api(dir, url);
    onboard(api_port, &(0..4).flat_map(devices).collect::<Vec<_>>()).await;
    let (i1, p1) = spawn_ingress(dir, url);
    let (i2, p2) = spawn_ingress(dir, url);
    let ports = [p1, p2];
    let mut engines = Vec::new();
    for name in ["engine-1", "engine-2", "engine-3"] {
        engines.push(spawn_engine(dir, url, &mqtt, name).await);
    }
    let sub = Subscriber::start(mqtt.port, "sensor/+/telemetry").await;
    let mut redis = connect(url).await;
    // 1. Leases shared out, then every telegram exactly once.
    let balanced = wait_leases(&mut redis, |l| {
        let n = per_engine(l);
        n.len() == 3 && n.values().all(|&c| c == 2)
    })
    .await;
    assert_eq!(
        per_engine(&balanced).values().copied().collect::<Vec<_>>(),
        vec![2, 2, 2],
        "leases not shared out: {balanced:?}"
    );
    let sent = load_for(&ports, 0, 4).await;
    let (lost, duplicates) = settle(&sub, &sent, Duration::from_secs(60)).await;
    println!("SCALE at {:.0} s", t0.elapsed().as_secs_f64());
    println!(
        "SCALE no fault: sent {} lost {} duplicates {duplicates}",
        sent.len(),
        lost.len()
    );
    assert!(sent.len() > 100, "the APs sent too little: {}", sent.len());
    assert!(
        lost.is_empty(),
        "{} lost without a fault, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    assert_eq!(duplicates, 0, "published twice without a fault");

    // 2. One engine killed under load.
    let load = Load::start_on(&ports, APS, &devices(1), PERIOD);
    tokio::time::sleep(Duration::from_secs(2)).await;
    engines[0].proc.kill();
    let killed_at = Instant::now();
    let taken = wait_leases(&mut redis, |l| {
        l.iter()
            .all(|h| matches!(h.as_deref(), Some("engine-2" | "engine-3")))
    })
    .await;
    let takeover = killed_at.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = load.stop().await;
    let (lost, duplicates) = settle(&sub, &sent, Duration::from_secs(60)).await;
    println!("SCALE at {:.0} s", t0.elapsed().as_secs_f64());
    println!(
        "SCALE engine killed: sent {} lost {} duplicates {duplicates}, partitions taken over after {:.1} s: {taken:?}",
        sent.len(),
        lost.len(),
        takeover.as_secs_f64()
    );
    assert!(
        taken
            .iter()
            .all(|h| matches!(h.as_deref(), Some("engine-2" | "engine-3"))),
        "partitions not taken over: {taken:?}"
    );
    assert!(
        lost.is_empty(),
        "{} lost when an engine died, e.g. {:?}",
        lost.len(),
        lost.first()
    );

    Services {
        _procs: vec![api, i1, i2],
        _engines: engines,
        _mqtt: mqtt,
        ports,
        sub,
    }
}

struct Services {
    _procs: Vec<Proc>,
    _engines: Vec<EngineProc>,
    _mqtt: Mosquitto,
    ports: [u16; 2],
    sub: Subscriber,
}

/// A connection to the services' Redis, single or cluster, as the services make it.
async fn connect(url: &str) -> iotc_core::redis::Redis {
    let redis = iotc_core::redis::connect(url, Default::default()).expect("REDIS_URL");
    let _: String = redis::cmd("PING")
        .query_async(&mut redis.clone())
        .await
        .expect("PING");
    redis
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ingress_three_engines_on_one_redis() {
    let t0 = Instant::now();
    let dir = temp_dir();
    let redis = test_support::Redis::start(dir.path());
    no_fault_then_engine_killed(&redis.url(), dir.path(), t0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ingress_three_engines_on_a_redis_cluster() {
    let t0 = Instant::now();
    let mut cluster = RedisCluster::start();
    let url = cluster.urls().join(",");
    let dir = temp_dir();
    let services = no_fault_then_engine_killed(&url, dir.path(), t0).await;
    let (ports, sub) = (services.ports, &services.sub);

    // 3. One master killed under load; its replica takes over.
    let load = Load::start_on(&ports, APS, &devices(2), PERIOD);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let master = master_index(&cluster);
    cluster.nodes[master].kill();
    let failed_at = Instant::now();
    assert!(wait_failover(&cluster, master), "no replica promoted");
    let failover = failed_at.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = load.stop().await;
    // What replication lost never arrives: a shorter wait.
    let (lost, duplicates) = settle(sub, &sent, Duration::from_secs(15)).await;
    println!("SCALE at {:.0} s", t0.elapsed().as_secs_f64());
    println!(
        "SCALE master killed: sent {} lost {} duplicates {duplicates}, cluster healthy again after {:.1} s",
        sent.len(),
        lost.len(),
        failover.as_secs_f64()
    );

    // After the failover the services carry on by themselves: everything arrives again.
    let sent = load_for(&ports, 3, 3).await;
    let (lost, duplicates) = settle(sub, &sent, Duration::from_secs(60)).await;
    println!("SCALE at {:.0} s", t0.elapsed().as_secs_f64());
    println!(
        "SCALE after failover: sent {} lost {} duplicates {duplicates}",
        sent.len(),
        lost.len()
    );
    assert!(sent.len() > 100, "the APs sent too little: {}", sent.len());
    assert!(
        lost.is_empty(),
        "{} lost after the failover, e.g. {:?}",
        lost.len(),
        lost.first()
    );
}

/// The engines keep device counters in memory for the partitions they hold. Partitions move
/// from one engine to a second one joining, and back when it leaves: every device's published
/// counts run 1, 2, 3, ... without a repeat or a gap, and Redis ends with the last one (a
/// stale copy kept across the moves would publish numbers already used, and write a lower
/// total over the second engine's counts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_stay_exact_while_partitions_move_and_come_back() {
    let dir = temp_dir();
    let redis_server = test_support::Redis::start(dir.path());
    let url = redis_server.url();
    let dir = dir.path();
    let mqtt = Mosquitto::start(dir);
    let (_api, api_port) = spawn_api(dir, &url);
    let ids = devices(0);
    onboard(api_port, &ids).await;
    let (_ingress, port) = spawn_ingress(dir, &url);
    let sub = Subscriber::start(mqtt.port, "sensor/+/telemetry").await;
    let mut redis = connect(&url).await;
    let holders = |names: &'static [&'static str]| {
        move |l: &[Option<String>]| {
            let n = per_engine(l);
            n.len() == names.len() && names.iter().all(|e| n.contains_key(*e))
        }
    };
    let mut sent = Vec::new();

    let first = spawn_engine(dir, &url, &mqtt, "engine-1").await;
    let alone = wait_leases(&mut redis, holders(&["engine-1"])).await;
    assert!(holders(&["engine-1"])(&alone), "engine-1 alone: {alone:?}");
    delivered_load(port, &sub, &mut sent, "engine-1 alone").await;

    let mut second = spawn_engine(dir, &url, &mqtt, "engine-2").await;
    let shared = wait_leases(&mut redis, holders(&["engine-1", "engine-2"])).await;
    assert!(
        holders(&["engine-1", "engine-2"])(&shared),
        "partitions not shared: {shared:?}"
    );
    delivered_load(port, &sub, &mut sent, "two engines").await;

    // engine-2 leaves; its partitions come back to engine-1, whose counts of them are old.
    second.proc.terminate(Duration::from_secs(20));
    let back = wait_leases(&mut redis, holders(&["engine-1"])).await;
    assert!(holders(&["engine-1"])(&back), "not taken back: {back:?}");
    delivered_load(port, &sub, &mut sent, "engine-1 again").await;
    let left = wait_nothing_pending(&mut redis).await;
    if !left.is_empty() {
        let log = std::fs::read_to_string(first.proc.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("partition") || l.contains("took"))
            .collect();
        panic!(
            "entries left unacknowledged: {left:?}\nengine-1:\n{}",
            lines[lines.len().saturating_sub(80)..].join("\n")
        );
    }
    drop(first);

    // The last batch's counters are written before its messages leave: let them arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let received = sub.all();
    for id in &ids {
        let eurid = format!("{id:08x}");
        let sent_n = sent.iter().filter(|(sender, _)| *sender == eurid).count();
        assert!(sent_n > 0, "{eurid}: nothing sent");
        // Each telemetry message carries the device's count including it: a copy kept across
        // the moves would give numbers the other engine had already used to other telegrams.
        let topic = format!("sensor/{eurid}/telemetry");
        let mut by_telegram: BTreeMap<(String, String), BTreeSet<i64>> = BTreeMap::new();
        for m in received.iter().filter(|m| m.topic == topic) {
            let j = m.json();
            let telegram = (
                j["raw"]["data"].to_string(),
                j["raw"]["timestamp"].to_string(),
            );
            let count = j["telemetry"]["meta"]["stats"][0]["totalTelegramCount"].as_i64();
            by_telegram
                .entry(telegram)
                .or_default()
                .insert(count.unwrap());
        }
        // No fault: the engine that leaves drains what it has in flight, so nothing is
        // published (and counted) a second time by the one taking its partitions back.
        let twice = received.iter().filter(|m| m.topic == topic).count() - by_telegram.len();
        assert_eq!(twice, 0, "{eurid}: telegrams published twice");
        let k = by_telegram.len() as i64;
        assert!(
            k >= sent_n as i64,
            "{eurid}: {k} telegrams published, {sent_n} sent"
        );
        let mut counts: Vec<i64> = by_telegram.values().flatten().copied().collect();
        counts.sort_unstable();
        assert_eq!(
            counts,
            (1..=k).collect::<Vec<_>>(),
            "{eurid}: one number per telegram, none repeated or skipped"
        );
        let stats: BTreeMap<String, i64> = redis
            .hgetall(iotc_core::keys::device_stats(&eurid))
            .await
            .unwrap();
        assert_eq!(
            stats.get("totalTelegramCount"),
            Some(&k),
            "{eurid}: {stats:?}"
        );
        assert_eq!(stats.get("succesfullyProcessed"), Some(&k), "{eurid}");
    }
}

/// Three seconds of load on one ingress, added to `sent`; returns once as many telemetry
/// messages arrived as were sent in all (the load numbers its telegrams from 0 each time, so
/// the count tells, not the keys).
async fn delivered_load(port: u16, sub: &Subscriber, sent: &mut Vec<Key>, label: &str) {
    sent.extend(load_for(&[port], 0, 3).await);
    let n = sent.len();
    let all = sub
        .wait_until(Duration::from_secs(60), |m| m.len() >= n)
        .await;
    assert!(all, "{label}: {} of {n} published", sub.all().len());
}

/// Waits (bounded) until every partition's entries are acknowledged; returns what is still
/// pending per stream (stream, count, oldest id, consumers) if that does not happen.
async fn wait_nothing_pending(redis: &mut iotc_core::redis::Redis) -> Vec<String> {
    let layout = iotc_core::partition::Layout::new(PARTITIONS, false);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut left = Vec::new();
        for stream in layout.streams() {
            let summary: redis::streams::StreamPendingReply = redis
                .xpending(&stream, iotc_core::keys::ENGINE_GROUP)
                .await
                .unwrap();
            if summary.count() > 0 {
                left.push(format!("{stream}: {summary:?}"));
            }
        }
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An engine configured with another partition count than the services before it stops with
/// a configuration error instead of leaving partitions unread.
#[test]
fn an_engine_with_another_partition_count_refuses_to_start() {
    let dir = temp_dir();
    let redis = test_support::Redis::start(dir.path());
    let mqtt = Mosquitto::start(dir.path());
    let _: () = redis::cmd("SET")
        .arg(iotc_core::partition::PARTITIONS_KEY)
        .arg(4)
        .query(&mut redis.sync_conn())
        .unwrap();
    let mut engine = Command::new(bin("iotc-engine"))
        .env("REDIS_URL", redis.url())
        .env("IOTC_PARTITIONS", "6")
        .env("MQTT_CONNSTRING", mqtt.connstring())
        .env("IOT_ENABLE_MQTT", "1")
        .env("IOTC_ENGINE_HTTP_PORT", free_port().to_string())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("engine starts");
    let status =
        test_support::wait_for(Duration::from_secs(30), || engine.try_wait().ok().flatten());
    if status.is_none() {
        let _ = engine.kill();
    }
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut engine.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.and_then(|s| s.code()), Some(2), "{stderr}");
    assert!(stderr.contains("IOTC_PARTITIONS"), "{stderr}");
}
