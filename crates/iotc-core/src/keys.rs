//! Every Redis key and stream name the services share, in one place.
//!
//! Keys of one device carry its EURID in braces (`{a1b2c3d4}`) so that a Redis Cluster keeps
//! them in one hash slot. EURIDs are lower-case 8-hex strings, gateway MACs lower-case 12-hex.

/// Stream of de-duplicated radio telegrams, written by ingress, read by the engine group.
pub const TELEGRAM_STREAM: &str = "iotc:telegrams";
/// Consumer group of the engines on [`TELEGRAM_STREAM`].
pub const ENGINE_GROUP: &str = "engine";
/// Stream of gateway (AP health) events, written by ingress, published by the engine.
pub const GATEWAY_EVENT_STREAM: &str = "iotc:gateway-events";

/// Stream of messages a broker refused for good (too large, invalid topic), written by the
/// engine with the reason, so they are acknowledged instead of retried forever.
pub const DEAD_LETTER_STREAM: &str = "iotc:dead-letters";
/// Approximate bound of [`DEAD_LETTER_STREAM`] (entries).
pub const DEAD_LETTER_MAXLEN: usize = 1000;

/// Capped stream of published messages for the live console (fields `topic`, `payload`,
/// `gateway`, `time`), written by the engine only while [`LIVE_WATCHERS`] exists.
pub const LIVE_STREAM: &str = "iotc:live";
/// Approximate bound of [`LIVE_STREAM`] (entries).
pub const LIVE_MAXLEN: usize = 1000;
/// Kept alive (short TTL) by the API while a console is connected.
pub const LIVE_WATCHERS: &str = "iotc:live:watchers";

/// Hash: field `<source>:<destination>` → device JSON (IoTC `EnOceanSensor`).
pub const DEVICES: &str = "iotc:devices";
/// Pub/sub channel announcing a device change; the message is the changed field or `*`.
pub const DEVICES_CHANGED: &str = "iotc:devices:changed";
/// Counter every change of [`DEVICES`] increments in the same transaction or script, so an API
/// instance knows whether its cached device list is still current (docs/api.md).
/// The hash tag puts it in the slot of [`DEVICES`] (a key without braces hashes whole).
pub const DEVICES_VERSION: &str = "{iotc:devices}:version";

/// Hash: gateway MAC → gateway JSON (registry, health, last seen).
pub const GATEWAYS: &str = "iotc:gateways";

/// Hash: AP MAC → `ApRecord` JSON, the optional AP register (docs/security.md).
pub const AP_REGISTER: &str = "iotc:aps";
/// Hash: user name → MAC, the register's login index.
pub const AP_USERS: &str = "iotc:aps:users";
/// Counter raised on every register change; the ingress polls it to apply revocations.
pub const AP_REGISTER_VERSION: &str = "iotc:aps:version";
/// Prefix of an access token's value when the token was issued to a registered AP.
pub const AP_TOKEN_VALUE_PREFIX: &str = "ap:";

/// Prefix of access tokens issued to APs (`iotc:auth:token:<SHA-256 hex of the token>`),
/// each with the token's lifetime as TTL, so several ingress instances share them.
pub const AUTH_TOKEN_PREFIX: &str = "iotc:auth:token:";

/// Hash of telegram statistics of one device.
pub fn device_stats(eurid: &str) -> String {
    format!("iotc:dev:{{{eurid}}}:stats")
}

/// Hash: the ring of the most recent telemetry payloads of one device (`recent`).
pub fn device_recent_telemetry(eurid: &str) -> String {
    format!("iotc:dev:{{{eurid}}}:ring:telemetry")
}

/// Hash: the ring of the most recent signal payloads of one device (`recent`).
pub fn device_recent_signal(eurid: &str) -> String {
    format!("iotc:dev:{{{eurid}}}:ring:signal")
}

/// The ring of a device's signal (`signal`) or telemetry messages.
pub fn device_recent(eurid: &str, signal: bool) -> String {
    if signal {
        device_recent_signal(eurid)
    } else {
        device_recent_telemetry(eurid)
    }
}

/// The list an earlier release kept of a device's signal or telemetry messages.
pub fn device_recent_list(eurid: &str, signal: bool) -> String {
    if signal {
        device_recent_signal_list(eurid)
    } else {
        device_recent_telemetry_list(eurid)
    }
}

/// List (newest first, at most 5) of telemetry payloads, as earlier releases kept them: read
/// while a device has no ring yet, removed with the device.
pub fn device_recent_telemetry_list(eurid: &str) -> String {
    format!("iotc:dev:{{{eurid}}}:recent:telemetry")
}

/// List of signal payloads, as earlier releases kept them (see the telemetry list).
pub fn device_recent_signal_list(eurid: &str) -> String {
    format!("iotc:dev:{{{eurid}}}:recent:signal")
}

/// Marker that the device has sent at least once (`FIRST_TIME_SEND` is raised once).
pub fn device_seen(eurid: &str) -> String {
    format!("iotc:dev:{{{eurid}}}:seen")
}

/// Last accepted rolling code of a secure device.
pub fn device_rlc(eurid: &str) -> String {
    format!("iotc:dev:{{{eurid}}}:rlc")
}

/// Manufacturer ID (decimal) a teach-in told for an onboarded device; written by the engine's
/// learn mode, shown on the device in Home Assistant, removed with the device.
pub fn device_manufacturer(eurid: &str) -> String {
    format!("iotc:dev:{{{eurid}}}:manufacturer")
}

/// Learn window of one device: while this key exists (it has a TTL), a radio teach-in may
/// set the device's key. Written by the API, read by the engine.
pub fn device_learn(eurid: &str) -> String {
    format!("iotc:dev:{{{eurid}}}:learn")
}

/// Learn window open for every device (a TTL key, like [`device_learn`]).
pub const LEARN_ALL: &str = "iotc:learn:all";

/// Longest learn window the API opens, in seconds.
pub const LEARN_MAX_SECONDS: u64 = 3600;

/// Hash of telegram statistics of one gateway.
pub fn gateway_stats(mac: &str) -> String {
    format!("iotc:gw:{mac}:stats")
}

/// Heartbeat of one service instance (`ingress`, `engine`, `api`, `mqtt`), with a TTL.
pub fn heartbeat(service: &str) -> String {
    format!("iotc:heartbeat:{service}")
}

/// Hash: the latest value (JSON) of every key of one device, for the state topic.
pub fn device_state(eurid: &str) -> String {
    format!("iotc:dev:{{{eurid}}}:state")
}

/// Hash: EURID → JSON list of the Home Assistant discovery topics published for it.
pub const HA_DISCOVERY: &str = "iotc:ha:discovery";

/// Hash: EURID → availability timeout in seconds set through the API; it replaces the
/// timeout the engine learns from the device's rhythm.
pub const AVAILABILITY_TIMEOUTS: &str = "iotc:availability:timeouts";
/// Longest availability timeout the API accepts, seconds (7 days).
pub const AVAILABILITY_MAX_SECONDS: u64 = 604_800;

/// Field name of a device in [`DEVICES`].
pub fn device_field(source: &str, destination: &str) -> String {
    format!("{source}:{destination}")
}

/// Statistics hash field names, with IoTC's spelling.
pub mod stats {
    pub const TOTAL: &str = "totalTelegramCount";
    pub const OK: &str = "succesfullyProcessed";
    pub const NOT_PROCESSED: &str = "notProcessed";
    pub const LAST_SEEN: &str = "lastSeen";
}

/// Commands to actuators (docs/control.md): written by the API and the engine's MQTT command
/// subscriber, read by the engines' control group.
pub const COMMAND_STREAM: &str = "iotc:commands";
/// Consumer group of the engines' control tasks on [`COMMAND_STREAM`].
pub const CONTROL_GROUP: &str = "control";
/// Approximate bound of [`COMMAND_STREAM`] and of each southbound stream (entries).
pub const COMMAND_MAXLEN: usize = 10_000;

/// Southbound messages for the APs connected to one ingress instance.
pub fn south_stream(instance: &str) -> String {
    format!("iotc:south:{instance}")
}

/// The ingress instance holding an AP's WebSocket; set with a TTL while connected.
pub fn ap_ingress(mac: &str) -> String {
    format!("iotc:ap:{mac}:ingress")
}

/// Hash: AP MAC → `<unix ms>,<dBm>,<stick>` of the device's last reception by that AP.
pub fn device_heard(eurid: &str) -> String {
    format!("iotc:dev:{{{eurid}}}:heard")
}

/// Hash: stick identifier → base ID (8 hex), the sticks of one AP.
pub fn ap_base_ids(mac: &str) -> String {
    format!("iotc:ap:{mac}:base-ids")
}

/// List receiving the stick's RESPONSE to one southbound message (hex frame, or `error:..`).
pub fn command_reply(id: &str) -> String {
    format!("iotc:command:{id}:reply")
}

/// Hash: EURID → JSON of an unknown device's last teach-in (`GET /devices/unknown`), at most
/// [`UNKNOWN_MAX`] devices; written by the engine.
pub const UNKNOWN_DEVICES: &str = "iotc:unknown";
/// Hash: EURID → number of teach-ins heard of that unknown device.
pub const UNKNOWN_COUNTS: &str = "iotc:unknown:counts";
/// Most unknown devices listed.
pub const UNKNOWN_MAX: usize = 1000;

/// List (oldest first) of commands waiting for a device that listens only right after it
/// sends; each item is a `CommandEntry` as JSON fields with its expiry (`expires` unix ms).
pub fn device_queue(eurid: &str) -> String {
    format!("iotc:dev:{{{eurid}}}:queue")
}

/// Set of the EURIDs with queued commands.
pub const QUEUED_DEVICES: &str = "iotc:queued";
/// Most commands queued per device.
pub const QUEUE_MAX: usize = 16;
