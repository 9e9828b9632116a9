//! `/system/health`: the state of every service (from the heartbeats they write) and gateway.

use axum::Json;
use axum::extract::State;
use iotc_core::health;
use iotc_core::model::GatewayRecord;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;

/// Status of each part: `running`, `down` (no heartbeat), `disconnected` / `disabled` (MQTT), or
/// `unknown` (Redis is down). The same words as the MQTT health message.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ServicesHealth {
    #[schema(example = "running")]
    pub redis: String,
    #[schema(example = "running")]
    pub ingress: String,
    #[schema(example = "running")]
    pub api: String,
    /// The engine's connection to the MQTT broker.
    #[schema(example = "running")]
    pub mqtt: String,
    /// The service that publishes to the endpoints: the engine here.
    #[schema(example = "running")]
    pub integration: String,
    #[schema(example = "running")]
    pub engine: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GatewayStatus {
    #[schema(example = "a1b2c3d4e5f6")]
    pub mac: String,
    /// `healthy`, `degraded` (the AP says so, or a USB stick reports a problem), `unavailable`
    /// (the AP says so), `offline` (not heard for IOTC_GATEWAY_TIMEOUT_SECONDS) or `unknown`.
    #[schema(example = "healthy")]
    pub status: String,
    /// When the gateway was last heard (traffic or health report, UTC).
    #[schema(example = "2022-05-18T09:25:33Z")]
    pub timestamp: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SystemHealth {
    pub system_health: ServicesHealth,
    pub gateway_info: Vec<GatewayStatus>,
}

/// Health of the services and gateways.
#[utoipa::path(
    get,
    path = "/system/health",
    operation_id = "system_health_get",
    tag = "system",
    responses(
        (status = 200, description = "Status of the services and gateways; heartbeats are at most 30 s old", body = SystemHealth),
        (status = 400, response = crate::openapi::BadRequest),
    )
)]
pub async fn system_health_get(State(state): State<AppState>) -> Json<SystemHealth> {
    let now = iotc_core::ops::unix_seconds();
    let beats = state.store.heartbeats(&["ingress", "engine", "mqtt"]).await;
    let gateways = state.store.gateways().await;
    // Health must answer even without Redis: that is when it matters most.
    let (Ok(beats), Ok(gateways)) = (beats, gateways) else {
        let unknown = || health::UNKNOWN.to_string();
        return Json(SystemHealth {
            system_health: ServicesHealth {
                redis: health::DOWN.into(),
                ingress: unknown(),
                api: health::RUNNING.into(),
                mqtt: unknown(),
                integration: unknown(),
                engine: unknown(),
            },
            gateway_info: Vec::new(),
        });
    };
    let [ingress, engine, mqtt] = [0, 1, 2].map(|i| heartbeat_status(beats[i].as_deref()));
    Json(SystemHealth {
        system_health: ServicesHealth {
            redis: health::RUNNING.into(),
            ingress,
            api: health::RUNNING.into(),
            mqtt,
            integration: engine.clone(),
            engine,
        },
        gateway_info: gateways
            .iter()
            .map(|g| gateway_status(g, now, state.gateway_timeout_secs))
            .collect(),
    })
}

/// The `status` of a heartbeat value; `down` when it expired.
pub fn heartbeat_status(value: Option<&str>) -> String {
    let Some(value) = value else {
        return health::DOWN.into();
    };
    serde_json::from_str::<serde_json::Value>(value)
        .ok()
        .and_then(|v| v["status"].as_str().map(str::to_string))
        .unwrap_or_else(|| health::UNKNOWN.into())
}

/// The entry of one gateway, in the vocabulary the MQTT health message uses too.
pub fn gateway_status(g: &GatewayRecord, now: u64, timeout_secs: u64) -> GatewayStatus {
    let s = health::gateway_status(g, now, timeout_secs);
    GatewayStatus {
        mac: s.mac,
        status: s.status,
        timestamp: s.timestamp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_values() {
        assert_eq!(heartbeat_status(None), "down");
        assert_eq!(
            heartbeat_status(Some(r#"{"status":"disconnected","timestamp":1}"#)),
            "disconnected"
        );
        assert_eq!(heartbeat_status(Some("garbage")), "unknown");
    }

    #[test]
    fn gateway_entry_uses_the_shared_vocabulary() {
        let g = GatewayRecord {
            mac: "a1b2c3d4e5f6".into(),
            last_seen: 1_000,
            ap_status: "degraded".into(),
            ..Default::default()
        };
        let s = gateway_status(&g, 1_100, 300);
        assert_eq!(
            (s.status.as_str(), s.timestamp.as_str()),
            ("degraded", "1970-01-01T00:16:40Z")
        );
    }
}
