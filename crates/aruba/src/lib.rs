//! The Aruba IoT transport of AOS 8 ("Telemetry-Websocket"), as prost structs.
//!
//! An AP sends one [`Telemetry`] per binary WebSocket frame (northbound); the server answers
//! with one [`IotSbMessage`] per frame (southbound). The wire format is proto2, package
//! `aruba_telemetry`; field numbers and types follow HPE Aruba's AOS 8.10 definitions plus the
//! additive AOS 8.11 health fields. Only the messages an EnOcean connector uses are declared:
//! unknown fields (BLE, Wi-Fi, Zigbee, ...) are skipped when decoding.
//!
//! [`aos10`] holds the few AOS 10 "IoT Operations" messages that carry USB serial data.

pub mod aos10;
mod health;
mod nb;
mod sb;
mod types;

pub use health::{
    ApHealthUpdate, Beacon, BeaconConfig, BleConsole, BleOpMode, CustomBeaconParam, HealthStatus,
    IbeaconParam, IotRadio, IotRadioFirmware, IotRadioMode, IotRadioState, IotRadioStateBle,
    IotRadioStateZigbee, IotRadioType, UsbDescriptor, UsbDevice,
};
pub use nb::{NbSerialData, Reporter, Telemetry};
pub use sb::{ConnectCode, ConnectStatus, IotSbMessage, Receiver, SbSerialData, TransportConfig};
pub use types::{Meta, NbTopic, SbTopic};

/// The prefix of the identifier of an EnOcean USB stick (`ENOCEAN_USB:<32 hex>`).
pub const ENOCEAN_USB_PREFIX: &str = "ENOCEAN_USB:";

/// The only protocol version AOS 8 sends in [`Meta::version`].
pub const META_VERSION: u64 = 1;
