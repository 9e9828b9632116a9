//! Egress: publishes IoTC's JSON to an MQTT broker and/or Azure IoT Hub, and reports success
//! only when every enabled egress confirmed every message (see docs/egress.md).

pub mod azure;
pub mod config;
pub mod delivery;
pub mod ha;
pub mod mqtt;
pub mod tls;
pub mod topics;
mod v4_loop;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

pub use config::{EgressArgs, MqttVersion};
pub use delivery::{DeadLetter, Delivery};
pub use topics::Topics;

use config::BrokerAddr;
use mqtt::{Link, LinkSpec};
use tls::TlsSettings;

/// One message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutMessage {
    pub topic: String,
    /// Shared, not copied, by the links that publish it and the most-recent list.
    pub payload: Bytes,
    pub retain: bool,
    /// For the MQTT broker only (Home Assistant's messages), not for IoT Hub.
    pub mqtt_only: bool,
}

impl OutMessage {
    pub fn new(topic: impl Into<String>, payload: impl Into<Bytes>) -> OutMessage {
        OutMessage {
            topic: topic.into(),
            payload: payload.into(),
            retain: false,
            mqtt_only: false,
        }
    }

    /// A message for the MQTT broker only.
    pub fn mqtt(topic: impl Into<String>, payload: impl Into<Bytes>) -> OutMessage {
        OutMessage {
            mqtt_only: true,
            ..OutMessage::new(topic, payload)
        }
    }

    /// A retained message for the MQTT broker only.
    pub fn mqtt_retained(topic: impl Into<String>, payload: impl Into<Bytes>) -> OutMessage {
        OutMessage {
            retain: true,
            ..OutMessage::mqtt(topic, payload)
        }
    }

    pub fn retained(topic: impl Into<String>, payload: impl Into<Bytes>) -> OutMessage {
        OutMessage {
            retain: true,
            ..OutMessage::new(topic, payload)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    /// Bad settings; the message names the variable.
    #[error("{0}")]
    Config(String),
    /// Not confirmed in time (broker down or slow); the caller keeps the messages pending.
    #[error("{egress}: not confirmed in time (connected: {connected})")]
    Timeout {
        egress: &'static str,
        connected: bool,
    },
    /// The broker refused the message (MQTT 5 reason code), or it is over the packet limit;
    /// `permanent` when sending it again cannot succeed.
    #[error("{egress}: broker refused the message: {reason}")]
    Rejected {
        egress: &'static str,
        reason: String,
        permanent: bool,
    },
    #[error("egress is shut down")]
    Closed,
}

/// Counters the engine and the egress share, reported in the health message.
#[derive(Debug, Default)]
pub struct Counters {
    /// Telegrams decoded and published.
    pub processed: AtomicU64,
    /// Telegrams that could not be processed.
    pub not_processed: AtomicU64,
    /// Messages confirmed by every enabled egress.
    pub published: AtomicU64,
    /// publish() calls that returned an error.
    pub publish_errors: AtomicU64,
}

/// The running egress connections.
pub struct Egress {
    topics: Topics,
    mqtt: Option<Link>,
    /// IoT Hub link and its fixed events topic.
    azure: Option<(Link, String)>,
    timeout: Duration,
    counters: Arc<Counters>,
    started: std::time::Instant,
}

impl Egress {
    /// Validates the settings and starts connecting in the background.
    pub async fn start(args: &EgressArgs) -> anyhow::Result<Egress> {
        let topics = Topics::from_args(args);
        let mqtt = if args.mqtt_enabled() {
            Some(Link::start(mqtt_spec(args, &topics)?))
        } else {
            None
        };
        let azure = if args.iot_azure_enable {
            let (spec, topic) = azure_spec(args)?;
            Some((Link::start(spec), topic))
        } else {
            None
        };
        if mqtt.is_none() && azure.is_none() {
            tracing::warn!(
                "no egress enabled (IOT_ENABLE_MQTT, IOT_AZURE_ENABLE): nothing is published"
            );
        }
        Ok(Egress {
            topics,
            mqtt,
            azure,
            timeout: args.publish_timeout(),
            counters: Arc::default(),
            started: std::time::Instant::now(),
        })
    }

    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Resolves when every enabled egress confirmed every message (QoS 1/2: PUBACK/PUBCOMP),
    /// or errors after the publish timeout; messages lost with a connection are sent again.
    pub async fn publish(&self, msgs: Vec<OutMessage>) -> Result<(), EgressError> {
        if msgs.is_empty() {
            return Ok(());
        }
        let deadline = Instant::now() + self.timeout;
        let azure_msgs: Vec<OutMessage> = match &self.azure {
            Some((_, topic)) => msgs
                .iter()
                .filter(|m| !m.mqtt_only)
                .map(|m| OutMessage::new(topic.clone(), m.payload.clone()))
                .collect(),
            None => Vec::new(),
        };
        // A link takes its messages when called: the lists of references need not outlive it.
        let mut jobs = Vec::new();
        if let Some(link) = &self.mqtt {
            jobs.push(link.publish_all(&msgs.iter().collect::<Vec<_>>(), deadline));
        }
        if let Some((link, _)) = &self.azure {
            jobs.push(link.publish_all(&azure_msgs.iter().collect::<Vec<_>>(), deadline));
        }
        let results = futures_util::future::join_all(jobs).await;
        match results.into_iter().flatten().find_map(Result::err) {
            None => {
                self.counters
                    .published
                    .fetch_add(msgs.len() as u64, Ordering::Relaxed);
                Ok(())
            }
            Some(e) => {
                self.counters.publish_errors.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// When the egress started (the health message reports the uptime).
    pub fn started(&self) -> std::time::Instant {
        self.started
    }

    /// Sum of the connection counts of all links: changes after any reconnect.
    pub fn connects(&self) -> u64 {
        self.links().map(|l| l.connects()).sum()
    }

    /// Every enabled egress is connected.
    pub fn connected(&self) -> bool {
        self.links().all(|l| l.connected())
    }

    /// Whether the MQTT egress is enabled.
    pub fn mqtt_enabled(&self) -> bool {
        self.mqtt.is_some()
    }

    /// Waits until every enabled egress is connected, or the timeout passes.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        for link in self.links() {
            if !link.wait_open(deadline).await {
                return false;
            }
        }
        true
    }

    /// Publishes what `delivery` has not settled yet, on every enabled egress. A message
    /// refused for good becomes a dead letter there; one not confirmed stays for the next
    /// call, so a retry never sends again what was confirmed. Errors when any stays.
    pub async fn deliver(&self, delivery: &mut Delivery) -> Result<(), EgressError> {
        let deadline = Instant::now() + self.timeout;
        let mut jobs = Vec::new();
        for (slot, link, topic) in self.slots() {
            let (index, msgs): (Vec<usize>, Vec<Cow<OutMessage>>) = delivery
                .unsettled(slot)
                .map(|(i, msg)| {
                    // Only IoT Hub's fixed topic needs a copy; MQTT publishes the message as is.
                    let msg = match topic {
                        Some(t) => Cow::Owned(OutMessage::new(t.clone(), msg.payload.clone())),
                        None => Cow::Borrowed(msg),
                    };
                    (i, msg)
                })
                .unzip();
            let refs: Vec<&OutMessage> = msgs.iter().map(|m| m.as_ref()).collect();
            let published = link.publish_all(&refs, deadline);
            jobs.push(async move { (slot, index, published.await) });
        }
        let mut settled = Vec::new();
        for (slot, index, results) in futures_util::future::join_all(jobs).await {
            settled.extend(index.into_iter().zip(results).map(|(i, r)| (slot, i, r)));
        }
        let mut first_error = None;
        for (slot, i, result) in settled {
            if let Some(e) = delivery.settle(slot, i, result) {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            None => {
                self.counters
                    .published
                    .fetch_add(delivery.len() as u64, Ordering::Relaxed);
                Ok(())
            }
            Some(e) => {
                self.counters.publish_errors.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// (slot, link, fixed topic) of each enabled egress; slot 0 is MQTT, 1 IoT Hub.
    fn slots(&self) -> impl Iterator<Item = (usize, &Link, Option<&String>)> {
        let mqtt = self.mqtt.iter().map(|l| (0, l, None));
        mqtt.chain(self.azure.iter().map(|(l, t)| (1, l, Some(t))))
    }

    fn links(&self) -> impl Iterator<Item = &Link> {
        self.mqtt.iter().chain(self.azure.iter().map(|(l, _)| l))
    }
}

pub(crate) fn mqtt_spec(args: &EgressArgs, topics: &Topics) -> Result<LinkSpec, EgressError> {
    let raw = args.mqtt_connstring.as_deref().unwrap_or_default();
    let addr = BrokerAddr::parse(raw, args.mqtt_use_tls)?;
    let tls = if addr.is_tls() {
        Some(tls::client_config(&mqtt_tls_settings(args)?)?)
    } else {
        None
    };
    let client_id = match args.iot_mqtt_client_id.as_deref().map(str::trim) {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => {
            tracing::info!("MQTT client id not set. Using a random one.");
            format!("iotc-{:016x}", rand::random::<u64>())
        }
    };
    let credentials = args.credentials()?;
    let availability = topics.availability();
    Ok(LinkSpec {
        name: "mqtt",
        version: args.mqtt_version,
        addr,
        client_id,
        credentials: Arc::new(move || Ok(credentials.clone())),
        keep_alive: Duration::from_secs(args.mqtt_keep_alive),
        tls,
        will: Some((availability.clone(), b"offline".to_vec())),
        on_connect: vec![OutMessage::retained(availability, "online")],
        qos: args.qos(),
        inflight: args.max_inflight(),
        retain: true,
        reconnect_max: args.reconnect_max(),
        renew_after: None,
        max_packet: args.mqtt_max_packet_size as usize,
    })
}

/// Explicit paths must exist; IoTC's default secret paths are used when present.
fn mqtt_tls_settings(args: &EgressArgs) -> Result<TlsSettings, EgressError> {
    let pick = |given: &Option<PathBuf>,
                default: &str,
                var: &str|
     -> Result<Option<PathBuf>, EgressError> {
        match given {
            Some(p) if p.is_file() => Ok(Some(p.clone())),
            Some(p) => Err(EgressError::Config(format!(
                "{var}: {} is not a readable file",
                p.display()
            ))),
            None => Ok(Some(PathBuf::from(default)).filter(|p| Path::new(p).is_file())),
        }
    };
    let ca_file = pick(&args.mqtt_ca_file, config::DEFAULT_CA_FILE, "MQTT_CA_FILE")?;
    let cert = pick(
        &args.mqtt_client_cert_file,
        config::DEFAULT_CLIENT_CERT,
        "MQTT_CLIENT_CERT_FILE",
    )?;
    let key = pick(
        &args.mqtt_client_key_file,
        config::DEFAULT_CLIENT_KEY,
        "MQTT_CLIENT_KEY_FILE",
    )?;
    let client_auth = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(EgressError::Config(
                "MQTT_CLIENT_KEY_FILE: a client certificate needs its key".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(EgressError::Config(
                "MQTT_CLIENT_CERT_FILE: a client key needs its certificate".into(),
            ));
        }
    };
    Ok(TlsSettings {
        ca_file,
        client_auth,
        verify: args.mqtt_use_tls_verify,
        check_hostname: !args.mqtt_tls_no_hostname_verify,
    })
}

fn azure_spec(args: &EgressArgs) -> Result<(LinkSpec, String), EgressError> {
    let raw = args
        .iot_azure_connstring
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| {
            EgressError::Config(
                "Azure egress is enabled but connections string is not set (IOT_AZURE_CONNSTRING)."
                    .into(),
            )
        })?;
    let conn = azure::DeviceConnection::parse(raw)?;
    if let Some(p) = &args.iot_azure_ca_file
        && !p.is_file()
    {
        return Err(EgressError::Config(format!(
            "IOT_AZURE_CA_FILE: {} is not a readable file",
            p.display()
        )));
    }
    let tls = tls::client_config(&TlsSettings {
        ca_file: args.iot_azure_ca_file.clone(),
        client_auth: None,
        verify: true,
        check_hostname: true,
    })?;
    let ttl = Duration::from_secs(args.iot_azure_sas_ttl.max(10));
    let topic = conn.events_topic();
    let spec = LinkSpec {
        name: "azure",
        version: MqttVersion::V311,
        addr: BrokerAddr {
            scheme: config::Scheme::Tls,
            host: conn.host_name.clone(),
            port: args.iot_azure_port,
            path: String::new(),
        },
        client_id: conn.device_id.clone(),
        credentials: azure::credentials(conn, ttl),
        keep_alive: Duration::from_secs(args.mqtt_keep_alive),
        tls: Some(tls),
        will: None,
        on_connect: Vec::new(),
        // IoT Hub supports QoS 0 and 1 only, and no retained messages.
        qos: rumqttc::QoS::AtLeastOnce,
        inflight: args.azure_max_inflight(),
        retain: false,
        reconnect_max: args.reconnect_max(),
        // Reconnect with a new token at 80 % of its lifetime.
        renew_after: Some(ttl.mul_f64(0.8)),
        // IoT Hub's limit for device-to-cloud messages.
        max_packet: 256 * 1024,
    };
    Ok((spec, topic))
}
