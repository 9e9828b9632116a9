//! The telegram stream bound on a real redis-server and iotc-ingress: at the bound the
//! connection stops reading and resumes when the engines acknowledge; if the stream stays
//! full it is closed with 1013 and the refusal counted; a write Redis refuses (noeviction) is
//! counted as lost and reported in the heartbeat that `/system/health` shows.

mod common;

use std::time::Duration;

use aruba::{Reporter, Telemetry};
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use redis::Commands;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use common::{Ingress, RedisServer, STATIC_TOKEN, metric, wait_for};
use iotc_core::keys;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const MAC: [u8; 6] = [0x90, 0x4c, 0x81, 0xcf, 0x38, 0x87];
const USB: &str = "ENOCEAN_USB:f6a68e740ecc549496d4b63072a33920";

/// A distinct 4BS telegram per `n`.
fn telegram(n: u32) -> Vec<u8> {
    let mut data = vec![0xA5, 0x00, 0x00, 0x80, 0x08];
    data.extend((0x0190_0d00 + n).to_be_bytes());
    data.push(0);
    enocean::esp3::encode_frame(1, &data, &[0, 0xff, 0xff, 0xff, 0xff, 0x40, 0])
}

fn serial(n: u32) -> Message {
    let reporter = Reporter {
        mac: Some(MAC.to_vec()),
        ..Reporter::default()
    };
    let msg = Telemetry::serial_data(STATIC_TOKEN, reporter, USB, &[&telegram(n)]);
    Message::Binary(msg.encode_to_vec().into())
}

async fn connect(ingress: &Ingress) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(ingress.ws_url("/aruba"))
        .await
        .expect("WebSocket handshake");
    ws
}

/// The engines' consumer group, created as the engine does (from the start).
fn create_group(redis: &RedisServer) {
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(keys::TELEGRAM_STREAM)
        .arg(keys::ENGINE_GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query(&mut redis.conn())
        .unwrap();
}

/// Reads and acknowledges everything as an engine would; returns how many entries.
fn drain(redis: &RedisServer) -> usize {
    let ids = read(redis);
    ack(redis, &ids);
    ids.len()
}

fn ack(redis: &RedisServer, ids: &[String]) {
    if !ids.is_empty() {
        let _: i64 = redis
            .conn()
            .xack(keys::TELEGRAM_STREAM, keys::ENGINE_GROUP, ids)
            .unwrap();
    }
}

/// Reads what is new without acknowledging it (pending, as in an engine that crashed).
fn read(redis: &RedisServer) -> Vec<String> {
    let mut con = redis.conn();
    let opts = redis::streams::StreamReadOptions::default()
        .group(keys::ENGINE_GROUP, "test")
        .count(10_000);
    let reply: redis::streams::StreamReadReply = con
        .xread_options(&[keys::TELEGRAM_STREAM], &[">"], &opts)
        .unwrap();
    reply
        .keys
        .iter()
        .flat_map(|k| k.ids.iter().map(|e| e.id.clone()))
        .collect()
}

fn added(redis: &RedisServer) -> i64 {
    let info: redis::RedisResult<std::collections::HashMap<String, redis::Value>> =
        redis::cmd("XINFO")
            .arg("STREAM")
            .arg(keys::TELEGRAM_STREAM)
            .query(&mut redis.conn());
    // No stream yet: nothing added.
    let Ok(info) = info else { return 0 };
    match info.get("entries-added") {
        Some(redis::Value::Int(n)) => *n,
        other => panic!("entries-added: {other:?}"),
    }
}

fn wait_added(redis: &RedisServer, want: i64) {
    let reached = wait_for(Duration::from_secs(20), || {
        (added(redis) >= want).then_some(())
    });
    assert!(reached.is_some(), "stream never reached {want} entries");
}

/// The code the ingress closes the connection with (waiting at most 20 s).
async fn close_code(ws: &mut Ws) -> Option<CloseCode> {
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(msg) = ws.next().await {
            if let Ok(Message::Close(frame)) = msg {
                return frame.map(|f| f.code);
            }
        }
        None
    })
    .await
    .expect("the connection was not closed")
}

/// Waits until a metric reaches `want`.
async fn wait_metric(ingress: &Ingress, series: &str, want: f64) {
    for _ in 0..500 {
        if metric(ingress, series).await >= want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{series} never reached {want}");
}

/// The ingress's heartbeat once its status is `want` (written every 10 s).
fn heartbeat_with(redis: &RedisServer, want: &str) -> serde_json::Value {
    wait_for(Duration::from_secs(25), || {
        let value: Option<String> = redis.conn().get(keys::heartbeat("ingress")).ok()?;
        let value: serde_json::Value = serde_json::from_str(&value?).ok()?;
        (value["status"] == want).then_some(value)
    })
    .unwrap_or_else(|| panic!("the heartbeat never said {want}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_stream_holds_the_ap_back_until_the_engine_acknowledges() {
    let redis = RedisServer::start();
    create_group(&redis);
    let ingress = Ingress::start(
        &redis.url(),
        &[
            ("IOTC_TELEGRAM_STREAM_MAXLEN", "5"),
            ("IOTC_INGRESS_BACKPRESSURE_WAIT_S", "60"),
        ],
    );
    let mut ws = connect(&ingress).await;
    for n in 0..8 {
        ws.send(serial(n)).await.unwrap();
    }
    wait_added(&redis, 5);
    // The sixth waits: the waiting is counted, nothing beyond the bound is added.
    wait_metric(&ingress, "iotc_ingress_backpressure_waits_total", 1.0).await;
    assert_eq!(added(&redis), 5);
    // Delivered but not acknowledged (pending, as after an engine crash) is still needed:
    // no room yet. The waiting connection tries again at least every second meanwhile.
    let pending = read(&redis);
    assert_eq!(pending.len(), 5);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        added(&redis),
        5,
        "pending entries were trimmed to make room"
    );
    // The engine acknowledges: the connection goes on where it stopped, nothing lost.
    ack(&redis, &pending);
    wait_added(&redis, 8);
    assert_eq!(drain(&redis), 3);
    ws.send(serial(8)).await.unwrap();
    wait_added(&redis, 9);
    // Each telegram counted once for its gateway, however often it was refused and retried.
    let total: i64 = redis::Commands::hget(
        &mut redis.conn(),
        keys::gateway_stats("904c81cf3887"),
        keys::stats::TOTAL,
    )
    .unwrap();
    assert_eq!(total, 9);
    assert_eq!(
        metric(&ingress, "iotc_ingress_telegrams_refused_total").await,
        0.0
    );
    heartbeat_with(&redis, "backpressure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_stays_full_closes_with_1013() {
    let redis = RedisServer::start();
    create_group(&redis);
    let ingress = Ingress::start(
        &redis.url(),
        &[
            ("IOTC_TELEGRAM_STREAM_MAXLEN", "3"),
            ("IOTC_INGRESS_BACKPRESSURE_WAIT_S", "1"),
        ],
    );
    let mut ws = connect(&ingress).await;
    for n in 0..4 {
        ws.send(serial(n)).await.unwrap();
    }
    let code = close_code(&mut ws).await;
    assert_eq!(code, Some(CloseCode::Again));
    assert_eq!(added(&redis), 3);
    let refused = metric(&ingress, "iotc_ingress_telegrams_refused_total").await;
    assert_eq!(refused, 1.0);
    assert_eq!(
        metric(&ingress, "iotc_ingress_backpressure_closes_total").await,
        1.0
    );
    // Unread entries are never trimmed, however long the stream stays full.
    let len: usize = redis.conn().xlen(keys::TELEGRAM_STREAM).unwrap();
    assert_eq!(len, 3);
}

/// Far from its bound a partition is written by a plain pipeline that does not check the
/// bound; in its last eighth the script takes over and the bound holds exactly. Once the
/// engine caught up, the plain path serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bound_holds_when_a_burst_crosses_into_its_last_eighth() {
    let redis = RedisServer::start();
    create_group(&redis);
    let ingress = Ingress::start(
        &redis.url(),
        &[
            ("IOTC_TELEGRAM_STREAM_MAXLEN", "200"),
            ("IOTC_INGRESS_BACKPRESSURE_WAIT_S", "1"),
        ],
    );
    let mut ws = connect(&ingress).await;
    for n in 0..300 {
        ws.feed(serial(n)).await.unwrap();
    }
    ws.flush().await.unwrap();
    let code = close_code(&mut ws).await;
    assert_eq!(code, Some(CloseCode::Again));
    assert_eq!(added(&redis), 200, "not one entry over the bound");

    // The engine catches up: room again, and the next telegrams are stored.
    assert_eq!(drain(&redis), 200);
    let mut ws = connect(&ingress).await;
    for n in 300..400 {
        ws.feed(serial(n)).await.unwrap();
    }
    ws.flush().await.unwrap();
    wait_added(&redis, 300);
    assert_eq!(drain(&redis), 100);
    let len: usize = redis.conn().xlen(keys::TELEGRAM_STREAM).unwrap();
    assert!(len <= 200, "acknowledged entries are trimmed: {len} left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_redis_refuses_is_counted_lost_and_reported() {
    let redis = RedisServer::start();
    let ingress = Ingress::start(&redis.url(), &[("IOTC_INGRESS_REDIS_RETRY_S", "1")]);
    let mut ws = connect(&ingress).await;
    ws.send(serial(0)).await.unwrap();
    wait_added(&redis, 1);
    // Redis full (noeviction): every write is refused.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("1")
        .query(&mut redis.conn())
        .unwrap();
    ws.send(serial(1)).await.unwrap();
    let code = close_code(&mut ws).await;
    assert_eq!(code, Some(CloseCode::Error));
    assert_eq!(
        metric(&ingress, "iotc_ingress_telegrams_lost_total").await,
        1.0
    );
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("256mb")
        .query(&mut redis.conn())
        .unwrap();
    let beat = heartbeat_with(&redis, "degraded");
    assert_eq!(beat["telegramsLost"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_events_beyond_the_bound_are_dropped_and_counted_never_trimmed() {
    let redis = RedisServer::start();
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(keys::GATEWAY_EVENT_STREAM)
        .arg(keys::ENGINE_GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query(&mut redis.conn())
        .unwrap();
    let ingress = Ingress::start(&redis.url(), &[("IOTC_GATEWAY_EVENT_STREAM_MAXLEN", "2")]);
    let mut ws = connect(&ingress).await;
    let reporter = Reporter {
        mac: Some(MAC.to_vec()),
        ..Reporter::default()
    };
    for _ in 0..3 {
        let msg = Telemetry::health(STATIC_TOKEN, reporter.clone(), Default::default());
        ws.send(Message::Binary(msg.encode_to_vec().into()))
            .await
            .unwrap();
    }
    wait_metric(&ingress, "iotc_ingress_health_updates_total", 3.0).await;
    assert_eq!(
        metric(&ingress, "iotc_ingress_gateway_events_dropped_total").await,
        1.0
    );
    let first: Vec<String> = {
        let reply: redis::streams::StreamRangeReply =
            redis.conn().xrange_all(keys::GATEWAY_EVENT_STREAM).unwrap();
        reply.ids.into_iter().map(|e| e.id).collect()
    };
    assert_eq!(first.len(), 2, "the two unread events are kept");
    // Once read and acknowledged, they make room.
    let opts = redis::streams::StreamReadOptions::default()
        .group(keys::ENGINE_GROUP, "test")
        .count(10);
    let _: redis::streams::StreamReadReply = redis
        .conn()
        .xread_options(&[keys::GATEWAY_EVENT_STREAM], &[">"], &opts)
        .unwrap();
    let _: i64 = redis
        .conn()
        .xack(keys::GATEWAY_EVENT_STREAM, keys::ENGINE_GROUP, &first)
        .unwrap();
    let msg = Telemetry::health(STATIC_TOKEN, reporter, Default::default());
    ws.send(Message::Binary(msg.encode_to_vec().into()))
        .await
        .unwrap();
    wait_metric(&ingress, "iotc_ingress_health_updates_total", 4.0).await;
    let len: usize = redis.conn().xlen(keys::GATEWAY_EVENT_STREAM).unwrap();
    assert_eq!(len, 1, "acknowledged events trimmed, the new one added");
    assert_eq!(
        metric(&ingress, "iotc_ingress_gateway_events_dropped_total").await,
        1.0
    );
}
