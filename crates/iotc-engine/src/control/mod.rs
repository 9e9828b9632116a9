//! Commands to actuators (docs/control.md). Commands arrive on the MQTT command topic
//! ([`mqtt_in`]) or from the API, both as entries of `keys::COMMAND_STREAM`; the engines'
//! control group reads them ([`deliver`]), picks the AP that heard the device best, and writes
//! the ESP3 frame to the southbound stream of the ingress holding that AP. The outcome is an
//! event on `sensor/<ID>/meta/event`. This runs apart from the telemetry pipeline.

pub mod deliver;
pub mod learn;
pub mod mqtt_in;
pub mod queue;
pub mod route;

use std::sync::Arc;
use std::time::Duration;

use iotc_core::command::CommandEntry;
use iotc_core::keys;
use iotc_core::model::BROADCAST;
use iotc_core::ops::unix_seconds;
use iotc_core::payload::{EventCode, SensorEvent, SensorInfo};
use iotc_core::redis::Redis;

use crate::devices::Devices;
use crate::egress::{Egress, OutMessage};

/// Settings of the control task.
#[derive(clap::Args, Debug, Clone)]
pub struct ControlArgs {
    /// MQTT topic of commands to a device; `<ID>` is the device's EURID, and the global topic
    /// prefix applies. Subscribed as a shared subscription, so several engines share the work.
    #[arg(
        long,
        env = "IOTC_MQTT_COMMAND_TOPIC",
        default_value = "sensor/<ID>/set"
    )]
    pub command_topic: String,

    /// How long the stick's RESPONSE to a southbound packet is awaited, in milliseconds;
    /// without it the next AP is tried.
    #[arg(long, env = "IOTC_COMMAND_RESPONSE_TIMEOUT_MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub response_timeout_ms: u64,

    /// How long a command to a device that listens only after it sends (A5-20-xx) waits for
    /// the device's next telegram, in seconds; then it expires (`COMMAND_EXPIRED`).
    #[arg(long, env = "IOTC_COMMAND_QUEUE_TTL_S", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub queue_ttl_s: u64,
}

/// What the control task shares.
#[derive(Clone)]
pub struct Control {
    pub redis: Redis,
    /// For blocking reads (stream, replies): kept off the shared connection.
    pub blocking: Redis,
    pub devices: Devices,
    pub egress: Arc<Egress>,
    pub response_timeout: Duration,
    pub queue_ttl: Duration,
    pub consumer: String,
}

/// Starts the command subscriber (when MQTT is enabled) and the delivery loop.
pub fn spawn(
    redis_url: &str,
    redis: Redis,
    devices: Devices,
    egress: Arc<Egress>,
    args: &crate::config::Args,
) -> anyhow::Result<()> {
    let response_timeout = Duration::from_millis(args.control.response_timeout_ms);
    let options = iotc_core::redis::Options {
        connection_timeout: Duration::from_secs(2),
        response_timeout: response_timeout + Duration::from_secs(5),
        max_delay: Duration::from_secs(2),
        ..Default::default()
    };
    let blocking = iotc_core::redis::connect(redis_url, options)?;
    let control = Control {
        redis,
        blocking,
        devices,
        egress,
        response_timeout,
        queue_ttl: Duration::from_secs(args.control.queue_ttl_s),
        consumer: args.consumer_name(),
    };
    if control.egress.mqtt_enabled() {
        mqtt_in::spawn(control.clone(), &args.egress, &args.control.command_topic)?;
    }
    learn::start(control.clone());
    // Queued commands go out beside the delivery loop: a blocking connection of their own.
    queue::start(Control {
        blocking: iotc_core::redis::connect(redis_url, options)?,
        ..control.clone()
    });
    tokio::spawn(deliver::run(control));
    Ok(())
}

impl Control {
    /// Adds a command to the command stream.
    pub async fn enqueue(&self, entry: &CommandEntry) -> redis::RedisResult<()> {
        let mut redis = self.redis.clone();
        redis::AsyncCommands::xadd_maxlen::<_, _, _, _, ()>(
            &mut redis,
            keys::COMMAND_STREAM,
            redis::streams::StreamMaxlen::Approx(keys::COMMAND_MAXLEN),
            "*",
            &entry.fields(),
        )
        .await
    }

    /// Publishes a command event for `device` and counts it.
    pub async fn event(&self, device: &str, code: EventCode, message: String) {
        let outcome = match code {
            EventCode::CommandSent => "sent",
            EventCode::CommandExpired => "expired",
            _ => "failed",
        };
        metrics::counter!("iotc_engine_commands_total", "outcome" => outcome).increment(1);
        let sensor = match self.devices.lookup(device, BROADCAST) {
            Some(d) => SensorInfo::from(d.as_ref()),
            None => return,
        };
        let ev = SensorEvent::new(sensor, code, message, unix_seconds());
        let topic = self.egress.topics().sensor_event(device);
        let json = serde_json::to_vec(&ev).expect("event serializes");
        if let Err(e) = self
            .egress
            .publish(vec![OutMessage::new(topic, json)])
            .await
        {
            tracing::warn!(device, error = %e, "command event not published");
        }
    }
}
