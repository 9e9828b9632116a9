//! Rolling codes: which code a received telegram carries, and whether it is new.
//!
//! The caller keeps the last accepted code per device (`None` before the first one). The
//! next code expected is `last + 1`, or 0 when there is no last one, which is where a
//! counter starts after a new key; [`super::SecureTeachIn::last_rlc`] turns a teach-in's
//! code into this form.
//!
//! - Explicit codes (sent in full) must be greater than the last one; there is no
//!   roll-over and no window.
//! - 32-bit codes with 24 bits sent take the most significant byte of the last accepted
//!   code, plus one when the 24 sent bits wrapped around.
//! - Implicit codes are not sent: the receiver tries the expected code and the next 127
//!   ([`IMPLICIT_WINDOW`]), wrapping at the code width as the legacy modes allow.
//!
//! The CMAC is checked first, so [`SecureError::Replay`] is only reported for authentic
//! telegrams; a forged old code is a [`SecureError::MacMismatch`].

use super::{RlcMode, SecureError};

/// Codes tried for implicit rolling codes: the expected one and the next 127.
pub const IMPLICIT_WINDOW: u32 = 128;

const PARTIAL_STEP: u32 = 1 << 24;

/// A code big-endian at its full width (2, 3 or 4 bytes), as VAES and CMAC take it.
pub(crate) struct RlcBytes {
    buf: [u8; 4],
    width: usize,
}

impl RlcBytes {
    pub(crate) fn new(rlc: u32, width: usize) -> Self {
        Self {
            buf: rlc.to_be_bytes(),
            width,
        }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.buf[4 - self.width..]
    }
}

/// Reads a big-endian code of up to 4 bytes.
pub(crate) fn read(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0, |acc, &b| (acc << 8) | u32::from(b))
}

/// The code expected next after `last` in `mode` (0 when nothing was accepted yet).
pub fn expected(mode: RlcMode, last: Option<u32>) -> u32 {
    match last {
        None => 0,
        Some(last) if mode.is_implicit() => last.wrapping_add(1) & mode.max(),
        Some(last) => last.saturating_add(1),
    }
}

/// Finds the code of a telegram with `transmitted` code bytes, given the last accepted code
/// and a CMAC check for a candidate code. `mode` must not be [`RlcMode::None`].
pub(crate) fn resolve(
    mode: RlcMode,
    transmitted: &[u8],
    last: Option<u32>,
    mut verifies: impl FnMut(u32) -> bool,
) -> Result<u32, SecureError> {
    match mode {
        RlcMode::Implicit16 | RlcMode::Implicit24 => implicit(mode, last, verifies),
        RlcMode::Partial32 => partial(read(transmitted), last, verifies),
        RlcMode::Explicit16 | RlcMode::Explicit24 | RlcMode::Explicit32 => {
            explicit(read(transmitted), last, &mut verifies)
        }
        RlcMode::None => Err(SecureError::Malformed("no rolling code to resolve")),
    }
}

fn explicit(
    rlc: u32,
    last: Option<u32>,
    verifies: &mut impl FnMut(u32) -> bool,
) -> Result<u32, SecureError> {
    if !verifies(rlc) {
        return Err(SecureError::MacMismatch);
    }
    match last {
        Some(last) if rlc <= last => Err(SecureError::Replay { rlc, last }),
        _ => Ok(rlc),
    }
}

fn partial(
    low: u32,
    last: Option<u32>,
    mut verifies: impl FnMut(u32) -> bool,
) -> Result<u32, SecureError> {
    let Some(last) = last else {
        return explicit(low, None, &mut verifies);
    };
    let same_msb = (last & !(PARTIAL_STEP - 1)) | low;
    if same_msb > last {
        return explicit(same_msb, Some(last), &mut verifies);
    }
    // Not newer with the same top byte: either the low 24 bits wrapped (carry into the
    // top byte) or this is an old telegram.
    if let Some(carried) = same_msb.checked_add(PARTIAL_STEP)
        && verifies(carried)
    {
        return Ok(carried);
    }
    if verifies(same_msb) {
        Err(SecureError::Replay {
            rlc: same_msb,
            last,
        })
    } else {
        Err(SecureError::MacMismatch)
    }
}

fn implicit(
    mode: RlcMode,
    last: Option<u32>,
    mut verifies: impl FnMut(u32) -> bool,
) -> Result<u32, SecureError> {
    let first = expected(mode, last);
    let found = (0..IMPLICIT_WINDOW)
        .map(|step| first.wrapping_add(step) & mode.max())
        .find(|&rlc| verifies(rlc));
    if let Some(rlc) = found {
        return Ok(rlc);
    }
    // One more check tells a repeated copy of the last telegram from a forgery.
    match last {
        Some(last) if verifies(last & mode.max()) => Err(SecureError::Replay { rlc: last, last }),
        _ => Err(SecureError::MacMismatch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(good: u32) -> impl FnMut(u32) -> bool {
        move |rlc| rlc == good
    }

    #[test]
    fn explicit_must_increase() {
        let mode = RlcMode::Explicit24;
        assert_eq!(resolve(mode, &[0, 0, 5], None, only(5)), Ok(5));
        assert_eq!(resolve(mode, &[0, 0, 5], Some(4), only(5)), Ok(5));
        assert_eq!(
            resolve(mode, &[0, 0, 5], Some(5), only(5)),
            Err(SecureError::Replay { rlc: 5, last: 5 })
        );
        assert_eq!(
            resolve(mode, &[0, 0, 5], Some(4), only(6)),
            Err(SecureError::MacMismatch)
        );
    }

    #[test]
    fn partial_takes_the_top_byte_of_the_last_code() {
        let mode = RlcMode::Partial32;
        assert_eq!(
            resolve(mode, &[0, 0, 9], Some(0x0500_0001), only(0x0500_0009)),
            Ok(0x0500_0009)
        );
        // carry: the low 24 bits wrapped
        assert_eq!(
            resolve(mode, &[0, 0, 1], Some(0x05FF_FFFF), only(0x0600_0001)),
            Ok(0x0600_0001)
        );
        // an authentic old telegram is a replay, not a carry
        assert_eq!(
            resolve(mode, &[0, 0, 1], Some(0x0500_0002), only(0x0500_0001)),
            Err(SecureError::Replay {
                rlc: 0x0500_0001,
                last: 0x0500_0002
            })
        );
        assert_eq!(resolve(mode, &[0, 0, 1], None, only(1)), Ok(1));
        // no carry past 32 bits
        assert_eq!(
            resolve(mode, &[0, 0, 1], Some(0xFFFF_FFF0), only(0xFF00_0001)),
            Err(SecureError::Replay {
                rlc: 0xFF00_0001,
                last: 0xFFFF_FFF0
            })
        );
    }

    #[test]
    fn implicit_window_is_128_and_wraps() {
        let mode = RlcMode::Implicit24;
        assert_eq!(resolve(mode, &[], Some(10), only(11 + 127)), Ok(138));
        assert_eq!(
            resolve(mode, &[], Some(10), only(11 + 128)),
            Err(SecureError::MacMismatch)
        );
        assert_eq!(resolve(mode, &[], None, only(0)), Ok(0));
        assert_eq!(resolve(mode, &[], Some(0xFF_FFFF), only(3)), Ok(3));
        assert_eq!(
            resolve(mode, &[], Some(10), only(10)),
            Err(SecureError::Replay { rlc: 10, last: 10 })
        );
        assert_eq!(
            resolve(RlcMode::Implicit16, &[], Some(0xFFFF), only(0)),
            Ok(0)
        );
    }

    #[test]
    fn implicit_tries_at_most_129_codes() {
        let mut tries = 0;
        let _ = resolve(RlcMode::Implicit24, &[], Some(1), |_| {
            tries += 1;
            false
        });
        assert_eq!(tries, 129);
    }
}
