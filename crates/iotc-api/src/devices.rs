//! `/devices`: onboard, read, overwrite and remove devices.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use iotc_core::model::EnOceanSensor;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use crate::store::Deleted;
use crate::validate;

/// Names one device: its EURID and destination.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query, style = Form)]
pub struct DeviceId {
    /// EnOcean ID of the device (8 hexadecimal digits).
    #[serde(rename = "sourceID")]
    #[param(pattern = "^[a-fA-F0-9]{8}$", example = "a1b2c3d4")]
    pub source_id: String,
    /// Destination ID; FFFFFFFF (broadcast) when omitted.
    #[serde(rename = "destinationID", default)]
    #[param(pattern = "^[a-fA-F0-9]{8}$", default = "FFFFFFFF")]
    pub destination_id: Option<String>,
}

impl DeviceId {
    /// Validated, lower-case `(source, destination)`.
    pub fn resolve(&self) -> Result<(String, String), ApiError> {
        Ok((
            validate::eurid("sourceID", &self.source_id)?,
            validate::destination("destinationID", self.destination_id.as_deref())?,
        ))
    }
}

/// Like [`DeviceId`], but without `sourceID` all devices are meant.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query, style = Form)]
pub struct DeviceSelector {
    /// EnOcean ID of the device; omit it to list all devices.
    #[serde(rename = "sourceID", default)]
    #[param(pattern = "^[a-fA-F0-9]{8}$", example = "a1b2c3d4")]
    pub source_id: Option<String>,
    /// Destination ID; FFFFFFFF (broadcast) when omitted.
    #[serde(rename = "destinationID", default)]
    #[param(pattern = "^[a-fA-F0-9]{8}$", default = "FFFFFFFF")]
    pub destination_id: Option<String>,
}

/// One device (when `sourceID` is given) or all devices.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum DeviceOrDevices {
    One(EnOceanSensor),
    All(Vec<EnOceanSensor>),
}

/// Reads one device, or 404.
pub async fn find(state: &AppState, id: &DeviceId) -> Result<EnOceanSensor, ApiError> {
    let (source, destination) = id.resolve()?;
    state
        .store
        .device(&source, &destination)
        .await?
        .ok_or_else(|| ApiError::device_not_found(&source, &destination))
}

/// Get one device, or all devices when sourceID is omitted.
#[utoipa::path(
    get,
    path = "/devices",
    operation_id = "device_get",
    tag = "devices",
    params(DeviceSelector),
    responses(
        (status = 200, description = "The device; without sourceID an array of all devices", body = DeviceOrDevices),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 404, response = crate::openapi::DeviceNotFound),
    )
)]
pub async fn device_get(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DeviceSelector>,
) -> Result<Response, ApiError> {
    match q.source_id {
        Some(source_id) => {
            let id = DeviceId {
                source_id,
                destination_id: q.destination_id,
            };
            Ok(Json(DeviceOrDevices::One(find(&state, &id).await?)).into_response())
        }
        // IoTC's spec gives destinationID a default, so clients send it even when listing:
        // it is checked, and the list is every device as without parameters.
        None => {
            validate::destination("destinationID", q.destination_id.as_deref())?;
            let json = state.store.devices_json().await?;
            Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
        }
    }
}

/// Overwrite the device (it is created when it does not exist).
#[utoipa::path(
    put,
    path = "/devices",
    operation_id = "device_put",
    tag = "devices",
    params(DeviceId),
    request_body = EnOceanSensor,
    responses(
        (status = 200, description = "Overwrite succeeded; the stored device", body = EnOceanSensor),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 413, response = crate::openapi::PayloadTooLarge),
    )
)]
pub async fn device_put(
    State(state): State<AppState>,
    ApiQuery(id): ApiQuery<DeviceId>,
    ApiJson(mut dev): ApiJson<EnOceanSensor>,
) -> Result<Json<EnOceanSensor>, ApiError> {
    let (source, destination) = id.resolve()?;
    if dev.destination_eurid.is_none() {
        dev.destination_eurid = Some(destination.clone());
    }
    let dev = validate::sensor(dev, state.only_secure, "")?;
    if dev.source_eurid != source || dev.destination() != destination {
        return Err(ApiError::bad_request(
            "ID_MISMATCH",
            format!(
                "the body names device {}:{} but the query names {source}:{destination}",
                dev.source_eurid,
                dev.destination()
            ),
        ));
    }
    state.store.put_device(&dev).await?;
    tracing::info!(device = %dev.source_eurid, destination = %dev.destination(), "device overwritten");
    Ok(Json(dev))
}

/// Register a device (an existing one with the same IDs is replaced).
#[utoipa::path(
    post,
    path = "/devices",
    operation_id = "device_post",
    tag = "devices",
    request_body = EnOceanSensor,
    responses(
        (status = 200, description = "Successfully registered device; the stored device", body = EnOceanSensor),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 413, response = crate::openapi::PayloadTooLarge),
    )
)]
pub async fn device_post(
    State(state): State<AppState>,
    ApiJson(dev): ApiJson<EnOceanSensor>,
) -> Result<Json<EnOceanSensor>, ApiError> {
    let dev = validate::sensor(dev, state.only_secure, "")?;
    state.store.put_device(&dev).await?;
    tracing::info!(device = %dev.source_eurid, destination = %dev.destination(), "device registered");
    Ok(Json(dev))
}

/// Remove a device.
#[utoipa::path(
    delete,
    path = "/devices",
    operation_id = "device_delete",
    tag = "devices",
    params(DeviceId),
    responses(
        (status = 200, description = "Device deleted"),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 404, response = crate::openapi::DeviceNotFound),
    )
)]
pub async fn device_delete(
    State(state): State<AppState>,
    ApiQuery(id): ApiQuery<DeviceId>,
) -> Result<StatusCode, ApiError> {
    let (source, destination) = id.resolve()?;
    match state.store.delete_device(&source, &destination).await? {
        Deleted::NotFound => Err(ApiError::device_not_found(&source, &destination)),
        Deleted::Removed | Deleted::RemovedLast => {
            tracing::info!(device = %source, %destination, "device deleted");
            Ok(StatusCode::OK)
        }
    }
}
