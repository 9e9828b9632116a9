//! What an AP tells about itself, turned into the gateway registry record and IoTC's gateway
//! meta event.

use aruba::{ApHealthUpdate, HealthStatus, Reporter};
use iotc_core::model::{GatewayRecord, UsbHealth};
use iotc_core::payload::{GatewayEvent, GatewayInfo, Timestamp, UsbInfo};

/// The registry record of an AP known only from its traffic (no health report yet).
pub fn first_sight_record(reporter: &Reporter, mac: &str, now: u64) -> GatewayRecord {
    GatewayRecord {
        mac: mac.to_string(),
        hardware_descriptor: reporter.hw_type.clone().unwrap_or_default(),
        software_version: reporter.short_sw_version().to_string(),
        last_seen: now,
        ..GatewayRecord::default()
    }
}

/// The registry record after a health report.
pub fn health_record(
    reporter: &Reporter,
    mac: &str,
    health: &ApHealthUpdate,
    now: u64,
) -> GatewayRecord {
    GatewayRecord {
        health_timestamp: reporter.time.unwrap_or(now),
        ap_status: HealthStatus::name_of(health.ap_status).to_string(),
        usb: usb_list(health)
            .map(|(id, state)| UsbHealth {
                usb_identifier: id,
                usb_health: state.to_string(),
            })
            .collect(),
        ..first_sight_record(reporter, mac, now)
    }
}

/// IoTC's `gateway/<MAC>/meta/event` for a health report.
pub fn health_event(
    reporter: &Reporter,
    mac: &str,
    health: &ApHealthUpdate,
    now: u64,
) -> GatewayEvent {
    GatewayEvent {
        gateway_info: GatewayInfo {
            mac: mac.to_string(),
            software_version: reporter.short_sw_version().to_string(),
            hardware_descriptor: reporter.hw_type.clone().unwrap_or_default(),
        },
        stats: Timestamp {
            timestamp: reporter.time.unwrap_or(now).to_string(),
        },
        usb_info: usb_list(health)
            .map(|(id, state)| UsbInfo {
                usb_identifier: id,
                usb_health: state.to_string(),
            })
            .collect(),
    }
}

fn usb_list(health: &ApHealthUpdate) -> impl Iterator<Item = (String, &'static str)> + '_ {
    health.usb.iter().map(|usb| {
        (
            usb.identifier.clone().unwrap_or_default(),
            HealthStatus::name_of(usb.health),
        )
    })
}

/// A log line like IoTC's: `MAC=… HW_DESC=… SW_VERSION=… USB: … USB_HEALTH: …`.
pub fn describe(event: &GatewayEvent) -> String {
    let (usb, state) = match event.usb_info.first() {
        Some(u) => (u.usb_identifier.as_str(), u.usb_health.as_str()),
        None => ("N/A", "N/A"),
    };
    format!(
        "MAC={} HW_DESC={} SW_VERSION={} USB: {usb} USB_HEALTH: {state}",
        event.gateway_info.mac,
        event.gateway_info.hardware_descriptor,
        event.gateway_info.software_version
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aruba::{Telemetry, UsbDevice};
    use prost::Message;

    /// The interface guide's health example (vectors.json `official_aos8_nb_apHealthUpdate`).
    const OFFICIAL_HEALTH: &str = "0a100801120a30313233343536373839180912440a053531352d321206904c81cf38861a0d3139322e3136382e382e3132322a0641502d353135320f382e382e302e302d382e382e302e303a053739313739408a8ed081066246080012100a06204c0339e22c10011800200028001a300a2c454e4f4345414e5f5553423a66366136386537343065636335343934393664346236333037326133333932301000";

    #[test]
    fn official_health_becomes_iotc_event() {
        let msg = Telemetry::decode(hex::decode(OFFICIAL_HEALTH).unwrap().as_slice()).unwrap();
        let health = msg.ap_health.as_ref().unwrap();
        let event = health_event(&msg.reporter, "904c81cf3886", health, 1);
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "gateway_info": {"mac": "904c81cf3886", "softwareVersion": "8.8.0.0", "hardwareDescriptor": "AP-515"},
                "stats": {"timestamp": "1614022410"},
                "usb_info": [{"usb_identifier": "ENOCEAN_USB:f6a68e740ecc549496d4b63072a33920", "usb_health": "healthy"}]
            })
        );
        assert_eq!(
            describe(&event),
            "MAC=904c81cf3886 HW_DESC=AP-515 SW_VERSION=8.8.0.0 USB: ENOCEAN_USB:f6a68e740ecc549496d4b63072a33920 USB_HEALTH: healthy"
        );
        let record = health_record(&msg.reporter, "904c81cf3886", health, 7);
        assert_eq!(record.last_seen, 7);
        assert_eq!(record.health_timestamp, 1_614_022_410);
        assert_eq!(record.ap_status, "healthy");
        assert_eq!(record.usb[0].usb_health, "healthy");
    }

    #[test]
    fn unplugged_stick_reads_not_available() {
        let reporter = Reporter::default();
        let mut health = ApHealthUpdate::default();
        let event = health_event(&reporter, "aabbccddeeff", &health, 5);
        assert!(describe(&event).ends_with("USB: N/A USB_HEALTH: N/A"));
        assert_eq!(event.stats.timestamp, "5");
        health
            .usb
            .push(UsbDevice::new("ENOCEAN_USB:1", HealthStatus::Degraded));
        let event = health_event(&reporter, "aabbccddeeff", &health, 5);
        assert_eq!(event.usb_info[0].usb_health, "degraded");
    }
}
