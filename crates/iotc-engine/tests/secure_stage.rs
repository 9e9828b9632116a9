//! The engine's decoder and secure stage together against a real redis-server: secure
//! telegrams decode, refusals become IoTC's security events, rolling codes persist across
//! restarts and engines, and secure teach-ins update the device registry.

mod secure_support;

use std::time::Duration;

use enocean::secure::{self, SecureContext, SecureTeachIn, Slf, TeachInInfo};
use enocean::telegram::Telegram;
use enocean::{Eep, Value, eep};
use futures_util::StreamExt;
use iotc_core::bus::TelegramEntry;
use iotc_core::keys;
use iotc_core::model::EnOceanSensor;
use iotc_core::payload::EventCode;
use iotc_engine::decode::{Decoder, DeviceResult, Outcome};
use iotc_engine::devices::Devices;
use iotc_engine::secure::{Settings, Stage, TeachInPolicy};
use redis::AsyncCommands;
use secure_support::{Redis, frame, sec_r, telegram};
use serde_json::json;
use tokio::sync::watch;

const ID: u32 = 0x0190_e2e1;
const EURID: &str = "0190e2e1";
const KEY: &str = "000102030405060708090a0b0c0d0e0f";
const NEW_KEY: &str = "f0e1d2c3b4a5968778695a4b3c2d1e0f";
const PSK: &str = "3410de8f1aba3eff9f5a117172eacabd";

/// One engine: decoder, secure stage, and the device copy, on a shared Redis.
struct Engine {
    redis: iotc_core::redis::Redis,
    devices: Devices,
    decoder: Decoder,
    stage: Stage,
    stop: watch::Receiver<bool>,
    _stop: watch::Sender<bool>,
    received_ms: u64,
}

impl Engine {
    async fn start(redis: &Redis, settings: Settings) -> Engine {
        let mut conn: iotc_core::redis::Redis = redis.manager().await.into();
        let devices = Devices::default();
        devices.load_all(&mut conn).await.unwrap();
        let (tx, rx) = watch::channel(false);
        Engine {
            redis: conn,
            decoder: Decoder::new(devices.clone(), 3000),
            devices,
            stage: Stage::new(settings),
            stop: rx,
            _stop: tx,
            received_ms: 1_700_000_000_000,
        }
    }

    /// Reloads the device copy, as `DEVICES_CHANGED` makes a running engine do.
    async fn reload(&mut self) {
        self.devices.load_all(&mut self.redis).await.unwrap();
    }

    /// Decodes and settles one received telegram, read from a new stream entry; `None` for
    /// a chain part.
    async fn receive(&mut self, t: &Telegram) -> Option<DeviceResult> {
        // Stream ids are unique across the engines of a test, as in one Redis stream.
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let n = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.settle_entry(&format!("{n}-1"), t).await
    }

    /// Decodes and settles a telegram read from stream entry `id` (which may have been
    /// read before: a redelivery).
    async fn settle_entry(&mut self, id: &str, t: &Telegram) -> Option<DeviceResult> {
        self.received_ms += 10;
        let entry = TelegramEntry {
            gateway_mac: [2, 0, 0, 0, 0, 1],
            received_ms: self.received_ms,
            dbm: -60,
            usb_id: "ENOCEAN_USB:test".into(),
            esp3: frame(t),
        };
        let mut released = Vec::new();
        let outcome = self.decoder.decode(id, &entry, &mut released);
        match self
            .stage
            .settle(&self.redis, &self.stop, outcome, id)
            .await
        {
            Some(Outcome::Device(dt)) => Some(dt.result),
            Some(Outcome::ChainPart) => None,
            Some(other) => panic!("not a device telegram: {other:?}"),
            None => panic!("settle gave up"),
        }
    }
}

async fn onboard(redis: &Redis, device: serde_json::Value) {
    let mut r = redis.manager().await;
    let src = device["sourceEurid"].as_str().unwrap().to_ascii_lowercase();
    let () = r
        .hset(
            keys::DEVICES,
            keys::device_field(&src, "ffffffff"),
            device.to_string(),
        )
        .await
        .unwrap();
}

fn secure_device(eep: &str, key: &str, slf: &str) -> serde_json::Value {
    json!({"sourceEurid": EURID, "friendlyID": "secure sensor", "eep": eep,
           "AESKey": key.to_ascii_uppercase(), "slf": slf})
}

fn ctx(key: &str, slf: &str) -> SecureContext {
    SecureContext::from_hex(key, slf, false).unwrap()
}

/// An A5-02-05 temperature telegram, secured with code `rlc`.
fn temperature(ctx: &SecureContext, rlc: u32, celsius: f64) -> Telegram {
    let (rorg, data, _) = eep::encode("A5-02-05".parse().unwrap(), &[("TMP", celsius)]).unwrap();
    sec_r(ctx, rlc, rorg, &data, ID)
}

fn number(fields: &[enocean::Field], key: &str) -> f64 {
    match fields.iter().find(|f| f.key == key).map(|f| &f.value) {
        Some(Value::Number(n)) => *n,
        other => panic!("{key}: {other:?} in {fields:?}"),
    }
}

/// The temperature of a Data result, with the decoded telegram.
fn data(result: Option<DeviceResult>) -> (Telegram, f64) {
    match result {
        Some(DeviceResult::Data { telegram, fields }) => {
            let t = number(&fields, "temperature");
            (telegram, t)
        }
        other => panic!("not data: {other:?}"),
    }
}

fn event(result: Option<DeviceResult>) -> (EventCode, String) {
    match result {
        Some(DeviceResult::Failed {
            event: Some((code, message)),
            ..
        }) => (code, message),
        other => panic!("no event: {other:?}"),
    }
}

fn not_processed(result: Option<DeviceResult>) -> String {
    match result {
        Some(DeviceResult::Failed {
            event: None,
            reason,
        }) => reason,
        other => panic!("not a plain refusal: {other:?}"),
    }
}

/// Opens the learn window of the device, as `POST /devices/learn` does.
async fn open_window(redis: &Redis) {
    let mut r = redis.manager().await;
    let () = r.set_ex(keys::device_learn(EURID), 1, 60).await.unwrap();
}

async fn stored_code(redis: &Redis) -> Option<String> {
    let mut r = redis.manager().await;
    r.hget(keys::device_rlc(EURID), "rlc").await.unwrap()
}

#[tokio::test]
async fn secure_telegrams_decode_and_refusals_raise_events() {
    let redis = Redis::start();
    onboard(&redis, secure_device("A5-02-05", KEY, "f3")).await;
    let mut engine = Engine::start(&redis, Settings::default()).await;
    let ctx = ctx(KEY, "f3");

    let first = temperature(&ctx, 7, 21.5);
    let (plain, celsius) = data(engine.receive(&first).await);
    assert!((celsius - 21.5).abs() < 0.2, "{celsius}");
    assert_eq!(plain.rorg, 0xA5, "the inner telegram is decoded");
    assert_eq!(plain.security_level, Some(4), "decrypted and authenticated");
    assert_eq!(plain.sender, ID);
    assert_eq!(stored_code(&redis).await.as_deref(), Some("7"));

    // The same telegram again, and an older code: replays.
    let (code, message) = event(engine.receive(&first).await);
    assert_eq!(code, EventCode::RlcReplay);
    assert!(message.contains(EURID), "{message}");
    let (code, _) = event(engine.receive(&temperature(&ctx, 3, 20.0)).await);
    assert_eq!(code, EventCode::RlcReplay);

    // One flipped bit anywhere in the secure part: CMAC mismatch; the code stays.
    let next = temperature(&ctx, 8, 22.0);
    for i in 0..next.data.len() {
        let mut tampered = next.clone();
        tampered.data[i] ^= 0x10;
        let (code, message) = event(engine.receive(&tampered).await);
        assert_eq!(code, EventCode::MacValidationError, "byte {i}");
        assert_eq!(message, format!("CMAC verification failed id={EURID}."));
    }
    // A telegram under another key: CMAC mismatch too.
    let (code, _) = event(
        engine
            .receive(&temperature(&self::ctx(NEW_KEY, "f3"), 9, 22.0))
            .await,
    );
    assert_eq!(code, EventCode::MacValidationError);
    assert_eq!(stored_code(&redis).await.as_deref(), Some("7"));

    // A plain telegram of the secure device is dropped.
    let (rorg, bytes, status) = eep::encode("A5-02-05".parse().unwrap(), &[("TMP", 30.0)]).unwrap();
    let (code, message) = event(engine.receive(&telegram(rorg, bytes, ID, status)).await);
    assert_eq!(code, EventCode::DeviceSendNowUnsecure);
    assert_eq!(message, format!("Device {EURID} now unsecure. Dropping."));
    // So is a "decrypted" 0x32, which has no CMAC.
    let (code, _) = event(engine.receive(&telegram(0x32, vec![0x0E], ID, 0)).await);
    assert_eq!(code, EventCode::DeviceSendNowUnsecure);

    // The untampered telegram still decodes: nothing above moved the code.
    let (_, celsius) = data(engine.receive(&next).await);
    assert!((celsius - 22.0).abs() < 0.2);
    assert_eq!(stored_code(&redis).await.as_deref(), Some("8"));
}

#[tokio::test]
async fn codes_survive_restarts_and_are_shared_by_engines() {
    let redis = Redis::start();
    onboard(&redis, secure_device("A5-02-05", KEY, "f3")).await;
    let ctx = ctx(KEY, "f3");
    let mut a = Engine::start(&redis, Settings::default()).await;
    let mut b = Engine::start(&redis, Settings::default()).await;

    // Engine b learns code 1; then engine a accepts 2 and 3.
    data(b.receive(&temperature(&ctx, 1, 20.0)).await);
    data(a.receive(&temperature(&ctx, 2, 20.0)).await);
    let third = temperature(&ctx, 3, 20.0);
    data(a.receive(&third).await);
    // Engine b's copy says 1, but Redis says 3: a replay of 2 or 3 is refused, and b
    // cannot move the stored code back.
    let (code, message) = event(b.receive(&temperature(&ctx, 2, 20.0)).await);
    assert_eq!(code, EventCode::RlcReplay);
    assert!(message.contains("0x3"), "{message}");
    assert_eq!(stored_code(&redis).await.as_deref(), Some("3"));

    // A restarted engine reads the code from Redis.
    drop(a);
    let mut restarted = Engine::start(&redis, Settings::default()).await;
    assert_eq!(
        event(restarted.receive(&third).await).0,
        EventCode::RlcReplay
    );
    data(restarted.receive(&temperature(&ctx, 4, 20.0)).await);

    // A key changed through the API starts the code over, even on an engine that has
    // seen the old key.
    onboard(&redis, secure_device("A5-02-05", NEW_KEY, "f3")).await;
    restarted.reload().await;
    let new_ctx = self::ctx(NEW_KEY, "f3");
    data(restarted.receive(&temperature(&new_ctx, 0, 20.0)).await);
    b.reload().await;
    assert_eq!(
        event(b.receive(&temperature(&new_ctx, 0, 20.0)).await).0,
        EventCode::RlcReplay
    );
}

#[tokio::test]
async fn plain_and_misconfigured_devices() {
    let redis = Redis::start();
    onboard(
        &redis,
        json!({"sourceEurid": EURID, "friendlyID": "plain", "eep": "A5-02-05"}),
    )
    .await;
    onboard(
        &redis,
        json!({"sourceEurid": "0190e2e2", "friendlyID": "bad SLF", "eep": "A5-02-05",
               "AESKey": KEY, "slf": "00"}),
    )
    .await;
    let mut engine = Engine::start(&redis, Settings::default()).await;
    let ctx = ctx(KEY, "f3");

    // A plain device's plain telegram decodes as before, security level 0.
    let (rorg, bytes, status) = eep::encode("A5-02-05".parse().unwrap(), &[("TMP", 12.0)]).unwrap();
    let (plain, _) = data(engine.receive(&telegram(rorg, bytes, ID, status)).await);
    assert_eq!(plain.security_level, Some(0));
    // Its secure telegrams cannot be checked: not processed, no event.
    let reason = not_processed(engine.receive(&temperature(&ctx, 1, 20.0)).await);
    assert!(reason.contains("without AESKey"), "{reason}");
    // A device whose SLF has no CMAC: refused, and the key is not in the reason.
    let mut t = temperature(&ctx, 1, 20.0);
    t.sender = 0x0190_e2e2;
    let reason = not_processed(engine.receive(&t).await);
    assert!(reason.contains("SLF"), "{reason}");
    assert!(!reason.to_ascii_lowercase().contains(KEY), "{reason}");
}

#[tokio::test]
async fn chained_secure_telegram_decodes() {
    let redis = Redis::start();
    onboard(&redis, secure_device("D2-14-41", KEY, "f3")).await;
    let mut engine = Engine::start(&redis, Settings::default()).await;
    let ctx = ctx(KEY, "f3");
    let eep: Eep = "D2-14-41".parse().unwrap();
    let (rorg, bytes, _) = eep::encode(eep, &[("TMP10", 23.0), ("HUM", 40.0)]).unwrap();
    let payload = secure::encrypt_sec_r(&ctx, 42, rorg, &bytes).unwrap();
    let parts = secure::sec_cdm_parts(1, &payload).unwrap();
    assert!(parts.len() > 1, "long enough to be chained");
    let last = parts.len() - 1;
    for (i, part) in parts.into_iter().enumerate() {
        let result = engine
            .receive(&telegram(secure::SEC_CDM, part, ID, 0))
            .await;
        if i < last {
            assert!(result.is_none(), "part {i} is held");
            continue;
        }
        match result {
            Some(DeviceResult::Data { telegram, fields }) => {
                assert_eq!(telegram.rorg, 0xD2);
                assert_eq!(telegram.security_level, Some(4));
                assert!((number(&fields, "temperature") - 23.0).abs() < 0.5);
                assert!((number(&fields, "humidity") - 40.0).abs() < 1.0);
            }
            other => panic!("chain not decoded: {other:?}"),
        }
    }
    assert_eq!(stored_code(&redis).await.as_deref(), Some("42"));
}

#[tokio::test]
async fn ptm_switch_maps_to_rocker_data() {
    let redis = Redis::start();
    onboard(
        &redis,
        json!({"sourceEurid": EURID, "friendlyID": "switch", "eep": "F6-02-01",
               "AESKey": KEY, "slf": "8b", "isPTM": true}),
    )
    .await;
    let mut engine = Engine::start(&redis, Settings::default()).await;
    let ctx = SecureContext::from_hex(KEY, "8b", true).unwrap();
    // Nibble 0xE: A0 pressed; the PTM's implicit code starts at 0.
    let pressed = telegram(
        secure::SEC,
        secure::encrypt_ptm(&ctx, 0, 0xE).unwrap(),
        ID,
        0,
    );
    match engine.receive(&pressed).await {
        Some(DeviceResult::Data { telegram, fields }) => {
            assert_eq!(telegram.rorg, 0xF6);
            assert_eq!(telegram.data, vec![0x30]);
            assert_eq!(telegram.status & 0x30, 0x30, "T21 and NU set");
            assert!(!fields.is_empty());
        }
        other => panic!("rocker not decoded: {other:?}"),
    }
    let released = telegram(
        secure::SEC,
        secure::encrypt_ptm(&ctx, 1, 0xF).unwrap(),
        ID,
        0,
    );
    assert!(matches!(
        engine.receive(&released).await,
        Some(DeviceResult::Data { .. })
    ));
    assert_eq!(stored_code(&redis).await.as_deref(), Some("1"));
    // The last telegram again is a replay; an older one cannot be told from a forgery.
    assert_eq!(
        event(engine.receive(&released).await).0,
        EventCode::RlcReplay
    );
    assert_eq!(
        event(engine.receive(&pressed).await).0,
        EventCode::MacValidationError
    );
}

fn teach_in_telegrams(key: &str, slf: u8, rlc: u32, psk: Option<&[u8; 16]>) -> Vec<Telegram> {
    let t = SecureTeachIn {
        info: TeachInInfo(0),
        slf: Slf::new(slf).unwrap(),
        rlc,
        key: secure::parse_key(key).unwrap(),
    };
    t.to_payloads(psk, secure::ERP1_PART_LEN)
        .unwrap()
        .into_iter()
        .map(|p| telegram(secure::SEC_TI, p, ID, 0))
        .collect()
}

async fn device_json(redis: &Redis) -> EnOceanSensor {
    let mut r = redis.manager().await;
    let json: String = r
        .hget(keys::DEVICES, keys::device_field(EURID, "ffffffff"))
        .await
        .unwrap();
    serde_json::from_str(&json).unwrap()
}

/// The device's key in the registry, lower-case.
async fn key_of(redis: &Redis) -> String {
    device_json(redis)
        .await
        .aes_key
        .unwrap_or_default()
        .to_ascii_lowercase()
}

#[tokio::test]
async fn teach_in_sets_the_key_and_starts_the_code_over() {
    let redis = Redis::start();
    onboard(&redis, secure_device("A5-02-05", KEY, "f3")).await;
    let mut engine = Engine::start(&redis, Settings::default()).await;
    data(
        engine
            .receive(&temperature(&ctx(KEY, "f3"), 500, 20.0))
            .await,
    );

    let mut changes = redis.client().get_async_pubsub().await.unwrap();
    changes.subscribe(keys::DEVICES_CHANGED).await.unwrap();

    open_window(&redis).await;
    let parts = teach_in_telegrams(NEW_KEY, 0xF3, 0x10, None);
    assert_eq!(parts.len(), 2);
    let reason = not_processed(engine.receive(&parts[0]).await);
    assert!(reason.contains("waiting"), "{reason}");
    let reason = not_processed(engine.receive(&parts[1]).await);
    assert!(reason.contains("applied"), "{reason}");

    // The registry holds the new key, other fields unchanged, and the change is announced.
    let stored = device_json(&redis).await;
    assert_eq!(stored.aes_key.as_deref(), Some(NEW_KEY));
    assert_eq!(stored.slf.as_deref(), Some("f3"));
    assert_eq!(stored.friendly_id, "secure sensor");
    let msg = tokio::time::timeout(Duration::from_secs(5), changes.on_message().next())
        .await
        .expect("DEVICES_CHANGED published")
        .unwrap();
    assert_eq!(
        msg.get_payload::<String>().unwrap(),
        keys::device_field(EURID, "ffffffff")
    );
    // The registry's version moved, so the API's cached device lists are renewed.
    let version: Option<u64> = redis
        .manager()
        .await
        .get(keys::DEVICES_VERSION)
        .await
        .unwrap();
    assert_eq!(version, Some(1));
    // The code starts over at the announced one (stored as announced - 1).
    assert_eq!(stored_code(&redis).await.as_deref(), Some("15"));

    // The next telegram under the new key decodes at once (before the copy is reloaded),
    // one under the old key no longer does.
    let new_ctx = ctx(NEW_KEY, "f3");
    data(engine.receive(&temperature(&new_ctx, 0x10, 24.0)).await);
    assert_eq!(
        event(
            engine
                .receive(&temperature(&ctx(KEY, "f3"), 501, 24.0))
                .await
        )
        .0,
        EventCode::MacValidationError
    );
    engine.reload().await;
    data(engine.receive(&temperature(&new_ctx, 0x11, 24.0)).await);
    assert_eq!(
        event(engine.receive(&temperature(&new_ctx, 0x10, 24.0)).await).0,
        EventCode::RlcReplay
    );

    // The same teach-in played back later does not reopen old codes.
    for t in &parts {
        engine.receive(t).await;
    }
    assert_eq!(stored_code(&redis).await.as_deref(), Some("17"));
    assert_eq!(
        event(engine.receive(&temperature(&new_ctx, 0x11, 24.0)).await).0,
        EventCode::RlcReplay
    );
}

#[tokio::test]
async fn teach_in_makes_a_plain_device_secure() {
    let redis = Redis::start();
    onboard(
        &redis,
        json!({"sourceEurid": EURID, "friendlyID": "plain", "eep": "A5-02-05"}),
    )
    .await;
    let mut engine = Engine::start(&redis, Settings::default()).await;
    open_window(&redis).await;
    for t in teach_in_telegrams(NEW_KEY, 0xAB, 0, None) {
        engine.receive(&t).await;
    }
    let stored = device_json(&redis).await;
    assert!(stored.is_secure());
    assert_eq!(stored.slf.as_deref(), Some("ab"));
    assert_eq!(
        stored_code(&redis).await,
        None,
        "announced code 0: nothing accepted yet"
    );
    let ctx = ctx(NEW_KEY, "ab");
    data(engine.receive(&temperature(&ctx, 0, 19.0)).await);
    engine.reload().await;
    data(engine.receive(&temperature(&ctx, 1, 19.0)).await);
    let (rorg, bytes, status) = eep::encode("A5-02-05".parse().unwrap(), &[("TMP", 19.0)]).unwrap();
    assert_eq!(
        event(engine.receive(&telegram(rorg, bytes, ID, status)).await).0,
        EventCode::DeviceSendNowUnsecure
    );
}

#[tokio::test]
async fn pre_shared_key_teach_ins() {
    let redis = Redis::start();
    onboard(&redis, secure_device("A5-02-05", KEY, "f3")).await;
    let psk = secure::parse_key(PSK).unwrap();
    let encrypted = teach_in_telegrams(NEW_KEY, 0xF3, 5, Some(&psk));
    let plain = teach_in_telegrams(NEW_KEY, 0xF3, 5, None);

    // Without the PSK the teach-in cannot be read; nothing changes.
    let mut engine = Engine::start(&redis, Settings::default()).await;
    engine.receive(&encrypted[0]).await;
    let reason = not_processed(engine.receive(&encrypted[1]).await);
    assert!(reason.contains("IOT_SECURE_PSK"), "{reason}");
    assert_eq!(key_of(&redis).await, KEY);

    // `psk` policy: a teach-in without PSK is refused, even inside a learn window; one
    // with it replaces the key set through the API only inside a window.
    let settings = Settings {
        psk: Some(psk),
        teach_in: TeachInPolicy::Psk,
        ..Settings::default()
    };
    let mut engine = Engine::start(&redis, settings).await;
    open_window(&redis).await;
    engine.receive(&plain[0]).await;
    let refused = event(engine.receive(&plain[1]).await);
    assert_eq!(refused.0, EventCode::SecureTeachInRefused);
    assert!(refused.1.contains("pre-shared"), "{}", refused.1);
    assert_eq!(key_of(&redis).await, KEY);
    redis
        .manager()
        .await
        .del::<_, ()>(keys::device_learn(EURID))
        .await
        .unwrap();
    engine.receive(&encrypted[0]).await;
    let refused = event(engine.receive(&encrypted[1]).await);
    assert!(refused.1.contains("set through the API"), "{}", refused.1);
    assert_eq!(key_of(&redis).await, KEY);
    open_window(&redis).await;
    for t in &encrypted {
        engine.receive(t).await;
    }
    assert_eq!(key_of(&redis).await, NEW_KEY);
    // That key came by radio: another PSK teach-in may replace it without a window.
    engine.reload().await;
    for t in teach_in_telegrams(KEY, 0xF3, 9, Some(&psk)) {
        engine.receive(&t).await;
    }
    assert_eq!(key_of(&redis).await, KEY);
    open_window(&redis).await;
    for t in &encrypted {
        engine.receive(t).await;
    }
    assert_eq!(key_of(&redis).await, NEW_KEY);
    data(
        engine
            .receive(&temperature(&ctx(NEW_KEY, "f3"), 5, 20.0))
            .await,
    );

    // `off`: teach-ins are ignored.
    let settings = Settings {
        teach_in: TeachInPolicy::Off,
        ..Settings::default()
    };
    let mut engine = Engine::start(&redis, settings).await;
    open_window(&redis).await;
    let parts = teach_in_telegrams(KEY, 0xF3, 0, None);
    engine.receive(&parts[0]).await;
    let refused = event(engine.receive(&parts[1]).await);
    assert_eq!(refused.0, EventCode::SecureTeachInRefused);
    assert!(refused.1.contains("off"), "{}", refused.1);
    assert_eq!(key_of(&redis).await, NEW_KEY);
}

#[tokio::test]
async fn only_secure_devices_drops_unverified_telegrams() {
    let redis = Redis::start();
    onboard(&redis, secure_device("A5-02-05", KEY, "f3")).await;
    onboard(
        &redis,
        json!({"sourceEurid": "0190e2e2", "friendlyID": "plain", "eep": "A5-02-05"}),
    )
    .await;
    let settings = Settings {
        only_secure: true,
        ..Settings::default()
    };
    let mut engine = Engine::start(&redis, settings).await;
    let (rorg, bytes, status) = eep::encode("A5-02-05".parse().unwrap(), &[("TMP", 12.0)]).unwrap();
    let reason = not_processed(
        engine
            .receive(&telegram(rorg, bytes, 0x0190_e2e2, status))
            .await,
    );
    assert!(reason.contains("ONLY_SECURE_DEVICES"), "{reason}");
    data(engine.receive(&temperature(&ctx(KEY, "f3"), 1, 20.0)).await);
}

/// A device onboarded with key K1 through the API; somebody in radio range sends a secure
/// teach-in with K2 and then telegrams valid under K2. Outside a learn window nothing of it
/// is accepted; inside one the same teach-in is applied.
#[tokio::test]
async fn radio_teach_in_cannot_take_over_a_device() {
    let redis = Redis::start();
    onboard(&redis, secure_device("A5-02-05", KEY, "f3")).await;
    let mut engine = Engine::start(&redis, Settings::default()).await;
    data(
        engine
            .receive(&temperature(&ctx(KEY, "f3"), 100, 20.0))
            .await,
    );

    let attack = teach_in_telegrams(NEW_KEY, 0xF3, 0, None);
    assert!(engine.receive(&attack[0]).await.is_some());
    let (code, message) = event(engine.receive(&attack[1]).await);
    assert_eq!(code, EventCode::SecureTeachInRefused);
    assert!(message.contains(EURID), "{message}");
    assert_eq!(
        key_of(&redis).await,
        KEY,
        "the key set through the API stays"
    );
    let forged = engine
        .receive(&temperature(&ctx(NEW_KEY, "f3"), 1, 35.0))
        .await;
    assert_eq!(event(forged).0, EventCode::MacValidationError);
    // The device itself goes on unharmed.
    data(
        engine
            .receive(&temperature(&ctx(KEY, "f3"), 101, 21.0))
            .await,
    );

    // The operator opens the device's learn window: the same teach-in is applied once,
    // and the window closes behind it.
    open_window(&redis).await;
    for t in &attack {
        engine.receive(t).await;
    }
    assert_eq!(key_of(&redis).await, NEW_KEY);
    let open: bool = redis
        .manager()
        .await
        .exists(keys::device_learn(EURID))
        .await
        .unwrap();
    assert!(!open, "the window lets in one key");
    data(
        engine
            .receive(&temperature(&ctx(NEW_KEY, "f3"), 1, 22.0))
            .await,
    );
}

/// The window for all devices works like the device's own.
#[tokio::test]
async fn learn_window_for_all_devices() {
    let redis = Redis::start();
    onboard(
        &redis,
        json!({"sourceEurid": EURID, "friendlyID": "plain", "eep": "A5-02-05"}),
    )
    .await;
    let mut engine = Engine::start(&redis, Settings::default()).await;
    let parts = teach_in_telegrams(NEW_KEY, 0xF3, 0, None);
    for t in &parts {
        engine.receive(t).await;
    }
    assert!(!device_json(&redis).await.is_secure(), "no window: refused");
    let () = redis
        .manager()
        .await
        .set_ex(keys::LEARN_ALL, 1, 60)
        .await
        .unwrap();
    for t in &parts {
        engine.receive(t).await;
    }
    assert_eq!(key_of(&redis).await, NEW_KEY);
}

/// A stream entry read again after its code was stored (crash before the acknowledgement,
/// XAUTOCLAIM by another engine) is the same telegram: published again, not a replay. Any
/// other entry with that code is a replay.
#[tokio::test]
async fn redelivered_entry_is_not_a_replay() {
    let redis = Redis::start();
    onboard(&redis, secure_device("A5-02-05", KEY, "f3")).await;
    let k = ctx(KEY, "f3");
    let first = temperature(&k, 7, 20.0);
    let mut engine = Engine::start(&redis, Settings::default()).await;
    data(engine.settle_entry("100-0", &first).await);
    assert_eq!(stored_code(&redis).await.as_deref(), Some("7"));

    // The same engine reads it again, then a fresh engine (after a restart) does.
    data(engine.settle_entry("100-0", &first).await);
    let mut restarted = Engine::start(&redis, Settings::default()).await;
    data(restarted.settle_entry("100-0", &first).await);

    // Recorded and sent again by someone else: another entry, a replay.
    assert_eq!(
        event(restarted.settle_entry("101-0", &first).await).0,
        EventCode::RlcReplay
    );
    // The device moves on; the old entry is now older than the code.
    data(
        restarted
            .settle_entry("102-0", &temperature(&k, 8, 21.0))
            .await,
    );
    assert_eq!(
        event(restarted.settle_entry("100-0", &first).await).0,
        EventCode::RlcReplay
    );
    let mut third = Engine::start(&redis, Settings::default()).await;
    data(third.settle_entry("102-0", &temperature(&k, 8, 21.0)).await);
}
