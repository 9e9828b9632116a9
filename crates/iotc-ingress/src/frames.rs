//! From serial payloads to radio telegrams: each USB stick's bytes go through its own ESP3
//! stream parser (a frame split over two messages is kept), and each frame is sorted into a
//! telegram to forward, a packet of another type, or a broken frame.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};

use enocean::esp3::{self, PacketType, StreamParser};
use enocean::telegram::Telegram;

/// What one ESP3 frame turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A RADIO_ERP1 or RADIO_ERP2 telegram.
    Telegram {
        frame: Vec<u8>,
        /// Signal strength in dBm, 0 when unknown.
        dbm: i8,
        /// The sender's ID.
        sender: u32,
    },
    /// A RESPONSE packet: the stick's answer to a southbound packet (its data).
    Response { data: Vec<u8> },
    /// A valid frame of a packet type that is not forwarded (e.g. RESPONSE).
    Other { packet_type: u8 },
    /// Bytes that are not a valid frame, or a radio frame that is not a valid telegram.
    Broken { reason: &'static str },
    /// A stick beyond the connection's limit: its data is dropped.
    StickRefused,
}

/// Largest ESP3 data of a RADIO_ERP1/ERP2 frame. An ERP1 telegram carries at most 14 data
/// bytes (R-ORG, data, sender, status: 20 bytes); an ERP2 telegram at most 36 bytes of data
/// and optional data plus at most 10 bytes of header and addresses (46 bytes). 64 leaves room.
pub const RADIO_MAX_DATA: usize = 64;
/// Largest ESP3 optional data of a radio frame: ERP1 has 7 bytes, ERP2 3.
pub const RADIO_MAX_OPTIONAL: usize = 16;
/// Largest radio frame, sync byte to CRC8D.
pub const RADIO_MAX_FRAME: usize = esp3::HEADER_LEN + RADIO_MAX_DATA + RADIO_MAX_OPTIONAL + 1;

/// One connection's ESP3 parsers, one per (AP, stick), so that a frame split over two
/// messages is kept. Bounded: at most `max_sticks` sticks, each parser holding less than two
/// frames of `max_frame` bytes; a parser is dropped as soon as it holds no partial frame.
pub struct StickParsers {
    parsers: HashMap<StickKey, StreamParser>,
    known: HashSet<StickKey>,
    max_sticks: usize,
    max_frame: usize,
    /// Keys the stick identifiers, whose length an AP chooses, to a fixed size.
    hasher: RandomState,
}

/// AP MAC and a keyed 64-bit hash of the stick's identifier.
type StickKey = ([u8; 6], u64);

impl Default for StickParsers {
    fn default() -> Self {
        Self::new(1024, 512)
    }
}

impl StickParsers {
    /// `max_frame`: longest ESP3 frame of any type (radio frames are bounded tighter).
    pub fn new(max_sticks: usize, max_frame: usize) -> Self {
        StickParsers {
            parsers: HashMap::new(),
            known: HashSet::new(),
            max_sticks: max_sticks.max(1),
            max_frame: max_frame.max(RADIO_MAX_FRAME),
            hasher: RandomState::new(),
        }
    }

    /// Feeds one payload of one stick of one AP; returns every frame completed by it.
    pub fn feed(&mut self, mac: [u8; 6], device_id: &str, payload: &[u8]) -> Vec<Item> {
        let key = (mac, self.hasher.hash_one(device_id));
        if !self.known.contains(&key) {
            if self.known.len() >= self.max_sticks {
                return vec![Item::StickRefused];
            }
            self.known.insert(key);
        }
        let max_frame = self.max_frame;
        let parser = self
            .parsers
            .entry(key)
            .or_insert_with(|| StreamParser::with_limits(2 * max_frame, max_frame));
        let mut items = Vec::new();
        // Pushed in pieces of one frame so that the buffer never holds two whole frames.
        for chunk in payload.chunks(max_frame) {
            parser.push(chunk);
            drain(parser, &mut items);
        }
        if parser.buffered() == 0 {
            self.parsers.remove(&key);
        } else {
            parser.shrink();
        }
        items
    }

    /// Sticks seen on this connection, and parsers holding a partial frame.
    pub fn counts(&self) -> (usize, usize) {
        (self.known.len(), self.parsers.len())
    }

    /// Bytes of parser buffers held.
    pub fn buffered_capacity(&self) -> usize {
        self.parsers.values().map(StreamParser::capacity).sum()
    }
}

fn drain(parser: &mut StreamParser, items: &mut Vec<Item>) {
    while let Some(next) = parser.next_frame() {
        items.push(match next {
            Ok(frame) => classify(&frame),
            Err(e) => Item::Broken {
                reason: esp3_reason(&e),
            },
        });
    }
}

fn classify(frame: &esp3::Frame<'_>) -> Item {
    match frame.kind() {
        Some(PacketType::RadioErp1 | PacketType::RadioErp2)
            if frame.data.len() > RADIO_MAX_DATA || frame.optional.len() > RADIO_MAX_OPTIONAL =>
        {
            Item::Broken { reason: "too_long" }
        }
        Some(PacketType::RadioErp1 | PacketType::RadioErp2) => match Telegram::from_frame(frame) {
            Ok(t) => Item::Telegram {
                frame: esp3::encode_frame(frame.packet_type, frame.data, frame.optional),
                dbm: t.dbm.map_or(0, |d| d.clamp(i8::MIN as i16, 0) as i8),
                sender: t.sender,
            },
            Err(_) => Item::Broken {
                reason: "bad_telegram",
            },
        },
        Some(PacketType::Response) => Item::Response {
            data: frame.data.to_vec(),
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
        esp3::Esp3Error::OverLimit { .. } => "too_long",
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
            vec![Item::Response {
                data: bytes(RESPONSE)[6..6 + 0x21].to_vec()
            }]
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
    fn radio_frame_beyond_erp_limits_is_broken() {
        let long = esp3::encode_frame(1, &[0xD2; RADIO_MAX_DATA + 1], &[]);
        let items = StickParsers::default().feed(MAC, "u", &long);
        assert_eq!(items, vec![Item::Broken { reason: "too_long" }]);
    }

    #[test]
    fn header_announcing_a_huge_frame_is_rejected_at_once() {
        let mut parsers = StickParsers::new(4, 512);
        // A valid header announcing 60 000 data bytes, then a real telegram: the telegram
        // is found without waiting for 60 000 bytes.
        let huge = esp3::encode_frame(5, &vec![0; 60_000], &[]);
        let mut payload = huge[..esp3::HEADER_LEN].to_vec();
        payload.extend(bytes(RPS));
        let items = parsers.feed(MAC, "u", &payload);
        assert_eq!(items[0], Item::Broken { reason: "too_long" });
        assert!(
            matches!(items.last(), Some(Item::Telegram { .. })),
            "{items:?}"
        );
        assert_eq!(parsers.counts(), (1, 0));
    }

    #[test]
    fn big_payload_leaves_no_big_buffer() {
        let mut parsers = StickParsers::new(4, 512);
        let mut payload = Vec::new();
        for _ in 0..10_000 {
            payload.extend(bytes(RPS));
        }
        payload.extend(&bytes(RPS)[..9]);
        let items = parsers.feed(MAC, "u", &payload);
        assert_eq!(items.len(), 10_000);
        assert_eq!(parsers.counts(), (1, 1));
        assert!(parsers.buffered_capacity() <= esp3::KEEP_CAPACITY);
        let items = parsers.feed(MAC, "u", &bytes(RPS)[9..]);
        assert_eq!(items.len(), 1);
        assert_eq!(parsers.buffered_capacity(), 0);
    }

    #[test]
    fn sticks_beyond_the_limit_are_refused() {
        let mut parsers = StickParsers::new(2, 512);
        assert_eq!(parsers.feed(MAC, "a", &bytes(RPS)).len(), 1);
        assert_eq!(parsers.feed(MAC, "b", &bytes(RPS)).len(), 1);
        assert_eq!(
            parsers.feed(MAC, "c", &bytes(RPS)),
            vec![Item::StickRefused]
        );
        assert!(matches!(
            parsers.feed(MAC, "a", &bytes(RPS)).as_slice(),
            [Item::Telegram { .. }]
        ));
    }
}
