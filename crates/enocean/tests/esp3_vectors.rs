//! ESP3 framing against published vectors: frames, broken frames, streams, encoding, CRC8.

mod common;

use common::{bytes, cases, id, source};
use enocean::crc8::crc8;
use enocean::esp3::{self, Esp3Error, PacketType, StreamParser};
use enocean::telegram::Telegram;

#[test]
fn valid_frames_parse_and_re_encode() {
    for case in cases("esp3_frame") {
        let src = source(&case);
        let frame = bytes(case["esp3_hex"].as_str().unwrap());
        let packet = esp3::parse_frame(&frame).unwrap_or_else(|e| panic!("{src}: {e}"));
        let exp = &case["expected"];
        if let Some(t) = exp["packet_type"].as_u64() {
            assert_eq!(packet.packet_type as u64, t, "{src}");
        }
        for (key, len) in [
            ("data_len", packet.data.len()),
            ("dataLength", packet.data.len()),
        ] {
            if let Some(n) = exp[key].as_u64() {
                assert_eq!(len as u64, n, "{src}: {key}");
            }
        }
        for (key, len) in [
            ("opt_len", packet.optional.len()),
            ("optionalLength", packet.optional.len()),
        ] {
            if let Some(n) = exp[key].as_u64() {
                assert_eq!(len as u64, n, "{src}: {key}");
            }
        }
        if let Some(d) = exp["data"].as_str() {
            assert_eq!(packet.data, bytes(d), "{src}");
        }
        if let Some(d) = exp["opt_data"].as_str() {
            assert_eq!(packet.optional, bytes(d), "{src}");
        }
        assert_eq!(
            packet.encode(),
            frame,
            "{src}: re-encoding gives the same bytes"
        );
        if packet.kind() == Some(PacketType::RadioErp1) {
            check_erp1(&case, &Telegram::from_packet(&packet).unwrap());
        }
    }
}

/// The telegram-level expectations some frame vectors carry.
fn check_erp1(case: &serde_json::Value, t: &Telegram) {
    let src = source(case);
    let exp = &case["expected"];
    if let Some(r) = exp["rorg"].as_u64() {
        assert_eq!(t.rorg as u64, r, "{src}");
    }
    if let Some(s) = exp["sender"].as_str() {
        assert_eq!(t.sender, id(s), "{src}");
    }
    if let Some(s) = exp["status"].as_u64() {
        assert_eq!(t.status as u64, s, "{src}");
    }
    if let Some(d) = exp["data"].as_u64() {
        assert_eq!(t.data, vec![d as u8], "{src}");
    }
    if let Some(d) = exp["dBm_raw"].as_u64() {
        assert_eq!(t.dbm, Some(-(d as i16)), "{src}");
    }
    if let Some(p) = exp["telegramPayload"].as_str() {
        assert_eq!(t.data, bytes(p), "{src}");
    }
    if let Some(ids) = exp["deviceIds"].as_array() {
        let first = ids[0].as_str().unwrap();
        assert_eq!(t.sender_hex(), first.split('/').next().unwrap(), "{src}");
    }
    let rorg = match exp["telegramType"].as_str() {
        Some("RPS") => Some(0xF6),
        Some("1BS") => Some(0xD5),
        Some("4BS") => Some(0xA5),
        Some("VLD") => Some(0xD2),
        Some("MSC") => Some(0xD1),
        Some("UTE") => Some(0xD4),
        _ => None,
    };
    if let Some(rorg) = rorg {
        assert_eq!(t.rorg, rorg, "{src}");
    }
}

#[test]
fn broken_frames_are_rejected() {
    for case in cases("esp3_frame_invalid") {
        let src = source(&case);
        let frame = bytes(case["esp3_hex"].as_str().unwrap());
        let err = esp3::parse_frame(&frame).expect_err(src);
        let why = case["expected"]["why"]
            .as_str()
            .or(case["expected"]["error"].as_str())
            .unwrap();
        match err {
            Esp3Error::HeaderCrc { .. } => assert!(
                why.contains("header") || why.contains("CRC8H"),
                "{src}: {err}"
            ),
            Esp3Error::DataCrc { .. } => {
                assert!(
                    why.contains("data") || why.contains("CRC8D"),
                    "{src}: {err}"
                )
            }
            Esp3Error::Incomplete { .. } => assert!(why.contains("incomplete"), "{src}: {err}"),
            Esp3Error::UnknownPacketType(0xFF) => {
                assert!(why.contains("packet type"), "{src}: {err}")
            }
            other => panic!("{src}: unexpected {other}"),
        }
        let mut parser = StreamParser::new();
        parser.push(&frame);
        while let Some(r) = parser.next_packet() {
            assert!(
                r.is_err(),
                "{src}: the stream parser must not accept a broken frame"
            );
        }
    }
}

/// Runs a stream through the parser in the given chunk size; returns the frames and errors.
fn run_stream(stream: &[u8], chunk: usize) -> (StreamParser, Vec<Vec<u8>>, Vec<Esp3Error>) {
    let mut parser = StreamParser::new();
    let (mut frames, mut errors) = (Vec::new(), Vec::new());
    for piece in stream.chunks(chunk) {
        parser.push(piece);
        while let Some(r) = parser.next_packet() {
            match r {
                Ok(p) => frames.push(p.encode()),
                Err(e) => errors.push(e),
            }
        }
    }
    (parser, frames, errors)
}

#[test]
fn streams_yield_the_expected_frames_in_any_chunking() {
    for case in cases("esp3_stream") {
        let src = source(&case);
        let stream = bytes(case["stream_hex"].as_str().unwrap());
        let exp = &case["expected"];
        let expected: Vec<Vec<u8>> = exp["frames"]
            .as_array()
            .map(|f| f.iter().map(|h| bytes(h.as_str().unwrap())).collect())
            .unwrap_or_default();
        for chunk in 1..=stream.len() {
            let (parser, frames, errors) = run_stream(&stream, chunk);
            assert_eq!(frames, expected, "{src} (chunk {chunk})");
            if exp["error"].is_string() {
                assert_eq!(errors, vec![Esp3Error::EmptyData], "{src}");
                assert_eq!(parser.stats().empty_frames, 1, "{src}");
            }
            if let Some(rest) = exp["remainder_hex"].as_str() {
                // The trailing bytes hold no sync byte: they are skipped, nothing stays buffered.
                assert_eq!(parser.buffered(), 0, "{src}");
                assert_eq!(parser.skipped_bytes(), bytes(rest).len() as u64, "{src}");
            }
            let framed: usize = expected.iter().map(Vec::len).sum();
            assert_eq!(
                parser.skipped_bytes() as usize + framed + parser.buffered(),
                stream.len(),
                "{src}: every byte is either framed, skipped or buffered"
            );
        }
    }
}

#[test]
fn encoder_builds_the_published_frames() {
    for case in cases("esp3_encode") {
        let src = source(&case);
        let frame = bytes(case["esp3_hex"].as_str().unwrap());
        let exp = &case["expected"];
        let built = if let Some(t) = exp["packetType"].as_u64() {
            let data: Vec<u8> = exp["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b.as_u64().unwrap() as u8)
                .collect();
            assert_eq!(
                frame[5] as u64,
                exp["crc8Header"].as_u64().unwrap(),
                "{src}"
            );
            assert_eq!(
                *frame.last().unwrap() as u64,
                exp["crc8Data"].as_u64().unwrap(),
                "{src}"
            );
            esp3::encode_frame(t as u8, &data, &[])
        } else {
            let mut data = vec![exp["rorg"].as_u64().unwrap() as u8];
            data.extend(bytes(exp["data"].as_str().unwrap()));
            data.extend(id(exp["sender"].as_str().unwrap()).to_be_bytes());
            data.push(exp["status"].as_u64().unwrap_or(0) as u8);
            let optional = match exp["optional"].as_object() {
                None => Vec::new(),
                Some(o) => {
                    let mut opt = vec![o["subtel"].as_u64().unwrap() as u8];
                    opt.extend(id(o["destination"].as_str().unwrap()).to_be_bytes());
                    opt.push(o["dBm"].as_u64().unwrap() as u8);
                    opt.push(o["security"].as_u64().unwrap() as u8);
                    opt
                }
            };
            esp3::encode_frame(PacketType::RadioErp1.as_u8(), &data, &optional)
        };
        assert_eq!(
            hex::encode_upper(&built),
            hex::encode_upper(&frame),
            "{src}"
        );
    }
}

#[test]
fn telegram_builds_the_published_erp1_frame() {
    // kipe test_packet_assembly: A5 00000000 from DEADBEEF, sub-telegrams 3, dBm 0xFF.
    let case = cases("esp3_encode")
        .into_iter()
        .find(|c| c["expected"]["optional"].is_object())
        .unwrap();
    let t = Telegram {
        rorg: 0xA5,
        data: vec![0, 0, 0, 0],
        sender: 0xDEAD_BEEF,
        destination: 0xFFFF_FFFF,
        status: 0,
        sub_tel_num: Some(3),
        dbm: Some(-255),
        security_level: Some(0),
    };
    assert_eq!(
        t.to_erp1_packet().encode(),
        bytes(case["esp3_hex"].as_str().unwrap())
    );
}

#[test]
fn crc8_matches_published_values() {
    for case in cases("crc8") {
        for (input, crc) in case["expected"]["crc8"].as_object().unwrap() {
            assert_eq!(crc8(&bytes(input)) as u64, crc.as_u64().unwrap(), "{input}");
        }
    }
}

#[test]
fn frames_split_across_pushes_and_surrounded_by_garbage_are_found() {
    let frames: Vec<Vec<u8>> = cases("esp3_frame")
        .iter()
        .map(|c| bytes(c["esp3_hex"].as_str().unwrap()))
        .collect();
    let mut stream = Vec::new();
    for f in &frames {
        stream.extend_from_slice(&[0x55, 0x00, 0x13, 0x55]); // false sync bytes
        stream.extend_from_slice(f);
    }
    for chunk in [1, 2, 3, 7, 64, stream.len()] {
        let (parser, found, _) = run_stream(&stream, chunk);
        assert_eq!(found, frames, "chunk {chunk}");
        assert_eq!(parser.stats().frames, frames.len() as u64);
        assert_eq!(parser.skipped_bytes(), 4 * frames.len() as u64);
    }
}

#[test]
fn a_frame_inside_a_broken_frame_is_found() {
    // A header announcing 20 bytes, cut short; a valid frame follows before its end.
    let good = bytes("5500010005700838");
    let mut broken = esp3::encode_frame(0x01, &[0xAA; 20], &[]);
    broken.truncate(8);
    broken.extend_from_slice(&good);
    for chunk in [1, 5, broken.len()] {
        let (parser, found, errors) = run_stream(&broken, chunk);
        assert_eq!(found, vec![good.clone()], "chunk {chunk}");
        assert_eq!(errors, vec![Esp3Error::Truncated], "chunk {chunk}");
        assert_eq!(parser.stats().truncated_frames, 1);
        assert_eq!(parser.buffered(), 0);
    }
}

#[test]
fn a_frame_with_a_bad_data_crc_is_skipped() {
    let good = bytes("5500010005700838");
    let mut bad = esp3::encode_frame(0x01, &[0xAA; 20], &[]);
    *bad.last_mut().unwrap() ^= 1;
    bad.extend_from_slice(&good);
    let (parser, found, errors) = run_stream(&bad, 3);
    assert_eq!(found, vec![good]);
    assert!(
        matches!(errors[..], [Esp3Error::DataCrc { .. }]),
        "{errors:?}"
    );
    assert_eq!(parser.stats().data_crc_errors, 1);
    assert_eq!(parser.crc_errors(), 1);
}

#[test]
fn a_false_header_announcing_much_data_does_not_hold_back_frames() {
    // 0x55 then three bytes whose CRC8 matches: a header announcing 0x3400 data bytes.
    let mut header = vec![0x55, 0x34, 0x00, 0x00, 0x01];
    header.push(crc8(&header[1..5]));
    let good = bytes("55000707017AF670018DF8BD3001FFFFFFFF55008B");
    let mut stream = header.clone();
    stream.extend_from_slice(&good);
    let (_, found, errors) = run_stream(&stream, 4);
    assert_eq!(found, vec![good]);
    assert_eq!(errors, vec![Esp3Error::Truncated]);
}

#[test]
fn buffer_is_bounded() {
    let mut parser = StreamParser::with_max_buffer(0);
    // A valid header announcing the largest frame, never completed.
    let header = esp3::encode_frame(0x01, &vec![0; 65535], &[0; 255]);
    parser.push(&header[..6]);
    assert!(parser.next_packet().is_none());
    parser.push(&vec![0u8; esp3::MAX_FRAME_LEN * 2]);
    assert!(parser.buffered() <= esp3::MAX_FRAME_LEN);
    assert!(parser.stats().dropped_bytes > 0);
    // Still usable afterwards.
    parser.push(&bytes("5500010005700838"));
    let mut found = 0;
    while let Some(r) = parser.next_packet() {
        found += r.is_ok() as usize;
    }
    assert_eq!(found, 1);
}

#[test]
fn parse_frame_reports_trailing_bytes_and_missing_sync() {
    assert_eq!(
        esp3::parse_frame(&bytes("550001000570083800")),
        Err(Esp3Error::TrailingBytes(1))
    );
    assert_eq!(
        esp3::parse_frame(&bytes("5400010005700838")),
        Err(Esp3Error::NoSync)
    );
    assert!(matches!(
        esp3::try_encode_frame(1, &vec![0; 65536], &[]),
        Err(Esp3Error::TooLong { .. })
    ));
}
