//! Issue 15: telegrams decoded as the EnOcean Alliance's profile descriptions give them.
//!
//! Expected values come from the Alliance's EEP descriptions: EEP 2.6.5 for the profiles it
//! holds, and the Alliance XML of each newer profile (public repository
//! DamienBraillard/enocean-plus, `doc/enocean/eep/<RORG>/<FUNC>/<EEP>.xml`).

use enocean::eep::{self, Direction};
use enocean::{Field, Value};

fn decode_dir(eep: &str, rorg: u8, data: &[u8], direction: Direction) -> Vec<Field> {
    eep::decode_with(eep.parse().unwrap(), rorg, data, 0, direction)
        .unwrap_or_else(|e| panic!("{eep} {data:02X?}: {e}"))
}

fn decode(eep: &str, rorg: u8, data: &[u8]) -> Vec<Field> {
    decode_dir(eep, rorg, data, Direction::FromDevice)
}

fn get<'a>(fields: &'a [Field], shortcut: &str) -> &'a Field {
    fields
        .iter()
        .find(|f| f.shortcut == shortcut)
        .unwrap_or_else(|| panic!("no {shortcut} in {fields:?}"))
}

fn number(fields: &[Field], shortcut: &str) -> f64 {
    match get(fields, shortcut).value {
        Value::Number(n) => n,
        ref other => panic!("{shortcut}: {other:?} is not a number"),
    }
}

fn text(fields: &[Field], shortcut: &str) -> String {
    match &get(fields, shortcut).value {
        Value::Text(t) => t.to_string(),
        other => panic!("{shortcut}: {other:?} is not a name"),
    }
}

#[test]
fn unlisted_enumeration_values_are_reported_as_reserved() {
    // A5-13-10 (EEP 2.6.5): SNE (DB3 bits 6..0) is 0..90°; raw 100 (DB3 = 200) is not listed. Identifier
    // 7, day, LRN data telegram. The other fields keep their values.
    let before = eep::unlisted_values();
    let fields = decode("A5-13-10", 0xA5, &[200, 90, 0, 0x78]);
    let sne = get(&fields, "SNE");
    assert_eq!(
        (sne.raw, &sne.value, sne.meaning.as_deref()),
        (100, &Value::Number(100.0), Some("reserved"))
    );
    assert_eq!(number(&fields, "SNA"), 0.0);
    assert_eq!(text(&fields, "D/N"), "day");
    assert!(eep::unlisted_values() > before);
    // The profiles issue 15 names (EEP 2.6.5): A5-11-02 CTM lists 1..3 (raw 0 here), A5-37-01
    // TMOS lists 1..255 (raw 0), A5-20-02 SPI lists only 1 (raw 0). Each field is reported as
    // reserved and the telegram's other fields are kept.
    for (eep, shortcut, kept, value) in [
        ("A5-11-02", "CTM", "CVAR", 19.61),
        ("A5-37-01", "TMOS", "TMPD", 50.0),
        ("A5-20-02", "SPI", "AV", 50.0),
    ] {
        let fields = decode(eep, 0xA5, &[50, 0, 0, 0x08]);
        let field = get(&fields, shortcut);
        assert_eq!(field.meaning.as_deref(), Some("reserved"), "{eep}");
        assert_eq!(field.value, Value::Number(0.0), "{eep}");
        assert_eq!(number(&fields, kept), value, "{eep}");
    }
    // D2-06-10 (Alliance XML): a range the profile lists as "Reserved" keeps its own name.
    let fields = decode("D2-06-10", 0xD2, &[0x02, 0x0A, 0x00, 0x00, 0x00]);
    assert_eq!(text(&fields, "PS"), "reserved");
}

#[test]
fn new_profiles_decode() {
    // A5-04-04 (Alliance XML, ITEC): humidity 0..199 = 0..100 %, temperature 12 bits
    // 0..1599 = -40..120 °C.
    let fields = decode("A5-04-04", 0xA5, &[199, 0x06, 0x3F, 0x08]);
    assert_eq!(number(&fields, "HUM"), 100.0);
    assert_eq!(number(&fields, "TMP"), 120.0);
    let fields = decode("A5-04-04", 0xA5, &[0, 0x00, 0x00, 0x08]);
    assert_eq!(number(&fields, "TMP"), -40.0);
    // A5-14-09 (Alliance XML, EiMSIG): SVC 0..250 = 0..5 V, CT 0b01 tilt, 0b11 open.
    let fields = decode("A5-14-09", 0xA5, &[125, 0, 0, 0x0A]);
    assert_eq!(number(&fields, "SVC"), 2.5);
    assert_eq!(text(&fields, "CT"), "tilt");
    // D2-06-10 (Alliance XML, Roto Frank), status message: tilt 50 %, aeration 600 s.
    let fields = decode("D2-06-10", 0xD2, &[0x02, 0x04, 50, 0x02, 0x58]);
    assert_eq!(text(&fields, "PS"), "tiltStopped");
    assert_eq!(number(&fields, "TP"), 50.0);
    assert_eq!(number(&fields, "RAT"), 600.0);
    // D2-14-50 (Alliance XML, Echoflex): temperature 9 bits 0..500 = 0..50 °C, pH 0..140 =
    // 0..14. Bits: 250 = 0b011111010, bit 9 unused, pH 70 = 0b01000110.
    let fields = decode("D2-14-50", 0xD2, &[0x7D, 0x11, 0x80]);
    assert_eq!(number(&fields, "TMP10"), 25.0);
    assert_eq!(number(&fields, "PH"), 7.0);
}

#[test]
fn every_message_of_a_multi_message_profile_is_selected() {
    // D2-06-10: the message ID (byte 0) selects Set, Query, Status, Service, either direction.
    let set = decode_dir(
        "D2-06-10",
        0xD2,
        &[0x00, 0xFE, 0xFF, 0xFF],
        Direction::ToDevice,
    );
    assert_eq!(text(&set, "WP"), "stop");
    assert_eq!(text(&set, "AT"), "continuousAeration");
    let query = decode_dir("D2-06-10", 0xD2, &[0x01, 0x01], Direction::ToDevice);
    assert_eq!(text(&query, "RT"), "service");
    let service = decode("D2-06-10", 0xD2, &[0x03, 0x05, 0x00, 0x07]);
    assert_eq!(text(&service, "FC"), "driveTimeout");
    assert_eq!(number(&service, "TC"), 7.0);
    // A5-13-01..06 (EEP 2.6.5): the identifier (DB0 bits 7..4) selects the message.
    let sun = decode("A5-13-02", 0xA5, &[255, 0, 0, 0x28]);
    assert_eq!(number(&sun, "SNW"), 150.0);
    let date = decode("A5-13-03", 0xA5, &[0x1F, 0x0C, 0x19, 0x38]);
    assert_eq!(number(&date, "DY"), 31.0);
    // A5-38-08 (EEP 2.6.5): COM selects the command; 0x02 dimming, EDIM 100 of 0..255.
    let dim = decode_dir(
        "A5-38-08",
        0xA5,
        &[0x02, 0x64, 0x00, 0x09],
        Direction::ToDevice,
    );
    assert_eq!(text(&dim, "SW"), "on");
    assert_eq!(text(&dim, "EDIM R"), "absoluteValue");
    // A5-3F-00 (EEP 2.6.5): MSG-Source tells master test from slave reply, in either
    // direction; RSSI level 2 = -32 dBm.
    let reply = decode("A5-3F-00", 0xA5, &[0x42, 0x00, 0x00, 0x0D]);
    assert_eq!(number(&reply, "RSLV"), -32.0);
    assert_eq!(text(&reply, "MSGS"), "rltSlave");
}

#[test]
fn d2_14_30_reports_the_smoke_alarm_as_sma() {
    // D2-14-30 (Alliance XML, Nexelec): bit 0 is the smoke alarm, shortcut SMA; TMP bits
    // 23..30 (0..250 = 0..50 °C), HUM bits 31..38 (0..200 = 0..100 %).
    let mut data = [0u8; 6];
    data[0] = 0x80;
    let fields = decode("D2-14-30", 0xD2, &data);
    assert_eq!(
        get(&fields, "SMA").meaning.as_deref(),
        Some("Smoke Alarm activated")
    );
}

#[test]
fn teach_in_telegrams_decode_with_the_learn_field() {
    // A5-04-01, A5-07-01, A5-14-09 (EEP 2.6.5 / Alliance XML): LRN bit (DB0.3) 0 = "Teach-in
    // telegram"; the telegram is read with the profile's layout.
    for eep in ["A5-04-01", "A5-07-01", "A5-14-09"] {
        let fields = decode(eep, 0xA5, &[0x10, 0x08, 0x0D, 0x80]);
        let learn = get(&fields, "LRNB");
        assert_eq!(learn.value, Value::Text("pressed".into()), "{eep}");
        assert_eq!(learn.meaning.as_deref(), Some("Teach-in telegram"), "{eep}");
        assert!(fields.len() > 1, "{eep}: {fields:?}");
    }
}

#[test]
fn direction_two_messages_encode_and_decode() {
    // A5-20-04 direction 2 (EEP 2.6.5): valve position 40 %, set point raw 255 = 30 °C.
    let eep = "A5-20-04".parse().unwrap();
    let values = [("POS", 40.0), ("TSP", 30.0)];
    let (rorg, data, status) = eep::encode_with(eep, &values, Direction::ToDevice).unwrap();
    assert_eq!((data[0], data[1]), (40, 255));
    let fields = decode_dir("A5-20-04", rorg, &data, Direction::ToDevice);
    assert_eq!(number(&fields, "POS"), 40.0);
    assert_eq!(number(&fields, "TSP"), 30.0);
    assert_eq!(status, 0);
    // A5-20-03 direction 2: ATS is a temperature set point 0..40 °C over 0..255 when SPS = 1.
    let eep = "A5-20-03".parse().unwrap();
    let values = [("SPS", 1.0), ("ATS", 40.0)];
    let (_, data, _) = eep::encode_with(eep, &values, Direction::ToDevice).unwrap();
    assert_eq!(data[0], 255);
    let fields = decode_dir("A5-20-03", 0xA5, &data, Direction::ToDevice);
    assert_eq!(number(&fields, "ATS"), 40.0);
    assert_eq!(get(&fields, "ATS").unit, Some("°C"));
}

/// `tests/data/eep_alliance_xml.json`: one telegram per profile added from the Alliance XML.
#[test]
fn profiles_from_the_alliance_xml_decode_their_telegrams() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/eep_alliance_xml.json"
    ))
    .unwrap();
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut failures = Vec::new();
    for case in file["cases"].as_array().unwrap() {
        let eep = case["eep"].as_str().unwrap();
        let rorg = u8::from_str_radix(case["rorg"].as_str().unwrap(), 16).unwrap();
        let data = hex::decode(case["data"].as_str().unwrap()).unwrap();
        let direction = match case["direction"].as_u64() {
            Some(2) => Direction::ToDevice,
            _ => Direction::FromDevice,
        };
        let fields = match eep::decode_with(eep.parse().unwrap(), rorg, &data, 0, direction) {
            Ok(fields) => fields,
            Err(e) => {
                failures.push(format!("{eep} {}: {e}", case["data"]));
                continue;
            }
        };
        for (shortcut, want) in case["expect"].as_object().unwrap() {
            let got = fields.iter().find(|f| f.shortcut == shortcut);
            if !matches_expectation(got, want) {
                failures.push(format!("{eep} {shortcut}: {got:?} is not {want}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn matches_expectation(got: Option<&Field>, want: &serde_json::Value) -> bool {
    let Some(field) = got else { return false };
    match (want, &field.value) {
        (serde_json::Value::String(name), Value::Text(t)) => name == t,
        (serde_json::Value::Array(pair), Value::Number(n)) => {
            (pair[0].as_f64().unwrap() - n).abs() < 0.005 && pair[1].as_str() == field.unit
        }
        _ => false,
    }
}

#[test]
fn a5_06_range_select_chooses_ill1_or_ill2() {
    // A5-06-01 (Alliance XML, EEP 2.6.5): RS (DB0.0) 0 = "Range acc. to DB_1 (ILL1)" 600..60000 lx,
    // 1 = "Range acc. to DB_2 (ILL2)" 300..30000 lx. DB2 = 128, DB1 = 64.
    let fields = decode("A5-06-01", 0xA5, &[0, 128, 64, 0x09]);
    assert_eq!(number(&fields, "ILL2"), 15208.24);
    assert!(fields.iter().all(|f| f.shortcut != "ILL1"), "{fields:?}");
    let fields = decode("A5-06-01", 0xA5, &[0, 128, 64, 0x08]);
    assert_eq!(number(&fields, "ILL1"), 15508.24);
    // A5-06-05: ILL2 0..5100 lx, ILL1 0..10200 lx.
    let fields = decode("A5-06-05", 0xA5, &[0, 128, 64, 0x09]);
    assert_eq!(number(&fields, "ILL2"), 2560.0);
}
