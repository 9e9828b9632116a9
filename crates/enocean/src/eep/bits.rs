//! Bit fields in EEP numbering: offset 0 is the most significant bit of the first byte.

use super::model::BitRange;

/// Reads one run of bits; `None` when the data is too short.
pub fn read(data: &[u8], bits: BitRange) -> Option<u64> {
    let size = bits.size as usize;
    if size == 0 {
        return Some(0);
    }
    let first = bits.offset as usize / 8;
    let last = (bits.end() - 1) / 8;
    let bytes = data.get(first..=last)?;
    let word = bytes.iter().fold(0u128, |acc, &b| (acc << 8) | b as u128);
    let shift = (last + 1) * 8 - bits.end();
    Some(((word >> shift) & mask(size)) as u64)
}

/// Reads concatenated runs, the first one most significant.
pub fn read_parts(data: &[u8], parts: &[BitRange]) -> Option<u64> {
    if let [single] = parts {
        return read(data, *single);
    }
    parts.iter().try_fold(0u64, |acc, part| {
        Some((acc << part.size) | read(data, *part)?)
    })
}

/// Writes one run of bits (the value is cut to its size); the data must be long enough.
pub fn write(data: &mut [u8], bits: BitRange, value: u64) {
    for i in 0..bits.size as usize {
        let bit = (value >> (bits.size as usize - 1 - i)) & 1;
        let pos = bits.offset as usize + i;
        let m = 0x80u8 >> (pos % 8);
        if bit == 1 {
            data[pos / 8] |= m;
        } else {
            data[pos / 8] &= !m;
        }
    }
}

/// Writes concatenated runs, the first one most significant.
pub fn write_parts(data: &mut [u8], parts: &[BitRange], value: u64) {
    let mut shift: u32 = parts.iter().map(|p| p.size as u32).sum();
    for part in parts {
        shift -= part.size as u32;
        write(data, *part, value.checked_shr(shift).unwrap_or(0));
    }
}

fn mask(size: usize) -> u128 {
    (1u128 << size) - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(offset: u16, size: u8) -> BitRange {
        BitRange { offset, size }
    }

    #[test]
    fn reads_msb_first_across_bytes() {
        let data = [0x9F, 0xCE, 0x80, 0x08, 0x63];
        assert_eq!(read(&data, r(0, 10)), Some(639));
        assert_eq!(read(&data, r(10, 8)), Some(58));
        assert_eq!(read(&data, r(18, 17)), Some(67));
        assert_eq!(read(&data, r(0, 1)), Some(1));
        assert_eq!(read(&data, r(36, 5)), None);
        assert_eq!(read(&[0xFF; 9], r(3, 64)), Some(u64::MAX));
    }

    #[test]
    fn spread_fields_put_the_first_part_on_top() {
        let data = [0xAB, 0xCD];
        assert_eq!(read_parts(&data, &[r(8, 8), r(0, 4)]), Some(0xCDA));
        let mut out = [0u8; 2];
        write_parts(&mut out, &[r(8, 8), r(0, 4)], 0xCDA);
        assert_eq!(out, [0xA0, 0xCD]);
    }

    #[test]
    fn writes_without_touching_neighbours() {
        let mut data = [0xFF, 0x00];
        write(&mut data, r(4, 6), 0b000011);
        assert_eq!(data, [0xF0, 0xC0]);
    }
}
