//! `/system/health`: the state of every service (from the heartbeats they write) and gateway.

use axum::Json;
use axum::extract::State;
use iotc_core::model::GatewayRecord;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::time;

/// Status of each part: `running`, `disconnected` (MQTT), `down` (no heartbeat) or `unknown`.
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
    /// `healthy`, `unhealthy` (a USB stick reports a problem) or `offline` (not heard lately).
    #[schema(example = "healthy")]
    pub status: String,
    /// When the gateway was last heard (UTC).
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
        let unknown = || "unknown".to_string();
        return Json(SystemHealth {
            system_health: ServicesHealth {
                redis: "down".into(),
                ingress: unknown(),
                api: "running".into(),
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
            redis: "running".into(),
            ingress,
            api: "running".into(),
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
        return "down".into();
    };
    serde_json::from_str::<serde_json::Value>(value)
        .ok()
        .and_then(|v| v["status"].as_str().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

pub fn gateway_status(g: &GatewayRecord, now: u64, timeout_secs: u64) -> GatewayStatus {
    let last = g.last_seen.max(g.health_timestamp);
    let status = if last == 0 || now.saturating_sub(last) > timeout_secs {
        "offline"
    } else if g.usb.iter().any(|u| u.usb_health != "healthy") {
        "unhealthy"
    } else {
        "healthy"
    };
    GatewayStatus {
        mac: g.mac.clone(),
        status: status.into(),
        timestamp: if last == 0 {
            String::new()
        } else {
            time::rfc3339(last)
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iotc_core::model::UsbHealth;

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
    fn gateway_states() {
        let mut g = GatewayRecord {
            mac: "a1b2c3d4e5f6".into(),
            last_seen: 1_000,
            ..Default::default()
        };
        assert_eq!(gateway_status(&g, 1_100, 300).status, "healthy");
        assert_eq!(
            gateway_status(&g, 1_100, 300).timestamp,
            "1970-01-01T00:16:40Z"
        );
        assert_eq!(gateway_status(&g, 1_400, 300).status, "offline");
        g.usb.push(UsbHealth {
            usb_identifier: "ENOCEAN_USB:x".into(),
            usb_health: "error".into(),
        });
        assert_eq!(gateway_status(&g, 1_100, 300).status, "unhealthy");
    }
}
