//! The MQTT command topic: a small client of its own subscribes (shared subscription
//! `$share/iotc-control/...`, so each command reaches one engine), encodes each command with
//! the device's EEP and adds it to the command stream. A command that cannot be encoded
//! becomes a `COMMAND_FAILED` event at once.

use std::time::Duration;

use iotc_core::command::{CommandBody, CommandEntry, MAX_BODY, new_id};
use iotc_core::model::BROADCAST;
use iotc_core::payload::EventCode;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

use super::Control;
use crate::egress::config::EgressArgs;
use crate::egress::topics::Topics;

/// Shared-subscription group of the engines.
const SHARE: &str = "$share/iotc-control/";

/// Starts the subscriber.
pub fn spawn(control: Control, args: &EgressArgs, template: &str) -> anyhow::Result<()> {
    let topics = Topics::from_args(args);
    let spec = crate::egress::mqtt_spec(args, &topics)?;
    let full = format!(
        "{}{}",
        args.mqtt_topic_prefix,
        template.trim_start_matches('/')
    );
    let (before, after) = full
        .split_once("<ID>")
        .ok_or_else(|| anyhow::anyhow!("IOTC_MQTT_COMMAND_TOPIC: needs <ID>"))?;
    let (before, after) = (before.to_string(), after.to_string());
    let filter = format!("{SHARE}{before}+{after}");
    let host = spec.addr.client_host();
    let mut options = MqttOptions::new(format!("{}-cmd", spec.client_id), host, spec.addr.port);
    options
        .set_transport(crate::egress::mqtt::transport(&spec)?)
        .set_keep_alive(Duration::from_secs(30))
        .set_max_packet_size(MAX_BODY + 1024, MAX_BODY + 1024);
    if let Some((user, pass)) = (spec.credentials)()? {
        options.set_credentials(user, pass);
    }
    let (client, mut events) = AsyncClient::new(options, 64);
    tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    tracing::info!(%filter, "subscribing to commands");
                    let _ = client.subscribe(filter.as_str(), QoS::AtLeastOnce).await;
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let id = p
                        .topic
                        .strip_prefix(before.as_str())
                        .and_then(|t| t.strip_suffix(after.as_str()));
                    match id {
                        Some(id) => control.command(id, &p.payload, "mqtt").await,
                        None => tracing::debug!(topic = %p.topic, "not a command topic"),
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "command subscriber disconnected; reconnecting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
    Ok(())
}

impl Control {
    /// Encodes a command for device `id` and queues it; refusals become events.
    pub async fn command(&self, id: &str, body: &[u8], origin: &str) {
        let id = id.to_ascii_lowercase();
        let Some(device) = self.devices.lookup(&id, BROADCAST) else {
            metrics::counter!("iotc_engine_commands_total", "outcome" => "unknown_device")
                .increment(1);
            tracing::warn!(device = %id, "command for a device that is not onboarded; dropped");
            return;
        };
        let device_id = u32::from_str_radix(&id, 16).unwrap_or_default();
        let encoded = CommandBody::parse(body).and_then(|b| b.encode(&device.eep, device_id));
        let telegram = match encoded {
            Ok(t) => t,
            Err(e) => {
                self.event(
                    &id,
                    EventCode::CommandFailed,
                    format!("Command refused: {e}."),
                )
                .await;
                return;
            }
        };
        let entry = CommandEntry {
            id: new_id(),
            device: id.clone(),
            telegram,
            origin: origin.to_string(),
        };
        if let Err(e) = self.enqueue(&entry).await {
            self.event(
                &id,
                EventCode::CommandFailed,
                format!("Command not queued: {e}."),
            )
            .await;
        }
    }
}
