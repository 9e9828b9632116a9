//! Why decoding or encoding with a profile failed.

use super::Eep;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EepError {
    /// The EEP is not in the compiled-in tables (IoTC: `EEP_NOT_FOUND_ERROR`).
    #[error("EEP {0} is not known")]
    NotFound(Eep),
    /// The telegram does not fit the profile (IoTC: `EEP_DECODE_ERROR`).
    #[error("cannot decode with this EEP: {0}")]
    Decode(DecodeError),
    /// The values given to [`super::encode`] do not fit the profile.
    #[error("cannot encode with this EEP: {0}")]
    Encode(EncodeError),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("R-ORG {got:02X} does not match the profile's R-ORG {expected:02X}")]
    WrongRorg { expected: u8, got: u8 },
    #[error("{got} data bytes, the profile needs {needed}")]
    Length { needed: usize, got: usize },
    /// A 4BS or 1BS telegram with its LRN bit at 0: a teach-in telegram, not data. No longer
    /// returned by [`super::decode`] (it decodes teach-in telegrams with the profile's layout);
    /// kept for callers that match on it.
    #[error("teach-in telegram (LRN bit 0), not data")]
    TeachIn,
    #[error("no case of the profile matches the telegram")]
    NoMatchingCase,
    /// No longer returned by [`super::decode`]: unlisted raw values are reported as `reserved`.
    #[error("field {shortcut}: raw value {raw} is not in its enumeration")]
    NotInEnumeration { shortcut: &'static str, raw: u64 },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EncodeError {
    #[error("the profile has no field {0:?}")]
    UnknownField(String),
    #[error("no case of the profile takes these fields and condition values")]
    NoCase,
    #[error("field {shortcut}: {value} is outside its range and enumeration")]
    OutOfRange { shortcut: &'static str, value: f64 },
    #[error("field {shortcut} has no value named {name:?}")]
    UnknownValue {
        shortcut: &'static str,
        name: String,
    },
}
