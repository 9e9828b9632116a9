//! What a refused secure telegram becomes: not processed, with IoTC's security event where
//! IoTC has one. Messages follow IoTC's log lines; they never carry key material.

use enocean::secure::SecureError;
use iotc_core::payload::EventCode;

use crate::decode::DeviceResult;

/// Counts one secure handling outcome.
pub(super) fn metric(outcome: &'static str) {
    metrics::counter!("iotc_engine_secure_total", "outcome" => outcome).increment(1);
}

/// Not processed, no event.
pub(super) fn failed(reason: impl Into<String>) -> DeviceResult {
    DeviceResult::Failed {
        reason: reason.into(),
        event: None,
    }
}

fn with_event(reason: String, code: EventCode, message: String) -> DeviceResult {
    DeviceResult::Failed {
        reason,
        event: Some((code, message)),
    }
}

/// A secure device sent a telegram without CMAC: dropped.
pub(super) fn unsecure(eurid: &str, rorg: u8) -> DeviceResult {
    metric("unsecure");
    with_event(
        format!("secure device sent a telegram without CMAC (R-ORG {rorg:#04x}); dropped"),
        EventCode::DeviceSendNowUnsecure,
        format!("Device {eurid} now unsecure. Dropping."),
    )
}

/// The stored code of this key is the telegram's or newer.
pub(super) fn replay(eurid: &str, rlc: u32, last: u32) -> DeviceResult {
    metric("replay");
    with_event(
        format!("rolling code {rlc:#x} is not newer than {last:#x}; possible replay"),
        EventCode::RlcReplay,
        format!(
            "Replay Exception id={eurid}: rolling code {rlc:#x} is not newer than the last accepted {last:#x}."
        ),
    )
}

/// A secure teach-in that would have set a new key without the authority to.
pub(super) fn teach_in_refused(eurid: &str, why: &str) -> DeviceResult {
    metric("teach_in_refused");
    with_event(
        format!("secure teach-in refused: {why}"),
        EventCode::SecureTeachInRefused,
        format!("Secure teach-in refused id={eurid}: {why}."),
    )
}

/// Verification failed.
pub(super) fn refused(eurid: &str, err: SecureError) -> DeviceResult {
    match err {
        SecureError::Replay { rlc, last } => replay(eurid, rlc, last),
        // A telegram too short or too long for the SLF cannot be authenticated either.
        SecureError::MacMismatch | SecureError::Malformed(_) => {
            metric("mac_mismatch");
            with_event(
                format!("secure telegram refused: {err}"),
                EventCode::MacValidationError,
                format!("CMAC verification failed id={eurid}."),
            )
        }
        other => {
            metric("refused");
            failed(format!("secure telegram refused: {other}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(r: &DeviceResult) -> (EventCode, &str) {
        match r {
            DeviceResult::Failed {
                event: Some((code, msg)),
                ..
            } => (*code, msg.as_str()),
            other => panic!("no event: {other:?}"),
        }
    }

    #[test]
    fn errors_map_to_iotc_events() {
        let mac = refused("0190e2e1", SecureError::MacMismatch);
        assert_eq!(
            event(&mac),
            (
                EventCode::MacValidationError,
                "CMAC verification failed id=0190e2e1."
            )
        );
        let short = refused("0190e2e1", SecureError::Malformed("too short"));
        assert_eq!(event(&short).0, EventCode::MacValidationError);
        let replay = refused(
            "0190e2e1",
            SecureError::Replay {
                rlc: 0x10,
                last: 0x12,
            },
        );
        assert_eq!(event(&replay).0, EventCode::RlcReplay);
        assert!(event(&replay).1.contains("0x10"));
        assert_eq!(
            event(&unsecure("0190e2e1", 0xA5)),
            (
                EventCode::DeviceSendNowUnsecure,
                "Device 0190e2e1 now unsecure. Dropping."
            )
        );
        let slf = refused("0190e2e1", SecureError::UnsupportedSlf(0));
        assert!(matches!(slf, DeviceResult::Failed { event: None, .. }));
    }
}
