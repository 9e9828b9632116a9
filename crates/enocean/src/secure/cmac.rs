//! AES-128 CMAC (RFC 4493) over the secure telegram, on top of the `cmac` crate.
//!
//! The message is `R-ORG-S || encrypted data || RLC (full width)`. The RLC comes last, so
//! the state after the constant prefix is kept and cloned for every candidate code of an
//! implicit-RLC window search.

use aes::Aes128;
use cmac::{Cmac, KeyInit, Mac};

/// Full 16-byte AES-128 CMAC of `message`.
pub fn cmac(key: &[u8; 16], message: &[u8]) -> [u8; 16] {
    let mut mac = keyed(key);
    mac.update(message);
    mac.finalize().into_bytes().into()
}

fn keyed(key: &[u8; 16]) -> Cmac<Aes128> {
    <Cmac<Aes128> as KeyInit>::new(&(*key).into())
}

/// The CMAC state after `R-ORG-S || encrypted data`, ready for the rolling code.
#[derive(Clone)]
pub(crate) struct TelegramMac(Cmac<Aes128>);

impl TelegramMac {
    pub(crate) fn new(key: &[u8; 16], rorg_s: u8, encrypted: &[u8]) -> Self {
        let mut mac = keyed(key);
        mac.update(&[rorg_s]);
        mac.update(encrypted);
        Self(mac)
    }

    /// The full CMAC with `rlc` (big-endian, full width) appended.
    pub(crate) fn tag(&self, rlc: &[u8]) -> [u8; 16] {
        let mut mac = self.0.clone();
        mac.update(rlc);
        mac.finalize().into_bytes().into()
    }

    /// Whether `truncated` (3 or 4 bytes) is the start of the CMAC; constant time.
    pub(crate) fn verifies(&self, rlc: &[u8], truncated: &[u8]) -> bool {
        let mut mac = self.0.clone();
        mac.update(rlc);
        mac.verify_truncated_left(truncated).is_ok()
    }
}
