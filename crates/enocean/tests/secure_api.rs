//! Secure API behaviour beyond the published vectors: teach-in assembly, pre-shared keys,
//! partial 32-bit codes, refusals, key redaction, and the path through ESP3 and chaining.

use enocean::chain::{ChainOutcome, Reassembler};
use enocean::secure::{
    self, ERP1_PART_LEN, Plain, SecureContext, SecureError, SecureTeachIn, Slf, TeachInAssembler,
    TeachInInfo, vaes,
};
use enocean::telegram::Telegram;

const KEY: [u8; 16] = *b"EnOcean GmbH.13\0";
const PSK: [u8; 16] = [
    0x34, 0x10, 0xDE, 0x8F, 0x1A, 0xBA, 0x3E, 0xFF, 0x9F, 0x5A, 0x11, 0x71, 0x72, 0xEA, 0xCA, 0xBD,
];

fn context(slf: u8) -> SecureContext {
    SecureContext {
        key: KEY,
        slf: Slf::new(slf).unwrap(),
        is_ptm: false,
    }
}

fn teach_in(slf: u8, rlc: u32) -> SecureTeachIn {
    SecureTeachIn {
        info: TeachInInfo(0),
        slf: Slf::new(slf).unwrap(),
        rlc,
        key: KEY,
    }
}

#[test]
fn partial_32_bit_code_carries_into_the_top_byte() {
    let ctx = context(0xCB);
    let next = secure::encrypt_sec_r(&ctx, 0x0200_0005, 0xA5, &[1, 2, 3, 4]).unwrap();
    // 5 data bytes, the 3 low code bytes, a 3-byte CMAC
    assert_eq!(&next[5..8], &[0x00, 0x00, 0x05]);
    let plain = secure::verify_and_decrypt(&ctx, 0x31, &next, Some(0x01FF_FFF0)).unwrap();
    assert_eq!(plain.rlc, Some(0x0200_0005));
    assert_eq!(plain.data, [1, 2, 3, 4]);

    // The CMAC covers all four bytes: the wrong top byte does not verify.
    assert_eq!(
        secure::verify_and_decrypt(&ctx, 0x31, &next, None),
        Err(SecureError::MacMismatch)
    );
    let old = secure::encrypt_sec_r(&ctx, 0x01FF_FFF0, 0xA5, &[9]).unwrap();
    assert_eq!(
        secure::verify_and_decrypt(&ctx, 0x31, &old, plain.rlc),
        Err(SecureError::MacMismatch),
        "an old code with another top byte cannot be told from a forgery"
    );
    assert_eq!(
        secure::verify_and_decrypt(&ctx, 0x31, &old, Some(0x01FF_FFF0)),
        Err(SecureError::Replay {
            rlc: 0x01FF_FFF0,
            last: 0x01FF_FFF0
        })
    );
}

#[test]
fn unencrypted_slf_is_authenticated_only() {
    let ctx = context(0xF0); // 32-bit explicit code, 4-byte CMAC, no encryption
    let payload = secure::encrypt_sec_r(&ctx, 7, 0xD2, &[0xAA, 0xBB]).unwrap();
    assert_eq!(&payload[..3], &[0xD2, 0xAA, 0xBB]);
    let plain = secure::verify_and_decrypt(&ctx, 0x31, &payload, None).unwrap();
    assert_eq!(plain.security_level, secure::LEVEL_AUTHENTICATED);
}

#[test]
fn teach_in_with_pre_shared_key() {
    let ti = teach_in(0xF3, 0x0000_1234);
    let parts = ti.to_payloads(Some(&PSK), ERP1_PART_LEN).unwrap();
    assert_eq!(parts[0][0] & 0x08, 0x08, "PSK bit set");
    assert_eq!(parts[0][1], 0xF3, "SLF sent in clear");

    // RLC | PK encrypted with VAES under the PSK and a zero code: VIV is VAES_INIT itself.
    let joined: Vec<u8> = parts[0][2..]
        .iter()
        .chain(&parts[1][1..])
        .copied()
        .collect();
    let mut expected = vec![0x00, 0x00, 0x12, 0x34];
    expected.extend_from_slice(&KEY);
    let mut stream = vec![0u8; expected.len()];
    vaes::apply(&PSK, &[0, 0, 0, 0], &mut stream);
    let xored: Vec<u8> = expected.iter().zip(&stream).map(|(p, k)| p ^ k).collect();
    assert_eq!(joined, xored);

    let mut assembler = TeachInAssembler::new(1_000, 4);
    assert_eq!(assembler.push(1, &parts[0], 0, Some(&PSK)), Ok(None));
    let got = assembler
        .push(1, &parts[1], 10, Some(&PSK))
        .unwrap()
        .unwrap();
    assert_eq!((got.key, got.rlc), (KEY, 0x1234));
    assert!(got.info.psk());

    assert_eq!(assembler.push(1, &parts[0], 20, None), Ok(None));
    assert_eq!(
        assembler.push(1, &parts[1], 30, None),
        Err(SecureError::PskRequired)
    );
}

#[test]
fn assembler_joins_any_split_in_any_order() {
    let ti = teach_in(0xAB, 0xC0FFEE);
    let body = &ti.to_payloads(None, 64).unwrap()[0][1..];
    // Every split point: 5 + 11 key bytes as a real PTM 215 sends, 8 + 8, the spec's 7 + 9...
    for at in 1..body.len() {
        let first = [&[0x20], &body[..at]].concat();
        let second = [&[0x40], &body[at..]].concat();
        let mut in_order = TeachInAssembler::new(1_000, 4);
        assert_eq!(in_order.push(9, &first, 0, None), Ok(None));
        let got = in_order.push(9, &second, 5, None).unwrap().unwrap();
        assert_eq!(
            (got.slf, got.rlc, got.key),
            (ti.slf, ti.rlc, ti.key),
            "split at {at}"
        );
        assert_eq!(got.info, TeachInInfo(0x20));
        let mut reversed = TeachInAssembler::new(1_000, 4);
        assert_eq!(reversed.push(9, &second, 0, None), Ok(None));
        assert_eq!(
            reversed.push(9, &first, 5, None).unwrap().unwrap().key,
            ti.key
        );
        assert_eq!(reversed.pending(), 0);
    }
    // ERP2 may send it in one telegram
    let single = ti.to_payloads(None, 64).unwrap();
    assert_eq!(single.len(), 1);
    assert_eq!(TeachInInfo(single[0][0]).cnt(), 1);
    let mut assembler = TeachInAssembler::new(1_000, 4);
    let got = assembler.push(9, &single[0], 0, None).unwrap().unwrap();
    assert_eq!((got.slf, got.rlc, got.key), (ti.slf, ti.rlc, ti.key));
}

#[test]
fn assembler_keeps_senders_apart_and_forgets_stale_parts() {
    let a = teach_in(0xF3, 1).to_payloads(None, ERP1_PART_LEN).unwrap();
    let b = teach_in(0x8B, 2).to_payloads(None, ERP1_PART_LEN).unwrap();
    let mut assembler = TeachInAssembler::new(1_000, 2);
    assert_eq!(assembler.push(0xA, &a[0], 0, None), Ok(None));
    assert_eq!(assembler.push(0xB, &b[0], 0, None), Ok(None));
    assert_eq!(
        assembler.push(0xA, &a[1], 10, None).unwrap().unwrap().rlc,
        1
    );
    assert_eq!(
        assembler.push(0xB, &b[1], 10, None).unwrap().unwrap().rlc,
        2
    );

    // too late: the first part expired, the second waits alone
    assert_eq!(assembler.push(0xA, &a[0], 0, None), Ok(None));
    assert_eq!(assembler.push(0xA, &a[1], 1_001, None), Ok(None));
    assert_eq!(assembler.pending(), 1);

    // room for two senders: a third drops the oldest
    let mut assembler = TeachInAssembler::new(1_000, 2);
    assembler.push(1, &a[0], 0, None).unwrap();
    assembler.push(2, &a[0], 1, None).unwrap();
    assembler.push(3, &a[0], 2, None).unwrap();
    assert_eq!(assembler.pending(), 2);
    assert!(assembler.push(2, &a[1], 3, None).unwrap().is_some());
    assert_eq!(
        assembler.push(1, &a[1], 4, None),
        Ok(None),
        "sender 1 was dropped"
    );
}

#[test]
fn assembler_restarts_on_a_new_first_part_and_refuses_extra_parts() {
    let old = teach_in(0xF3, 1).to_payloads(None, ERP1_PART_LEN).unwrap();
    let new = teach_in(0xF3, 2).to_payloads(None, ERP1_PART_LEN).unwrap();
    let mut assembler = TeachInAssembler::new(1_000, 4);
    assembler.push(5, &old[0], 0, None).unwrap();
    assembler.push(5, &new[0], 1, None).unwrap();
    assert_eq!(assembler.push(5, &new[1], 2, None).unwrap().unwrap().rlc, 2);

    assembler.push(5, &new[0], 3, None).unwrap();
    assert!(matches!(
        assembler.push(5, &[0x80, 1, 2], 4, None),
        Err(SecureError::Malformed(_))
    ));
    assert_eq!(assembler.pending(), 0);
    assert!(assembler.push(5, &[], 5, None).is_err());
}

#[test]
fn teach_in_gives_the_state_for_the_next_telegram() {
    let ti = teach_in(0x8B, 0x00_0100);
    assert_eq!(ti.last_rlc(), Some(0xFF));
    let payload = secure::encrypt_sec_r(&ti.context(), 0x100, 0xA5, &[1]).unwrap();
    let plain = secure::verify_and_decrypt(&ti.context(), 0x31, &payload, ti.last_rlc());
    assert_eq!(plain.unwrap().rlc, Some(0x100));
    assert_eq!(teach_in(0xF3, 0).last_rlc(), None);
}

#[test]
fn bad_teach_ins_are_refused() {
    assert!(matches!(
        SecureTeachIn::parse(&[0x20], None),
        Err(SecureError::Malformed(_))
    ));
    assert_eq!(
        SecureTeachIn::parse(&[0x20, 0xFB, 0, 0, 0], None),
        Err(SecureError::UnsupportedSlf(0xFB))
    );
    let mut joined = vec![0x10, 0xF3, 0, 0, 0, 1];
    joined.extend_from_slice(&KEY);
    assert!(SecureTeachIn::parse(&joined, None).is_ok());
    joined.push(0);
    assert!(matches!(
        SecureTeachIn::parse(&joined, None),
        Err(SecureError::Malformed(_))
    ));
    assert_eq!(
        teach_in(0x8B, 0x0100_0000).to_payloads(None, 12),
        Err(SecureError::RlcOutOfRange(0x0100_0000))
    );
    assert!(
        teach_in(0xF3, 1).to_payloads(None, 2).is_err(),
        "more than 3 parts"
    );
}

#[test]
fn malformed_and_unverifiable_telegrams_are_refused() {
    let ctx = context(0xF3);
    // 4 code bytes and 4 CMAC bytes need at least one data byte in front
    assert!(matches!(
        secure::verify_and_decrypt(&ctx, 0x31, &[0; 8], None),
        Err(SecureError::Malformed(_))
    ));
    assert_eq!(
        secure::verify_and_decrypt(&ctx, 0x31, &[0; 9], None),
        Err(SecureError::MacMismatch)
    );
    for rorg in [0x32, 0x34, 0x35, 0xA5] {
        assert_eq!(
            secure::verify_and_decrypt(&ctx, rorg, &[0; 12], None),
            Err(SecureError::NotSecure(rorg))
        );
    }
    let ptm = SecureContext {
        is_ptm: true,
        ..ctx.clone()
    };
    let two_bytes = secure::seal(&ptm, 0x30, 1, &[0x0E, 0x00]).unwrap();
    assert!(matches!(
        secure::verify_and_decrypt(&ptm, 0x30, &two_bytes, None),
        Err(SecureError::Malformed(_))
    ));
    assert_eq!(
        secure::encrypt_sec_r(&context(0xAB), 0x0100_0000, 0xA5, &[1]),
        Err(SecureError::RlcOutOfRange(0x0100_0000))
    );
}

#[test]
fn decrypted_ptm_telegram_decodes_when_trusted() {
    let ptm = SecureContext {
        is_ptm: true,
        ..context(0x8B)
    };
    let plain = secure::decode_sec_d(&ptm, &[0x0E]).unwrap();
    assert_eq!((plain.rorg, plain.data.as_slice()), (0xF6, &[0x30][..]));
    assert_eq!((plain.status(0x00), plain.rlc), (0x30, None));
    assert_eq!(plain.security_level, secure::LEVEL_DECRYPTED);
    let reserved = secure::decode_sec_d(&ptm, &[0x02]).unwrap();
    assert_eq!((reserved.rorg, reserved.status_override), (0x32, None));
    assert!(secure::decode_sec_d(&ptm, &[]).is_err());
}

#[test]
fn keys_never_show_in_debug_output() {
    let ti = teach_in(0xF3, 5);
    let ctx = SecureContext::from_hex("456e4f6365616e20476d62482e313300", "F3", true).unwrap();
    assert_eq!(ctx.key, KEY);
    let mut assembler = TeachInAssembler::new(1_000, 4);
    assembler
        .push(1, &ti.to_payloads(None, 12).unwrap()[0], 0, None)
        .unwrap();
    let texts = [format!("{ctx:?}"), format!("{ti:?}"), format!("{ti:#?}")];
    let assembler_text = format!("{assembler:?}");
    assert!(assembler_text.contains("pending: 1"), "{assembler_text}");
    assert!(!assembler_text.contains("69, 110"), "{assembler_text}");
    for text in texts {
        assert!(text.contains("<redacted>"), "{text}");
        assert!(!text.contains(&format!("{KEY:?}")));
        assert!(!text.to_lowercase().contains("456e4f63"));
        assert!(!text.contains("69, 110"), "no decimal key bytes: {text}");
    }
    assert_eq!(
        SecureContext::from_hex("456e", "f3", false),
        Err(SecureError::InvalidKey)
    );
    assert_eq!(
        SecureContext::from_hex("zz6e4f6365616e20476d62482e313300", "f3", false),
        Err(SecureError::InvalidKey)
    );
    assert!(SecureContext::from_hex(&"0".repeat(32), "00", false).is_err());
}

/// A simulated device sends a long secure telegram as a SEC_CDM chain over ERP1 frames; the
/// receiver reassembles it with `enocean::chain` and verifies it here.
#[test]
fn sec_cdm_through_esp3_and_the_chain_reassembler() {
    let ctx = context(0xF3);
    let data: Vec<u8> = (0u8..30).collect();
    let payload = secure::encrypt_sec_r(&ctx, 0x0102_0304, 0xD1, &data).unwrap();
    let mut chains = Reassembler::new(3_000, 16);
    let mut done = None;
    for (i, part) in secure::sec_cdm_parts(2, &payload)
        .unwrap()
        .into_iter()
        .enumerate()
    {
        let sent = Telegram {
            rorg: secure::SEC_CDM,
            data: part,
            sender: 0x0102_0304,
            destination: 0xFFFF_FFFF,
            status: 0,
            sub_tel_num: None,
            dbm: None,
            security_level: None,
        };
        let frame = sent.to_erp1_packet().encode();
        let heard = Telegram::from_esp3(&frame).unwrap();
        match chains.push(heard, i as u64) {
            ChainOutcome::Complete(t) => done = Some(t),
            ChainOutcome::Incomplete => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let chained = done.expect("chain complete");
    let plain: Plain = secure::verify_and_decrypt(&ctx, chained.rorg, &chained.data, None).unwrap();
    assert_eq!((plain.rorg, plain.data), (0xD1, data));
}
