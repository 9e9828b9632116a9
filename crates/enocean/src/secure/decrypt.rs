//! Receiving: verify the CMAC, check the rolling code, decrypt.

use super::cmac::TelegramMac;
use super::ptm::rocker_plain;
use super::rlc::{self, RlcBytes};
use super::{
    Encryption, LEVEL_AUTHENTICATED, LEVEL_DECRYPTED_AUTHENTICATED, Plain, RlcMode, SEC, SEC_CDM,
    SEC_D, SEC_R, SecureContext, SecureError, Slf, vaes,
};

/// Verifies and decrypts a secure telegram.
///
/// - `rorg`: the telegram's R-ORG: 0x30 (SEC), 0x31 (SEC_R) or 0x33 (SEC_CDM, already
///   reassembled: pass the reassembled bytes; they are checked like a 0x31).
/// - `payload`: the bytes after the R-ORG and before the sender ID:
///   `encrypted data | transmitted RLC | CMAC`.
/// - `last_rlc`: the last accepted rolling code of this device, `None` if there is none.
///
/// On success store [`Plain::rlc`] (when `Some`) as the new last accepted code.
pub fn verify_and_decrypt(
    ctx: &SecureContext,
    rorg: u8,
    payload: &[u8],
    last_rlc: Option<u32>,
) -> Result<Plain, SecureError> {
    match rorg {
        SEC => open_sec(ctx, payload, last_rlc),
        SEC_R | SEC_CDM => open_sec_r(ctx, payload, last_rlc),
        other => Err(SecureError::NotSecure(other)),
    }
}

/// Verifies and decrypts the bytes a SEC_CDM (0x33) chain reassembles to. The CMAC of a
/// chained telegram is computed as for 0x31, before chaining.
pub fn verify_and_decrypt_chained(
    ctx: &SecureContext,
    reassembled: &[u8],
    last_rlc: Option<u32>,
) -> Result<Plain, SecureError> {
    open_sec_r(ctx, reassembled, last_rlc)
}

fn open_sec_r(
    ctx: &SecureContext,
    payload: &[u8],
    last: Option<u32>,
) -> Result<Plain, SecureError> {
    let parts = Parts::split(ctx.slf, payload)?;
    let rlc = authenticate(ctx, SEC_R, &parts, last)?;
    let mut plain = decrypt(ctx, rlc, parts.encrypted);
    let rorg = plain.remove(0);
    Ok(Plain {
        rorg,
        data: plain,
        status_override: None,
        rlc,
        security_level: level(ctx.slf),
    })
}

fn open_sec(ctx: &SecureContext, payload: &[u8], last: Option<u32>) -> Result<Plain, SecureError> {
    let parts = Parts::split(ctx.slf, payload)?;
    if ctx.is_ptm && parts.encrypted.len() != 1 {
        return Err(SecureError::Malformed(
            "a PTM telegram carries one data byte",
        ));
    }
    let rlc = authenticate(ctx, SEC, &parts, last)?;
    let plain = decrypt(ctx, rlc, parts.encrypted);
    if ctx.is_ptm {
        return Ok(rocker_plain(plain[0], rlc, level(ctx.slf)));
    }
    Ok(Plain {
        rorg: SEC_D,
        data: plain,
        status_override: None,
        rlc,
        security_level: level(ctx.slf),
    })
}

/// A secure payload cut at the SLF's field sizes.
struct Parts<'a> {
    encrypted: &'a [u8],
    rlc: &'a [u8],
    mac: &'a [u8],
}

impl<'a> Parts<'a> {
    fn split(slf: Slf, payload: &'a [u8]) -> Result<Self, SecureError> {
        let trailer = slf.rlc_mode().transmitted() + slf.mac_len();
        if payload.len() <= trailer {
            return Err(SecureError::Malformed(
                "shorter than data, rolling code and CMAC",
            ));
        }
        let (encrypted, rest) = payload.split_at(payload.len() - trailer);
        let (rlc, mac) = rest.split_at(slf.rlc_mode().transmitted());
        Ok(Self {
            encrypted,
            rlc,
            mac,
        })
    }
}

/// Checks the CMAC and the rolling code; returns the full code (`None` without RLC).
fn authenticate(
    ctx: &SecureContext,
    rorg_s: u8,
    parts: &Parts<'_>,
    last: Option<u32>,
) -> Result<Option<u32>, SecureError> {
    let mac = TelegramMac::new(&ctx.key, rorg_s, parts.encrypted);
    let mode = ctx.slf.rlc_mode();
    if mode == RlcMode::None {
        return match mac.verifies(&[], parts.mac) {
            true => Ok(None),
            false => Err(SecureError::MacMismatch),
        };
    }
    let width = mode.width();
    rlc::resolve(mode, parts.rlc, last, |candidate| {
        mac.verifies(RlcBytes::new(candidate, width).as_slice(), parts.mac)
    })
    .map(Some)
}

fn decrypt(ctx: &SecureContext, rlc: Option<u32>, encrypted: &[u8]) -> Vec<u8> {
    let mut plain = encrypted.to_vec();
    if ctx.slf.encryption() == Encryption::Vaes {
        let rlc = RlcBytes::new(rlc.unwrap_or(0), ctx.slf.rlc_mode().width());
        vaes::apply(&ctx.key, rlc.as_slice(), &mut plain);
    }
    plain
}

fn level(slf: Slf) -> u8 {
    match slf.encryption() {
        Encryption::Vaes => LEVEL_DECRYPTED_AUTHENTICATED,
        Encryption::None => LEVEL_AUTHENTICATED,
    }
}
