//! `/gateways`: the access points ingress has heard from, their statistics and health.

use axum::Json;
use axum::extract::State;
use iotc_core::model::GatewayRecord;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::error::ApiError;
use crate::stats::TelegramStatistics;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Gateway {
    /// MAC address, 12 lower-case hexadecimal digits.
    #[schema(pattern = "^[a-f0-9]{12}$", example = "24f27fca1ba4")]
    pub mac: String,
    #[serde(rename = "hardwareDescriptor")]
    #[schema(example = "AP-305")]
    pub hardware_descriptor: String,
    #[serde(rename = "softwareVersion")]
    #[schema(example = "8.7.1.0-8.7.1.0")]
    pub software_version: String,
    /// Unix seconds of the last message from the gateway.
    #[serde(rename = "lastSeen", default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "1619210924")]
    pub last_seen: Option<String>,
}

impl From<&GatewayRecord> for Gateway {
    fn from(r: &GatewayRecord) -> Self {
        Gateway {
            mac: r.mac.clone(),
            hardware_descriptor: r.hardware_descriptor.clone(),
            software_version: r.software_version.clone(),
            last_seen: (r.last_seen > 0).then(|| r.last_seen.to_string()),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GatewaysTelegramStatistic {
    pub stats: TelegramStatistics,
    #[serde(rename = "gatewayInfo")]
    pub gateway_info: Gateway,
}

/// IoTC's `USBHealth`: one EnOcean USB stick of an AP.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(as = USBHealth)]
pub struct UsbHealth {
    #[serde(rename = "usbHealth")]
    #[schema(example = "healthy")]
    pub usb_health: String,
    #[serde(rename = "usbIdentifier")]
    #[schema(example = "ENOCEAN_USB:deb480d77718bbbe5253896b9300acfd")]
    pub usb_identifier: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HealthStats {
    /// Unix seconds (a string, as IoTC) of the last health report; before the first one, of the
    /// last time the gateway was heard.
    #[schema(example = "1637770981")]
    pub timestamp: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GatewayHealth {
    #[serde(rename = "gatewayInfo")]
    pub gateway_info: Gateway,
    pub stats: HealthStats,
    #[serde(rename = "usbInfo")]
    pub usb_info: Vec<UsbHealth>,
}

/// Get all gateways.
#[utoipa::path(
    get,
    path = "/gateways",
    operation_id = "gateway_get",
    tag = "gateways",
    responses(
        (status = 200, description = "All gateways", body = Vec<Gateway>),
        (status = 400, response = crate::openapi::BadRequest),
    )
)]
pub async fn gateway_get(State(state): State<AppState>) -> Result<Json<Vec<Gateway>>, ApiError> {
    let records = state.store.gateways().await?;
    Ok(Json(records.iter().map(Gateway::from).collect()))
}

/// Telegram statistics of every gateway.
#[utoipa::path(
    get,
    path = "/gateways/metadata/statistics/telegrams",
    operation_id = "gateway_get_metadata_statitics_telegram",
    tag = "gateways",
    responses(
        (status = 200, description = "Statistics of every gateway", body = Vec<GatewaysTelegramStatistic>),
        (status = 400, response = crate::openapi::BadRequest),
    )
)]
pub async fn gateway_stats(
    State(state): State<AppState>,
) -> Result<Json<Vec<GatewaysTelegramStatistic>>, ApiError> {
    let records = state.store.gateways().await?;
    let macs: Vec<&str> = records.iter().map(|r| r.mac.as_str()).collect();
    let hashes = state.store.gateway_stats(&macs).await?;
    Ok(Json(
        records
            .iter()
            .zip(hashes)
            .map(|(record, hash)| GatewaysTelegramStatistic {
                stats: TelegramStatistics::from_hash(&hash).unwrap_or_default(),
                gateway_info: Gateway::from(record),
            })
            .collect(),
    ))
}

/// Health of every gateway: its last health report and its USB sticks.
#[utoipa::path(
    get,
    path = "/gateways/metadata/health",
    operation_id = "gateway_get_metadata_health",
    tag = "gateways",
    responses(
        (status = 200, description = "Health of every gateway", body = Vec<GatewayHealth>),
        (status = 400, response = crate::openapi::BadRequest),
    )
)]
pub async fn gateway_health(
    State(state): State<AppState>,
) -> Result<Json<Vec<GatewayHealth>>, ApiError> {
    let records = state.store.gateways().await?;
    Ok(Json(
        records
            .iter()
            .map(|r| GatewayHealth {
                gateway_info: Gateway::from(r),
                stats: HealthStats {
                    timestamp: health_time(r).to_string(),
                },
                usb_info: r
                    .usb
                    .iter()
                    .map(|u| UsbHealth {
                        usb_health: u.usb_health.clone(),
                        usb_identifier: u.usb_identifier.clone(),
                    })
                    .collect(),
            })
            .collect(),
    ))
}

/// Unix seconds of the last health report; before the first one (an AP older than AOS 8.8 never
/// sends one) the last time the gateway was heard, never `0`.
fn health_time(r: &GatewayRecord) -> u64 {
    if r.health_timestamp > 0 {
        r.health_timestamp
    } else {
        r.last_seen
    }
}
