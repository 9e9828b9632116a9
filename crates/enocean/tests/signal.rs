//! Signal telegrams (R-ORG 0xD0).

use enocean::signal::{self, SignalError};
use enocean::telegram::Telegram;
use enocean::{Field, Value, esp3};
use serde_json::json;

fn json_of(fields: &[Field]) -> serde_json::Value {
    serde_json::to_value(fields).unwrap()
}

#[test]
fn energy_status_matches_the_iotc_example() {
    // IoTC's published telemetry: raw data d00638 gives these two signal entries.
    let frame = esp3::encode_frame(1, &[0xD0, 0x06, 0x38, 0x04, 0x13, 0xD7, 0x59, 0x80], &[]);
    let t = Telegram::from_esp3(&frame).unwrap();
    assert_eq!(t.data_hex(), "d00638");
    let fields = signal::decode(&t.data).unwrap();
    assert_eq!(
        json_of(&fields),
        json!([
            {"key": "signalIdentifier", "value": "0x6", "meaning": "Energy status of device"},
            {"key": "energy", "value": 56.0, "unit": "%"}
        ])
    );
}

#[test]
fn every_mid_has_an_identifier_and_its_content() {
    let cases: &[(&[u8], &[&str])] = &[
        (&[0x01], &[]),
        (&[0x02], &[]),
        (&[0x03], &[]),
        (&[0x04, 0x01], &["requestedSignal"]),
        (&[0x05], &[]),
        (&[0x06, 0x64], &["energy"]),
        (
            &[0x07, 1, 2, 3, 4, 5, 6, 7, 8],
            &["softwareVersion", "hardwareVersion"],
        ),
        (&[0x08], &[]),
        (&[0x09], &[]),
        (
            &[0x0A, 0x01, 0x02, 0x03, 0x04, 0x40, 0x50, 0x32],
            &[
                "bestReceiverId",
                "rssiMax",
                "rssiMin",
                "subTelegramCount",
                "repeaterCount",
            ],
        ),
        (&[0x0B, 0x01], &["dutyCycle"]),
        (&[0x0C], &[]),
        (&[0x0D, 0x02], &["harvesterStatus"]),
        (&[0x0E], &[]),
        (&[0x0F], &[]),
        (&[0x10, 0x32], &["backupBattery"]),
        (
            &[0x11, 0xC5, 0x03, 0x01, 0x02, 0x03, 0x04, 0xA5, 0x02, 0x05],
            &[
                "linkTableFull",
                "teachRequestReceived",
                "learnModeType",
                "teachResult",
                "learnModeTimeout",
                "deviceId",
                "eep",
            ],
        ),
        (
            &[0x12, 0x00, 0x0B, 0x00, 0x00, 0x12, 0x34],
            &["manufacturerId", "productId"],
        ),
    ];
    for (mid, (data, keys)) in (1u8..).zip(cases) {
        assert_eq!(data[0], mid);
        let fields = signal::decode(data).unwrap();
        assert_eq!(fields[0].key, "signalIdentifier");
        assert_eq!(fields[0].value, Value::Text(format!("0x{mid:x}").into()));
        assert_eq!(fields[0].meaning.as_deref(), signal::mid_meaning(mid));
        let got: Vec<&str> = fields[1..].iter().map(|f| f.key.as_ref()).collect();
        assert_eq!(got, *keys, "MID {mid:#x}");
        if data.len() > 1 {
            assert!(
                matches!(
                    signal::decode(&data[..data.len() - 1]),
                    Err(SignalError::TooShort { .. })
                ),
                "MID {mid:#x} with a byte missing"
            );
        }
    }
    assert_eq!(signal::decode(&[0x13]), Err(SignalError::UnknownMid(0x13)));
    assert_eq!(signal::decode(&[]), Err(SignalError::Empty));
}

#[test]
fn content_values() {
    let v = json_of(&signal::decode(&[0x07, 1, 2, 3, 4, 5, 6, 7, 8]).unwrap());
    assert_eq!(v[1]["value"], "1.2.3.4");
    assert_eq!(v[2]["value"], "5.6.7.8");

    let v = json_of(&signal::decode(&[0x0A, 0x01, 0x02, 0x03, 0x04, 0x40, 0x50, 0x32]).unwrap());
    assert_eq!(v[1]["value"], "01020304");
    assert_eq!(
        v[2],
        json!({"key": "rssiMax", "value": -64.0, "unit": "dBm"})
    );
    assert_eq!(
        v[3],
        json!({"key": "rssiMin", "value": -80.0, "unit": "dBm"})
    );
    assert_eq!(v[4]["value"], 3.0);
    assert_eq!(v[5]["value"], 2.0);

    let v = json_of(&signal::decode(&[0x04, 0x03]).unwrap());
    assert_eq!(
        v[1],
        json!({"key": "requestedSignal", "value": "0xa", "meaning": "RX channel quality"})
    );

    let v = json_of(&signal::decode(&[0x0D, 0x04]).unwrap());
    assert_eq!(
        v[1],
        json!({"key": "harvesterStatus", "value": "veryBad", "meaning": "Very bad"})
    );

    let v = json_of(&signal::decode(&[0x0B, 0x00]).unwrap());
    assert_eq!(v[1]["value"], "reached");

    let v = json_of(&signal::decode(&[0x10, 0xFF]).unwrap());
    assert_eq!(
        v[1],
        json!({"key": "backupBattery", "value": 255.0, "meaning": "Not available"})
    );

    let v = json_of(
        &signal::decode(&[0x11, 0xC5, 0x03, 0x01, 0x02, 0x03, 0x04, 0xA5, 0x02, 0x05]).unwrap(),
    );
    assert_eq!(v[1]["value"], "true");
    assert_eq!(v[2]["value"], "true");
    assert_eq!(v[3]["value"], 0.0);
    assert_eq!(v[4]["value"], 5.0);
    assert_eq!(v[5]["value"], 3.0);
    assert_eq!(v[6]["value"], "01020304");
    assert_eq!(v[7]["value"], "A5-02-05");

    let v = json_of(&signal::decode(&[0x12, 0x00, 0x0B, 0x00, 0x00, 0x12, 0x34]).unwrap());
    assert_eq!(v[1]["value"], 11.0);
    assert_eq!(v[2]["value"], "00001234");
}
