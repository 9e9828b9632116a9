//! `/devices/unknown`: devices heard teaching in that are not onboarded (docs/control.md). The
//! engine lists them (at most `keys::UNKNOWN_MAX`); onboarding one is a `POST /devices` with the
//! listed EEP, after which it is no longer listed.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use iotc_core::keys;
use iotc_core::model::BROADCAST;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::error::ApiError;
use crate::store::StoreError;

/// An unknown device's teach-ins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UnknownDevice {
    #[serde(rename = "sourceEurid")]
    #[schema(example = "0190a1b2")]
    pub source_eurid: String,
    /// The EEP the teach-in carried, if any.
    #[schema(example = "D2-01-12")]
    pub eep: Option<String>,
    /// The 11-bit EnOcean manufacturer ID the teach-in carried, if any.
    pub manufacturer: Option<u16>,
    /// Unix seconds of the last teach-in.
    #[serde(rename = "lastSeen")]
    pub last_seen: u64,
    /// MAC of the AP that heard it best.
    #[schema(example = "021a1e000011")]
    pub gateway: String,
    /// Teach-ins heard.
    pub count: u64,
}

/// Devices heard teaching in that are not onboarded, newest first.
#[utoipa::path(
    get,
    path = "/devices/unknown",
    operation_id = "devices_unknown_get",
    tag = "devices",
    responses(
        (status = 200, description = "Unknown devices", body = Vec<UnknownDevice>),
    )
)]
pub async fn unknown_get(
    State(state): State<AppState>,
) -> Result<Json<Vec<UnknownDevice>>, ApiError> {
    let mut redis = state.store.redis();
    let (records, counts): (HashMap<String, String>, HashMap<String, u64>) = redis::pipe()
        .hgetall(keys::UNKNOWN_DEVICES)
        .hgetall(keys::UNKNOWN_COUNTS)
        .query_async(&mut redis)
        .await
        .map_err(StoreError::from)?;
    let mut out = Vec::new();
    for (eurid, json) in records {
        if state.store.device_exists(&eurid, BROADCAST).await? {
            continue;
        }
        let Ok(mut device) = serde_json::from_str::<UnknownRecord>(&json) else {
            continue;
        };
        out.push(UnknownDevice {
            count: counts.get(&eurid).copied().unwrap_or(0),
            source_eurid: std::mem::take(&mut device.source_eurid),
            eep: device.eep,
            manufacturer: device.manufacturer,
            last_seen: device.last_seen,
            gateway: device.gateway,
        });
    }
    out.sort_by(|a, b| {
        b.last_seen
            .cmp(&a.last_seen)
            .then(a.source_eurid.cmp(&b.source_eurid))
    });
    Ok(Json(out))
}

/// The engine's record.
#[derive(Deserialize)]
struct UnknownRecord {
    #[serde(rename = "sourceEurid")]
    source_eurid: String,
    eep: Option<String>,
    manufacturer: Option<u16>,
    #[serde(rename = "lastSeen")]
    last_seen: u64,
    gateway: String,
}
