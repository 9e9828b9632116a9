//! Broker outage under steady publishing: the broker is stopped for 30 s and started again;
//! every message arrives, and none is published more than twice (one resend per lost
//! connection). The subscriber's session is persistent, so the broker may also send it again
//! a message it had in flight to the subscriber when it stopped: such copies carry DUP, are
//! the broker's, and are counted apart.

mod egress_common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use egress_common::*;
use iotc_engine::egress::OutMessage;

const OUTAGE: Duration = Duration::from_secs(30);
const BATCH: u64 = 5;

#[tokio::test]
async fn broker_outage_loses_nothing() {
    let mut broker =
        Mosquitto::start(|_, port| format!("listener {port} 127.0.0.1\nallow_anonymous true\n"));
    // A persistent session: the broker keeps what arrives for the subscriber across its restart.
    let mut sub = Subscriber::start(broker.sub_port, "seq/#", true).await;
    let conn = format!("127.0.0.1:{}", broker.port);
    let egress = Arc::new(
        connected_egress(&[
            "--mqtt-connstring",
            &conn,
            "--mqtt-publish-timeout",
            "3",
            "--mqtt-reconnect-max",
            "2",
        ])
        .await,
    );

    // Publisher: batches of 5 every 20 ms; a failed batch is published again, as the engine
    // does with entries it could not acknowledge.
    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let publisher = {
        let (egress, next, stop, errors) =
            (egress.clone(), next.clone(), stop.clone(), errors.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let first = next.load(Ordering::Relaxed);
                let batch = (first..first + BATCH)
                    .map(|n| OutMessage::new(format!("seq/{}", n % 7), n.to_string()))
                    .collect::<Vec<_>>();
                match egress.publish(batch).await {
                    Ok(()) => {
                        next.store(first + BATCH, Ordering::Relaxed);
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = next.load(Ordering::Relaxed);
    broker.stop();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!egress.connected(), "the outage is noticed");
    let during = next.load(Ordering::Relaxed);
    tokio::time::sleep(OUTAGE - Duration::from_secs(2)).await;
    assert_eq!(
        next.load(Ordering::Relaxed),
        during,
        "nothing is confirmed while the broker is down"
    );
    let restarted = Instant::now();
    broker.restart();
    // Wait until publishing went on after the restart, then a little more.
    while next.load(Ordering::Relaxed) <= during + 50 {
        assert!(
            restarted.elapsed() < Duration::from_secs(30),
            "publishing resumes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let resumed_after = restarted.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    publisher.await.unwrap();
    let total = next.load(Ordering::Relaxed);

    let mut copies: BTreeMap<u64, u32> = BTreeMap::new();
    let mut redelivered = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while (copies.len() as u64) < total && Instant::now() < deadline {
        if let Some(m) = sub.next(Duration::from_secs(1)).await {
            count(&mut copies, &mut redelivered, m);
        }
    }
    // Late duplicates still in flight.
    while let Some(m) = sub.next(Duration::from_millis(500)).await {
        count(&mut copies, &mut redelivered, m);
    }
    let missing: Vec<u64> = (0..total).filter(|n| !copies.contains_key(n)).collect();
    let duplicates: u32 = copies.values().map(|c| c.saturating_sub(1)).sum();
    println!(
        "outage: {total} messages confirmed ({before} before the stop, {during} at the stop), \
         {} publish errors during the outage, publishing resumed {resumed_after:?} after the \
         restart, {duplicates} duplicates published, {redelivered} redelivered by the broker",
        errors.load(Ordering::Relaxed)
    );
    assert!(missing.is_empty(), "missing: {missing:?}");
    assert!(
        copies.values().all(|c| *c <= 2),
        "at most one resend per message"
    );
    assert!(
        errors.load(Ordering::Relaxed) > 0,
        "the caller saw the outage as errors"
    );
}

/// Counts one received message: a new publication, or (DUP) the broker's redelivery of one.
fn count(copies: &mut BTreeMap<u64, u32>, redelivered: &mut u32, m: Received) {
    let n: u64 = String::from_utf8(m.payload).unwrap().parse().unwrap();
    let c = copies.entry(n).or_default();
    if m.dup {
        *redelivered += 1;
    } else {
        *c += 1;
    }
}

/// The connection is lost in the middle of a burst: what it took with it is sent again, and
/// every message's first arrival still comes in the order it was published (the subscriber's
/// session and the broker's persistence keep everything across the restart).
#[tokio::test]
async fn a_lost_connection_resends_in_order() {
    const N: u64 = 20_000;
    let mut broker = Mosquitto::start(|_, port| {
        format!("listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n")
    });
    let mut sub = Subscriber::start(broker.sub_port, "order/#", true).await;
    let conn = format!("127.0.0.1:{}", broker.port);
    let egress = Arc::new(
        connected_egress(&["--mqtt-connstring", &conn, "--mqtt-reconnect-max", "1"]).await,
    );
    let burst: Vec<_> = (0..N)
        .map(|n| OutMessage::new("order/a", n.to_string()))
        .collect();
    let publishing = tokio::spawn({
        let egress = egress.clone();
        async move { egress.publish(burst).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let connects = egress.connects();
    broker.restart();
    publishing.await.unwrap().expect("every message confirmed");
    assert!(
        egress.connects() > connects,
        "the burst outlived its connection"
    );

    let mut first_arrivals = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while (seen.len() as u64) < N && Instant::now() < deadline {
        if let Some(m) = sub.next(Duration::from_secs(1)).await {
            let n: u64 = String::from_utf8(m.payload).unwrap().parse().unwrap();
            if seen.insert(n) {
                first_arrivals.push(n);
            }
        }
    }
    assert_eq!(seen.len() as u64, N, "every message arrives");
    let out_of_order = first_arrivals.windows(2).filter(|w| w[1] < w[0]).count();
    assert_eq!(
        out_of_order, 0,
        "first arrivals out of order: {out_of_order}"
    );
}
