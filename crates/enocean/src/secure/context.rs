//! What a receiver knows of a secure device, and what verification yields.

use std::fmt;

use super::{SecureError, Slf};

/// The security settings of one device: its key, its SLF and whether it is a PTM switch.
///
/// `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct SecureContext {
    /// The AES-128 key (PK) from the teach-in or onboarding.
    pub key: [u8; 16],
    /// The Security Level Format agreed at teach-in.
    pub slf: Slf,
    /// A PTM switch module (teach-in TYPE = 1): 0x30 telegrams carry a rocker nibble.
    pub is_ptm: bool,
}

impl SecureContext {
    /// A context from IoTC's onboarding fields: `AESKey` (32 hex digits) and `slf` (2).
    pub fn from_hex(key_hex: &str, slf_hex: &str, is_ptm: bool) -> Result<Self, SecureError> {
        Ok(Self {
            key: parse_key(key_hex)?,
            slf: slf_hex.parse()?,
            is_ptm,
        })
    }
}

impl fmt::Debug for SecureContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecureContext")
            .field("key", &Redacted)
            .field("slf", &self.slf)
            .field("is_ptm", &self.is_ptm)
            .finish()
    }
}

/// Stands in for a key in `Debug` output.
pub(crate) struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Parses a 128-bit key written as 32 hex digits (either case).
pub fn parse_key(hex: &str) -> Result<[u8; 16], SecureError> {
    let hex = hex.trim().as_bytes();
    if hex.len() != 32 {
        return Err(SecureError::InvalidKey);
    }
    let mut key = [0u8; 16];
    for (byte, pair) in key.iter_mut().zip(hex.chunks_exact(2)) {
        let text = std::str::from_utf8(pair).map_err(|_| SecureError::InvalidKey)?;
        *byte = u8::from_str_radix(text, 16).map_err(|_| SecureError::InvalidKey)?;
    }
    Ok(key)
}

/// A verified (and decrypted) telegram, ready for EEP decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plain {
    /// The R-ORG to decode with: the inner R-ORG of a 0x31, 0xF6 for a PTM rocker, or
    /// 0x32 (decrypted 0x30 without a known meaning).
    pub rorg: u8,
    /// The decrypted data after that R-ORG.
    pub data: Vec<u8>,
    /// For PTM rockers: the T21/NU status bits (5 and 4) the F6-02-01 data needs. See
    /// [`Plain::status`].
    pub status_override: Option<u8>,
    /// The code to store as the new last accepted one; `None` when the telegram carries no
    /// rolling code (SLF without RLC, or an already decrypted 0x32): keep the stored value.
    pub rlc: Option<u32>,
    /// ESP3's security level: 3 = authenticated, 4 = decrypted and authenticated,
    /// 2 = decrypted by the transceiver (0x32).
    pub security_level: u8,
}

/// ESP3 security level: telegram decrypted (by the transceiver).
pub const LEVEL_DECRYPTED: u8 = 2;
/// ESP3 security level: telegram authenticated (CMAC checked, data sent in clear).
pub const LEVEL_AUTHENTICATED: u8 = 3;
/// ESP3 security level: telegram decrypted and authenticated.
pub const LEVEL_DECRYPTED_AUTHENTICATED: u8 = 4;

impl Plain {
    /// The status byte to decode with: the received one (its repeater count kept) with
    /// bits 5–4 replaced when the rocker mapping sets them.
    pub fn status(&self, received: u8) -> u8 {
        match self.status_override {
            Some(bits) => (received & !0x30) | (bits & 0x30),
            None => received,
        }
    }
}
