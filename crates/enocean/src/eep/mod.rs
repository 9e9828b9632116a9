//! EEP decoding: profiles are data, read by one interpreter.

mod id;

pub use id::{Eep, ParseEepError};

use crate::field::Field;

/// Why a telegram could not be decoded with a profile.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EepError {
    /// The EEP is not in the compiled-in tables (IoTC: `EEP_NOT_FOUND_ERROR`).
    #[error("EEP {0} is not known")]
    NotFound(Eep),
    /// The telegram does not fit the profile (IoTC: `EEP_DECODE_ERROR`).
    #[error("cannot decode with this EEP: {0}")]
    Decode(String),
}

/// One EEP profile as compiled into the crate.
#[derive(Debug)]
pub struct Profile {
    pub eep: Eep,
    pub title: String,
}

/// The profile of `eep`, if the crate knows it.
pub fn profile(_eep: Eep) -> Option<&'static Profile> {
    None
}

/// Every profile the crate knows, sorted by EEP.
pub fn profiles() -> impl Iterator<Item = &'static Profile> {
    std::iter::empty()
}

/// Decodes the data bytes of a telegram (without R-ORG, sender and status) with `eep`.
pub fn decode(eep: Eep, _rorg: u8, _data: &[u8], _status: u8) -> Result<Vec<Field>, EepError> {
    Err(EepError::NotFound(eep))
}

/// Builds telegram data for `eep` from `(shortcut, scaled value)` pairs.
///
/// Returns `(rorg, data, status)`.
pub fn encode(eep: Eep, _values: &[(&str, f64)]) -> Result<(u8, Vec<u8>, u8), EepError> {
    Err(EepError::NotFound(eep))
}
