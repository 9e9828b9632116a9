//! Egress settings: IoTC's environment variables plus our own (documented in docs/egress.md).

use std::path::PathBuf;
use std::time::Duration;

use super::EgressError;

/// IoTC's default secret mount points for MQTTS.
pub const DEFAULT_CA_FILE: &str = "/mqtt-ca.crt";
pub const DEFAULT_CLIENT_CERT: &str = "/mqtt-mqtt_client.crt";
pub const DEFAULT_CLIENT_KEY: &str = "/mqtt-mqtt_client.key";

/// Egress settings, flattened into the engine's command line.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EgressArgs {
    /// Enables MQTT publishing (1/0, true/false). Unset: enabled when MQTT_CONNSTRING is set.
    #[arg(long, env = "IOT_ENABLE_MQTT", value_parser = parse_flag)]
    pub enable_mqtt: Option<bool>,
    /// Deprecated name of IOT_ENABLE_MQTT.
    #[arg(long, env = "MQTT_LOCAL_EGRESS_ENABLE", value_parser = parse_flag, hide = true)]
    pub mqtt_local_egress_enable: Option<bool>,
    /// Broker address: `host:port` or a URL (mqtt://, tcp://, mqtts://, ssl://, ws://, wss://).
    #[arg(long, env = "MQTT_CONNSTRING")]
    pub mqtt_connstring: Option<String>,
    /// Use MQTT_USERNAME / MQTT_PASSWORD to log in to the broker.
    #[arg(long, env = "MQTT_AUTH", value_parser = parse_flag, action = clap::ArgAction::Set, default_value = "false")]
    pub mqtt_auth: bool,
    #[arg(long, env = "MQTT_USERNAME")]
    pub mqtt_username: Option<String>,
    #[arg(long, env = "MQTT_PASSWORD", hide_env_values = true)]
    pub mqtt_password: Option<String>,
    /// TLS to the broker (also implied by mqtts://, ssl://, wss://).
    #[arg(long, env = "MQTT_USE_TLS", value_parser = parse_flag, action = clap::ArgAction::Set, default_value = "false")]
    pub mqtt_use_tls: bool,
    /// Verify the broker certificate (chain and host name).
    #[arg(long, env = "MQTT_USE_TLS_VERIFY", value_parser = parse_flag, action = clap::ArgAction::Set, default_value = "true")]
    pub mqtt_use_tls_verify: bool,
    /// CA file (PEM) for the broker certificate. Default /mqtt-ca.crt if present, else system roots.
    #[arg(long, env = "MQTT_CA_FILE")]
    pub mqtt_ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS. Default /mqtt-mqtt_client.crt if present.
    #[arg(long, env = "MQTT_CLIENT_CERT_FILE")]
    pub mqtt_client_cert_file: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS. Default /mqtt-mqtt_client.key if present.
    #[arg(long, env = "MQTT_CLIENT_KEY_FILE")]
    pub mqtt_client_key_file: Option<PathBuf>,
    /// Check the broker's chain but not that its name matches the certificate.
    #[arg(long, env = "MQTT_TLS_NO_HOSTNAME_VERIFY", value_parser = parse_flag, action = clap::ArgAction::Set, default_value = "false")]
    pub mqtt_tls_no_hostname_verify: bool,
    /// MQTT client id; random when unset.
    #[arg(long, env = "IOT_MQTT_CLIENT_ID")]
    pub iot_mqtt_client_id: Option<String>,
    /// Quality of service of every publish: 0, 1 or 2.
    #[arg(long, env = "MQTT_QOS", default_value = "1", value_parser = clap::value_parser!(u8).range(0..=2))]
    pub mqtt_qos: u8,
    /// Protocol version: 3.1.1 (also `3`, `4`) or 5.
    #[arg(long, env = "MQTT_VERSION", default_value = "3.1.1", value_parser = parse_version)]
    pub mqtt_version: MqttVersion,
    /// Unacknowledged QoS 1/2 publishes on the wire at once. Default 1000 with QoS 1 (the
    /// IoT Hub link: 100), and 20 with QoS 2: mosquitto drops clients that exceed its
    /// `max_inflight_messages` (default 20) with QoS 2. MQTT 5 brokers announce their own
    /// limit, which is respected; a 3.1.1 broker with a cap of its own (AWS IoT Core: 100)
    /// needs this at or below it.
    #[arg(long, env = "MQTT_MAX_INFLIGHT", value_parser = clap::value_parser!(u16).range(1..))]
    pub mqtt_max_inflight: Option<u16>,
    /// Keep-alive interval in seconds.
    #[arg(long, env = "MQTT_KEEP_ALIVE", default_value = "30")]
    pub mqtt_keep_alive: u64,
    /// Longest wait between reconnection attempts, in seconds (back-off doubles up to it).
    #[arg(long, env = "MQTT_RECONNECT_MAX", default_value = "30")]
    pub mqtt_reconnect_max: u64,
    /// Largest MQTT packet sent, in bytes. A message over it (or over the smaller limit an
    /// MQTT 5 broker announces) is refused for good and goes to the dead-letter stream.
    #[arg(long, env = "MQTT_MAX_PACKET_SIZE", default_value_t = 256 * 1024,
          value_parser = clap::value_parser!(u64).range(1024..=268_435_455))]
    pub mqtt_max_packet_size: u64,
    /// How long publish() waits for confirmations before it reports an error, in seconds.
    #[arg(long, env = "MQTT_PUBLISH_TIMEOUT", default_value = "30")]
    pub mqtt_publish_timeout: u64,

    /// Prefix put before every topic (e.g. `site1/`); empty by default.
    #[arg(long, env = "MQTT_TOPIC_PREFIX", default_value = "")]
    pub mqtt_topic_prefix: String,
    #[arg(
        long,
        env = "SENSOR_TELEMETRY",
        default_value = "sensor/<ID>/telemetry"
    )]
    pub sensor_telemetry: String,
    #[arg(long, env = "SENSOR_EVENT", default_value = "sensor/<ID>/meta/event")]
    pub sensor_event: String,
    #[arg(long, env = "SENSOR_STATS", default_value = "sensor/<ID>/meta/stats")]
    pub sensor_stats: String,
    /// Retained device metadata (friendly name, location, EEP).
    #[arg(long, env = "SENSOR_INFO", default_value = "sensor/<ID>/meta/info")]
    pub sensor_info: String,
    #[arg(
        long,
        env = "GATEWAY_EVENT",
        default_value = "gateway/<MAC>/meta/event"
    )]
    pub gateway_event: String,
    #[arg(
        long,
        env = "GATEWAY_STATS",
        default_value = "gateway/<MAC>/meta/stats"
    )]
    pub gateway_stats: String,
    #[arg(long, env = "SYSTEM_HEALTH", default_value = "system/health")]
    pub system_health: String,
    /// Retained `online`/`offline` (the Last Will) of this engine.
    #[arg(
        long,
        env = "SYSTEM_AVAILABILITY",
        default_value = "system/availability"
    )]
    pub system_availability: String,

    /// Seconds between `sensor/<ID>/meta/stats` reports; 0 = off.
    #[arg(long, env = "SENSOR_STATS_INTERVAL", default_value = "0")]
    pub sensor_stats_interval: u64,
    /// Seconds between `gateway/<MAC>/meta/stats` reports; 0 = off.
    #[arg(long, env = "GATEWAY_STATS_INTERVAL", default_value = "0")]
    pub gateway_stats_interval: u64,
    /// Seconds between `system/health` messages; 0 = off.
    #[arg(long, env = "HEALTH_PUBLISH_INTERVAL", default_value = "600")]
    pub health_publish_interval: u64,
    /// A gateway not heard for this many seconds is `offline` in the health message (the API's
    /// `/system/health` reads the same variable).
    #[arg(long, env = "IOTC_GATEWAY_TIMEOUT_SECONDS", default_value = "300")]
    pub gateway_timeout_seconds: u64,
    /// Seconds between checks for changed device metadata (retained `sensor/<ID>/meta/info`); 0 = off.
    #[arg(long, env = "SENSOR_INFO_INTERVAL", default_value = "30")]
    pub sensor_info_interval: u64,

    /// Enables Azure IoT Hub egress (1/0, true/false).
    #[arg(long, env = "IOT_AZURE_ENABLE", value_parser = parse_flag, action = clap::ArgAction::Set, default_value = "false")]
    pub iot_azure_enable: bool,
    /// Device connection string `HostName=..;DeviceId=..;SharedAccessKey=..`.
    #[arg(long, env = "IOT_AZURE_CONNSTRING", hide_env_values = true)]
    pub iot_azure_connstring: Option<String>,
    /// Lifetime of a SAS token in seconds; a new one is used before it expires.
    #[arg(long, env = "IOT_AZURE_SAS_TTL", default_value = "3600")]
    pub iot_azure_sas_ttl: u64,
    /// IoT Hub MQTT port.
    #[arg(long, env = "IOT_AZURE_PORT", default_value = "8883")]
    pub iot_azure_port: u16,
    /// CA file (PEM) for the hub certificate; system roots when unset.
    #[arg(long, env = "IOT_AZURE_CA_FILE")]
    pub iot_azure_ca_file: Option<PathBuf>,
}

/// MQTT protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MqttVersion {
    #[default]
    V311,
    V5,
}

/// IoTC writes flags as `1`, `True`, `true`; accept the usual spellings.
pub fn parse_flag(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        other => Err(format!("`{other}` is not a flag (use 1/0 or true/false)")),
    }
}

fn parse_version(raw: &str) -> Result<MqttVersion, String> {
    match raw.trim() {
        "3" | "3.1.1" | "4" | "311" => Ok(MqttVersion::V311),
        "5" | "5.0" => Ok(MqttVersion::V5),
        other => Err(format!("`{other}` is not an MQTT version (3.1.1 or 5)")),
    }
}

/// How to reach the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Tcp,
    Tls,
    Ws,
    Wss,
    /// A broker on the same machine, through its Unix socket (`host` is the socket's path).
    Unix,
}

/// A parsed MQTT_CONNSTRING.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddr {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
    /// WebSocket path (`/mqtt` when the URL has none).
    pub path: String,
}

impl BrokerAddr {
    /// Parses `host:port`, `host` (port 1883), `scheme://host[:port][/path]` or
    /// `unix:///path/to/socket`. `use_tls` upgrades a plain address to TLS (MQTT_USE_TLS).
    pub fn parse(raw: &str, use_tls: bool) -> Result<BrokerAddr, EgressError> {
        let bad = |why: &str| {
            EgressError::Config(format!(
                "MQTT is enabled but MQTT_CONNSTRING is empty or invalid: {why}"
            ))
        };
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(bad("empty"));
        }
        let (scheme, rest) = match raw.split_once("://") {
            Some((s, rest)) => {
                let scheme = match s.to_ascii_lowercase().as_str() {
                    "mqtt" | "tcp" => Scheme::Tcp,
                    "mqtts" | "ssl" | "tls" => Scheme::Tls,
                    "ws" => Scheme::Ws,
                    "wss" => Scheme::Wss,
                    "unix" => return Self::unix(rest, use_tls).map_err(bad),
                    other => return Err(bad(&format!("unknown scheme `{other}`"))),
                };
                (scheme, rest)
            }
            None => (Scheme::Tcp, raw),
        };
        let scheme = match (scheme, use_tls) {
            (Scheme::Tcp, true) => Scheme::Tls,
            (Scheme::Ws, true) => Scheme::Wss,
            (s, _) => s,
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (host, port) = split_host_port(authority).map_err(|e| bad(&e))?;
        let default_port = match scheme {
            Scheme::Tcp => 1883,
            Scheme::Tls => 8883,
            Scheme::Ws => 80,
            Scheme::Wss => 443,
            Scheme::Unix => 0,
        };
        let path = if path.is_empty() { "/mqtt" } else { path };
        Ok(BrokerAddr {
            scheme,
            host,
            port: port.unwrap_or(default_port),
            path: path.to_string(),
        })
    }

    /// A Unix socket path (absolute, as in `unix:///run/mosquitto/mqtt.sock`).
    fn unix(path: &str, use_tls: bool) -> Result<BrokerAddr, &'static str> {
        if use_tls {
            return Err("TLS over a Unix socket is not supported");
        }
        if !path.starts_with('/') {
            return Err("a Unix socket needs an absolute path (unix:///path/to/socket)");
        }
        Ok(BrokerAddr {
            scheme: Scheme::Unix,
            host: path.to_string(),
            port: 0,
            path: String::new(),
        })
    }

    /// The address rumqttc's options take: the URL for WebSocket, the host or the socket
    /// path otherwise.
    pub fn client_host(&self) -> String {
        match self.scheme {
            Scheme::Ws | Scheme::Wss => self.ws_url(),
            _ => self.host.clone(),
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self.scheme, Scheme::Tls | Scheme::Wss)
    }

    /// The URL rumqttc expects for WebSocket transports.
    pub fn ws_url(&self) -> String {
        let scheme = if self.scheme == Scheme::Wss {
            "wss"
        } else {
            "ws"
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{host}:{}{}", self.port, self.path)
    }
}

fn split_host_port(authority: &str) -> Result<(String, Option<u16>), String> {
    // `[v6]:port`, `host:port`, `host`
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("unclosed `[`")?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    let port = match port {
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("bad port `{p}`"))?,
        ),
        None => None,
    };
    Ok((host.to_string(), port))
}

impl EgressArgs {
    /// Whether the MQTT egress runs (see the field docs for the rule).
    pub fn mqtt_enabled(&self) -> bool {
        self.enable_mqtt
            .or(self.mqtt_local_egress_enable)
            .unwrap_or_else(|| {
                self.mqtt_connstring
                    .as_deref()
                    .is_some_and(|s| !s.trim().is_empty())
            })
    }

    pub fn qos(&self) -> rumqttc::QoS {
        match self.mqtt_qos {
            0 => rumqttc::QoS::AtMostOnce,
            2 => rumqttc::QoS::ExactlyOnce,
            _ => rumqttc::QoS::AtLeastOnce,
        }
    }

    /// The MQTT egress's window. With QoS 1 a full batch fits: a window of 100 refilled a few
    /// publishes at a time as PUBACKs came back, and cost the engine twice the system time
    /// per telegram (docs/performance.md, "A wider in-flight window").
    pub fn max_inflight(&self) -> u16 {
        let default = if self.mqtt_qos == 2 { 20 } else { 1000 };
        self.mqtt_max_inflight.unwrap_or(default)
    }

    /// The IoT Hub link's window: the setting, or 100.
    pub fn azure_max_inflight(&self) -> u16 {
        self.mqtt_max_inflight.unwrap_or(100)
    }

    pub fn publish_timeout(&self) -> Duration {
        Duration::from_secs(self.mqtt_publish_timeout.max(1))
    }

    pub fn reconnect_max(&self) -> Duration {
        Duration::from_secs(self.mqtt_reconnect_max.max(1))
    }

    /// Username and password when MQTT_AUTH is on.
    pub fn credentials(&self) -> Result<Option<(String, String)>, EgressError> {
        if !self.mqtt_auth {
            return Ok(None);
        }
        let user = self
            .mqtt_username
            .clone()
            .filter(|u| !u.is_empty())
            .ok_or_else(|| {
                EgressError::Config("MQTT_AUTH is set but MQTT_USERNAME is empty".into())
            })?;
        Ok(Some((user, self.mqtt_password.clone().unwrap_or_default())))
    }
}

/// Egress settings from command-line style arguments, for the crate's unit tests.
#[cfg(test)]
pub(crate) fn test_args(args: &[&str]) -> EgressArgs {
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        egress: EgressArgs,
    }
    let mut all = vec!["test"];
    all.extend_from_slice(args);
    Cli::parse_from(all).egress
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_host_port() {
        let a = BrokerAddr::parse("mqtt:1883", false).unwrap();
        assert_eq!(
            (a.scheme, a.host.as_str(), a.port),
            (Scheme::Tcp, "mqtt", 1883)
        );
        let a = BrokerAddr::parse("mosquitto:8883", true).unwrap();
        assert_eq!((a.scheme, a.port), (Scheme::Tls, 8883));
        let a = BrokerAddr::parse("localhost", false).unwrap();
        assert_eq!(a.port, 1883);
    }

    #[test]
    fn urls() {
        for (raw, scheme, port) in [
            ("mqtt://h:1", Scheme::Tcp, 1),
            ("tcp://h", Scheme::Tcp, 1883),
            ("mqtts://h", Scheme::Tls, 8883),
            ("ssl://h:9", Scheme::Tls, 9),
            ("ws://h:8080/mqtt", Scheme::Ws, 8080),
            ("wss://h", Scheme::Wss, 443),
        ] {
            let a = BrokerAddr::parse(raw, false).unwrap();
            assert_eq!(
                (a.scheme, a.host.as_str(), a.port),
                (scheme, "h", port),
                "{raw}"
            );
        }
        let a = BrokerAddr::parse("ws://[::1]:9001/x", false).unwrap();
        assert_eq!(a.ws_url(), "ws://[::1]:9001/x");
        let a = BrokerAddr::parse("ws://h:1", true).unwrap();
        assert_eq!(a.ws_url(), "wss://h:1/mqtt");
    }

    #[test]
    fn unix_socket() {
        let a = BrokerAddr::parse("unix:///run/mosquitto/mqtt.sock", false).unwrap();
        assert_eq!(a.scheme, Scheme::Unix);
        assert_eq!(a.client_host(), "/run/mosquitto/mqtt.sock");
        assert!(!a.is_tls());
        let e = BrokerAddr::parse("unix:///run/m.sock", true).unwrap_err();
        assert!(e.to_string().contains("TLS"), "{e}");
    }

    #[test]
    fn bad_addresses_name_the_variable() {
        for raw in ["", "h:0", "h:x", "ftp://h", ":1883", "unix://relative.sock"] {
            let e = BrokerAddr::parse(raw, false).unwrap_err().to_string();
            assert!(e.contains("MQTT_CONNSTRING"), "{raw}: {e}");
        }
    }

    #[test]
    fn flags() {
        assert_eq!(parse_flag("True"), Ok(true));
        assert_eq!(parse_flag("1"), Ok(true));
        assert_eq!(parse_flag("false"), Ok(false));
        assert!(parse_flag("maybe").is_err());
    }

    #[test]
    fn in_flight_windows() {
        let qos1 = test_args(&[]);
        assert_eq!(
            (qos1.max_inflight(), qos1.azure_max_inflight()),
            (1000, 100)
        );
        assert_eq!(test_args(&["--mqtt-qos", "2"]).max_inflight(), 20);
        let set = test_args(&["--mqtt-max-inflight", "50"]);
        assert_eq!((set.max_inflight(), set.azure_max_inflight()), (50, 50));
    }

    #[test]
    fn enable_rule() {
        let mut a = EgressArgs::default();
        assert!(!a.mqtt_enabled());
        a.mqtt_connstring = Some("mqtt:1883".into());
        assert!(a.mqtt_enabled());
        a.mqtt_local_egress_enable = Some(false);
        assert!(!a.mqtt_enabled());
        a.enable_mqtt = Some(true);
        assert!(a.mqtt_enabled());
    }
}
