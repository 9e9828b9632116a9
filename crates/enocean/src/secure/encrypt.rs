//! Sending: build secure telegram data (what a simulated secure device transmits).

use super::cmac::TelegramMac;
use super::rlc::RlcBytes;
use super::{Encryption, SEC, SEC_R, SecureContext, SecureError, vaes};

/// Encrypts and authenticates `plaintext` for R-ORG-S `rorg_s` with rolling code `rlc`.
///
/// Returns the bytes after the R-ORG: `encrypted | transmitted RLC | CMAC`. `rlc` must fit
/// the SLF's code width (0 when the SLF has no rolling code).
pub fn seal(
    ctx: &SecureContext,
    rorg_s: u8,
    rlc: u32,
    plaintext: &[u8],
) -> Result<Vec<u8>, SecureError> {
    let mode = ctx.slf.rlc_mode();
    if rlc > mode.max() {
        return Err(SecureError::RlcOutOfRange(rlc));
    }
    if plaintext.is_empty() {
        return Err(SecureError::Malformed("nothing to encrypt"));
    }
    let full = RlcBytes::new(rlc, mode.width());
    let mut out = plaintext.to_vec();
    if ctx.slf.encryption() == Encryption::Vaes {
        vaes::apply(&ctx.key, full.as_slice(), &mut out);
    }
    let tag = TelegramMac::new(&ctx.key, rorg_s, &out).tag(full.as_slice());
    let sent = full.as_slice();
    out.extend_from_slice(&sent[sent.len() - mode.transmitted()..]);
    out.extend_from_slice(&tag[..ctx.slf.mac_len()]);
    Ok(out)
}

/// R-ORG 0x31 data: the inner R-ORG and its data, encrypted together.
pub fn encrypt_sec_r(
    ctx: &SecureContext,
    rlc: u32,
    inner_rorg: u8,
    data: &[u8],
) -> Result<Vec<u8>, SecureError> {
    let mut plain = Vec::with_capacity(data.len() + 1);
    plain.push(inner_rorg);
    plain.extend_from_slice(data);
    seal(ctx, SEC_R, rlc, &plain)
}

/// R-ORG 0x30 data of a PTM switch: one byte carrying the D2-03-00 rocker nibble.
pub fn encrypt_ptm(ctx: &SecureContext, rlc: u32, nibble: u8) -> Result<Vec<u8>, SecureError> {
    seal(ctx, SEC, rlc, &[nibble & 0x0F])
}
