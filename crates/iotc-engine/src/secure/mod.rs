//! Secure telegrams (R-ORG 0x30..0x35). Until verification and decryption are wired in,
//! a secure telegram is not processed: it is counted, never published undecrypted.

use enocean::telegram::Telegram;
use iotc_core::model::EnOceanSensor;

use crate::decode::DeviceResult;

/// R-ORGs of secure telegrams: SEC, SEC_ENCAPS, SECD, SEC_CDM, SEC_TI.
const SECURE_RORGS: [u8; 5] = [0x30, 0x31, 0x32, 0x33, 0x35];

/// The plain telegram to decode, or why it is not processed.
pub fn process(_device: &EnOceanSensor, telegram: Telegram) -> Result<Telegram, DeviceResult> {
    if SECURE_RORGS.contains(&telegram.rorg) {
        return Err(DeviceResult::Failed {
            reason: format!(
                "secure telegram (R-ORG {:#04x}) not supported",
                telegram.rorg
            ),
            event: None,
        });
    }
    Ok(telegram)
}
