//! Every Aruba message in tests/data/vectors.json decodes to what the interface guide says
//! and re-encodes to the same bytes.

use aruba::aos10::{Topic, TransportNbData};
use aruba::{HealthStatus, IotRadioType, IotSbMessage, NbTopic, SbTopic, Telemetry};
use prost::Message;

fn vectors() -> serde_json::Value {
    serde_json::from_str(include_str!("data/vectors.json")).unwrap()
}

fn bytes(name: &str) -> Vec<u8> {
    let v = vectors();
    let hex_text = v[name]
        .as_str()
        .unwrap_or_else(|| panic!("no vector {name}"));
    hex::decode(hex_text).unwrap()
}

fn telemetry(name: &str) -> Telemetry {
    let raw = bytes(name);
    let msg = Telemetry::decode(raw.as_slice()).unwrap();
    assert_eq!(
        msg.encode_to_vec(),
        raw,
        "{name} re-encodes byte-identically"
    );
    assert_eq!(msg.encoded_len(), raw.len());
    msg
}

fn sb_message(name: &str) -> IotSbMessage {
    let raw = bytes(name);
    let msg = IotSbMessage::decode(raw.as_slice()).unwrap();
    assert_eq!(
        msg.encode_to_vec(),
        raw,
        "{name} re-encodes byte-identically"
    );
    msg
}

const OFFICIAL_USB: &str = "ENOCEAN_USB:f6a68e740ecc549496d4b63072a33920";
const LAB_USB: &str = "ENOCEAN_USB:deb480d77718bbbe5253896b9300acfd";

fn assert_official_reporter(msg: &Telemetry, build: &str, time: u64) {
    let r = &msg.reporter;
    assert_eq!(r.name.as_deref(), Some("515-2"));
    assert_eq!(r.mac_hex().as_deref(), Some("904c81cf3886"));
    assert_eq!(r.ipv4.as_deref(), Some("192.168.8.122"));
    assert_eq!(r.ipv6, None);
    assert_eq!(r.hw_type.as_deref(), Some("AP-515"));
    assert_eq!(r.sw_version.as_deref(), Some("8.8.0.0-8.8.0.0"));
    assert_eq!(r.short_sw_version(), "8.8.0.0");
    assert_eq!(r.sw_build.as_deref(), Some(build));
    assert_eq!(r.time, Some(time));
    assert_eq!(msg.meta.version, 1);
    assert_eq!(msg.access_token(), Some("0123456789"));
}

fn assert_lab_reporter(msg: &Telemetry) {
    let r = &msg.reporter;
    assert_eq!(r.name.as_deref(), Some("AP-505-lab"));
    assert_eq!(r.mac_bytes(), Some([0x20, 0x4c, 0x03, 0x34, 0x44, 0x41]));
    assert_eq!(r.hw_type.as_deref(), Some("AP-505"));
    assert_eq!(r.short_sw_version(), "8.10.0.8");
    assert_eq!(msg.meta.version, 1);
    assert_eq!(msg.access_token(), Some("1234"));
}

#[test]
fn official_serial_data() {
    let msg = telemetry("official_aos8_nb_serialDataNb");
    assert_eq!(bytes("official_aos8_nb_serialDataNb").len(), 160);
    assert_official_reporter(&msg, "79680", 1_616_700_759);
    assert_eq!(msg.meta.nb_topic_known(), Some(NbTopic::SerialDataNb));
    assert_eq!(msg.nb_s_data.len(), 1);
    let entry = &msg.nb_s_data[0];
    assert_eq!(entry.nb_device_id.as_deref(), Some(OFFICIAL_USB));
    assert_eq!(
        entry.nb_serial_payload.as_deref(),
        Some(bytes("official_esp3_nb_signal_telegram").as_slice())
    );
    assert!(msg.ap_health.is_none());
}

#[test]
fn official_response_to_read_version() {
    let msg = telemetry("official_aos8_nb_serialDataNb_response_to_CO_RD_VERSION");
    assert_official_reporter(&msg, "79680", 1_616_700_509);
    assert_eq!(msg.meta.nb_topic_known(), Some(NbTopic::SerialDataNb));
    let payload = msg.nb_s_data[0].nb_serial_payload.as_deref().unwrap();
    assert_eq!(
        payload,
        bytes("official_esp3_nb_RESPONSE_version").as_slice()
    );
    assert_eq!(payload[4], 0x02, "ESP3 RESPONSE packet");
}

#[test]
fn official_health() {
    let msg = telemetry("official_aos8_nb_apHealthUpdate");
    assert_official_reporter(&msg, "79179", 1_614_022_410);
    assert_eq!(msg.meta.nb_topic_known(), Some(NbTopic::ApHealthUpdate));
    assert!(msg.nb_s_data.is_empty());
    let health = msg.ap_health.as_ref().unwrap();
    assert_eq!(health.ap_status(), HealthStatus::Healthy);
    assert_eq!(health.ap_status, Some(0), "healthy is encoded explicitly");
    assert_eq!(health.radio.len(), 1);
    let radio = &health.radio[0];
    assert_eq!(
        radio.mac.as_deref(),
        Some(&[0x20, 0x4c, 0x03, 0x39, 0xe2, 0x2c][..])
    );
    assert_eq!(radio.hardware(), IotRadioType::Gen2);
    assert_eq!(radio.health(), HealthStatus::Healthy);
    assert_eq!(radio.external, Some(false));
    assert_eq!(health.usb.len(), 1);
    assert_eq!(health.usb[0].identifier.as_deref(), Some(OFFICIAL_USB));
    assert_eq!(HealthStatus::name_of(health.usb[0].health), "healthy");
    assert!(health.usb[0].descriptor.is_none());
}

#[test]
fn official_southbound_read_version() {
    let msg = sb_message("official_aos8_sb_serialDataSb_CO_RD_VERSION");
    assert_eq!(
        bytes("official_aos8_sb_serialDataSb_CO_RD_VERSION").len(),
        88
    );
    assert_eq!(msg.meta.version, 1);
    assert_eq!(msg.meta.access_token.as_deref(), Some("0123456789"));
    assert_eq!(msg.meta.sb_topic(), SbTopic::SerialDataSb);
    let receiver = msg.receiver.as_ref().unwrap();
    assert_eq!(receiver.all, Some(false));
    assert_eq!(
        receiver.ap_mac.as_deref(),
        Some(&[0x90, 0x4c, 0x81, 0xcf, 0x38, 0x86][..])
    );
    assert_eq!(msg.sb_s_data.len(), 1);
    assert_eq!(msg.sb_s_data[0].sb_device_id.as_deref(), Some(OFFICIAL_USB));
    assert_eq!(
        msg.sb_s_data[0].sb_serial_payload.as_deref(),
        Some(bytes("official_esp3_sb_CO_RD_VERSION").as_slice())
    );
}

#[test]
fn southbound_builder_matches_guide_example() {
    let built = IotSbMessage::serial_data(
        Some("0123456789"),
        [0x90, 0x4c, 0x81, 0xcf, 0x38, 0x86],
        OFFICIAL_USB,
        &bytes("official_esp3_sb_CO_RD_VERSION"),
    );
    assert_eq!(
        built.encode_to_vec(),
        bytes("official_aos8_sb_serialDataSb_CO_RD_VERSION")
    );
}

#[test]
fn synthetic_serial_data_one_packet() {
    let msg = telemetry("aos8_nb_serialDataNb_1pkt");
    assert_lab_reporter(&msg);
    assert_eq!(msg.nb_s_data.len(), 1);
    assert_eq!(msg.nb_s_data[0].nb_device_id.as_deref(), Some(LAB_USB));
    assert_eq!(
        msg.nb_s_data[0].nb_serial_payload.as_deref(),
        Some(bytes("esp3_rps_ptm215").as_slice())
    );
}

#[test]
fn synthetic_serial_data_two_packets() {
    let msg = telemetry("aos8_nb_serialDataNb_2pkt");
    assert_lab_reporter(&msg);
    let payloads: Vec<_> = msg
        .nb_s_data
        .iter()
        .map(|d| d.nb_serial_payload.clone().unwrap())
        .collect();
    assert_eq!(
        payloads,
        vec![bytes("esp3_rps_ptm215"), bytes("esp3_vld_multisensor")]
    );
}

#[test]
fn serial_data_builder_matches_synthetic_vector() {
    let decoded = telemetry("aos8_nb_serialDataNb_2pkt");
    let frames = [bytes("esp3_rps_ptm215"), bytes("esp3_vld_multisensor")];
    let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    let built = Telemetry::serial_data("1234", decoded.reporter.clone(), LAB_USB, &refs);
    assert_eq!(built.encode_to_vec(), bytes("aos8_nb_serialDataNb_2pkt"));
}

#[test]
fn synthetic_health_with_usb_descriptor() {
    let msg = telemetry("aos8_nb_apHealthUpdate");
    assert_lab_reporter(&msg);
    assert_eq!(msg.meta.nb_topic_known(), Some(NbTopic::ApHealthUpdate));
    let health = msg.ap_health.as_ref().unwrap();
    assert_eq!(health.ap_status(), HealthStatus::Healthy);
    let usb = &health.usb[0];
    assert_eq!(usb.identifier.as_deref(), Some(LAB_USB));
    assert_eq!(usb.health(), HealthStatus::Healthy);
    let d = usb.descriptor.as_ref().unwrap();
    assert_eq!(d.manufacturer.as_deref(), Some("EnOcean GmbH"));
    assert_eq!(d.vendor_id, Some(0x0403));
    assert_eq!(d.product_id, Some(0x6001));
    assert_eq!(d.dev_id, None);
    assert_eq!(d.serial_number.as_deref(), Some("FT55W4A9"));
    assert_eq!(d.version.as_deref(), Some("2.00"));
    assert_eq!(d.product.as_deref(), Some("EnOcean USB 300 DC"));
}

#[test]
fn synthetic_southbound() {
    let msg = sb_message("aos8_sb_serialDataSb");
    assert_eq!(msg.meta.sb_topic(), SbTopic::SerialDataSb);
    assert_eq!(msg.meta.access_token, None);
    assert_eq!(msg.sb_s_data[0].sb_device_id.as_deref(), Some(LAB_USB));
    assert_eq!(
        msg.sb_s_data[0].sb_serial_payload.as_deref(),
        Some(bytes("esp3_rps_ptm215").as_slice())
    );
}

#[test]
fn aos10_serial_usb_data() {
    let raw = bytes("aos10_nb_serial_usb_data");
    let msg = TransportNbData::decode(raw.as_slice()).unwrap();
    assert_eq!(msg.encode_to_vec(), raw);
    let header = msg.header.as_ref().unwrap();
    assert_eq!(header.version, "1");
    assert_eq!(header.topic(), Topic::SerialUsbData);
    assert_eq!(header.connector_name, "enocean");
    assert_eq!(header.tp_name, "tp1");
    let data = &msg.body.as_ref().unwrap().serial_nb_usb_data[0];
    assert_eq!(data.usb_address.as_ref().unwrap().hw_id, LAB_USB);
    assert_eq!(data.payload, bytes("esp3_rps_ptm215"));
    assert!(msg.timestamp > 0);
}

#[test]
fn every_aruba_vector_is_covered() {
    let v = vectors();
    let names: Vec<_> = v
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.contains("_nb_") || k.contains("_sb_"))
        .filter(|k| !k.contains("esp3"))
        .cloned()
        .collect();
    for name in &names {
        let raw = bytes(name);
        if name.starts_with("aos10") {
            assert!(TransportNbData::decode(raw.as_slice()).is_ok(), "{name}");
        } else if name.contains("_sb_") {
            sb_message(name);
        } else {
            telemetry(name);
        }
    }
    assert_eq!(names.len(), 9);
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    assert!(Telemetry::decode(&[0x0a, 0xff][..]).is_err());
    assert!(Telemetry::decode(&[0xff; 7][..]).is_err());
}
