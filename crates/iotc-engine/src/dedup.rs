//! De-duplication. When several APs hear one radio transmission, the ingress appends every
//! copy to the telegram's partition (one sender, one partition), and the engine reading the
//! partition keeps the first copy and drops the others. A copy is an entry with the same
//! de-duplication key (sender, R-ORG, status without the repeater count, payload) whose
//! stream entry time lies within `IOT_DEDUP_WINDOW_MS` of the first one's. Entry times are
//! Redis's clock at the append, as the ingress's `SET NX PX` keys were before.
//!
//! The same entry read again (a claim, a re-read after a failed read) is not a copy of
//! itself: it is recognised by its entry id. A partition taken over from another engine
//! starts with the window of entries delivered just before the takeover
//! ([`Dedup::remember`]), so a copy the previous holder had not reached yet is still dropped.

use std::collections::VecDeque;

use enocean::telegram::Telegram;
use rustc_hash::FxHashMap;

/// Keys remembered per partition at most: far more than a window holds at full speed
/// (20,000 telegrams/s × 500 ms = 10,000), and a bound against an AP flooding distinct
/// telegrams (about 80 bytes each). Past it the oldest are forgotten first.
pub const MAX_KEYS: usize = 200_000;

/// A stream entry id as (milliseconds, sequence).
type EntryId = (u64, u64);

/// The de-duplication windows of the partitions held, by stream.
pub struct Dedup {
    window_ms: u64,
    max_keys: usize,
    streams: FxHashMap<String, Window>,
}

#[derive(Default)]
struct Window {
    /// The first entry of each key still inside the window.
    first: FxHashMap<[u8; 16], EntryId>,
    /// Keys in the order they were remembered, to forget them when they age out.
    order: VecDeque<(EntryId, [u8; 16])>,
    newest_ms: u64,
}

impl Dedup {
    pub fn new(window_ms: u64, max_keys: usize) -> Dedup {
        Dedup {
            window_ms,
            max_keys,
            streams: FxHashMap::default(),
        }
    }

    pub fn window_ms(&self) -> u64 {
        self.window_ms
    }

    /// Whether entry `id` of `stream`, carrying the ESP3 frame `esp3`, is a copy of a
    /// telegram an earlier entry brought. A frame that does not parse is never a copy (the
    /// decoder reports it).
    pub fn is_copy(&mut self, stream: &str, id: &str, esp3: &[u8]) -> bool {
        let (Some(id), Some(key)) = (parse_id(id), key_of(esp3)) else {
            return false;
        };
        let (window_ms, max_keys) = (self.window_ms, self.max_keys);
        let window = match self.streams.get_mut(stream) {
            Some(w) => w,
            None => self.streams.entry(stream.to_string()).or_default(),
        };
        window.check(key, id, window_ms, max_keys)
    }

    /// Notes an entry delivered before this engine held the partition (see the module).
    pub fn remember(&mut self, stream: &str, id: &str, esp3: &[u8]) {
        self.is_copy(stream, id, esp3);
    }

    /// Forgets the windows of streams no longer held.
    pub fn keep_only(&mut self, held: &[String]) {
        self.streams.retain(|s, _| held.contains(s));
    }
}

impl Window {
    fn check(&mut self, key: [u8; 16], id: EntryId, window_ms: u64, max_keys: usize) -> bool {
        self.newest_ms = self.newest_ms.max(id.0);
        self.forget_old(window_ms, max_keys);
        if let Some(first) = self.first.get(&key) {
            if *first == id {
                return false;
            }
            if first.0.abs_diff(id.0) < window_ms {
                return true;
            }
        }
        self.first.insert(key, id);
        self.order.push_back((id, key));
        false
    }

    /// Drops keys whose first entry is older than the window before the newest entry seen,
    /// and the oldest keys over `max_keys`.
    fn forget_old(&mut self, window_ms: u64, max_keys: usize) {
        while let Some(&(id, key)) = self.order.front() {
            let aged = id.0 + window_ms <= self.newest_ms;
            if !aged && self.first.len() < max_keys {
                break;
            }
            self.order.pop_front();
            // The key may have started a new window since: only its current first counts.
            if self.first.get(&key) == Some(&id) {
                self.first.remove(&key);
            }
        }
    }
}

fn parse_id(id: &str) -> Option<EntryId> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

fn key_of(esp3: &[u8]) -> Option<[u8; 16]> {
    Telegram::from_esp3(esp3).ok().map(|t| t.dedup_key())
}

#[cfg(test)]
mod tests {
    use super::*;

    // A 4BS telegram from EnOcean's ESP3 specification (also in the enocean crate's tests).
    const SPEC_4BS: &str = "55000A0701EBA5000055080181B7440001FFFFFFFF2D0075";

    /// An RPS telegram of sender 002e3d4d with payload `data0` and `status`, heard at -76 dBm.
    fn frame(status: u8, data0: u8) -> Vec<u8> {
        let data = [0xf6, data0, 0x00, 0x2e, 0x3d, 0x4d, status];
        let optional = [0x01, 0xff, 0xff, 0xff, 0xff, 0x4c, 0x00];
        enocean::esp3::encode_frame(1, &data, &optional)
    }

    const S: &str = "iotc:telegrams";

    /// Keys remembered over all partitions.
    fn keys(d: &Dedup) -> usize {
        d.streams.values().map(|w| w.first.len()).sum()
    }

    #[test]
    fn a_published_frame_has_a_key() {
        let bytes = hex::decode(SPEC_4BS).unwrap();
        assert!(key_of(&bytes).is_some());
        // The same frame heard at another strength (optional data byte 5, dBm): same key.
        // Layout: sync, header (4), header CRC, data (6..16), optional (16..23), CRC.
        let mut other = bytes.clone();
        other[21] = 0x40;
        other[23] = enocean::crc8::crc8(&other[6..23]);
        assert_ne!(other, bytes);
        assert_eq!(key_of(&other), key_of(&bytes));
    }

    #[test]
    fn a_second_copy_within_the_window_is_dropped() {
        let mut d = Dedup::new(500, MAX_KEYS);
        assert!(!d.is_copy(S, "1000-0", &frame(0x30, 0x50)));
        assert!(d.is_copy(S, "1300-0", &frame(0x31, 0x50)), "repeated copy");
        assert!(!d.is_copy(S, "1300-1", &frame(0x30, 0x70)), "other payload");
        assert!(!d.is_copy(S, "1500-0", &frame(0x30, 0x50)), "window over");
        assert!(
            d.is_copy(S, "1600-0", &frame(0x30, 0x50)),
            "copy of the new first"
        );
    }

    #[test]
    fn the_same_entry_read_again_is_not_a_copy() {
        let mut d = Dedup::new(500, MAX_KEYS);
        assert!(!d.is_copy(S, "1000-0", &frame(0x30, 0x50)));
        assert!(!d.is_copy(S, "1000-0", &frame(0x30, 0x50)));
        assert!(d.is_copy(S, "1000-1", &frame(0x30, 0x50)));
    }

    #[test]
    fn partitions_have_windows_of_their_own() {
        let mut d = Dedup::new(500, MAX_KEYS);
        assert!(!d.is_copy(S, "1000-0", &frame(0x30, 0x50)));
        // Another partition far ahead in time does not age the first one's keys out.
        assert!(!d.is_copy("iotc:telegrams:{p1}", "90000-0", &frame(0x30, 0x51)));
        assert!(d.is_copy(S, "1100-0", &frame(0x30, 0x50)));
        d.keep_only(&["iotc:telegrams:{p1}".to_string()]);
        assert!(
            !d.is_copy(S, "1200-0", &frame(0x30, 0x50)),
            "window dropped"
        );
    }

    #[test]
    fn a_remembered_entry_makes_later_copies_copies() {
        let mut d = Dedup::new(500, MAX_KEYS);
        d.remember(S, "1000-0", &frame(0x30, 0x50));
        assert!(d.is_copy(S, "1200-0", &frame(0x31, 0x50)));
        // The remembered entry itself, if still pending, is handled.
        assert!(!d.is_copy(S, "1000-0", &frame(0x30, 0x50)));
    }

    #[test]
    fn aged_keys_are_forgotten_and_the_count_is_bounded() {
        let mut d = Dedup::new(500, 3);
        for i in 0..10u8 {
            d.is_copy(S, &format!("{}-0", 1000 + u64::from(i)), &frame(0x30, i));
        }
        assert_eq!(keys(&d), 3);
        d.is_copy(S, "5000-0", &frame(0x30, 0xaa));
        assert_eq!(keys(&d), 1);
    }

    #[test]
    fn unreadable_input_is_never_a_copy() {
        let mut d = Dedup::new(500, MAX_KEYS);
        assert!(!d.is_copy(S, "1000-0", &[0x55, 1, 2]));
        assert!(!d.is_copy(S, "1000-0", &[0x55, 1, 2]));
        assert!(!d.is_copy(S, "not-an-id", &frame(0x30, 0x50)));
        assert_eq!(keys(&d), 0);
    }
}
