//! `iotc simulate`: Aruba APs and EnOcean devices, for load and end-to-end tests.
//!
//! N gateways speak the Aruba AOS 8 protocol (authentication, WebSocket, protobuf, periodic
//! health) and send real telegrams of M devices at a chosen rate; a chosen share of the
//! telegrams is heard by several gateways (the same transmission with another signal
//! strength). With `--expect-mqtt` the published telemetry is matched to what was sent.

mod devices;
mod gateway;
mod mqtt;
mod onboard;
mod secure;
mod stick;
mod tls;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::Rng;
use tokio::sync::mpsc;

use devices::Device;
use gateway::{Endpoint, Gateway, GatewayStats};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub ap: Box<ApArgs>,
    #[command(flatten)]
    pub load: Box<LoadArgs>,
    #[command(flatten)]
    pub check: Box<CheckArgs>,
    #[command(flatten)]
    pub secure: Box<secure::SecureArgs>,
}

/// How the simulated APs connect.
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Access points")]
pub struct ApArgs {
    /// WebSocket URL of the ingress (`ws://` or `wss://`).
    #[arg(
        long,
        env = "IOT_ENDPOINT_URL",
        default_value = "ws://127.0.0.1:7070/aruba"
    )]
    pub url: String,
    /// Authentication URL (e.g. https://host:8080/auth/aruba): authenticate like an AP with
    /// --username/--password. Without it, --token is sent as a static token.
    #[arg(long, env = "IOT_AUTH_URL")]
    pub auth_url: Option<String>,
    #[arg(
        long,
        env = "IOT_ENDPOINT_USERNAME",
        default_value = "",
        hide_env_values = true
    )]
    pub username: String,
    #[arg(
        long,
        env = "IOT_ENDPOINT_PASSWORD",
        default_value = "",
        hide_env_values = true
    )]
    pub password: String,
    /// Static access token (the AP's endpointToken).
    #[arg(long, env = "IOT_GATEWAY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Trust this CA (PEM) for wss and https.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Do not verify the server certificate (lab only).
    #[arg(long)]
    pub insecure: bool,
    /// Seconds between AP health messages (APs send one every 120 s).
    #[arg(long, default_value_t = 120.0)]
    pub health_interval: f64,
}

/// What they send.
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Load")]
pub struct LoadArgs {
    /// Number of simulated APs.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=10_000))]
    pub gateways: u16,
    /// Number of simulated devices.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub devices: u32,
    /// EEPs of the devices, assigned in turn.
    #[arg(long, default_value = "A5-02-05,A5-04-01,D5-00-01,F6-02-01,D2-14-41")]
    pub eep: String,
    /// EnOcean ID of the first device (hex); the others follow.
    #[arg(long, default_value = "05a00000")]
    pub id_base: String,
    /// Telegrams per second (distinct transmissions, all gateways together).
    #[arg(long, default_value_t = 50.0)]
    pub rate: f64,
    /// Share of telegrams heard by several gateways (0 to 1).
    #[arg(long, default_value_t = 0.2)]
    pub shared: f64,
    /// How many gateways hear a shared telegram.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(2..))]
    pub copies: u16,
    /// Stop after this many telegrams.
    #[arg(long, conflicts_with = "duration")]
    pub count: Option<u64>,
    /// Stop after this many seconds (default 10 when --count is not given; 0: until Ctrl-C).
    #[arg(long)]
    pub duration: Option<f64>,
    /// VLD devices start untaught: they send UTE teach-in queries until a UTE response
    /// (iotc's learn mode) accepts them, then their telegrams.
    #[arg(long)]
    pub ute: bool,
}

/// Onboarding and the end-to-end check.
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "End to end")]
pub struct CheckArgs {
    /// Onboard the devices first through the API (base URL, e.g.
    /// http://127.0.0.1:1887/api.beta/v1), with PATCH /backup.
    #[arg(long, env = "IOT_API_URL")]
    pub onboard: Option<String>,
    #[arg(long, env = "IOT_API_USERNAME", hide_env_values = true)]
    pub api_username: Option<String>,
    #[arg(long, env = "IOT_API_PASSWORD", hide_env_values = true)]
    pub api_password: Option<String>,

    /// MQTT broker (host:port, or unix:///path for a Unix socket) to check the output:
    /// subscribe to --mqtt-topic and report end-to-end telegrams/s, latency and loss.
    #[arg(long)]
    pub expect_mqtt: Option<String>,
    #[arg(long, default_value = "sensor/+/telemetry")]
    pub mqtt_topic: String,
    /// QoS of the check's subscription. 0 spares the broker a PUBACK to read per message;
    /// what the engine publishes keeps its own QoS (MQTT_QOS).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub mqtt_qos: u8,
    #[arg(long, env = "MQTT_USERNAME", hide_env_values = true)]
    pub mqtt_username: Option<String>,
    #[arg(long, env = "MQTT_PASSWORD", hide_env_values = true)]
    pub mqtt_password: Option<String>,
    /// Seconds to wait for the last MQTT messages after sending ended.
    #[arg(long, default_value_t = 10.0)]
    pub drain_timeout: f64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // One thread: the load generator shares the machine it measures, and a second worker
    // mostly added wake-ups between the two (a sixth less CPU per telegram with one).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(simulate(args))
}

/// One planned transmission: which gateways hear it, with what signal.
struct Plan {
    device: usize,
    hearers: Vec<(usize, u8)>,
}

async fn simulate(args: Args) -> anyhow::Result<()> {
    iotc_core::tls::install_default_provider();
    check(&args)?;
    let devices = make_devices(&args)?;
    let secure = secure::Secure::new(&args.secure, devices.len())?;
    let trust = tls::Trust::from_args(args.ap.ca_file.as_deref(), args.ap.insecure)?;
    if let Some(api) = &args.check.onboard {
        let creds = args
            .check
            .api_username
            .as_deref()
            .zip(args.check.api_password.as_deref());
        onboard::onboard(&trust.http_client()?, api, creds, &devices, &secure).await?;
        println!("onboarded {} devices at {api}", devices.len());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let expect = match &args.check.expect_mqtt {
        Some(host_port) => {
            let creds = args
                .check
                .mqtt_username
                .clone()
                .zip(args.check.mqtt_password.clone());
            let mut options = mqtt::Options::parse(host_port, &args.check.mqtt_topic, creds)?;
            if args.check.mqtt_qos == 0 {
                options.qos = rumqttc::QoS::AtMostOnce;
            }
            Some(mqtt::subscribe(&options).await?)
        }
        None => None,
    };
    let pending: mqtt::Shared<mqtt::Pending> = Arc::default();
    let received: mqtt::Shared<mqtt::Received> = Arc::default();
    let listener =
        expect.map(|events| tokio::spawn(mqtt::listen(events, pending.clone(), received.clone())));

    let endpoint = Endpoint {
        url: args.ap.url.clone(),
        auth_url: args.ap.auth_url.clone(),
        username: args.ap.username.clone(),
        password: args.ap.password.clone(),
        token: args.ap.token.clone(),
        trust,
        health_interval: Duration::from_secs_f64(args.ap.health_interval.max(1.0)),
    };
    let Fleet {
        gateways,
        senders,
        tasks,
        mut ready,
    } = start_gateways(&args, &endpoint);
    for _ in 0..gateways.len() {
        if ready.recv().await.is_none() {
            break;
        }
    }
    if let Some(failed) = tasks.iter().position(|t| t.is_finished()) {
        drop(senders);
        for task in tasks {
            task.await.context("gateway task")??;
        }
        bail!("gateway {} stopped", gateways[failed].mac_hex());
    }
    secure.send_teach_ins(&devices, &senders).await;
    let started = Instant::now();
    let sent = drive(
        &args,
        &devices,
        &secure,
        &senders,
        listener.is_some().then_some(&pending),
    )
    .await;
    drop(senders);
    for task in tasks {
        task.await.context("gateway task")??;
    }
    let elapsed = started.elapsed();
    report_sent(&args, &gateways, &sent, elapsed);
    if let Some(listener) = listener {
        wait_for_drain(
            &received,
            sent.telegrams,
            Duration::from_secs_f64(args.check.drain_timeout),
        )
        .await;
        listener.abort();
        report_mqtt(&args, &received, sent.telegrams, started);
    }
    Ok(())
}

fn check(args: &Args) -> anyhow::Result<()> {
    if !(args.load.rate > 0.0 && args.load.rate.is_finite()) {
        bail!("--rate must be positive");
    }
    if !(0.0..=1.0).contains(&args.load.shared) {
        bail!("--shared must be between 0 and 1");
    }
    if args.ap.auth_url.is_none() && args.ap.token.is_none() {
        bail!("give --auth-url with --username/--password, or --token (IOT_GATEWAY_TOKEN)");
    }
    if args.load.copies > args.load.gateways && args.load.shared > 0.0 {
        bail!(
            "--copies {} needs at least as many --gateways",
            args.load.copies
        );
    }
    let per_device = args.load.devices as f64 / args.load.rate;
    if per_device < 1.0 {
        eprintln!(
            "note: each device sends every {:.0} ms; equal telegrams within the de-duplication window count once",
            per_device * 1000.0
        );
    }
    Ok(())
}

fn make_devices(args: &Args) -> anyhow::Result<Vec<Device>> {
    stick::UTE.store(args.load.ute, std::sync::atomic::Ordering::Relaxed);
    let eeps = devices::parse_eeps(&args.load.eep)?;
    if eeps.is_empty() {
        bail!("--eep names no EEP");
    }
    let base = u32::from_str_radix(args.load.id_base.trim_start_matches("0x"), 16)
        .with_context(|| format!("--id-base {}: not hex", args.load.id_base))?;
    (0..args.load.devices)
        .map(|i| Device::new(base.wrapping_add(i), eeps[i as usize % eeps.len()]))
        .collect()
}

type Tasks = Vec<tokio::task::JoinHandle<anyhow::Result<()>>>;

/// The running APs.
struct Fleet {
    gateways: Vec<Gateway>,
    /// One frame queue per AP.
    senders: Vec<mpsc::Sender<Vec<u8>>>,
    tasks: Tasks,
    /// Each AP reports here once connected.
    ready: mpsc::Receiver<()>,
}

/// Frames waiting for one simulated AP's connection.
const AP_QUEUE: usize = 64;

/// Starts the APs.
fn start_gateways(args: &Args, endpoint: &Endpoint) -> Fleet {
    let mut gateways = Vec::new();
    let mut senders = Vec::new();
    let mut tasks = Vec::new();
    let (ready_tx, ready) = mpsc::channel(args.load.gateways as usize);
    for i in 0..args.load.gateways {
        // Locally administered MACs 02:1c:00:00:xx:xx.
        let [hi, lo] = (i + 1).to_be_bytes();
        let mac = [0x02, 0x1c, 0x00, 0x00, hi, lo];
        let stats = Arc::new(GatewayStats::default());
        // Short, so that no AP runs far behind the others inside the simulator: real APs
        // forward a transmission as they hear it, and copies queued apart for longer than
        // the de-duplication window (500 ms) would be published twice.
        let (tx, rx) = mpsc::channel(AP_QUEUE);
        tasks.push(tokio::spawn(gateway::run(
            mac,
            endpoint.clone(),
            stats.clone(),
            rx,
            ready_tx.clone(),
        )));
        gateways.push(Gateway { mac, stats });
        senders.push(tx);
    }
    Fleet {
        gateways,
        senders,
        tasks,
        ready,
    }
}

/// What the driver sent.
struct Sent {
    telegrams: u64,
    receptions: u64,
}

/// Sends telegrams at the chosen rate until the count or duration is reached.
async fn drive(
    args: &Args,
    devices: &[Device],
    secure: &secure::Secure,
    senders: &[mpsc::Sender<Vec<u8>>],
    pending: Option<&mqtt::Shared<mqtt::Pending>>,
) -> Sent {
    let limit = args.load.count.unwrap_or(u64::MAX);
    let duration = match (args.load.count, args.load.duration) {
        (_, Some(s)) if s > 0.0 => Duration::from_secs_f64(s),
        (_, Some(_)) | (Some(_), None) => Duration::MAX,
        (None, None) => Duration::from_secs(10),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let on_signal = stop.clone();
    let signal = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.store(true, Ordering::Relaxed);
        }
    });
    let start = Instant::now();
    let mut sent = Sent {
        telegrams: 0,
        receptions: 0,
    };
    let mut next_device = 0usize;
    while sent.telegrams < limit && start.elapsed() < duration && !stop.load(Ordering::Relaxed) {
        if senders.iter().all(|s| s.is_closed()) {
            break;
        }
        let due = (start.elapsed().as_secs_f64() * args.load.rate) as u64 + 1;
        while sent.telegrams < due.min(limit) {
            let plan = plan(args, next_device, senders.len());
            next_device = (next_device + 1) % devices.len();
            let device = &devices[plan.device];
            let content = device.next_content(&mut rand::rng());
            let on_air = secure.on_air(plan.device, &content);
            if let Some(p) = pending
                && let Ok(mut p) = p.lock()
            {
                p.record(content.key(device.id), Instant::now());
            }
            for (gw, dbm) in &plan.hearers {
                let mut delivered = true;
                for part in &on_air {
                    delivered &= senders[*gw].send(part.frame(device.id, *dbm)).await.is_ok();
                }
                if delivered {
                    sent.receptions += 1;
                }
            }
            sent.telegrams += 1;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    signal.abort();
    sent
}

/// Which gateways hear device `device`'s next telegram, and how strongly.
fn plan(args: &Args, device: usize, gateways: usize) -> Plan {
    let mut rng = rand::rng();
    let first = device % gateways;
    let copies = if rng.random_bool(args.load.shared) {
        args.load.copies as usize
    } else {
        1
    };
    let hearers = (0..copies)
        .map(|k| ((first + k) % gateways, rng.random_range(40..=95u8)))
        .collect();
    Plan { device, hearers }
}

fn report_sent(args: &Args, gateways: &[Gateway], sent: &Sent, elapsed: Duration) {
    let secs = elapsed.as_secs_f64().max(1e-9);
    println!(
        "sent {} telegrams ({} receptions, {:.0} % heard by {} gateways) from {} devices in {:.2} s: {:.1} telegrams/s",
        sent.telegrams,
        sent.receptions,
        args.load.shared * 100.0,
        args.load.copies,
        args.load.devices,
        secs,
        sent.telegrams as f64 / secs
    );
    for gw in gateways {
        let s = &gw.stats;
        println!(
            "  gateway {}: {} telegrams, {} health, {} connections, {} failed sends, {} pushed back (1013)",
            gw.mac_hex(),
            s.telegrams.load(Ordering::Relaxed),
            s.health.load(Ordering::Relaxed),
            s.connects.load(Ordering::Relaxed),
            s.failed.load(Ordering::Relaxed),
            s.pushed_back.load(Ordering::Relaxed),
        );
    }
}

async fn wait_for_drain(received: &Mutex<mqtt::Received>, expected: u64, timeout: Duration) {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if received
            .lock()
            .map(|r| r.latencies.len() as u64 >= expected)
            .unwrap_or(true)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn report_mqtt(args: &Args, received: &Mutex<mqtt::Received>, sent: u64, started: Instant) {
    let Ok(r) = received.lock() else { return };
    let mut latencies = r.latencies.clone();
    latencies.sort();
    let got = latencies.len() as u64;
    let lost = sent.saturating_sub(got);
    let span = r
        .last_at
        .map_or(0.0, |t| t.duration_since(started).as_secs_f64());
    let rate = if span > 0.0 { got as f64 / span } else { 0.0 };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "end to end ({}): received {got} of {sent}, lost {lost} ({:.2} %), sustained {rate:.1} telegrams/s",
        args.check.mqtt_topic,
        if sent > 0 {
            lost as f64 * 100.0 / sent as f64
        } else {
            0.0
        },
    );
    println!(
        "  latency ms: p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
        ms(mqtt::percentile(&latencies, 50.0)),
        ms(mqtt::percentile(&latencies, 90.0)),
        ms(mqtt::percentile(&latencies, 99.0)),
        ms(latencies.last().copied().unwrap_or_default()),
    );
    if r.unmatched > 0 {
        println!("  {} other messages on the topic", r.unmatched);
    }
}
