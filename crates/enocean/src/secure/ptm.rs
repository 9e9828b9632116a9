//! PTM switch modules: the decrypted rocker nibble (D2-03-00) as F6-02-01 data and status.
//!
//! A secure PTM sends R-ORG 0x30 with one encrypted byte; the low nibble of
//! `byte xor KS1[0]` is the rocker action of D2-03-00. Receivers present it as the plain
//! rocker telegram F6-02-01 would have been: a data byte and the T21/NU status bits.

use super::{LEVEL_DECRYPTED, Plain, SEC_D, SecureContext, SecureError};

/// R-ORG of the RPS telegram the rocker nibble becomes.
pub const RPS: u8 = 0xF6;

const T21: u8 = 0x20;
const T21_NU: u8 = 0x30;

/// F6-02-01 `(data, status)` for a D2-03-00 rocker nibble; `None` for the reserved 0..=4.
///
/// Data bits: R1 (7–5, 0 = A1, 1 = A0, 2 = B1, 3 = B0), EB (4), R2 (3–1), SA (0); with NU
/// = 0, bits 7–5 count the buttons instead.
pub fn rocker_to_rps(nibble: u8) -> Option<(u8, u8)> {
    Some(match nibble & 0x0F {
        0x5 => (0x17, T21_NU), // A1 + B0
        0x6 => (0x70, T21),    // 3 or 4 buttons
        0x7 => (0x37, T21_NU), // A0 + B0
        0x8 => (0x10, T21),    // energy bow pressed, no button
        0x9 => (0x15, T21_NU), // A1 + B1
        0xA => (0x35, T21_NU), // A0 + B1
        0xB => (0x50, T21_NU), // B1
        0xC => (0x70, T21_NU), // B0
        0xD => (0x10, T21_NU), // A1
        0xE => (0x30, T21_NU), // A0
        0xF => (0x00, T21),    // released
        _ => return None,
    })
}

/// The D2-03-00 nibble of an F6-02-01 `(data, status)`: the inverse of [`rocker_to_rps`],
/// for the simulator.
pub fn rps_to_rocker(data: u8, status: u8) -> Option<u8> {
    (0x5..=0xF).find(|&n| rocker_to_rps(n) == Some((data, status & 0x30)))
}

/// The plain form of a decrypted rocker nibble: F6 data and status, or 0x32 with the
/// nibble when it is a reserved value.
pub(crate) fn rocker_plain(nibble: u8, rlc: Option<u32>, security_level: u8) -> Plain {
    let nibble = nibble & 0x0F;
    let (rorg, data, status_override) = match rocker_to_rps(nibble) {
        Some((data, status)) => (RPS, data, Some(status)),
        None => (SEC_D, nibble, None),
    };
    Plain {
        rorg,
        data: vec![data],
        status_override,
        rlc,
        security_level,
    }
}

/// Decodes an already decrypted R-ORG 0x32 telegram (`data` after the R-ORG).
///
/// 0x32 carries no CMAC: anyone can send one with any sender ID. Use this only when the
/// transceiver is trusted to have verified and decrypted the telegram itself;
/// [`super::verify_and_decrypt`] refuses 0x32.
pub fn decode_sec_d(ctx: &SecureContext, data: &[u8]) -> Result<Plain, SecureError> {
    if data.is_empty() {
        return Err(SecureError::Malformed("empty 0x32 telegram"));
    }
    if ctx.is_ptm {
        return Ok(rocker_plain(data[0], None, LEVEL_DECRYPTED));
    }
    Ok(Plain {
        rorg: SEC_D,
        data: data.to_vec(),
        status_override: None,
        rlc: None,
        security_level: LEVEL_DECRYPTED,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_round_trips() {
        for nibble in 0x5..=0xF {
            let (data, status) = rocker_to_rps(nibble).unwrap();
            // 0x6 and 0xC share the data byte but differ in NU
            assert_eq!(rps_to_rocker(data, status), Some(nibble));
        }
        assert_eq!(rocker_to_rps(0xE), Some((0x30, 0x30)));
        assert_eq!(rocker_to_rps(0xF), Some((0x00, 0x20)));
        assert!((0..5).all(|n| rocker_to_rps(n).is_none()));
    }
}
