//! `/devices/teach-in`: sends a teach-in telegram to an actuator that is in its own learn mode,
//! so that it learns the sender iotc uses for it (docs/control.md, "Teaching an actuator").

use axum::Json;
use axum::extract::State;
use enocean::Eep;
use iotc_core::command::{CommandEntry, Encoded, new_id};

use crate::app::AppState;
use crate::command::CommandAccepted;
use crate::devices::DeviceId;
use crate::error::ApiError;
use crate::extract::ApiQuery;

/// Send a teach-in telegram to an actuator in learn mode.
#[utoipa::path(
    post,
    path = "/devices/teach-in",
    operation_id = "device_teach_in",
    tag = "devices",
    params(DeviceId),
    responses(
        (status = 200, description = "Accepted for delivery; the outcome follows as an event", body = CommandAccepted),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 404, description = "No such device", body = crate::error::Error),
    )
)]
pub async fn teach_in_post(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DeviceId>,
) -> Result<Json<CommandAccepted>, ApiError> {
    let (source, destination) = q.resolve()?;
    let device = state
        .store
        .device(&source, &destination)
        .await?
        .ok_or_else(|| ApiError::device_not_found(&source, &destination))?;
    let refused = || {
        ApiError::bad_request(
            "EEP_NOT_SUPPORTED",
            format!("no teach-in telegram for EEP {}", device.eep),
        )
    };
    let eep: Eep = device.eep.parse().map_err(|_| refused())?;
    let (rorg, data, status) = enocean::south::teach_in_telegram(eep).ok_or_else(refused)?;
    let entry = CommandEntry {
        id: new_id(),
        device: source.clone(),
        telegram: Encoded {
            rorg,
            // An actuator in learn mode takes a broadcast teach-in.
            destination: u32::MAX,
            data,
            status,
        },
        origin: "teach-in".into(),
    };
    let accepted = crate::command::enqueue(&state, entry).await?;
    tracing::info!(device = %source, id = %accepted.id, "teach-in telegram queued");
    Ok(Json(accepted))
}
