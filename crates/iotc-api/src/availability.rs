//! `/devices/availability`: a device's availability timeout set by hand. The engine learns
//! each device's timeout from its rhythm (docs/home-assistant.md); a timeout set here replaces
//! it until it is deleted. Kept in Redis (`keys::AVAILABILITY_TIMEOUTS`), read by the engine.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use iotc_core::keys;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::validate;

/// Which device, and the timeout to set.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query, style = Form)]
pub struct TimeoutQuery {
    /// EnOcean ID of the device.
    #[serde(rename = "sourceID")]
    #[param(pattern = "^[a-fA-F0-9]{8}$", example = "a1b2c3d4")]
    pub source_id: String,
    /// Seconds without a telegram before the device is `offline`, 1 to 604800.
    // Read as text for a clear error, documented as the integer it is.
    #[param(value_type = u64, minimum = 1, maximum = 604800)]
    pub seconds: String,
}

/// Which device.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query, style = Form)]
pub struct DeviceQuery {
    /// EnOcean ID of the device.
    #[serde(rename = "sourceID")]
    #[param(pattern = "^[a-fA-F0-9]{8}$", example = "a1b2c3d4")]
    pub source_id: String,
}

/// A timeout set by hand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AvailabilityTimeout {
    #[serde(rename = "sourceID")]
    pub source_id: String,
    pub seconds: u64,
}

impl TimeoutQuery {
    fn seconds(&self) -> Result<u64, ApiError> {
        let raw = &self.seconds;
        match raw.trim().parse::<u64>() {
            Ok(s) if (1..=keys::AVAILABILITY_MAX_SECONDS).contains(&s) => Ok(s),
            _ => Err(ApiError::invalid(
                "seconds",
                format!(
                    "{raw:?} is not a whole number from 1 to {}",
                    keys::AVAILABILITY_MAX_SECONDS
                ),
            )),
        }
    }
}

/// Set a device's availability timeout (replaces the learned one).
#[utoipa::path(
    put,
    path = "/devices/availability",
    operation_id = "availability_put",
    tag = "devices",
    params(TimeoutQuery),
    responses(
        (status = 200, description = "The timeout is set", body = AvailabilityTimeout),
        (status = 400, response = crate::openapi::BadRequest),
    )
)]
pub async fn availability_put(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<TimeoutQuery>,
) -> Result<Json<AvailabilityTimeout>, ApiError> {
    let source_id = validate::eurid("sourceID", &q.source_id)?;
    let seconds = q.seconds()?;
    let mut conn = state.store.conn();
    conn.hset::<_, _, _, ()>(keys::AVAILABILITY_TIMEOUTS, &source_id, seconds)
        .await
        .map_err(crate::store::StoreError::from)?;
    Ok(Json(AvailabilityTimeout { source_id, seconds }))
}

/// Go back to the learned timeout.
#[utoipa::path(
    delete,
    path = "/devices/availability",
    operation_id = "availability_delete",
    tag = "devices",
    params(DeviceQuery),
    responses(
        (status = 200, description = "The learned timeout applies again"),
        (status = 400, response = crate::openapi::BadRequest),
    )
)]
pub async fn availability_delete(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DeviceQuery>,
) -> Result<(), ApiError> {
    let source_id = validate::eurid("sourceID", &q.source_id)?;
    let mut conn = state.store.conn();
    conn.hdel::<_, _, ()>(keys::AVAILABILITY_TIMEOUTS, &source_id)
        .await
        .map_err(crate::store::StoreError::from)?;
    Ok(())
}

/// The timeouts set by hand.
#[utoipa::path(
    get,
    path = "/devices/availability",
    operation_id = "availability_get",
    tag = "devices",
    responses(
        (status = 200, description = "Timeouts set by hand", body = Vec<AvailabilityTimeout>),
    )
)]
pub async fn availability_get(
    State(state): State<AppState>,
) -> Result<Json<Vec<AvailabilityTimeout>>, ApiError> {
    let mut conn = state.store.conn();
    let all: BTreeMap<String, u64> = conn
        .hgetall(keys::AVAILABILITY_TIMEOUTS)
        .await
        .map_err(crate::store::StoreError::from)?;
    Ok(Json(
        all.into_iter()
            .map(|(source_id, seconds)| AvailabilityTimeout { source_id, seconds })
            .collect(),
    ))
}
