//! RADIO_ERP2 telegrams against published captures.

mod common;

use common::{bytes, cases, source};
use enocean::erp2::{self, AddressControl, Erp2Error};
use enocean::esp3;
use enocean::telegram::{BROADCAST, Telegram, TelegramError};

#[test]
fn erp2_captures_decode() {
    for case in cases("erp2") {
        let src = source(&case);
        let frame = bytes(case["esp3_hex"].as_str().unwrap());
        let exp = &case["expected"];
        let packet = esp3::parse_frame(&frame).unwrap_or_else(|e| panic!("{src}: {e}"));
        assert_eq!(packet.packet_type, 0x0A, "{src}");
        let raw = erp2::parse(&packet.data).unwrap_or_else(|e| panic!("{src}: {e}"));
        let t = Telegram::from_packet(&packet).unwrap();

        if let Some(h) = exp["erp2_header"].as_u64() {
            assert_eq!(packet.data[0] as u64, h, "{src}");
        }
        if let Some(crc) = exp["erp2_crc"].as_u64() {
            assert_eq!(*packet.data.last().unwrap() as u64, crc, "{src}");
        }
        if let Some(id) = exp["originator_id"]
            .as_str()
            .or(exp["originatorId"].as_str())
        {
            assert_eq!(t.sender_hex(), id.to_lowercase(), "{src}");
            assert_eq!(raw.address_control, AddressControl::Originator32, "{src}");
        }
        if let Some(id) = exp["originator_id_48"].as_str() {
            assert_eq!(raw.address_control, AddressControl::Originator48, "{src}");
            assert_eq!(
                raw.originator,
                u64::from_str_radix(id, 16).unwrap(),
                "{src}"
            );
            assert_eq!(t.sender, raw.originator as u32, "{src}: low 32 bits");
        }
        if let Some(d) = exp["data_dl"].as_str().or(exp["dataDl"].as_str()) {
            assert_eq!(t.data, bytes(d), "{src}");
        }
        if let Some(db1) = exp["DB1"].as_u64() {
            assert_eq!(t.data[2] as u64, db1, "{src}");
        }
        match exp["telegram_type"]
            .as_str()
            .or(exp["telegramType"].as_str())
        {
            Some(tt) if tt.starts_with("4BS") => assert_eq!(t.rorg, 0xA5, "{src}"),
            Some("RPS") => assert_eq!(t.rorg, 0xF6, "{src}"),
            Some(other) => panic!("{src}: unhandled type {other}"),
            None => {}
        }
        if let Some(rorg) = exp["rorg"].as_u64() {
            assert_eq!(t.rorg as u64, rorg, "{src}");
        }
        if t.rorg == 0xF6 {
            assert_eq!(t.data.len(), 1, "{src}: RPS in ERP2 has no status byte");
        }
        if let Some(dbm) = exp["dBm"].as_i64() {
            // The candy-red test reports the raw byte (50); the others the signed dBm.
            assert_eq!(t.dbm, Some(-(dbm.abs() as i16)), "{src}");
        }
        if let Some(n) = exp["subTelNum"].as_u64().or(exp["subtelnum"].as_u64()) {
            assert_eq!(t.sub_tel_num, Some(n as u8), "{src}");
        }
        if let Some(p) = exp["payload(erp2 without LEN)"].as_str() {
            assert_eq!(
                packet.data,
                bytes(p),
                "{src}: ESP3 data is the ERP2 telegram without LEN"
            );
        }
        assert_eq!(t.destination, BROADCAST, "{src}");
        assert_eq!(t.repeater_count(), 0, "{src}");
    }
}

#[test]
fn erp2_crc_excludes_the_length_byte() {
    for case in cases("erp2") {
        let packet = esp3::parse_frame(&bytes(case["esp3_hex"].as_str().unwrap())).unwrap();
        let body = &packet.data[..packet.data.len() - 1];
        let crc = *packet.data.last().unwrap();
        assert_eq!(enocean::crc8::crc8(body), crc, "{}", source(&case));
        let mut with_len = vec![packet.data.len() as u8];
        with_len.extend_from_slice(body);
        assert_ne!(enocean::crc8::crc8(&with_len), crc, "{}", source(&case));
    }
}

#[test]
fn erp2_with_a_wrong_crc_is_rejected() {
    let case = &cases("erp2")[0];
    let packet = esp3::parse_frame(&bytes(case["esp3_hex"].as_str().unwrap())).unwrap();
    let mut data = packet.data.clone();
    data[3] ^= 0x10;
    let frame = esp3::encode_frame(0x0A, &data, &packet.optional);
    assert!(matches!(
        Telegram::from_esp3(&frame),
        Err(TelegramError::Erp2(Erp2Error::Crc { .. }))
    ));
}

#[test]
fn erp2_extended_header_destination_and_extended_type() {
    // 32-bit originator + destination, extended header (2 repeats, 1 optional byte),
    // extended type 3 (CDM 0x40).
    let mut t = vec![
        0x5F, // address control 010, extended header, type 0xF
        0x21, 0x03, 0x01, 0x02, 0x03, 0x04, 0xAA, 0xBB, 0xCC, 0xDD,
    ];
    t.extend_from_slice(&[0x40, 0x00, 0x00, 0x02, 0xA5, 0x11, 0x22]);
    t.push(0x99); // the telegram's own optional data
    t.push(enocean::crc8::crc8(&t));
    let frame = esp3::encode_frame(0x0A, &t, &[0x02, 0x50]);
    let tel = Telegram::from_esp3(&frame).unwrap();
    assert_eq!(tel.rorg, 0x40);
    assert_eq!(tel.sender, 0x0102_0304);
    assert_eq!(tel.destination, 0xAABB_CCDD);
    assert_eq!(tel.repeater_count(), 2);
    assert_eq!(tel.data, vec![0x40, 0x00, 0x00, 0x02, 0xA5, 0x11, 0x22]);
    assert_eq!(tel.sub_tel_num, Some(2));
    assert_eq!(tel.dbm, Some(-0x50));
    let raw = erp2::parse(&t).unwrap();
    assert_eq!(raw.optional, &[0x99]);
}

#[test]
fn erp2_24_bit_originator() {
    let mut t = vec![
        0x01, /* 24-bit originator, 1BS */
        0x12, 0x34, 0x56, 0x09,
    ];
    t.push(enocean::crc8::crc8(&t));
    let tel = Telegram::from_esp3(&esp3::encode_frame(0x0A, &t, &[1, 60])).unwrap();
    assert_eq!(
        (tel.rorg, tel.sender, tel.data.as_slice()),
        (0xD5, 0x0012_3456, &[0x09][..])
    );
}

#[test]
fn erp2_unknown_types_are_errors() {
    for (header, ext, err) in [
        (0x2B, None, Erp2Error::TelegramType(0x0B)),
        (0x2F, Some(0x08), Erp2Error::ExtendedType(0x08)),
        (0xA2, None, Erp2Error::AddressControl(0b101)),
    ] {
        let mut t = vec![header];
        t.extend(ext);
        t.extend_from_slice(&[1, 2, 3, 4, 5]);
        t.push(enocean::crc8::crc8(&t));
        assert_eq!(erp2::parse(&t), Err(err));
    }
}
