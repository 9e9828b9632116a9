//! `aruba-iot-types.proto`: the message header shared by both directions.

/// Message header. "Only one topic can be present per message."
#[derive(Clone, PartialEq, prost::Message)]
pub struct Meta {
    /// Required by the schema; always 1.
    #[prost(uint64, required, tag = "1")]
    pub version: u64,
    /// The access token; present in every northbound message.
    #[prost(string, optional, tag = "2")]
    pub access_token: Option<String>,
    #[prost(enumeration = "NbTopic", optional, tag = "3")]
    pub nb_topic: Option<i32>,
    #[prost(enumeration = "SbTopic", optional, tag = "4")]
    pub sb_topic: Option<i32>,
}

/// Topic of a northbound message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum NbTopic {
    Telemetry = 0,
    ActionResults = 1,
    Characteristics = 2,
    BleData = 3,
    WifiData = 4,
    DeviceCount = 5,
    Status = 6,
    ZbNbData = 7,
    /// Serial data read from a USB stick (EnOcean ESP3).
    SerialDataNb = 8,
    /// AP, radio and USB health, every 120 s.
    ApHealthUpdate = 9,
}

/// Topic of a southbound message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum SbTopic {
    Actions = 0,
    Config = 1,
    SbStatus = 2,
    ZbSbData = 3,
    /// Serial data to write to a USB stick.
    SerialDataSb = 4,
}

impl Meta {
    /// A northbound header with the given token and topic.
    pub fn northbound(access_token: &str, topic: NbTopic) -> Self {
        Meta {
            version: crate::META_VERSION,
            access_token: Some(access_token.to_string()),
            nb_topic: Some(topic as i32),
            sb_topic: None,
        }
    }

    /// A southbound header with the given token and topic.
    pub fn southbound(access_token: Option<&str>, topic: SbTopic) -> Self {
        Meta {
            version: crate::META_VERSION,
            access_token: access_token.map(str::to_string),
            nb_topic: None,
            sb_topic: Some(topic as i32),
        }
    }

    /// The northbound topic if present and known.
    pub fn nb_topic_known(&self) -> Option<NbTopic> {
        self.nb_topic.and_then(|v| NbTopic::try_from(v).ok())
    }
}
