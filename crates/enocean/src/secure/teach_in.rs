//! Secure teach-in (R-ORG 0x35): the key, SLF and rolling code a device announces.
//!
//! Joined payload: `TeachInInfo | SLF | RLC (full width) | PK (16)`. A device splits it over
//! CNT telegrams; later telegrams repeat only a TeachInInfo byte carrying their IDX. With
//! the PSK bit, `RLC | PK` is VAES-encrypted with the pre-shared key and a zero RLC.

use std::fmt;

use super::context::Redacted;
use super::rlc::{self, RlcBytes};
use super::{SecureContext, SecureError, Slf, vaes};
use crate::crc8::crc8;

/// Longest teach-in telegram data the builder uses for ERP1 by default (TeachInInfo
/// included): with a 3-byte RLC it splits the key 7 + 9, as the specification's example.
pub const ERP1_PART_LEN: usize = 12;

/// The TeachInInfo byte: IDX (7–6), CNT (5–4), PSK (3), TYPE (2), INFO (1–0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TeachInInfo(pub u8);

impl TeachInInfo {
    /// Index of this telegram in the teach-in (0 for the first).
    pub fn idx(self) -> u8 {
        self.0 >> 6
    }

    /// Number of telegrams of the teach-in (meaningful in the first).
    pub fn cnt(self) -> u8 {
        (self.0 >> 4) & 0b11
    }

    /// `RLC | PK` are encrypted with a pre-shared key.
    pub fn psk(self) -> bool {
        self.0 & 0x08 != 0
    }

    /// TYPE = 1: a PTM switch module.
    pub fn is_ptm(self) -> bool {
        self.0 & 0x04 != 0
    }

    /// The INFO bits: unidirectional (0) / bidirectional (1), or for a PTM rocker A (0) / B (1).
    pub fn info(self) -> u8 {
        self.0 & 0b11
    }

    /// A non-PTM device that expects the receiver's own teach-in in return.
    pub fn is_bidirectional(self) -> bool {
        !self.is_ptm() && self.info() == 0b01
    }
}

/// A complete secure teach-in. `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct SecureTeachIn {
    /// TeachInInfo of the first telegram.
    pub info: TeachInInfo,
    pub slf: Slf,
    /// The device's current rolling code: the code its next secure telegram may carry.
    pub rlc: u32,
    /// The device key (PK).
    pub key: [u8; 16],
}

impl SecureTeachIn {
    /// Parses a joined teach-in (`TeachInInfo | SLF | RLC | PK`), decrypting it with `psk`
    /// when its PSK bit is set.
    pub fn parse(joined: &[u8], psk: Option<&[u8; 16]>) -> Result<Self, SecureError> {
        let [info, slf, rest @ ..] = joined else {
            return Err(SecureError::Malformed(
                "teach-in without TeachInInfo and SLF",
            ));
        };
        let info = TeachInInfo(*info);
        let slf = Slf::new(*slf)?;
        let width = slf.rlc_mode().width();
        if rest.len() != width + 16 {
            return Err(SecureError::Malformed(
                "teach-in length does not match its SLF",
            ));
        }
        let mut secret = rest.to_vec();
        if info.psk() {
            let psk = psk.ok_or(SecureError::PskRequired)?;
            vaes::apply(psk, &[], &mut secret);
        }
        let (rlc, key) = secret.split_at(width);
        Ok(Self {
            info,
            slf,
            rlc: rlc::read(rlc),
            key: key.try_into().expect("length checked"),
        })
    }

    /// The receiver's settings for this device.
    pub fn context(&self) -> SecureContext {
        SecureContext {
            key: self.key,
            slf: self.slf,
            is_ptm: self.info.is_ptm(),
        }
    }

    /// The value to store as "last accepted rolling code" right after this teach-in, so
    /// that the next telegram may carry the announced code itself.
    pub fn last_rlc(&self) -> Option<u32> {
        self.rlc.checked_sub(1)
    }

    /// The teach-in as telegram data (bytes after R-ORG 0x35), each at most `max_len` bytes
    /// long (at least 2). With `psk`, `RLC | PK` is encrypted and the PSK bit set.
    pub fn to_payloads(
        &self,
        psk: Option<&[u8; 16]>,
        max_len: usize,
    ) -> Result<Vec<Vec<u8>>, SecureError> {
        let mode = self.slf.rlc_mode();
        if self.rlc > mode.max() {
            return Err(SecureError::RlcOutOfRange(self.rlc));
        }
        let mut secret = RlcBytes::new(self.rlc, mode.width()).as_slice().to_vec();
        secret.extend_from_slice(&self.key);
        if let Some(psk) = psk {
            vaes::apply(psk, &[], &mut secret);
        }
        let mut body = vec![self.slf.byte()];
        body.extend_from_slice(&secret);
        let chunks: Vec<&[u8]> = body.chunks(max_len.max(2) - 1).collect();
        if chunks.len() > 3 {
            return Err(SecureError::Malformed(
                "teach-in needs more than 3 telegrams",
            ));
        }
        let flags = (self.info.0 & 0b0111) | if psk.is_some() { 0x08 } else { 0 };
        let first = ((chunks.len() as u8) << 4) | flags;
        Ok(chunks
            .iter()
            .enumerate()
            .map(|(idx, chunk)| {
                let info = if idx == 0 { first } else { (idx as u8) << 6 };
                let mut part = vec![info];
                part.extend_from_slice(chunk);
                part
            })
            .collect())
    }
}

impl fmt::Debug for SecureTeachIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecureTeachIn")
            .field("info", &self.info)
            .field("slf", &self.slf)
            .field("rlc", &self.rlc)
            .field("key", &Redacted)
            .finish()
    }
}

/// The check byte of a pre-shared key: CRC8 over its 16 bytes (same CRC as ESP3).
pub fn psk_check_byte(psk: &[u8; 16]) -> u8 {
    crc8(psk)
}
