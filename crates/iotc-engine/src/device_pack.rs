//! A device in as few bytes as possible, for the engine's in-memory copy of the registry: one
//! heap block per device (about 50 bytes for a typical device) instead of a struct of eight
//! strings (about 350 bytes with the allocator's overhead). 1,000,000 devices fit in about
//! 110 MB with the map (docs/performance.md).
//!
//! Layout: one flag byte, then the eight text fields in a fixed order, each as a LEB128 length
//! plus one (0 is an absent optional field) followed by its UTF-8 bytes.

use iotc_core::model::EnOceanSensor;

const ACTIVE: u8 = 1;
const PTM: u8 = 2;

/// Packs a device; [`unpack`] gives it back unchanged.
pub fn pack(d: &EnOceanSensor) -> Box<[u8]> {
    let mut out = Vec::with_capacity(64);
    out.push(if d.active_flag { ACTIVE } else { 0 } | if d.is_ptm { PTM } else { 0 });
    for field in [
        Some(&d.source_eurid),
        d.destination_eurid.as_ref(),
        Some(&d.friendly_id),
        d.location.as_ref(),
        Some(&d.eep),
        d.slf.as_ref(),
        d.aes_key.as_ref(),
        Some(&d.custom_tag),
    ] {
        put_text(&mut out, field.map(String::as_str));
    }
    out.into_boxed_slice()
}

/// The device of a packed block (`None` only for a block [`pack`] did not write).
pub fn unpack(bytes: &[u8]) -> Option<EnOceanSensor> {
    let (&flags, mut rest) = bytes.split_first()?;
    let mut next = || -> Option<Option<String>> {
        let (text, tail) = take_text(rest)?;
        rest = tail;
        Some(text)
    };
    Some(EnOceanSensor {
        source_eurid: next()??,
        destination_eurid: next()?,
        friendly_id: next()??,
        location: next()?,
        eep: next()??,
        active_flag: flags & ACTIVE != 0,
        slf: next()?,
        is_ptm: flags & PTM != 0,
        aes_key: next()?,
        custom_tag: next()??,
    })
}

fn put_text(out: &mut Vec<u8>, text: Option<&str>) {
    let mut n = text.map_or(0, |t| t.len() as u64 + 1);
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    if let Some(t) = text {
        out.extend_from_slice(t.as_bytes());
    }
}

/// One field and the bytes after it.
fn take_text(bytes: &[u8]) -> Option<(Option<String>, &[u8])> {
    let mut n: u64 = 0;
    let mut used = 0;
    if bytes.is_empty() {
        return None;
    }
    for (i, &b) in bytes.iter().enumerate().take(10) {
        n |= u64::from(b & 0x7f) << (7 * i);
        used = i + 1;
        if b & 0x80 == 0 {
            break;
        }
    }
    let rest = bytes.get(used..)?;
    if n == 0 {
        return Some((None, rest));
    }
    let len = usize::try_from(n - 1).ok()?;
    let text = std::str::from_utf8(rest.get(..len)?).ok()?.to_string();
    Some((Some(text), &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> EnOceanSensor {
        EnOceanSensor {
            source_eurid: "a1b2c3d4".into(),
            destination_eurid: Some("ffffffff".into()),
            friendly_id: "Room Panel 02 · Zürich".into(),
            location: None,
            eep: "A5-04-05".into(),
            active_flag: true,
            slf: Some("f3".into()),
            is_ptm: false,
            aes_key: Some("00112233445566778899aabbccddeeff".into()),
            custom_tag: "x".repeat(300),
        }
    }

    #[test]
    fn round_trips_every_field() {
        let mut d = sample();
        assert_eq!(unpack(&pack(&d)), Some(d.clone()));
        d.active_flag = false;
        d.is_ptm = true;
        d.destination_eurid = None;
        d.location = Some(String::new());
        d.custom_tag.clear();
        assert_eq!(unpack(&pack(&d)), Some(d));
    }

    #[test]
    fn is_small_and_refuses_truncated_blocks() {
        let d = EnOceanSensor {
            aes_key: None,
            slf: None,
            custom_tag: String::new(),
            friendly_id: "Sensor 00042".into(),
            ..sample()
        };
        let packed = pack(&d);
        assert!(packed.len() <= 48, "{} bytes", packed.len());
        for cut in 0..packed.len() {
            assert_eq!(unpack(&packed[..cut]), None, "cut at {cut}");
        }
    }
}
