//! From serial payloads to radio telegrams: each USB stick's bytes go through its own ESP3
//! stream parser (a frame split over two messages is kept), and each frame is sorted into a
//! telegram to forward, a packet of another type, or a broken frame.

use std::collections::HashMap;

use enocean::esp3::{self, PacketType, StreamParser};
use enocean::telegram::Telegram;

/// What one ESP3 frame turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A RADIO_ERP1 or RADIO_ERP2 telegram.
    Telegram {
        frame: Vec<u8>,
        dedup_key: [u8; 16],
        /// Signal strength in dBm, 0 when unknown.
        dbm: i8,
    },
    /// A valid frame of a packet type that is not forwarded (e.g. RESPONSE).
    Other { packet_type: u8 },
    /// Bytes that are not a valid frame, or a radio frame that is not a valid telegram.
    Broken { reason: &'static str },
}

/// Parsers kept per stick so that partial frames survive between messages. Bounded: a
/// controller connection carries many APs, but never this many sticks.
#[derive(Default)]
pub struct StickParsers {
    parsers: HashMap<(u64, String), StreamParser>,
}

const MAX_STICKS: usize = 4096;

impl StickParsers {
    /// Feeds one payload of one stick of one AP; returns every frame completed by it.
    pub fn feed(&mut self, mac: [u8; 6], device_id: &str, payload: &[u8]) -> Vec<Item> {
        let mut key_bytes = [0u8; 8];
        key_bytes[2..].copy_from_slice(&mac);
        let key = (u64::from_be_bytes(key_bytes), device_id.to_string());
        if self.parsers.len() >= MAX_STICKS && !self.parsers.contains_key(&key) {
            self.parsers.clear();
        }
        let parser = self.parsers.entry(key).or_default();
        parser.push(payload);
        let mut items = Vec::new();
        while let Some(next) = parser.next_frame() {
            items.push(match next {
                Ok(frame) => classify(&frame),
                Err(e) => Item::Broken {
                    reason: esp3_reason(&e),
                },
            });
        }
        items
    }
}

fn classify(frame: &esp3::Frame<'_>) -> Item {
    match frame.kind() {
        Some(PacketType::RadioErp1 | PacketType::RadioErp2) => match Telegram::from_frame(frame) {
            Ok(t) => Item::Telegram {
                frame: esp3::encode_frame(frame.packet_type, frame.data, frame.optional),
                dedup_key: t.dedup_key(),
                dbm: t.dbm.map_or(0, |d| d.clamp(i8::MIN as i16, 0) as i8),
            },
            Err(_) => Item::Broken {
                reason: "bad_telegram",
            },
        },
        _ => Item::Other {
            packet_type: frame.packet_type,
        },
    }
}

/// A short label for the metrics.
fn esp3_reason(e: &esp3::Esp3Error) -> &'static str {
    match e {
        esp3::Esp3Error::HeaderCrc { .. } => "header_crc",
        esp3::Esp3Error::DataCrc { .. } => "data_crc",
        esp3::Esp3Error::EmptyData => "empty",
        _ => "malformed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x20, 0x4c, 0x03, 0x34, 0x44, 0x41];
    /// vectors.json `esp3_rps_ptm215` and `official_esp3_nb_RESPONSE_version`.
    const RPS: &str = "55000707017af600feee14ab2000ffffffff4700ad";
    const RESPONSE: &str =
        "55002100022600010208000103040004129f1e454f010354434d3531355500000000000000000039";

    fn bytes(h: &str) -> Vec<u8> {
        hex::decode(h).unwrap()
    }

    #[test]
    fn telegram_is_kept_with_signal() {
        let items = StickParsers::default().feed(MAC, "u", &bytes(RPS));
        let [Item::Telegram { frame, dbm, .. }] = items.as_slice() else {
            panic!("{items:?}")
        };
        assert_eq!(frame, &bytes(RPS));
        assert_eq!(*dbm, -0x47);
    }

    #[test]
    fn response_is_other_and_crc_error_is_broken() {
        let mut parsers = StickParsers::default();
        assert_eq!(
            parsers.feed(MAC, "u", &bytes(RESPONSE)),
            vec![Item::Other { packet_type: 2 }]
        );
        let mut bad = bytes(RPS);
        let last = bad.len() - 1;
        bad[last] ^= 0xFF;
        assert_eq!(
            parsers.feed(MAC, "u", &bad),
            vec![Item::Broken { reason: "data_crc" }]
        );
    }

    #[test]
    fn frame_split_over_two_payloads() {
        let mut parsers = StickParsers::default();
        let frame = bytes(RPS);
        assert!(parsers.feed(MAC, "u", &frame[..9]).is_empty());
        let items = parsers.feed(MAC, "u", &frame[9..]);
        assert!(matches!(items.as_slice(), [Item::Telegram { .. }]));
    }

    #[test]
    fn repeated_copy_has_the_same_key() {
        let mut parsers = StickParsers::default();
        let original = bytes(RPS);
        let repeated = esp3::encode_frame(
            1,
            &[0xf6, 0x00, 0xfe, 0xee, 0x14, 0xab, 0x21],
            &[0, 0xff, 0xff, 0xff, 0xff, 0x50, 0],
        );
        let key = |items: Vec<Item>| match items.as_slice() {
            [Item::Telegram { dedup_key, .. }] => *dedup_key,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            key(parsers.feed(MAC, "u", &original)),
            key(parsers.feed(MAC, "v", &repeated))
        );
    }
}
