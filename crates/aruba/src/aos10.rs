//! AOS 10 "IoT Operations" transport (proto3, package `aruba.iotops.partner.transport.v1`):
//! only the parts that carry USB serial data. Inventory, BLE, telemetry and location bodies
//! are skipped when decoding.

/// Northbound root message of AOS 10.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TransportNbData {
    #[prost(message, optional, tag = "1")]
    pub header: Option<Header>,
    #[prost(message, optional, tag = "2")]
    pub body: Option<Body>,
    /// UTC; the unit is not documented.
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Header {
    #[prost(string, tag = "1")]
    pub version: String,
    #[prost(enumeration = "Topic", tag = "2")]
    pub topic: i32,
    #[prost(string, tag = "3")]
    pub connector_name: String,
    #[prost(string, tag = "4")]
    pub tp_name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Topic {
    Unspecified = 0,
    BleData = 1,
    Telemetry = 2,
    SerialUsbData = 3,
    ApInventory = 4,
    Keepalive = 5,
    DeviceLocation = 6,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Body {
    #[prost(message, repeated, tag = "3")]
    pub serial_nb_usb_data: Vec<SerialNbUsbData>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SerialNbUsbData {
    #[prost(message, optional, tag = "1")]
    pub usb_address: Option<UsbAddress>,
    #[prost(bytes = "vec", tag = "2")]
    pub payload: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct UsbAddress {
    #[prost(string, tag = "1")]
    pub hw_id: String,
    #[prost(uint32, tag = "2")]
    pub interface_num: u32,
}
