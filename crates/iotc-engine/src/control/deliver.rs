//! The delivery loop: one command at a time per engine, so that each stick has at most one
//! packet waiting for its RESPONSE from this engine (RESPONSEs carry no identifier; the ingress
//! matches them to packets in order, see docs/control.md).

use std::collections::HashMap;
use std::time::Duration;

use enocean::south::{self, Outgoing, Response, ReturnCode};
use iotc_core::command::{CommandEntry, new_id};
use iotc_core::keys;
use iotc_core::model::BROADCAST;
use iotc_core::payload::EventCode;
use redis::AsyncCommands;
use redis::streams::{StreamReadOptions, StreamReadReply};

use super::Control;
use super::route::{self, Heard};

/// Southbound streams are dropped after this long without a message (an ingress gone).
const SOUTH_TTL_S: i64 = 3600;

/// Why one AP did not take a packet.
enum Miss {
    /// Not connected, busy or silent: the next AP is tried.
    Unreachable(String),
    /// The stick refused: the command failed.
    Refused(String),
}

/// Reads the command stream in the control group until the process ends.
pub async fn run(control: Control) {
    let mut blocking = control.blocking.clone();
    loop {
        let created: redis::RedisResult<()> = blocking
            .xgroup_create_mkstream(keys::COMMAND_STREAM, keys::CONTROL_GROUP, "$")
            .await;
        match created {
            Ok(()) => break,
            Err(e) if e.code() == Some("BUSYGROUP") => break,
            Err(e) => {
                tracing::warn!(error = %e, "control group not created; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    let options = StreamReadOptions::default()
        .group(keys::CONTROL_GROUP, &control.consumer)
        .count(16)
        .block(2000);
    loop {
        let read: redis::RedisResult<StreamReadReply> = blocking
            .xread_options(&[keys::COMMAND_STREAM], &[">"], &options)
            .await;
        let reply = match read {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "command stream not readable; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for entry in reply.keys.into_iter().flat_map(|k| k.ids) {
            let fields: HashMap<String, String> = entry
                .map
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), redis::from_redis_value_ref(v).ok()?)))
                .collect();
            match CommandEntry::from_fields(&fields) {
                Some(command) => control.deliver(&command).await,
                None => {
                    metrics::counter!("iotc_engine_commands_total", "outcome" => "invalid")
                        .increment(1);
                    tracing::warn!(id = %entry.id, "unreadable command entry dropped");
                }
            }
            let mut redis = control.redis.clone();
            let _: redis::RedisResult<()> = redis
                .xack(keys::COMMAND_STREAM, keys::CONTROL_GROUP, &[&entry.id])
                .await;
        }
    }
}

impl Control {
    /// Queues a command to a device that listens only after it sends; sends any other now.
    pub async fn deliver(&self, command: &CommandEntry) {
        let device = self.devices.lookup(&command.device, BROADCAST);
        let wait = command.origin != "teach-in"
            && device.is_some_and(|d| super::queue::listens_after_send(&d.eep));
        if !wait {
            return self.send_now(command).await;
        }
        match self.enqueue_for_device(command).await {
            Ok(true) => {
                tracing::info!(device = %command.device, id = %command.id, "command queued until the device sends")
            }
            Ok(false) => {
                let message = format!(
                    "Command {} failed: the device's queue is full ({} commands).",
                    command.id,
                    keys::QUEUE_MAX
                );
                self.event(&command.device, EventCode::CommandFailed, message)
                    .await;
            }
            Err(e) => {
                let message = format!("Command {} failed: not queued ({e}).", command.id);
                self.event(&command.device, EventCode::CommandFailed, message)
                    .await;
            }
        }
    }

    /// Sends one command through the best AP, falling back to the next; publishes the outcome.
    pub async fn send_now(&self, command: &CommandEntry) {
        let (code, message) = match self.try_aps(command).await {
            Ok(mac) => (
                EventCode::CommandSent,
                format!("Command {} sent through AP {mac}.", command.id),
            ),
            Err(reason) => (
                EventCode::CommandFailed,
                format!("Command {} failed: {reason}.", command.id),
            ),
        };
        tracing::info!(device = %command.device, id = %command.id, code = code.as_str(), %message);
        self.event(&command.device, code, message).await;
    }

    /// The MAC of the AP whose stick accepted the command, or why none did.
    async fn try_aps(&self, command: &CommandEntry) -> Result<String, String> {
        let device = u32::from_str_radix(&command.device, 16).map_err(|_| "bad device ID")?;
        let mut last = "no connected AP heard the device".to_string();
        for heard in self.candidates(&command.device).await? {
            let Some(instance) = self.ingress_of(&heard.mac).await? else {
                continue;
            };
            match self.send_via(&instance, &heard, device, command).await {
                Ok(()) => return Ok(heard.mac),
                Err(Miss::Refused(reason)) => return Err(reason),
                Err(Miss::Unreachable(reason)) => {
                    tracing::info!(mac = %heard.mac, %reason, "AP did not take the command; trying the next");
                    last = format!("AP {}: {reason}", heard.mac);
                }
            }
        }
        Err(last)
    }

    async fn send_via(
        &self,
        instance: &str,
        heard: &Heard,
        device: u32,
        command: &CommandEntry,
    ) -> Result<(), Miss> {
        let base = self.base_id(instance, heard).await?;
        let t = &command.telegram;
        let out = Outgoing {
            rorg: t.rorg,
            data: t.data.clone(),
            sender: south::sender_for(base, device),
            status: t.status,
            destination: t.destination,
        };
        let response = self.exchange(instance, heard, &out.frame()).await?;
        match response.code {
            ReturnCode::Ok => Ok(()),
            code => Err(Miss::Refused(format!("the stick answered {}", code.name()))),
        }
    }

    /// The stick's base ID, read once with `CO_RD_IDBASE` and kept per AP and stick.
    async fn base_id(&self, instance: &str, heard: &Heard) -> Result<u32, Miss> {
        let key = keys::ap_base_ids(&heard.mac);
        let mut redis = self.redis.clone();
        let known: Option<String> = redis.hget(&key, &heard.stick).await.map_err(unreachable)?;
        if let Some(id) = known.and_then(|k| u32::from_str_radix(&k, 16).ok()) {
            return Ok(id);
        }
        let response = self
            .exchange(instance, heard, &south::read_base_id_frame())
            .await?;
        let id = response.base_id().ok_or_else(|| {
            Miss::Refused(format!(
                "the stick gave no base ID ({})",
                response.code.name()
            ))
        })?;
        let _: redis::RedisResult<()> = redis.hset(&key, &heard.stick, format!("{id:08x}")).await;
        Ok(id)
    }

    /// Writes one packet for a stick and waits for its RESPONSE.
    async fn exchange(
        &self,
        instance: &str,
        heard: &Heard,
        frame: &[u8],
    ) -> Result<Response, Miss> {
        let reply = keys::command_reply(&new_id());
        let stream = keys::south_stream(instance);
        let fields = [
            ("mac", heard.mac.clone()),
            ("stick", heard.stick.clone()),
            ("frame", hex::encode(frame)),
            ("reply", reply.clone()),
        ];
        let mut pipe = redis::pipe();
        pipe.xadd_maxlen(
            &stream,
            redis::streams::StreamMaxlen::Approx(keys::COMMAND_MAXLEN),
            "*",
            &fields,
        )
        .ignore()
        .expire(&stream, SOUTH_TTL_S)
        .ignore();
        let mut redis = self.redis.clone();
        pipe.query_async::<()>(&mut redis)
            .await
            .map_err(unreachable)?;
        let mut blocking = self.blocking.clone();
        let waited: Option<(String, String)> = redis::cmd("BLPOP")
            .arg(&reply)
            .arg(self.response_timeout.as_secs_f64())
            .query_async(&mut blocking)
            .await
            .map_err(unreachable)?;
        let Some((_, value)) = waited else {
            return Err(Miss::Unreachable(
                "no RESPONSE from the stick in time".into(),
            ));
        };
        if let Some(reason) = value.strip_prefix("error:") {
            return Err(Miss::Unreachable(reason.to_string()));
        }
        hex::decode(&value)
            .ok()
            .and_then(|d| Response::from_data(&d))
            .ok_or_else(|| Miss::Unreachable("unreadable RESPONSE".into()))
    }

    pub(super) async fn candidates(&self, device: &str) -> Result<Vec<Heard>, String> {
        let mut redis = self.redis.clone();
        let all: HashMap<String, String> = redis
            .hgetall(keys::device_heard(device))
            .await
            .map_err(|e| format!("Redis: {e}"))?;
        let heard = all
            .iter()
            .filter_map(|(mac, v)| Heard::parse(mac, v))
            .collect();
        Ok(route::rank(heard))
    }

    async fn ingress_of(&self, mac: &str) -> Result<Option<String>, String> {
        let mut redis = self.redis.clone();
        redis
            .get(keys::ap_ingress(mac))
            .await
            .map_err(|e| format!("Redis: {e}"))
    }
}

fn unreachable(e: redis::RedisError) -> Miss {
    Miss::Unreachable(format!("Redis: {e}"))
}
