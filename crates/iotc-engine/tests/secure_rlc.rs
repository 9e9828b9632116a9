//! The rolling code store (`iotc_engine::rlc`) against a real redis-server: the code only
//! moves forward, atomically, also when several engines race.

mod secure_support;

use enocean::secure::{RlcMode, SecureContext};
use iotc_core::keys;
use iotc_engine::rlc::{self, Advance, Order};
use redis::AsyncCommands;
use secure_support::Redis;

const EURID: &str = "0190e2e1";

fn ctx(key_byte: u8, slf: &str) -> SecureContext {
    SecureContext::from_hex(&format!("{key_byte:02x}").repeat(16), slf, false).unwrap()
}

#[tokio::test]
async fn code_moves_forward_only() {
    let redis = Redis::start();
    let mut r = redis.manager().await;
    let fp = rlc::fingerprint(&ctx(1, "f3"));

    assert_eq!(rlc::load(&mut r, EURID).await.unwrap(), None);
    assert_eq!(
        rlc::advance(&mut r, EURID, &fp, 5, Order::Linear, "")
            .await
            .unwrap(),
        Advance::Stored
    );
    let stored = rlc::load(&mut r, EURID).await.unwrap().unwrap();
    assert_eq!(stored.last_for(&fp), Some(5));

    // The same code and an older one are refused; Redis tells the newer code.
    for code in [5, 4, 0] {
        assert_eq!(
            rlc::advance(&mut r, EURID, &fp, code, Order::Linear, "")
                .await
                .unwrap(),
            Advance::Behind { last: 5 }
        );
    }
    assert_eq!(
        rlc::advance(&mut r, EURID, &fp, u32::MAX, Order::Linear, "")
            .await
            .unwrap(),
        Advance::Stored
    );
    let stored = rlc::load(&mut r, EURID).await.unwrap().unwrap();
    assert_eq!(stored.last_for(&fp), Some(u32::MAX));

    // The key is kept as a fingerprint only.
    let raw: std::collections::HashMap<String, String> =
        r.hgetall(keys::device_rlc(EURID)).await.unwrap();
    assert_eq!(raw.get("rlc").map(String::as_str), Some("4294967295"));
    assert!(!raw.values().any(|v| v.contains("0101")));
}

#[tokio::test]
async fn another_key_starts_over() {
    let redis = Redis::start();
    let mut r = redis.manager().await;
    let old = rlc::fingerprint(&ctx(1, "f3"));
    let new = rlc::fingerprint(&ctx(2, "f3"));
    assert_ne!(old, new);
    assert_ne!(old, rlc::fingerprint(&ctx(1, "ab")), "the SLF counts too");

    rlc::advance(&mut r, EURID, &old, 1000, Order::Linear, "")
        .await
        .unwrap();
    let stored = rlc::load(&mut r, EURID).await.unwrap().unwrap();
    assert_eq!(
        stored.last_for(&new),
        None,
        "a code of another key does not apply"
    );
    assert_eq!(
        rlc::advance(&mut r, EURID, &new, 3, Order::Linear, "")
            .await
            .unwrap(),
        Advance::Stored
    );
    assert_eq!(
        rlc::load(&mut r, EURID)
            .await
            .unwrap()
            .unwrap()
            .last_for(&new),
        Some(3)
    );

    // A reset (teach-in with a new key) is unconditional; `None` means nothing accepted.
    rlc::reset(&mut r, EURID, &old, None).await.unwrap();
    let stored = rlc::load(&mut r, EURID).await.unwrap().unwrap();
    assert_eq!(stored.fingerprint, old);
    assert_eq!(stored.rlc, None);
    assert_eq!(
        rlc::advance(&mut r, EURID, &old, 0, Order::Linear, "")
            .await
            .unwrap(),
        Advance::Stored
    );
    rlc::reset(&mut r, EURID, &new, Some(0xC0FFED))
        .await
        .unwrap();
    assert_eq!(
        rlc::load(&mut r, EURID)
            .await
            .unwrap()
            .unwrap()
            .last_for(&new),
        Some(0xC0FFED)
    );
}

#[tokio::test]
async fn implicit_codes_wrap_within_the_window() {
    let redis = Redis::start();
    let mut r = redis.manager().await;
    let fp = rlc::fingerprint(&ctx(1, "4b"));
    let order = Order::of(RlcMode::Implicit16);
    assert_eq!(
        order,
        Order::Wrapping {
            modulus: 0x1_0000,
            window: 128
        }
    );
    assert_eq!(Order::of(RlcMode::Explicit32), Order::Linear);

    rlc::advance(&mut r, EURID, &fp, 0xFFF0, order, "")
        .await
        .unwrap();
    // 0x0005 is 21 steps ahead of 0xFFF0: the counter wrapped.
    assert_eq!(
        rlc::advance(&mut r, EURID, &fp, 0x0005, order, "")
            .await
            .unwrap(),
        Advance::Stored
    );
    // 0xFFF0 is now behind; so is anything more than 128 steps ahead.
    assert_eq!(
        rlc::advance(&mut r, EURID, &fp, 0xFFF0, order, "")
            .await
            .unwrap(),
        Advance::Behind { last: 5 }
    );
    assert_eq!(
        rlc::advance(&mut r, EURID, &fp, 5 + 129, order, "")
            .await
            .unwrap(),
        Advance::Behind { last: 5 }
    );
    assert_eq!(
        rlc::advance(&mut r, EURID, &fp, 5 + 128, order, "")
            .await
            .unwrap(),
        Advance::Stored
    );
}

/// Many engines store codes of one device at once: the result is the highest code, and
/// every code is stored at most once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_engines_never_move_it_back() {
    let redis = Redis::start();
    let fp = rlc::fingerprint(&ctx(7, "f3"));
    let mut tasks = Vec::new();
    for engine in 0..8u32 {
        let mut r = redis.manager().await;
        let fp = fp.clone();
        tasks.push(tokio::spawn(async move {
            let mut stored = Vec::new();
            // Each engine offers every code, in its own order.
            for i in 0..200u32 {
                let code = (i * 37 + engine * 11) % 200 + 1;
                if rlc::advance(&mut r, EURID, &fp, code, Order::Linear, "")
                    .await
                    .unwrap()
                    == Advance::Stored
                {
                    stored.push(code);
                }
            }
            stored
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let stored = t.await.unwrap();
        assert!(
            stored.windows(2).all(|w| w[0] < w[1]),
            "an engine stored a code below one it stored before: {stored:?}"
        );
        all.extend(stored);
    }
    let mut unique = all.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), all.len(), "a code was accepted twice");
    let mut r = redis.manager().await;
    assert_eq!(
        rlc::load(&mut r, EURID)
            .await
            .unwrap()
            .unwrap()
            .last_for(&fp),
        Some(200)
    );
}
