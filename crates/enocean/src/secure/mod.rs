//! Secure telegrams, as the Security of EnOcean Radio Networks v3.02 specifies them.
//!
//! # Receiving
//!
//! A device's settings are a [`SecureContext`] (key, [`Slf`], PTM or not), from a secure
//! teach-in ([`SecureTeachIn::context`]) or from onboarding ([`SecureContext::from_hex`]).
//! The engine keeps the last accepted rolling code per device and calls
//! [`verify_and_decrypt`] with the telegram's R-ORG and the bytes between R-ORG and sender:
//!
//! ```
//! use enocean::secure::{self, SecureContext, SecureError};
//!
//! let ctx = SecureContext::from_hex("456E4F6365616E20476D62482E313300", "ab", false).unwrap();
//! let payload = [0x3E, 0xEA, 0xC4, 0xA2, 0xDF, 0xC0, 0xFF, 0xEE, 0xEA, 0xF2, 0x0E];
//! let plain = secure::verify_and_decrypt(&ctx, 0x31, &payload, None).unwrap();
//! assert_eq!((plain.rorg, plain.data.as_slice()), (0xA5, &[0x08, 0x27, 0xFF, 0x80][..]));
//! assert_eq!(plain.rlc, Some(0xC0FFEE)); // store as the new last accepted code
//!
//! let again = secure::verify_and_decrypt(&ctx, 0x31, &payload, plain.rlc);
//! assert!(matches!(again, Err(SecureError::Replay { .. })));
//! ```
//!
//! - 0x31 (SEC_R): the result carries the inner R-ORG and data.
//! - 0x33 (SEC_CDM): pass the reassembled bytes (R-ORG 0x33 or
//!   [`verify_and_decrypt_chained`]); they are checked like a 0x31.
//! - 0x30 (SEC): for a PTM the rocker nibble becomes F6-02-01 data with
//!   [`Plain::status_override`] ([`Plain::status`] applies it); otherwise R-ORG 0x32 with
//!   the decrypted data.
//! - 0x32 (SEC_D) has no CMAC and is refused; [`decode_sec_d`] decodes it when the
//!   transceiver is trusted.
//! - 0x35 (SEC_TI): feed the telegrams to a [`TeachInAssembler`].
//!
//! Errors: [`SecureError::MacMismatch`] (IoTC's `MAC_VALIDATION_ERROR`),
//! [`SecureError::Replay`] (`RLC_REPLAY`), [`SecureError::Malformed`],
//! [`SecureError::UnsupportedSlf`].
//!
//! # Rolling codes
//!
//! See [`rlc`]: explicit codes must increase; 32-bit codes with 24 bits sent take their top
//! byte from the last accepted code (with carry); implicit codes are searched in a window of
//! 128 from the expected code. `last_rlc = None` means "nothing accepted since the key was
//! set", so the code may start at 0; after a teach-in store [`SecureTeachIn::last_rlc`].
//!
//! # Sending
//!
//! [`encrypt_sec_r`] (0x31), [`encrypt_ptm`] (0x30 rocker), [`seal`] (any R-ORG-S),
//! [`sec_cdm_parts`] (0x33 chain) and [`SecureTeachIn::to_payloads`] (0x35) build telegram
//! data for simulated devices.
//!
//! Keys never appear in `Debug` output.

mod assembler;
mod cdm;
pub mod cmac;
mod context;
mod decrypt;
mod encrypt;
mod error;
pub mod ptm;
pub mod rlc;
mod slf;
mod teach_in;
pub mod vaes;

pub use assembler::TeachInAssembler;
pub use cdm::{ERP1_FIRST_PART, ERP1_NEXT_PART, sec_cdm_parts};
pub use context::{
    LEVEL_AUTHENTICATED, LEVEL_DECRYPTED, LEVEL_DECRYPTED_AUTHENTICATED, Plain, SecureContext,
    parse_key,
};
pub use decrypt::{verify_and_decrypt, verify_and_decrypt_chained};
pub use encrypt::{encrypt_ptm, encrypt_sec_r, seal};
pub use error::SecureError;
pub use ptm::decode_sec_d;
pub use slf::{Encryption, RlcMode, Slf};
pub use teach_in::{ERP1_PART_LEN, SecureTeachIn, TeachInInfo, psk_check_byte};

/// R-ORG 0x30: secure telegram without inner R-ORG (PTM switches).
pub const SEC: u8 = 0x30;
/// R-ORG 0x31: secure telegram, inner R-ORG encrypted with the data.
pub const SEC_R: u8 = 0x31;
/// R-ORG 0x32: a decrypted 0x30.
pub const SEC_D: u8 = 0x32;
/// R-ORG 0x33: secure chained telegram.
pub const SEC_CDM: u8 = 0x33;
/// R-ORG 0x34: secure maintenance telegram.
pub const SEC_MAN: u8 = 0x34;
/// R-ORG 0x35: secure teach-in.
pub const SEC_TI: u8 = 0x35;
