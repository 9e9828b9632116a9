//! Addressing encapsulation (ADT, R-ORG 0xA6).
//!
//! An addressed telegram carries `A6 | original R-ORG | data | destination ID(4)` before the
//! sender ID and status; unwrapping yields the original telegram with its destination set.

use crate::telegram::Telegram;

/// R-ORG of an addressed telegram.
pub const RORG_ADT: u8 = 0xA6;

/// Inner R-ORG plus destination ID.
const ADT_OVERHEAD: usize = 5;

/// Why an addressed telegram cannot be unwrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AdtError {
    #[error("addressed telegram too short: {0} bytes (inner R-ORG and destination need 5)")]
    TooShort(usize),
}

/// Unwraps an addressed telegram; any other telegram (or a malformed one, which then keeps
/// R-ORG 0xA6 and is not decodable further) is returned unchanged.
pub fn unwrap(telegram: Telegram) -> Telegram {
    if telegram.rorg != RORG_ADT {
        return telegram;
    }
    match try_unwrap(telegram.clone()) {
        Ok(inner) => inner,
        Err(_) => telegram,
    }
}

/// Unwraps an addressed telegram, telling why it is malformed. A telegram that is not
/// addressed is returned unchanged.
pub fn try_unwrap(mut telegram: Telegram) -> Result<Telegram, AdtError> {
    if telegram.rorg != RORG_ADT {
        return Ok(telegram);
    }
    let n = telegram.data.len();
    if n < ADT_OVERHEAD {
        return Err(AdtError::TooShort(n));
    }
    let d = &telegram.data[n - 4..];
    telegram.destination = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
    telegram.rorg = telegram.data[0];
    telegram.data.truncate(n - 4);
    telegram.data.remove(0);
    Ok(telegram)
}

/// Wraps a telegram into an addressed one for `destination` (the inverse of [`unwrap`]).
pub fn wrap(mut telegram: Telegram, destination: u32) -> Telegram {
    telegram.data.insert(0, telegram.rorg);
    telegram.data.extend_from_slice(&destination.to_be_bytes());
    telegram.rorg = RORG_ADT;
    telegram.destination = destination;
    telegram
}
