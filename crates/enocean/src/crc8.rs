//! CRC8 as used by ESP3 and ERP2: polynomial 0x07, initial value 0, no reflection.

const POLY: u8 = 0x07;

const TABLE: [u8; 256] = build_table();

const fn build_table() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ POLY
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

/// CRC8 of `bytes`.
pub fn crc8(bytes: &[u8]) -> u8 {
    update(0, bytes)
}

/// Continues a CRC8 over more bytes (`crc8(a ++ b) == update(crc8(a), b)`).
pub fn update(crc: u8, bytes: &[u8]) -> u8 {
    bytes.iter().fold(crc, |crc, &b| TABLE[(crc ^ b) as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_zero() {
        assert_eq!(crc8(&[]), 0);
    }

    #[test]
    fn update_continues() {
        let bytes = [0x55, 0x00, 0x07, 0x07, 0x01, 0xF6];
        assert_eq!(update(crc8(&bytes[..2]), &bytes[2..]), crc8(&bytes));
    }
}
