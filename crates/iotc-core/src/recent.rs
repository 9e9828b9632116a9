//! The most recent messages of a device: a ring of [`SLOTS`] fields in one Redis hash
//! (`keys::device_recent`), written by the engine and read by the API.
//!
//! Each message replaces one field with one `HSET`, where a list needed `LPUSH` and `LTRIM`
//! and moved the whole list in memory for every message. A field holds `<seq> <payload>`;
//! `seq` grows with every message of the device (the engine derives it from the device's
//! telegram count, so it keeps growing across restarts), and the field is `seq % SLOTS`.
//! Readers order by `seq`, so the ring is read newest first whatever field was written last.

/// Messages kept per device and kind, as IoTC's most-recent endpoints return.
pub const SLOTS: u64 = 5;

/// The field that message `seq` replaces.
pub fn field(seq: u64) -> u64 {
    seq % SLOTS
}

/// A field's value: the sequence number, a space, the payload.
pub fn value(seq: u64, payload: &[u8]) -> Vec<u8> {
    let seq = seq.to_string();
    let mut v = Vec::with_capacity(seq.len() + 1 + payload.len());
    v.extend_from_slice(seq.as_bytes());
    v.push(b' ');
    v.extend_from_slice(payload);
    v
}

/// The payloads of a ring's field values, newest first; values not in the format are skipped.
pub fn newest_first(values: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut ring: Vec<(u64, String)> = values
        .into_iter()
        .filter_map(|v| {
            let (seq, payload) = v.split_once(' ')?;
            Some((seq.parse().ok()?, payload.to_string()))
        })
        .collect();
    ring.sort_unstable_by_key(|r| std::cmp::Reverse(r.0));
    ring.truncate(SLOTS as usize);
    ring.into_iter().map(|(_, payload)| payload).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(seq: u64, payload: &str) -> String {
        String::from_utf8(value(seq, payload.as_bytes())).unwrap()
    }

    #[test]
    fn a_ring_reads_newest_first_whichever_field_was_written_last() {
        let mut fields = vec![String::new(); SLOTS as usize];
        for seq in 1..=8 {
            fields[field(seq) as usize] = text(seq, &format!("{{\"n\":{seq}}}"));
        }
        let read = newest_first(fields);
        assert_eq!(
            read,
            [
                "{\"n\":8}",
                "{\"n\":7}",
                "{\"n\":6}",
                "{\"n\":5}",
                "{\"n\":4}"
            ]
        );
    }

    #[test]
    fn payloads_with_spaces_survive_and_broken_values_are_skipped() {
        let read = newest_first([
            text(12, "{\"a\": 1}"),
            "garbage".to_string(),
            "x {}".to_string(),
            text(3, "{}"),
        ]);
        assert_eq!(read, ["{\"a\": 1}", "{}"]);
    }
}
