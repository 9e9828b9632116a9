//! EEP decoding: profiles are data, read by one interpreter.
//!
//! The profiles live in `profiles/*.eep` (our own text format, see docs/eep.md), compiled into
//! the crate and parsed once on first use. [`decode`] picks the profile's first case whose
//! conditions (command field, status bits, direction) hold, reads each field's bits and maps the
//! raw value through the field's items: a linear range becomes a scaled number with its unit, an
//! enumerated value becomes its name with its meaning.
//!
//! A raw value that no item of its field lists (a reserved or undefined value) does not reject
//! the telegram: the field is reported with its raw value and the meaning `reserved`.
//!
//! 4BS and 1BS telegrams whose LRN bit is 0 are teach-in telegrams: [`decode`] reads them with
//! the profile's layout like any other (the LRN field says `pressed`, "Teach-in telegram");
//! callers that want the teach-in information (EEP, manufacturer) look first
//! (`teach_in::detect`), as the engine does.

mod bits;
mod decode;
mod encode;
mod error;
mod format;
pub mod ha;
mod id;
mod model;
mod registry;

pub use encode::Input;
pub use error::{DecodeError, EepError, EncodeError};
pub use format::FormatError;
pub use id::{Eep, ParseEepError};
pub use model::{BitRange, Case, Condition, Direction, FieldDef, Item, Linear, Profile, Source};

use crate::field::Field;

/// The profile of `eep`, if the crate knows it.
pub fn profile(eep: Eep) -> Option<&'static Profile> {
    registry::find(eep)
}

/// How many fields were decoded, since start, with a raw value their profile does not list
/// (reported with the meaning `reserved`).
pub fn unlisted_values() -> u64 {
    decode::UNLISTED_COUNT.load(std::sync::atomic::Ordering::Relaxed)
}

/// Every profile the crate knows, sorted by EEP.
pub fn profiles() -> impl Iterator<Item = &'static Profile> {
    registry::all().iter()
}

/// Decodes a telegram sent by a device: `data` is the telegram's data bytes without R-ORG,
/// sender and status.
pub fn decode(eep: Eep, rorg: u8, data: &[u8], status: u8) -> Result<Vec<Field>, EepError> {
    decode_with(eep, rorg, data, status, Direction::FromDevice)
}

/// [`decode`] for telegrams of either direction (profiles such as A5-20-01 differ by direction).
pub fn decode_with(
    eep: Eep,
    rorg: u8,
    data: &[u8],
    status: u8,
    direction: Direction,
) -> Result<Vec<Field>, EepError> {
    let profile = registry::find(eep).ok_or(EepError::NotFound(eep))?;
    decode::decode(profile, rorg, data, status, direction).map_err(EepError::Decode)
}

/// Builds telegram data for `eep` from `(shortcut, value)` pairs and returns
/// `(rorg, data, status)`.
///
/// A value is the scaled value of a measured field (`("TMP", 21.5)`) or the raw value of an
/// enumeration (`("CO", 1.0)`); where a field has both and the number falls in the scaled range,
/// the scaled reading wins ([`encode_inputs`] takes raw values and names explicitly). Status
/// condition names (`T21`, `NU`) and command fields select the case. Fields not given take raw 0
/// (or their smallest valid raw value); 4BS and 1BS telegrams get their LRN bit set to "data
/// telegram" unless the LRN field is given.
pub fn encode(eep: Eep, values: &[(&str, f64)]) -> Result<(u8, Vec<u8>, u8), EepError> {
    encode_with(eep, values, Direction::FromDevice)
}

/// [`encode`] for either direction.
pub fn encode_with(
    eep: Eep,
    values: &[(&str, f64)],
    direction: Direction,
) -> Result<(u8, Vec<u8>, u8), EepError> {
    let inputs: Vec<(&str, Input<'_>)> =
        values.iter().map(|(s, v)| (*s, Input::Value(*v))).collect();
    encode_inputs(eep, &inputs, direction)
}

/// [`encode`] with each value given as a scaled value, a raw value or an enumeration name
/// (`("CO", Input::Name("open"))`).
pub fn encode_inputs(
    eep: Eep,
    inputs: &[(&str, Input<'_>)],
    direction: Direction,
) -> Result<(u8, Vec<u8>, u8), EepError> {
    let profile = registry::find(eep).ok_or(EepError::NotFound(eep))?;
    encode::encode(profile, inputs, direction).map_err(EepError::Encode)
}

/// Reads the compiled-in profile files afresh and reports the first mistake (used by tests).
pub fn check_profiles() -> Result<usize, FormatError> {
    registry::load().map(|p| p.len())
}
