//! Teach-in detection against published 4BS and UTE teach-in telegrams.

mod common;

use common::{bytes, cases, id, source};
use enocean::Eep;
use enocean::teach_in::{self, TeachInKind, UteRequest};
use enocean::telegram::Telegram;

#[test]
fn four_bs_teach_in_with_eep() {
    for case in cases("teach_in_4bs") {
        let src = source(&case);
        let t = Telegram::from_esp3(&bytes(case["esp3_hex"].as_str().unwrap())).unwrap();
        let exp = &case["expected"];
        let ti = teach_in::detect(&t).unwrap_or_else(|| panic!("{src}: not recognised"));
        let with_eep = exp["contains_eep"].as_bool().unwrap();
        assert_eq!(ti.kind, TeachInKind::FourBs { with_eep }, "{src}");
        let eep = ti.eep.unwrap();
        assert_eq!(eep.func as u64, exp["rorg_func"].as_u64().unwrap(), "{src}");
        assert_eq!(eep.typ as u64, exp["rorg_type"].as_u64().unwrap(), "{src}");
        assert_eq!(
            eep,
            case["eep"].as_str().unwrap().parse::<Eep>().unwrap(),
            "{src}"
        );
        assert_eq!(ti.manufacturer, Some(0x046), "{src}: DB2 bits 2..0 + DB1");
    }
}

#[test]
fn ute_teach_in() {
    for case in cases("teach_in_ute") {
        let src = source(&case);
        let t = Telegram::from_esp3(&bytes(case["esp3_hex"].as_str().unwrap())).unwrap();
        let exp = &case["expected"];
        let ti = teach_in::detect(&t).unwrap_or_else(|| panic!("{src}: not recognised"));
        let eep: Eep = case["eep"].as_str().unwrap().parse().unwrap();
        assert_eq!(ti.eep, Some(eep), "{src}");
        if let Some(s) = exp["sender"].as_str().or(exp["senderId"].as_str()) {
            assert_eq!(t.sender, id(s), "{src}");
        }
        if let Some(m) = exp["rorg_manufacturer"].as_u64() {
            assert_eq!(ti.manufacturer, Some(m as u16), "{src}");
        }
        let TeachInKind::Ute {
            bidirectional,
            response_expected,
            request,
            channels,
        } = ti.kind
        else {
            panic!("{src}: not UTE");
        };
        if let Some(b) = exp["bidirectional"].as_bool() {
            assert_eq!(bidirectional, b, "{src}");
        }
        if let Some(r) = exp["response_expected"].as_bool() {
            assert_eq!(response_expected, r, "{src}");
        }
        if let Some(n) = exp["number_of_channels"].as_u64() {
            assert_eq!(channels as u64, n, "{src}");
        }
        if exp["teach_in"] == true && exp["delete"] == false {
            // DB6 bits 5..4 = 0b10: teach in, or delete if already taught in.
            assert_eq!(request, UteRequest::Either, "{src}");
        }
    }
}

#[test]
fn ute_teach_in_from_the_d2_14_41_capture() {
    // reelyactive advlib-esp: the UTE telegram that teaches in the D2-14-41 multisensor.
    let case = cases("esp3_frame")
        .into_iter()
        .find(|c| c["expected"]["eepType"] == "D2-14-41")
        .unwrap();
    let t = Telegram::from_esp3(&bytes(case["esp3_hex"].as_str().unwrap())).unwrap();
    let ti = teach_in::detect(&t).unwrap();
    assert_eq!(ti.eep, Some(Eep::new(0xD2, 0x14, 0x41)));
    assert_eq!(ti.manufacturer, Some(0x00B));
    assert!(matches!(
        ti.kind,
        TeachInKind::Ute {
            bidirectional: false,
            response_expected: false,
            ..
        }
    ));
}

#[test]
fn erp2_48_bit_four_bs_teach_in() {
    let case = cases("erp2")
        .into_iter()
        .find(|c| c["expected"]["teach_in"] == true)
        .unwrap();
    let t = Telegram::from_esp3(&bytes(case["esp3_hex"].as_str().unwrap())).unwrap();
    let derived = &case["expected"]["teach_in_decode_derived"];
    let ti = teach_in::detect(&t).unwrap();
    assert_eq!(ti.kind, TeachInKind::FourBs { with_eep: true });
    let eep = ti.eep.unwrap();
    assert_eq!(eep.func as u64, derived["FUNC"].as_u64().unwrap());
    assert_eq!(eep.typ as u64, derived["TYPE"].as_u64().unwrap());
    assert_eq!(
        ti.manufacturer.map(u64::from),
        derived["MANUFACTURER"].as_u64()
    );
}

#[test]
fn data_telegrams_are_not_teach_in() {
    // Every 4BS, 1BS and RPS data frame among the vectors has its LRN bit set (or no LRN bit).
    for case in cases("esp3_frame").iter().chain(&cases("erp2")) {
        let Ok(t) = Telegram::from_esp3(&bytes(case["esp3_hex"].as_str().unwrap())) else {
            continue;
        };
        let is_teach_in = case["expected"]["note"]
            .as_str()
            .is_some_and(|n| n.contains("teach-in"))
            || case["expected"]["teach_in"] == true
            || t.rorg == 0xD4;
        assert_eq!(
            teach_in::detect(&t).is_some(),
            is_teach_in,
            "{}",
            source(case)
        );
    }
}

#[test]
fn one_bs_and_four_bs_without_eep() {
    let mut t = Telegram {
        rorg: 0xD5,
        data: vec![0x00],
        sender: 1,
        destination: u32::MAX,
        status: 0,
        sub_tel_num: None,
        dbm: None,
        security_level: None,
    };
    let ti = teach_in::detect(&t).unwrap();
    assert_eq!(
        (ti.kind, ti.eep),
        (TeachInKind::OneBs, Some(Eep::new(0xD5, 0x00, 0x01)))
    );
    t.data = vec![0x08];
    assert!(teach_in::detect(&t).is_none());
    t.rorg = 0xA5;
    t.data = vec![0x12, 0x34, 0x56, 0x00];
    let ti = teach_in::detect(&t).unwrap();
    assert_eq!(
        (ti.kind, ti.eep, ti.manufacturer),
        (TeachInKind::FourBs { with_eep: false }, None, None)
    );
    t.rorg = 0xF6;
    t.data = vec![0x00];
    assert!(teach_in::detect(&t).is_none(), "RPS has no teach-in");
}
