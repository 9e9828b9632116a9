//! `/devices/command`: a command to an actuator (docs/control.md). The body is encoded here with
//! the device's EEP, so that what the profile cannot express is refused with 400 at once; the
//! telegram then goes to the command stream, which the engines' control task delivers.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use iotc_core::command::{CommandBody, CommandEntry, CommandError, new_id};
use iotc_core::keys;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::devices::DeviceId;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::store::StoreError;

/// A command accepted for delivery; its outcome follows as an event
/// (`COMMAND_SENT`, `COMMAND_FAILED`) on `sensor/<ID>/meta/event`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CommandAccepted {
    /// The command's ID, named in its outcome event.
    #[schema(example = "19405a1b2c3-0a1b2c3d")]
    pub id: String,
    /// The telegram that will be sent: R-ORG and data, hexadecimal.
    #[schema(example = "d2010064")]
    pub telegram: String,
}

/// The command body: `[{"key": "outputValue", "value": 100}]`, or
/// `{"values": [...], "channel": 1, "command": 1}`, or `{"raw": "d2010064"}`.
#[derive(ToSchema)]
#[schema(value_type = Object, example = json!([{"key": "outputValue", "value": 100}]))]
pub struct CommandRequest(pub serde_json::Value);

/// Send a command to a device (an actuator).
#[utoipa::path(
    post,
    path = "/devices/command",
    operation_id = "device_command",
    tag = "devices",
    params(DeviceId),
    request_body(content = CommandRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Accepted for delivery; the outcome follows as an event", body = CommandAccepted),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 404, description = "No such device", body = crate::error::Error),
    )
)]
pub async fn command_post(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DeviceId>,
    body: Bytes,
) -> Result<(StatusCode, Json<CommandAccepted>), ApiError> {
    let (source, destination) = q.resolve()?;
    let device = state
        .store
        .device(&source, &destination)
        .await?
        .ok_or_else(|| ApiError::device_not_found(&source, &destination))?;
    let id = u32::from_str_radix(&source, 16).unwrap_or_default();
    let telegram = CommandBody::parse(&body)
        .and_then(|b| b.encode(&device.eep, id))
        .map_err(refusal)?;
    let entry = CommandEntry {
        id: new_id(),
        device: source.clone(),
        telegram,
        origin: "api".into(),
    };
    let accepted = enqueue(&state, entry).await?;
    metrics::counter!("iotc_api_commands_total").increment(1);
    tracing::info!(device = %source, id = %accepted.id, "command queued");
    Ok((StatusCode::OK, Json(accepted)))
}

/// Puts a command on the engines' command stream; the answer names it and its telegram.
pub async fn enqueue(state: &AppState, entry: CommandEntry) -> Result<CommandAccepted, ApiError> {
    let mut redis = state.store.redis();
    let _: String = redis::AsyncCommands::xadd_maxlen(
        &mut redis,
        keys::COMMAND_STREAM,
        redis::streams::StreamMaxlen::Approx(keys::COMMAND_MAXLEN),
        "*",
        &entry.fields(),
    )
    .await
    .map_err(StoreError::from)?;
    let t = &entry.telegram;
    Ok(CommandAccepted {
        telegram: format!("{:02x}{}", t.rorg, hex::encode(&t.data)),
        id: entry.id,
    })
}

fn refusal(e: CommandError) -> ApiError {
    let code = match e {
        CommandError::Body(_) => "INVALID_BODY",
        CommandError::NoProfile(_) => "EEP_NOT_SUPPORTED",
        CommandError::Encode(_) => "COMMAND_NOT_EXPRESSIBLE",
    };
    ApiError::bad_request(code, e.to_string())
}
