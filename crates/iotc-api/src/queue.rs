//! `/devices/queue`: commands waiting for a device that listens only right after it sends
//! (docs/control.md, "Queue"). The engine fills and empties the queue; the API reads and
//! clears it.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use iotc_core::keys;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::devices::DeviceId;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::store::StoreError;

/// One queued command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QueuedCommand {
    /// The command's ID, named in its outcome event.
    pub id: String,
    /// The telegram that will be sent: R-ORG and data, hexadecimal.
    #[schema(example = "a5320008")]
    pub telegram: String,
    /// Unix milliseconds after which it expires (`COMMAND_EXPIRED`).
    pub expires: u64,
}

/// The commands waiting for a device's next telegram, oldest first.
#[utoipa::path(
    get,
    path = "/devices/queue",
    operation_id = "device_queue_get",
    tag = "devices",
    params(DeviceId),
    responses(
        (status = 200, description = "Queued commands", body = Vec<QueuedCommand>),
        (status = 400, response = crate::openapi::BadRequest),
    )
)]
pub async fn queue_get(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DeviceId>,
) -> Result<Json<Vec<QueuedCommand>>, ApiError> {
    let (source, _) = q.resolve()?;
    let mut redis = state.store.redis();
    let items: Vec<String> =
        redis::AsyncCommands::lrange(&mut redis, keys::device_queue(&source), 0, -1)
            .await
            .map_err(StoreError::from)?;
    Ok(Json(items.iter().filter_map(|j| item(j)).collect()))
}

/// Drop the commands waiting for a device.
#[utoipa::path(
    delete,
    path = "/devices/queue",
    operation_id = "device_queue_delete",
    tag = "devices",
    params(DeviceId),
    responses(
        (status = 200, description = "The queue is empty"),
        (status = 400, response = crate::openapi::BadRequest),
    )
)]
pub async fn queue_delete(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DeviceId>,
) -> Result<(), ApiError> {
    let (source, _) = q.resolve()?;
    let mut redis = state.store.redis();
    redis::pipe()
        .atomic()
        .del(keys::device_queue(&source))
        .ignore()
        .srem(keys::QUEUED_DEVICES, &source)
        .ignore()
        .query_async::<()>(&mut redis)
        .await
        .map_err(StoreError::from)?;
    tracing::info!(device = %source, "command queue cleared");
    Ok(())
}

fn item(json: &str) -> Option<QueuedCommand> {
    let f: HashMap<String, String> = serde_json::from_str(json).ok()?;
    Some(QueuedCommand {
        id: f.get("id")?.clone(),
        telegram: format!("{}{}", f.get("rorg")?, f.get("data")?),
        expires: f.get("expires")?.parse().ok()?,
    })
}
