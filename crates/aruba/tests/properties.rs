//! Decoding never panics on arbitrary bytes, and what the structs encode decodes back equal.

use aruba::{ApHealthUpdate, HealthStatus, IotSbMessage, Reporter, Telemetry, UsbDevice};
use proptest::prelude::*;
use prost::Message;

fn reporter() -> impl Strategy<Value = Reporter> {
    (
        proptest::option::of("[ -~]{0,16}"),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 6)),
        proptest::option::of("[0-9.-]{0,20}"),
        proptest::option::of(any::<u64>()),
    )
        .prop_map(|(name, mac, sw, time)| Reporter {
            name,
            mac,
            sw_version: sw,
            time,
            ..Reporter::default()
        })
}

fn health_status() -> impl Strategy<Value = HealthStatus> {
    prop_oneof![
        Just(HealthStatus::Healthy),
        Just(HealthStatus::Degraded),
        Just(HealthStatus::Unavailable)
    ]
}

proptest! {
    #[test]
    fn arbitrary_bytes_do_not_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Telemetry::decode(bytes.as_slice());
        let _ = IotSbMessage::decode(bytes.as_slice());
    }

    #[test]
    fn serial_data_round_trips(
        token in "[A-Za-z0-9+/=]{1,64}",
        reporter in reporter(),
        frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..4),
    ) {
        let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let msg = Telemetry::serial_data(&token, reporter, "ENOCEAN_USB:00", &refs);
        let back = Telemetry::decode(msg.encode_to_vec().as_slice()).unwrap();
        prop_assert_eq!(back, msg);
    }

    #[test]
    fn health_round_trips(reporter in reporter(), ap in health_status(), usb in proptest::collection::vec(health_status(), 0..3)) {
        let health = ApHealthUpdate {
            ap_status: Some(ap as i32),
            radio: Vec::new(),
            usb: usb.iter().enumerate().map(|(i, s)| UsbDevice::new(&format!("ENOCEAN_USB:{i}"), *s)).collect(),
        };
        let msg = Telemetry::health("t", reporter, health);
        let back = Telemetry::decode(msg.encode_to_vec().as_slice()).unwrap();
        prop_assert_eq!(back.ap_health.as_ref().unwrap().ap_status(), ap);
        prop_assert_eq!(back, msg);
    }
}
