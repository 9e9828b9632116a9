//! A hostile AP flood against a running iotc-ingress, printing the ingress's resident
//! memory (a measurement, not a test):
//!
//! ```sh
//! cargo run --release -p iotc-ingress --example flood -- ws://127.0.0.1:7070/aruba TOKEN PID [SECONDS]
//! ```
//!
//! It opens `FLOOD_SILENT` (2000) connections that never authenticate and `FLOOD_APS` (20)
//! authenticated ones that send, as fast as the ingress reads, messages of 1024 USB sticks
//! each holding a partial 500-byte frame, plus frames longer than the radio allows and
//! garbage. Every 200 ms it reads VmRSS of PID; at the end it prints the peak.

use std::time::{Duration, Instant};

use aruba::{NbSerialData, Reporter, Telemetry};
use futures_util::SinkExt;
use prost::Message as _;
use tokio_tungstenite::tungstenite::Message;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// VmRSS of `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmRSS:")
}

/// A KiB figure of /proc/PID/status (`VmRSS:`, `VmHWM:`: the peak).
fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// One hostile message: `sticks` sticks, each with a frame header announcing 500 bytes and
/// only 400 of them, then an over-long radio frame and garbage on one more stick.
fn hostile(token: &str, ap: u16, sticks: usize) -> Vec<u8> {
    let mut partial = enocean::esp3::encode_frame(5, &[0x11; 490], &[]);
    partial.truncate(400);
    let mut data: Vec<NbSerialData> = (0..sticks)
        .map(|i| NbSerialData {
            nb_serial_payload: Some(partial.clone()),
            nb_device_id: Some(format!("ENOCEAN_USB:{i}")),
        })
        .collect();
    let mut junk = enocean::esp3::encode_frame(1, &[0xD2; 200], &[]);
    junk.extend((0..4000u32).map(|i| (i * 7919 % 251) as u8));
    data.push(NbSerialData {
        nb_serial_payload: Some(junk),
        nb_device_id: Some("ENOCEAN_USB:junk".into()),
    });
    let [hi, lo] = ap.to_be_bytes();
    let reporter = Reporter {
        mac: Some(vec![0x02, 0xee, 0, 0, hi, lo]),
        ..Reporter::default()
    };
    let mut msg = Telemetry::serial_data(token, reporter, "x", &[]);
    msg.nb_s_data = data;
    msg.encode_to_vec()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, token, pid, rest @ ..] = args.as_slice() else {
        eprintln!("usage: flood WS_URL TOKEN INGRESS_PID [SECONDS]");
        std::process::exit(2);
    };
    let pid: u32 = pid.parse().expect("PID");
    let seconds: u64 = rest.first().and_then(|s| s.parse().ok()).unwrap_or(20);
    let silent = env_or("FLOOD_SILENT", 2000);
    let aps = env_or("FLOOD_APS", 20);
    // 512 sticks make a message of about 215 KiB, under the default message limit.
    let sticks = env_or("FLOOD_STICKS", 512);
    let host = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    println!("ingress RSS before: {} KiB", rss_kib(pid));

    let mut held = Vec::new();
    for _ in 0..silent {
        if let Ok(tcp) = tokio::net::TcpStream::connect(&host).await {
            held.push(tcp);
        }
    }
    println!(
        "{} silent connections open; RSS {} KiB",
        held.len(),
        rss_kib(pid)
    );

    let end = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for ap in 0..aps as u16 {
        let (url, token) = (url.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut sent = 0u64;
            while Instant::now() < end {
                let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url.as_str()).await else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                while Instant::now() < end {
                    let msg = Message::Binary(hostile(&token, ap, sticks).into());
                    if ws.send(msg).await.is_err() {
                        break;
                    }
                    sent += 1;
                }
            }
            sent
        }));
    }
    // Sampled a little beyond the end: the ingress still reads what the sockets hold.
    let mut peak = 0;
    while Instant::now() < end + Duration::from_secs(3) {
        peak = peak.max(rss_kib(pid));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut messages = 0;
    for task in tasks {
        messages += task.await.unwrap_or(0);
    }
    drop(held);
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "{aps} hostile APs sent {messages} messages of {} sticks in {seconds} s; \
         sampled peak ingress RSS {} MiB, VmHWM {} MiB, after the flood {} MiB",
        sticks + 1,
        peak / 1024,
        proc_status_kib(pid, "VmHWM:") / 1024,
        rss_kib(pid) / 1024
    );
}
