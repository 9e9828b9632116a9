//! Size caps on everything an AP sends, applied once per message before anything is stored
//! or forwarded (docs/ingress.md lists them). Strings are cut on character boundaries; extra
//! USB sticks or radios of a health report are dropped. Each cut is counted.

use aruba::{ApHealthUpdate, Reporter, Telemetry};
use iotc_core::text::{MAX_AP_FIELD, MAX_USB_ID, MAX_USB_PER_REPORT, cut_in_place};

/// Most radios taken from one health report.
pub const MAX_RADIOS_PER_REPORT: usize = 8;

/// Cuts every string of `msg` to its cap; returns how many were cut or dropped.
pub fn bound(msg: &mut Telemetry) -> u64 {
    let mut cuts = bound_reporter(&mut msg.reporter);
    for data in &mut msg.nb_s_data {
        cuts += cut_opt(&mut data.nb_device_id, MAX_USB_ID, "usb_id");
    }
    if let Some(health) = &mut msg.ap_health {
        cuts += bound_health(health);
    }
    cuts
}

fn bound_reporter(r: &mut Reporter) -> u64 {
    cut_opt(&mut r.name, MAX_AP_FIELD, "ap_name")
        + cut_opt(&mut r.ipv4, MAX_AP_FIELD, "ipv4")
        + cut_opt(&mut r.ipv6, MAX_AP_FIELD, "ipv6")
        + cut_opt(&mut r.hw_type, MAX_AP_FIELD, "hw_type")
        + cut_opt(&mut r.sw_version, MAX_AP_FIELD, "sw_version")
        + cut_opt(&mut r.sw_build, MAX_AP_FIELD, "sw_build")
}

fn bound_health(h: &mut ApHealthUpdate) -> u64 {
    let mut cuts = drop_extra(&mut h.usb, MAX_USB_PER_REPORT, "usb_list");
    cuts += drop_extra(&mut h.radio, MAX_RADIOS_PER_REPORT, "radio_list");
    for usb in &mut h.usb {
        cuts += cut_opt(&mut usb.identifier, MAX_USB_ID, "usb_id");
        if let Some(d) = &mut usb.descriptor {
            for field in [
                &mut d.manufacturer,
                &mut d.dev_id,
                &mut d.serial_number,
                &mut d.version,
                &mut d.product,
            ] {
                cuts += cut_opt(field, MAX_AP_FIELD, "usb_descriptor");
            }
        }
    }
    for radio in &mut h.radio {
        cuts += cut_opt(&mut radio.firmware_version, MAX_AP_FIELD, "radio_firmware");
    }
    cuts
}

fn cut_opt(s: &mut Option<String>, max: usize, field: &'static str) -> u64 {
    let Some(s) = s else { return 0 };
    if !cut_in_place(s, max) {
        return 0;
    }
    metrics::counter!("iotc_ingress_fields_cut_total", "field" => field).increment(1);
    1
}

fn drop_extra<T>(list: &mut Vec<T>, max: usize, field: &'static str) -> u64 {
    if list.len() <= max {
        return 0;
    }
    list.truncate(max);
    metrics::counter!("iotc_ingress_fields_cut_total", "field" => field).increment(1);
    1
}

#[cfg(test)]
mod tests {
    use super::*;
    use aruba::{HealthStatus, UsbDevice};

    #[test]
    fn huge_multibyte_strings_are_cut_on_boundaries() {
        let huge = "ü".repeat(150_000); // 300 KB of two-byte characters
        let mut reporter = Reporter {
            hw_type: Some(format!("x{huge}")),
            ..Reporter::default()
        };
        reporter.mac = Some(vec![1; 6]);
        let usb: Vec<UsbDevice> = (0..20)
            .map(|_| UsbDevice::new(&format!("E{huge}"), HealthStatus::Healthy))
            .collect();
        let health = ApHealthUpdate {
            ap_status: None,
            radio: Vec::new(),
            usb,
        };
        let mut msg = Telemetry::health("t", reporter, health);
        assert_eq!(bound(&mut msg), 1 + 1 + MAX_USB_PER_REPORT as u64);
        let hw = msg.reporter.hw_type.as_deref().unwrap();
        assert_eq!(hw.len(), MAX_AP_FIELD - 1); // "x" + 63 "ü": 128 would split one
        let health = msg.ap_health.unwrap();
        assert_eq!(health.usb.len(), MAX_USB_PER_REPORT);
        for u in &health.usb {
            let id = u.identifier.as_deref().unwrap();
            assert_eq!(id.len(), MAX_USB_ID); // "E" + 127 "ü" = 255 bytes
            assert!(id.ends_with('ü'));
        }
    }

    #[test]
    fn normal_message_is_untouched() {
        let mut msg = Telemetry::serial_data("t", Reporter::default(), "ENOCEAN_USB:1", &[&[1]]);
        let before = msg.clone();
        assert_eq!(bound(&mut msg), 0);
        assert_eq!(msg, before);
    }
}
