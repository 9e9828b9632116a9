//! The Security Level Format byte (SLF), v3.02 layout.
//!
//! ```text
//! bit  7 6 5      4 3        2 1 0
//!      RLC_TYPE   CMAC_TYPE  ENCRYPTION_TYPE
//! ```
//!
//! The older RLC_ALGO (bits 7–6) + RLC_TX (bit 5) reading agrees with this one for every
//! value but RLC_TYPE 0b110: v3.02 reads 0xCB as a 32-bit code of which 24 bits are sent,
//! the older reading as a 32-bit implicit code. This crate follows v3.02.

use std::fmt;
use std::str::FromStr;

use super::SecureError;

/// How the rolling code (RLC) is kept and sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RlcMode {
    /// 0b000 (legacy): no rolling code, so no replay protection.
    None,
    /// 0b010 (legacy): 16 bits, not transmitted.
    Implicit16,
    /// 0b011 (legacy): 16 bits, transmitted.
    Explicit16,
    /// 0b100: 24 bits, not transmitted.
    Implicit24,
    /// 0b101: 24 bits, transmitted.
    Explicit24,
    /// 0b110: 32 bits, only the 24 least significant bits transmitted.
    Partial32,
    /// 0b111: 32 bits, transmitted (recommended).
    Explicit32,
}

impl RlcMode {
    fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits {
            0b000 => Self::None,
            0b010 => Self::Implicit16,
            0b011 => Self::Explicit16,
            0b100 => Self::Implicit24,
            0b101 => Self::Explicit24,
            0b110 => Self::Partial32,
            0b111 => Self::Explicit32,
            _ => return None,
        })
    }

    /// Width of the full code in bytes: what VAES and CMAC use.
    pub fn width(self) -> usize {
        match self {
            Self::None => 0,
            Self::Implicit16 | Self::Explicit16 => 2,
            Self::Implicit24 | Self::Explicit24 => 3,
            Self::Partial32 | Self::Explicit32 => 4,
        }
    }

    /// Bytes of the code sent in each telegram.
    pub fn transmitted(self) -> usize {
        match self {
            Self::None | Self::Implicit16 | Self::Implicit24 => 0,
            Self::Explicit16 => 2,
            Self::Explicit24 | Self::Partial32 => 3,
            Self::Explicit32 => 4,
        }
    }

    /// The receiver has to guess the code (window search).
    pub fn is_implicit(self) -> bool {
        matches!(self, Self::Implicit16 | Self::Implicit24)
    }

    /// Largest code value the width can hold.
    pub fn max(self) -> u32 {
        match self.width() {
            0 => 0,
            4 => u32::MAX,
            w => (1u32 << (8 * w)) - 1,
        }
    }
}

/// Data encryption named by ENCRYPTION_TYPE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encryption {
    /// 0b000: data sent in clear (still authenticated by the CMAC).
    None,
    /// 0b011: VAES, AES-128 in the EnOcean variable keystream mode.
    Vaes,
}

/// A validated SLF byte.
///
/// Only combinations this crate can verify are accepted: a defined RLC_TYPE, a CMAC of 3 or
/// 4 bytes (a secure telegram without CMAC authenticates nothing), and no encryption or
/// VAES (AES-CBC, 0b100, was never specified).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Slf(u8);

impl Slf {
    /// 0xF3: 32-bit code sent in full, 4-byte CMAC, VAES. The standard choice.
    pub const STANDARD: Slf = Slf(0xF3);
    /// 0xAB: 24-bit code sent in full, 3-byte CMAC, VAES (energy reduced).
    pub const ENERGY_REDUCED_24: Slf = Slf(0xAB);
    /// 0xCB: 32-bit code of which 24 bits are sent, 3-byte CMAC, VAES (energy reduced).
    pub const ENERGY_REDUCED_32: Slf = Slf(0xCB);
    /// 0x8B: 24-bit implicit code, 3-byte CMAC, VAES (ultra-low power, e.g. PTM 215).
    pub const ULTRA_LOW_POWER: Slf = Slf(0x8B);

    /// Checks an SLF byte.
    pub fn new(byte: u8) -> Result<Slf, SecureError> {
        let rlc_ok = RlcMode::from_bits(byte >> 5).is_some();
        let mac_ok = matches!((byte >> 3) & 0b11, 0b01 | 0b10);
        let enc_ok = matches!(byte & 0b111, 0b000 | 0b011);
        if rlc_ok && mac_ok && enc_ok {
            Ok(Slf(byte))
        } else {
            Err(SecureError::UnsupportedSlf(byte))
        }
    }

    /// Every SLF value [`Slf::new`] accepts (28 of them).
    pub fn all() -> impl Iterator<Item = Slf> {
        (0..=u8::MAX).filter_map(|b| Slf::new(b).ok())
    }

    /// The byte as sent in a teach-in.
    pub fn byte(self) -> u8 {
        self.0
    }

    /// The rolling code mode (RLC_TYPE).
    pub fn rlc_mode(self) -> RlcMode {
        RlcMode::from_bits(self.0 >> 5).expect("checked in Slf::new")
    }

    /// CMAC bytes sent (CMAC_TYPE: 3 or 4).
    pub fn mac_len(self) -> usize {
        if (self.0 >> 3) & 0b11 == 0b01 { 3 } else { 4 }
    }

    /// The data encryption (ENCRYPTION_TYPE).
    pub fn encryption(self) -> Encryption {
        if self.0 & 0b111 == 0b011 {
            Encryption::Vaes
        } else {
            Encryption::None
        }
    }

    /// A mode defined only before v3.02 (16-bit or no rolling code).
    pub fn is_legacy(self) -> bool {
        matches!(
            self.rlc_mode(),
            RlcMode::None | RlcMode::Implicit16 | RlcMode::Explicit16
        )
    }
}

impl TryFrom<u8> for Slf {
    type Error = SecureError;

    fn try_from(byte: u8) -> Result<Self, Self::Error> {
        Slf::new(byte)
    }
}

/// Parses two hex digits, as IoTC's `slf` field carries them (`"f3"`).
impl FromStr for Slf {
    type Err = SecureError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let s = s
            .strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .unwrap_or(s);
        if s.len() != 2 {
            return Err(SecureError::Malformed("SLF must be two hex digits"));
        }
        let byte =
            u8::from_str_radix(s, 16).map_err(|_| SecureError::Malformed("SLF is not hex"))?;
        Slf::new(byte)
    }
}

impl fmt::Debug for Slf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Slf(0x{:02X})", self.0)
    }
}

/// `F3`, upper-case hex.
impl fmt::Display for Slf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02X}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_values_decode_as_v3_02_says() {
        let f3 = Slf::STANDARD;
        assert_eq!((f3.rlc_mode(), f3.mac_len()), (RlcMode::Explicit32, 4));
        let cb = Slf::ENERGY_REDUCED_32;
        assert_eq!((cb.rlc_mode(), cb.mac_len()), (RlcMode::Partial32, 3));
        assert_eq!((cb.rlc_mode().width(), cb.rlc_mode().transmitted()), (4, 3));
        let ab = Slf::ENERGY_REDUCED_24;
        assert_eq!((ab.rlc_mode(), ab.mac_len()), (RlcMode::Explicit24, 3));
        let b8 = Slf::ULTRA_LOW_POWER;
        assert_eq!((b8.rlc_mode(), b8.mac_len()), (RlcMode::Implicit24, 3));
        for slf in [f3, cb, ab, b8] {
            assert_eq!(slf.encryption(), Encryption::Vaes);
            assert!(!slf.is_legacy());
            assert_eq!(Slf::new(slf.byte()), Ok(slf));
        }
    }

    #[test]
    fn legacy_16_bit_forms_are_accepted() {
        let implicit = Slf::new(0x4B).unwrap();
        assert_eq!(implicit.rlc_mode(), RlcMode::Implicit16);
        assert_eq!(implicit.rlc_mode().width(), 2);
        assert!(implicit.is_legacy());
        let explicit = Slf::new(0x73).unwrap();
        assert_eq!(explicit.rlc_mode(), RlcMode::Explicit16);
        assert_eq!(explicit.mac_len(), 4);
    }

    #[test]
    fn undefined_fields_are_refused() {
        // no CMAC, CMAC_TYPE 0b11, RLC_TYPE 0b001, AES-CBC, reserved encryption types
        for byte in [0x00, 0xFB, 0x2B, 0xF4, 0xF1, 0xF2, 0xF7] {
            assert_eq!(Slf::new(byte), Err(SecureError::UnsupportedSlf(byte)));
        }
        assert_eq!(Slf::all().count(), 7 * 2 * 2);
    }

    #[test]
    fn parses_iotc_hex() {
        assert_eq!("f3".parse::<Slf>(), Ok(Slf::STANDARD));
        assert_eq!("0xCB".parse::<Slf>(), Ok(Slf::ENERGY_REDUCED_32));
        assert!("f".parse::<Slf>().is_err());
        assert!("zz".parse::<Slf>().is_err());
        assert_eq!(Slf::STANDARD.to_string(), "F3");
    }
}
