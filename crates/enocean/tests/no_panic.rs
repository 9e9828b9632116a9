//! Property tests: no input makes a parser panic, and the stream parser finds every valid
//! frame however the stream is cut and whatever garbage surrounds the frames.

use enocean::chain::Reassembler;
use enocean::esp3::{self, StreamParser};
use enocean::telegram::Telegram;
use enocean::{adt, erp2, signal, teach_in};
use proptest::prelude::*;

/// A valid RADIO_ERP1 or RADIO_ERP2 frame, or another packet type.
fn valid_frame() -> impl Strategy<Value = Vec<u8>> {
    let erp1 = (
        any::<u8>(),
        prop::collection::vec(any::<u8>(), 0..20),
        any::<u32>(),
        any::<u8>(),
        any::<[u8; 7]>(),
    )
        .prop_map(|(rorg, data, sender, status, opt)| {
            let mut d = vec![rorg];
            d.extend(data);
            d.extend(sender.to_be_bytes());
            d.push(status);
            esp3::encode_frame(0x01, &d, &opt)
        });
    let erp2 = (
        prop::sample::select(vec![0xF6u8, 0xD5, 0xA5, 0xD0, 0xD2, 0x40, 0x31]),
        prop::collection::vec(any::<u8>(), 1..16),
        any::<u32>(),
        any::<Option<u32>>(),
        0u8..16,
    )
        .prop_map(|(rorg, data, sender, dest, rc)| {
            let t = erp2::encode(rorg, &data, sender, dest, rc).unwrap();
            esp3::encode_frame(0x0A, &t, &[1, 0x40])
        });
    let other = (
        prop::sample::select(vec![0x02u8, 0x04, 0x05, 0x07]),
        prop::collection::vec(any::<u8>(), 1..40),
    )
        .prop_map(|(t, data)| esp3::encode_frame(t, &data, &[]));
    prop_oneof![erp1, erp2, other]
}

/// Garbage that never contains a complete valid frame by construction: random bytes with
/// the sync byte and false headers mixed in.
fn garbage() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop_oneof![3 => any::<u8>(), 1 => Just(0x55u8)], 0..30)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn stream_parser_finds_every_frame(
        items in prop::collection::vec((garbage(), valid_frame()), 1..8),
        cuts in prop::collection::vec(1usize..40, 1..50),
    ) {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for (junk, frame) in &items {
            stream.extend_from_slice(junk);
            stream.extend_from_slice(frame);
            expected.push(frame.clone());
        }
        let mut parser = StreamParser::new();
        let mut found = Vec::new();
        let mut rest = &stream[..];
        let mut cut = cuts.iter().cycle();
        while !rest.is_empty() {
            let n = (*cut.next().unwrap()).min(rest.len());
            parser.push(&rest[..n]);
            rest = &rest[n..];
            while let Some(r) = parser.next_packet() {
                if let Ok(p) = r {
                    found.push(p.encode());
                }
            }
        }
        // Garbage may by chance hold a valid frame of its own; every real frame is found,
        // in order.
        let mut it = found.iter();
        for frame in &expected {
            prop_assert!(it.any(|f| f == frame), "frame {} not found", hex::encode(frame));
        }
    }

    #[test]
    fn stream_parser_never_panics(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..20)) {
        let mut parser = StreamParser::with_max_buffer(0);
        for c in &chunks {
            parser.push(c);
            while let Some(r) = parser.next_frame() {
                if let Ok(f) = r {
                    let _ = Telegram::from_frame(&f);
                }
            }
        }
        prop_assert!(parser.buffered() <= esp3::MAX_FRAME_LEN);
    }

    #[test]
    fn frame_and_telegram_parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = esp3::parse_frame(&bytes);
        let _ = Telegram::from_esp3(&bytes);
        let _ = erp2::parse(&bytes);
        // Arbitrary payloads inside valid frames, for both radio packet types.
        for (t, opt) in [(0x01u8, &[1u8, 0xFF, 0xFF, 0xFF, 0xFF, 0x40, 0][..]), (0x0A, &[1, 0x40][..]), (0x01, &[][..])] {
            if let Ok(frame) = esp3::try_encode_frame(t, &bytes, opt) {
                let _ = Telegram::from_esp3(&frame);
            }
        }
    }

    #[test]
    fn payload_decoders_never_panic(rorg in any::<u8>(), data in prop::collection::vec(any::<u8>(), 0..40), sender in any::<u32>(), now in any::<u64>()) {
        let t = Telegram { rorg, data: data.clone(), sender, destination: u32::MAX, status: 0, sub_tel_num: None, dbm: None, security_level: None };
        let _ = signal::decode(&data);
        let _ = teach_in::detect(&t);
        let _ = adt::try_unwrap(t.clone());
        let unwrapped = adt::unwrap(t.clone());
        let _ = teach_in::detect(&unwrapped);
        let _ = t.dedup_key();
        let _ = t.to_erp1_packet();
        let mut r = Reassembler::new(3000, 4);
        for rorg in [0x40, 0x33] {
            let _ = r.push(Telegram { rorg, ..t.clone() }, now);
        }
    }

    #[test]
    fn reassembler_survives_random_parts(parts in prop::collection::vec((prop::sample::select(vec![0x40u8, 0x33]), 0u32..3, prop::collection::vec(any::<u8>(), 0..16), 0u64..10_000), 0..60)) {
        let mut r = Reassembler::new(3000, 8);
        let mut now = 0;
        for (rorg, sender, data, dt) in parts {
            now += dt;
            let t = Telegram { rorg, data, sender, destination: u32::MAX, status: 0, sub_tel_num: None, dbm: None, security_level: None };
            let _ = r.push(t, now);
            prop_assert!(r.open_chains() <= 8);
        }
    }
}
