//! `aruba-iot-nb-ap-health-update.proto` (AOS 8.11, a superset of 8.8/8.10): AP health.

/// Health of the AP, its IoT radios and its USB devices; sent every 120 s.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ApHealthUpdate {
    #[prost(enumeration = "HealthStatus", optional, tag = "1")]
    pub ap_status: Option<i32>,
    #[prost(message, repeated, tag = "2")]
    pub radio: Vec<IotRadio>,
    #[prost(message, repeated, tag = "3")]
    pub usb: Vec<UsbDevice>,
}

/// Health of the AP, a radio or a USB device. `healthy` is 0, the proto2 default: encoders
/// must set it explicitly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum HealthStatus {
    Healthy = 0,
    Degraded = 1,
    Unavailable = 2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum IotRadioFirmware {
    ArubaDefault = 0,
}

/// gen1: BLE 4.0 only; gen2: BLE 5.0 and Zigbee.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum IotRadioType {
    Gen1 = 0,
    Gen2 = 1,
}

/// The AP's onboard (or USB) Aruba IoT radio.
#[derive(Clone, PartialEq, prost::Message)]
pub struct IotRadio {
    /// The radio's own MAC (BLE/Zigbee), not the AP's.
    #[prost(bytes = "vec", optional, tag = "1")]
    pub mac: Option<Vec<u8>>,
    #[prost(enumeration = "IotRadioType", optional, tag = "2")]
    pub hardware: Option<i32>,
    #[prost(enumeration = "IotRadioFirmware", optional, tag = "3")]
    pub firmware: Option<i32>,
    #[prost(enumeration = "HealthStatus", optional, tag = "4")]
    pub health: Option<i32>,
    /// True for the AP-USB-ZB dongle.
    #[prost(bool, optional, tag = "5")]
    pub external: Option<bool>,
    /// AOS 8.11+, e.g. `DFU App 1.4-123`.
    #[prost(string, optional, tag = "6")]
    pub firmware_version: Option<String>,
    /// AOS 8.11+.
    #[prost(message, optional, tag = "7")]
    pub state: Option<IotRadioState>,
}

/// A partner USB device (an EnOcean stick).
#[derive(Clone, PartialEq, prost::Message)]
pub struct UsbDevice {
    /// Unique identifier, e.g. `ENOCEAN_USB:<32 hex>`.
    #[prost(string, optional, tag = "1")]
    pub identifier: Option<String>,
    #[prost(enumeration = "HealthStatus", optional, tag = "2")]
    pub health: Option<i32>,
    /// AOS 8.11+.
    #[prost(message, optional, tag = "3")]
    pub descriptor: Option<UsbDescriptor>,
}

/// The USB descriptor as `show ap debug usb-device-mgmt device all` prints it (AOS 8.11+).
#[derive(Clone, PartialEq, prost::Message)]
pub struct UsbDescriptor {
    #[prost(string, optional, tag = "1")]
    pub manufacturer: Option<String>,
    #[prost(uint32, optional, tag = "2")]
    pub vendor_id: Option<u32>,
    #[prost(uint32, optional, tag = "3")]
    pub product_id: Option<u32>,
    #[prost(string, optional, tag = "4")]
    pub dev_id: Option<String>,
    #[prost(string, optional, tag = "5")]
    pub serial_number: Option<String>,
    #[prost(string, optional, tag = "6")]
    pub version: Option<String>,
    #[prost(string, optional, tag = "7")]
    pub product: Option<String>,
}

/// Radio mode and configuration (AOS 8.11+).
#[derive(Clone, PartialEq, prost::Message)]
pub struct IotRadioState {
    #[prost(enumeration = "IotRadioMode", optional, tag = "1")]
    pub radio_mode: Option<i32>,
    #[prost(message, optional, tag = "2")]
    pub ble_state: Option<IotRadioStateBle>,
    #[prost(message, optional, tag = "3")]
    pub zb_state: Option<IotRadioStateZigbee>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum IotRadioMode {
    Off = 0,
    Ble = 1,
    Zigbee = 2,
    Both = 3,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum BleOpMode {
    Disabled = 0,
    Scanning = 1,
    Beaconing = 2,
    Both = 3,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum BleConsole {
    Off = 0,
    On = 1,
    Dynamic = 2,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct IotRadioStateBle {
    #[prost(enumeration = "BleOpMode", optional, tag = "1")]
    pub ble_opmode: Option<i32>,
    #[prost(uint32, optional, tag = "2")]
    pub ble_txpower: Option<u32>,
    #[prost(enumeration = "BleConsole", optional, tag = "3")]
    pub ble_console: Option<i32>,
    #[prost(message, optional, tag = "4")]
    pub beacons: Option<BeaconConfig>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct IotRadioStateZigbee {
    #[prost(uint32, optional, tag = "1")]
    pub zb_opmode: Option<u32>,
    #[prost(uint32, optional, tag = "2")]
    pub zb_txpower: Option<u32>,
    #[prost(uint32, optional, tag = "3")]
    pub zb_channel: Option<u32>,
    #[prost(bool, optional, tag = "4")]
    pub zb_security: Option<bool>,
    #[prost(bool, optional, tag = "5")]
    pub zb_permit_join: Option<bool>,
    #[prost(uint32, optional, tag = "6")]
    pub zb_panid: Option<u32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct BeaconConfig {
    #[prost(message, repeated, tag = "1")]
    pub beacons: Vec<Beacon>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Beacon {
    #[prost(uint32, optional, tag = "1")]
    pub adv_format: Option<u32>,
    /// Milliseconds, a multiple of 100.
    #[prost(uint32, optional, tag = "2")]
    pub interval: Option<u32>,
    #[prost(uint32, optional, tag = "3")]
    pub profile_id: Option<u32>,
    #[prost(message, optional, tag = "4")]
    pub ibeacon: Option<IbeaconParam>,
    #[prost(message, optional, tag = "5")]
    pub custom_beacon: Option<CustomBeaconParam>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct IbeaconParam {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub uuid: Option<Vec<u8>>,
    #[prost(uint32, optional, tag = "2")]
    pub major: Option<u32>,
    #[prost(uint32, optional, tag = "3")]
    pub minor: Option<u32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CustomBeaconParam {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub payload: Option<Vec<u8>>,
}

impl HealthStatus {
    /// The name IoTC publishes: `healthy`, `degraded` or `unavailable`.
    pub fn name(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unavailable => "unavailable",
        }
    }

    /// Name of a raw value; unknown values (a newer AP) read as `unknown`.
    pub fn name_of(raw: Option<i32>) -> &'static str {
        match raw.map(HealthStatus::try_from) {
            Some(Ok(status)) => status.name(),
            None => HealthStatus::Healthy.name(),
            Some(Err(_)) => "unknown",
        }
    }
}

impl UsbDevice {
    /// A device entry as an AP sends it, health set explicitly.
    pub fn new(identifier: &str, health: HealthStatus) -> Self {
        UsbDevice {
            identifier: Some(identifier.to_string()),
            health: Some(health as i32),
            descriptor: None,
        }
    }
}
