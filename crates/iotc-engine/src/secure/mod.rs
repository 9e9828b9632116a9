//! Secure telegrams of onboarded devices (see docs/security.md, "Running secure devices").
//!
//! A device onboarded with `AESKey` and `slf` is secure. Its telegrams go through two steps:
//! - [`process`] (pure, in the decoder) sends every telegram that needs the device's key or
//!   rolling code on as [`DeviceResult::Secure`]; plain telegrams of plain devices go straight
//!   to signal/EEP decoding.
//! - [`Stage::settle`] (in the engine loop, with Redis) verifies and decrypts with the key,
//!   the SLF and the last accepted rolling code (`crate::rlc`), stores the new code, and hands
//!   the plain inner telegram to signal/EEP decoding. Secure teach-ins (0x35) update the
//!   device's key and SLF in the device registry.
//!
//! Refusals become IoTC's security events: `MAC_VALIDATION_ERROR`, `RLC_REPLAY`,
//! `DEVICE_SEND_NOW_UNSECURE`. Keys never reach logs, errors or metrics.

mod context;
mod outcome;
mod settings;
mod stage;
mod teach_in;

pub use settings::{SecureArgs, Settings, TeachInPolicy};
pub use stage::Stage;

use enocean::secure::{SEC, SEC_CDM, SEC_D, SEC_MAN, SEC_R, SEC_TI};
use enocean::telegram::Telegram;
use iotc_core::model::EnOceanSensor;

use crate::decode::DeviceResult;

/// The telegram to decode at once, or what became of it: [`DeviceResult::Secure`] when the
/// secure stage has to look at it.
pub fn process(device: &EnOceanSensor, telegram: Telegram) -> Result<Telegram, DeviceResult> {
    match telegram.rorg {
        SEC_MAN => Err(outcome::failed(
            "secure maintenance telegrams (R-ORG 0x34) are not supported",
        )),
        // The stage decides: a teach-in just applied may have made the device secure.
        SEC | SEC_R | SEC_CDM | SEC_D | SEC_TI => Err(DeviceResult::Secure(telegram)),
        _ if device.is_secure() => Err(DeviceResult::Secure(telegram)),
        _ => Ok(telegram),
    }
}

/// R-ORGs that carry a CMAC.
fn is_verifiable(rorg: u8) -> bool {
    matches!(rorg, SEC | SEC_R | SEC_CDM)
}

/// R-ORGs of the security specification.
fn is_secure_rorg(rorg: u8) -> bool {
    (SEC..=SEC_TI).contains(&rorg)
}
