//! What the engine recorded about one device: telegram statistics and the most recent
//! telemetry and signal messages (up to five, newest first).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use iotc_core::keys;
use iotc_core::model::EnOceanSensor;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::devices::{DeviceId, find};
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::stats::TelegramStatistics;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SensorMeta {
    pub stats: TelegramStatistics,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SensorTelegramStatistic {
    pub meta: SensorMeta,
    pub sensor: EnOceanSensor,
}

/// One message as it left on egress.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EnOceanTelegram {
    /// The published JSON payload.
    #[serde(rename = "egressOutput")]
    pub egress_output: String,
}

/// The recent signal messages of one kind (MID).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EnOceanSignals {
    /// The signal's MID, e.g. `0x6`.
    #[serde(rename = "signalKey")]
    #[schema(example = "0x6")]
    pub signal_key: String,
    #[serde(rename = "signalMeaning")]
    #[schema(example = "Energy status of device")]
    pub signal_meaning: String,
    #[serde(rename = "recentSignals")]
    pub recent_signals: Vec<EnOceanTelegram>,
}

/// Telegram statistics of a device.
#[utoipa::path(
    get,
    path = "/devices/metadata/statistics/telegrams",
    operation_id = "device_get_metadata_statitics_telegram",
    tag = "devices",
    params(DeviceId),
    responses(
        (status = 200, description = "Statistics of the device", body = Vec<SensorTelegramStatistic>),
        (status = 204, response = crate::openapi::DeviceExistsButNoData),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 404, response = crate::openapi::DeviceNotFound),
    )
)]
pub async fn device_stats(
    State(state): State<AppState>,
    ApiQuery(id): ApiQuery<DeviceId>,
) -> Result<Response, ApiError> {
    let sensor = find(&state, &id).await?;
    let hash = state
        .store
        .stats(&keys::device_stats(&sensor.source_eurid))
        .await?;
    Ok(match TelegramStatistics::from_hash(&hash) {
        None => StatusCode::NO_CONTENT.into_response(),
        Some(stats) => Json(vec![SensorTelegramStatistic {
            meta: SensorMeta { stats },
            sensor,
        }])
        .into_response(),
    })
}

/// Reads a device's most recent messages of one kind, or 404 when the device is unknown.
async fn recent_of(state: &AppState, id: &DeviceId, signal: bool) -> Result<Vec<String>, ApiError> {
    let sensor = find(state, id).await?;
    let eurid = &sensor.source_eurid;
    let ring = keys::device_recent(eurid, signal);
    let list = keys::device_recent_list(eurid, signal);
    Ok(state.store.recent(&ring, &list).await?)
}

/// Up to five most recent telemetry messages of a device, newest first.
#[utoipa::path(
    get,
    path = "/devices/telemetry/most-recent",
    operation_id = "device_most_recent_telemetry_get",
    tag = "devices",
    params(DeviceId),
    responses(
        (status = 200, description = "Up to 5 most recent telemetry messages", body = Vec<EnOceanTelegram>),
        (status = 204, response = crate::openapi::DeviceExistsButNoData),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 404, response = crate::openapi::DeviceNotFound),
    )
)]
pub async fn device_recent_telemetry(
    State(state): State<AppState>,
    ApiQuery(id): ApiQuery<DeviceId>,
) -> Result<Response, ApiError> {
    let recent = recent_of(&state, &id, false).await?;
    if recent.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let telegrams: Vec<EnOceanTelegram> = recent
        .into_iter()
        .map(|egress_output| EnOceanTelegram { egress_output })
        .collect();
    Ok(Json(telegrams).into_response())
}

/// Up to five most recent signal messages of a device, grouped by signal.
#[utoipa::path(
    get,
    path = "/devices/signals/most-recent",
    operation_id = "device_most_recent_signals_get",
    tag = "devices",
    params(DeviceId),
    responses(
        (status = 200, description = "Up to 5 most recent signal messages, grouped by signal", body = Vec<EnOceanSignals>),
        (status = 204, response = crate::openapi::DeviceExistsButNoData),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 404, response = crate::openapi::DeviceNotFound),
    )
)]
pub async fn device_recent_signals(
    State(state): State<AppState>,
    ApiQuery(id): ApiQuery<DeviceId>,
) -> Result<Response, ApiError> {
    let recent = recent_of(&state, &id, true).await?;
    if recent.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok(Json(group_signals(recent)).into_response())
}

/// Groups signal payloads by their MID, in the order of the newest message of each.
pub fn group_signals(payloads: Vec<String>) -> Vec<EnOceanSignals> {
    let mut groups: Vec<EnOceanSignals> = Vec::new();
    for payload in payloads {
        let (key, meaning) = signal_identity(&payload);
        let telegram = EnOceanTelegram {
            egress_output: payload,
        };
        match groups.iter_mut().find(|g| g.signal_key == key) {
            Some(group) => group.recent_signals.push(telegram),
            None => groups.push(EnOceanSignals {
                signal_key: key,
                signal_meaning: meaning,
                recent_signals: vec![telegram],
            }),
        }
    }
    groups
}

/// The MID (`0x6`) and its meaning: from the `signalIdentifier` entry, else from the raw data
/// (`d0` then the MID byte).
fn signal_identity(payload: &str) -> (String, String) {
    let json: Value = serde_json::from_str(payload).unwrap_or(Value::Null);
    let identifier = json["telemetry"]["signal"]
        .as_array()
        .and_then(|entries| entries.iter().find(|e| e["key"] == "signalIdentifier"));
    if let Some(entry) = identifier {
        let key = match &entry["value"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let meaning = entry["meaning"].as_str().unwrap_or_default().to_string();
        return (key, meaning);
    }
    let mid = json["raw"]["data"]
        .as_str()
        .and_then(|data| data.get(2..4))
        .and_then(|byte| u8::from_str_radix(byte, 16).ok());
    match mid {
        Some(mid) => (
            format!("{mid:#x}"),
            enocean::signal::mid_meaning(mid)
                .unwrap_or_default()
                .to_string(),
        ),
        None => ("unknown".to_string(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_mid_newest_first() {
        let energy = |v: u8| {
            format!(
                r#"{{"telemetry":{{"signal":[{{"key":"signalIdentifier","value":"0x6","meaning":"Energy status of device"}},{{"key":"energy","value":{v},"unit":"%"}}]}}}}"#
            )
        };
        let raw_only = r#"{"telemetry":{"signal":[]},"raw":{"data":"d00638"}}"#.to_string();
        let groups = group_signals(vec![energy(56), raw_only.clone(), energy(55)]);
        assert_eq!(groups.len(), 1, "the raw-only message has the same MID 6");
        assert_eq!(groups[0].signal_key, "0x6");
        assert_eq!(groups[0].signal_meaning, "Energy status of device");
        assert_eq!(groups[0].recent_signals.len(), 3);
        assert!(groups[0].recent_signals[0].egress_output.contains("56"));

        let groups = group_signals(vec!["not json".into()]);
        assert_eq!(groups[0].signal_key, "unknown");
    }
}
