//! The ingress's bounds against hostile or broken clients, on a real redis-server and
//! iotc-ingress: connections that never authenticate are closed by the deadline while a real
//! AP gets through, connections beyond the limit wait for a free slot, sticks beyond the
//! per-connection limit are dropped, and radio frames longer than ERP1/ERP2 can carry are
//! refused without waiting for the 64 KiB their header may announce.

mod common;

use std::time::Duration;

use aruba::{Reporter, Telemetry};
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use redis::Commands;
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use common::{Ingress, RedisServer, STATIC_TOKEN, metric, wait_for};
use iotc_core::keys;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const MAC: [u8; 6] = [0x90, 0x4c, 0x81, 0xcf, 0x38, 0x86];
const USB: &str = "ENOCEAN_USB:f6a68e740ecc549496d4b63072a33920";

/// A 4BS telegram of sender `0x0190_0c00 + n` (vectors.json style; CRCs computed here).
fn telegram(n: u32) -> Vec<u8> {
    let sender = (0x0190_0c00 + n).to_be_bytes();
    let mut data = vec![0xA5, 0x00, 0x00, 0x80, 0x08];
    data.extend(sender);
    data.push(0);
    enocean::esp3::encode_frame(1, &data, &[0, 0xff, 0xff, 0xff, 0xff, 0x40, 0])
}

fn reporter() -> Reporter {
    Reporter {
        mac: Some(MAC.to_vec()),
        hw_type: Some("AP-505".into()),
        sw_version: Some("8.10.0.8-8.10.0.8".into()),
        ..Reporter::default()
    }
}

fn serial(stick: &str, payload: &[u8]) -> Message {
    let msg = Telemetry::serial_data(STATIC_TOKEN, reporter(), stick, &[payload]);
    Message::Binary(msg.encode_to_vec().into())
}

async fn connect(ingress: &Ingress) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(ingress.ws_url("/aruba"))
        .await
        .expect("WebSocket handshake");
    ws
}

fn stream_len(redis: &RedisServer) -> usize {
    redis.conn().xlen(keys::TELEGRAM_STREAM).unwrap()
}

fn wait_stream_len(redis: &RedisServer, want: usize) {
    let reached = wait_for(Duration::from_secs(20), || {
        (stream_len(redis) >= want).then_some(())
    });
    assert!(reached.is_some(), "stream never reached {want} entries");
}

/// The close code a WebSocket ends with (`None`: closed without a code or reset).
async fn close_code(mut ws: Ws) -> Option<CloseCode> {
    while let Some(msg) = ws.next().await {
        match msg {
            Ok(Message::Close(frame)) => return frame.map(|f| f.code),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
    None
}

/// Reads a raw TCP connection until the server ends it.
async fn until_closed(mut tcp: tokio::net::TcpStream) {
    let mut buf = [0u8; 256];
    while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {}
}

const SILENT_TCP: usize = 1000;
const SILENT_WS: usize = 500;
const CHATTY_WS: usize = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_unauthenticated_connections_are_closed_and_an_ap_gets_through() {
    let redis = RedisServer::start();
    let ingress = Ingress::start(
        &redis.url(),
        &[
            ("IOTC_INGRESS_AUTH_DEADLINE_S", "3"),
            ("IOTC_INGRESS_MAX_CONNECTIONS", "2100"),
        ],
    );
    let addr = ("127.0.0.1", ingress.port);
    // 1000 sockets that never speak, 500 WebSockets that say nothing, 500 that send only
    // text frames and pings (neither counts as authentication).
    let mut raw = Vec::new();
    for _ in 0..SILENT_TCP {
        raw.push(tokio::spawn(until_closed(
            tokio::net::TcpStream::connect(addr).await.unwrap(),
        )));
    }
    let mut sockets = Vec::new();
    for i in 0..SILENT_WS + CHATTY_WS {
        let mut ws = connect(&ingress).await;
        if i >= SILENT_WS {
            ws.send(Message::Text("hello".into())).await.unwrap();
            ws.send(Message::Ping(vec![1].into())).await.unwrap();
        }
        sockets.push(tokio::spawn(close_code(ws)));
    }

    // A real AP, among all of them, gets through.
    let mut ap = connect(&ingress).await;
    ap.send(serial(USB, &telegram(1))).await.unwrap();
    wait_stream_len(&redis, 1);

    for task in raw {
        tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("a silent socket stayed open past the deadline")
            .unwrap();
    }
    let mut policy = 0;
    for task in sockets {
        let code = tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("an unauthenticated WebSocket stayed open past the deadline")
            .unwrap();
        policy += usize::from(code == Some(CloseCode::Policy));
    }
    assert_eq!(policy, SILENT_WS + CHATTY_WS, "closed with 1008");

    // The authenticated AP is still served after the deadline.
    ap.send(serial(USB, &telegram(2))).await.unwrap();
    wait_stream_len(&redis, 2);
    let series = "iotc_ingress_auth_deadline_total{phase=\"websocket\"}";
    assert_eq!(metric(&ingress, series).await, 1000.0);
    let series = "iotc_ingress_auth_deadline_total{phase=\"http\"}";
    assert!(metric(&ingress, series).await >= SILENT_TCP as f64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_beyond_the_limit_waits_for_a_free_slot() {
    let redis = RedisServer::start();
    let ingress = Ingress::start(&redis.url(), &[("IOTC_INGRESS_MAX_CONNECTIONS", "3")]);
    let mut open = Vec::new();
    for n in 0..3 {
        let mut ws = connect(&ingress).await;
        ws.send(serial(USB, &telegram(n))).await.unwrap();
        open.push(ws);
    }
    wait_stream_len(&redis, 3);

    // The fourth is accepted by the kernel, but not served while three are open.
    let url = ingress.ws_url("/aruba");
    let mut fourth = tokio::spawn(async move { tokio_tungstenite::connect_async(url).await });
    let early = tokio::time::timeout(Duration::from_millis(800), &mut fourth).await;
    assert!(
        early.is_err(),
        "a fourth connection was served beyond the limit"
    );

    let mut first = open.remove(0);
    first.close(None).await.unwrap();
    while first.next().await.is_some() {}
    let (mut ws, _) = tokio::time::timeout(Duration::from_secs(20), fourth)
        .await
        .expect("the fourth connection was not served after a slot freed")
        .unwrap()
        .unwrap();
    ws.send(serial(USB, &telegram(3))).await.unwrap();
    wait_stream_len(&redis, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticks_beyond_the_limit_are_dropped_and_counted() {
    let redis = RedisServer::start();
    let ingress = Ingress::start(&redis.url(), &[("IOTC_INGRESS_MAX_STICKS", "2")]);
    let mut ws = connect(&ingress).await;
    ws.send(serial("ENOCEAN_USB:a", &telegram(1)))
        .await
        .unwrap();
    ws.send(serial("ENOCEAN_USB:b", &telegram(2)))
        .await
        .unwrap();
    ws.send(serial("ENOCEAN_USB:c", &telegram(3)))
        .await
        .unwrap();
    // Known sticks go on working on the same connection.
    ws.send(serial("ENOCEAN_USB:a", &telegram(4)))
        .await
        .unwrap();
    // Messages of one connection are handled in order: when the fourth is stored, the
    // third was refused.
    wait_stream_len(&redis, 3);
    assert_eq!(
        metric(&ingress, "iotc_ingress_sticks_refused_total").await,
        1.0
    );
    assert_eq!(
        stream_len(&redis),
        3,
        "the third stick's telegram was dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn radio_frames_longer_than_erp_allows_are_refused() {
    let redis = RedisServer::start();
    let ingress = Ingress::start(&redis.url(), &[]);
    let mut ws = connect(&ingress).await;
    // An ERP1 frame with 65 data bytes: valid ESP3, but no radio telegram is that long.
    let long = enocean::esp3::encode_frame(1, &[0xD2; 65], &[]);
    ws.send(serial(USB, &long)).await.unwrap();
    // A header announcing 60 000 bytes, then a real telegram in the same payload: the
    // telegram is found at once instead of being swallowed by the announced frame.
    let huge = enocean::esp3::encode_frame(5, &vec![0; 60_000], &[]);
    let mut payload = huge[..enocean::esp3::HEADER_LEN].to_vec();
    payload.extend(telegram(7));
    ws.send(serial(USB, &payload)).await.unwrap();
    wait_stream_len(&redis, 1);
    let series = "iotc_ingress_frames_invalid_total{reason=\"too_long\"}";
    assert_eq!(metric(&ingress, series).await, 2.0);
    assert_eq!(stream_len(&redis), 1);
}
