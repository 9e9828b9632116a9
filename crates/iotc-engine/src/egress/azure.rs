//! Azure IoT Hub over MQTT: device connection string, SAS tokens, and the link settings.
//!
//! IoT Hub speaks MQTT 3.1.1 on port 8883 with TLS. The client id is the device id, the user
//! name `<hub host>/<device id>/?api-version=...`, the password a SAS token signed with the
//! device key, and device-to-cloud messages go to `devices/<device id>/messages/events/`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::EgressError;

/// API version sent in the MQTT user name.
pub const API_VERSION: &str = "2021-04-12";

/// The parts of a device connection string we use.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceConnection {
    pub host_name: String,
    pub device_id: String,
    /// Decoded device key.
    key: Vec<u8>,
}

impl std::fmt::Debug for DeviceConnection {
    // The key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceConnection")
            .field("host_name", &self.host_name)
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

impl DeviceConnection {
    /// Parses `HostName=..;DeviceId=..;SharedAccessKey=..` (other fields are ignored).
    pub fn parse(raw: &str) -> Result<DeviceConnection, EgressError> {
        let bad = |why: &str| EgressError::Config(format!("IOT_AZURE_CONNSTRING: {why}"));
        let (mut host, mut device, mut key) = (None, None, None);
        for part in raw.trim().split(';').filter(|p| !p.trim().is_empty()) {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| bad("expected `Name=value` parts separated by `;`"))?;
            match name.trim() {
                "HostName" => host = Some(value.trim().to_string()),
                "DeviceId" => device = Some(value.trim().to_string()),
                "SharedAccessKey" => key = Some(value.trim().to_string()),
                _ => {}
            }
        }
        let host = host
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("HostName is missing"))?;
        let device = device
            .filter(|d| !d.is_empty())
            .ok_or_else(|| bad("DeviceId is missing"))?;
        let key = key.ok_or_else(|| {
            bad("SharedAccessKey is missing (only key authentication is supported)")
        })?;
        let key = STANDARD
            .decode(key)
            .map_err(|_| bad("SharedAccessKey is not base64"))?;
        Ok(DeviceConnection {
            host_name: host,
            device_id: device,
            key,
        })
    }

    /// MQTT user name.
    pub fn username(&self) -> String {
        format!(
            "{}/{}/?api-version={API_VERSION}",
            self.host_name, self.device_id
        )
    }

    /// Device-to-cloud topic.
    pub fn events_topic(&self) -> String {
        format!("devices/{}/messages/events/", self.device_id)
    }

    /// The token's resource: `<host>/devices/<device id>`.
    pub fn resource(&self) -> String {
        format!("{}/devices/{}", self.host_name, self.device_id)
    }

    /// A SAS token valid until `expiry` (unix seconds).
    pub fn sas_token(&self, expiry: u64) -> String {
        sas_token(&self.resource(), &self.key, expiry)
    }
}

/// `SharedAccessSignature sr=<enc(resource)>&sig=<enc(base64(hmac))>&se=<expiry>`, where the
/// HMAC-SHA256 (keyed with the decoded device key) signs `enc(resource) + "\n" + expiry`.
pub fn sas_token(resource: &str, key: &[u8], expiry: u64) -> String {
    let sr = url_encode(resource);
    let sig = signature(&sr, key, expiry);
    format!(
        "SharedAccessSignature sr={sr}&sig={}&se={expiry}",
        url_encode(&sig)
    )
}

/// Base64 HMAC-SHA256 of `<resource>\n<expiry>`.
pub fn signature(resource: &str, key: &[u8], expiry: u64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(format!("{resource}\n{expiry}").as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

fn url_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A credentials source for the link: a token valid for `ttl` from each connection attempt.
pub fn credentials(conn: DeviceConnection, ttl: Duration) -> super::mqtt::Credentials {
    let conn = Arc::new(conn);
    Arc::new(move || {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        Ok(Some((conn.username(), conn.sas_token(now + ttl.as_secs()))))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_connection_string() {
        let c = DeviceConnection::parse(
            "HostName=myhub.azure-devices.net;DeviceId=iotc-1;SharedAccessKey=cGFzc3dvcmQ=",
        )
        .unwrap();
        assert_eq!(c.host_name, "myhub.azure-devices.net");
        assert_eq!(
            c.username(),
            "myhub.azure-devices.net/iotc-1/?api-version=2021-04-12"
        );
        assert_eq!(c.events_topic(), "devices/iotc-1/messages/events/");
        assert!(!format!("{c:?}").contains("cGFzc3dvcmQ"));
    }

    #[test]
    fn rejects_incomplete_connection_strings() {
        for raw in [
            "",
            "HostName=h;DeviceId=d",
            "HostName=h;SharedAccessKey=cGFzcw==",
            "DeviceId=d;SharedAccessKey=cGFzcw==",
            "HostName=h;DeviceId=d;SharedAccessKey=%%%",
            "garbage",
        ] {
            let e = DeviceConnection::parse(raw).unwrap_err().to_string();
            assert!(e.contains("IOT_AZURE_CONNSTRING"), "{raw}: {e}");
        }
    }

    /// Vector from the Azure IoT Node SDK tests (azure-iot-common shared_access_signature):
    /// resource `uri`, key base64("password"), expiry 12345.
    #[test]
    fn token_matches_node_sdk_vector() {
        assert_eq!(
            sas_token("uri", b"password", 12345),
            "SharedAccessSignature sr=uri&sig=kcWxXAK2OAaAoq2oCkaGzX2NMqDB8nCyNuq2fPYCDhk%3D&se=12345"
        );
    }

    /// Vector from the Azure IoT Java SDK (SignatureIT.signatureIsCorrect).
    #[test]
    fn signature_matches_java_sdk_vector() {
        let key = STANDARD
            .decode("q+DKVojmMz014RjAwpNGZbAkdOocSVWMKPOccLfUmLE=")
            .unwrap();
        let sig = signature(
            "sdktesthub.private.azure-devices-int.net/devices/test8",
            &key,
            1462333672,
        );
        assert_eq!(
            url_encode(&sig),
            "ZrTYgp6uRmbDl4lzzewxFD9FoaNKIK7G2bdivDbtc9A%3D"
        );
    }

    #[test]
    fn device_token_encodes_the_resource() {
        let c = DeviceConnection::parse("HostName=h.net;DeviceId=d 1;SharedAccessKey=cGFzc3dvcmQ=")
            .unwrap();
        let t = c.sas_token(100);
        assert!(
            t.starts_with("SharedAccessSignature sr=h.net%2Fdevices%2Fd+1&sig="),
            "{t}"
        );
        let sig = signature("h.net%2Fdevices%2Fd+1", b"password", 100);
        assert!(t.ends_with(&format!("&sig={}&se=100", url_encode(&sig))));
    }
}
