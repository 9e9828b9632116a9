//! `/devices/learn`: learn windows. While a device's window is open (or the one for all
//! devices), a radio teach-in may set its key (see docs/security.md, "Secure teach-in").
//! A window is a Redis key with a TTL: it closes by itself, and the engine only reads it.

use axum::Json;
use axum::extract::State;
use iotc_core::keys;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::validate;

/// Seconds a window stays open when `seconds` is omitted.
const DEFAULT_SECONDS: u64 = 60;

/// Which window: one device's, or the one for all devices when `sourceID` is omitted.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query, style = Form)]
pub struct LearnQuery {
    /// EnOcean ID of the device; omit it for the window of all devices.
    #[serde(rename = "sourceID", default)]
    #[param(pattern = "^[a-fA-F0-9]{8}$", example = "a1b2c3d4")]
    pub source_id: Option<String>,
    /// How long the window stays open, 1 to 3600 seconds (opening only; default 60).
    #[serde(default)]
    // Read as text for a clear error, documented as the integer it is: a string schema with
    // an integer default is an invalid document.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 3600, default = 60)]
    pub seconds: Option<String>,
}

/// An open learn window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LearnWindow {
    /// The device; `null` for the window of all devices.
    #[serde(rename = "sourceID")]
    pub source_id: Option<String>,
    /// Seconds until the window closes by itself.
    pub seconds: u64,
}

impl LearnQuery {
    /// The window's Redis key and the device (lower case), if one is named.
    fn target(&self) -> Result<(String, Option<String>), ApiError> {
        match &self.source_id {
            Some(id) => {
                let eurid = validate::eurid("sourceID", id)?;
                Ok((keys::device_learn(&eurid), Some(eurid)))
            }
            None => Ok((keys::LEARN_ALL.to_string(), None)),
        }
    }

    fn seconds(&self) -> Result<u64, ApiError> {
        let Some(raw) = self.seconds.as_deref() else {
            return Ok(DEFAULT_SECONDS);
        };
        match raw.trim().parse::<u64>() {
            Ok(s) if (1..=keys::LEARN_MAX_SECONDS).contains(&s) => Ok(s),
            _ => Err(ApiError::invalid(
                "seconds",
                format!(
                    "{raw:?} is not a whole number from 1 to {}",
                    keys::LEARN_MAX_SECONDS
                ),
            )),
        }
    }
}

/// Open a learn window for one device or for all devices.
#[utoipa::path(
    post,
    path = "/devices/learn",
    operation_id = "learn_open",
    tag = "devices",
    params(LearnQuery),
    responses(
        (status = 200, description = "The window is open", body = LearnWindow),
        (status = 400, response = crate::openapi::BadRequest),
    )
)]
pub async fn learn_open(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<LearnQuery>,
) -> Result<Json<LearnWindow>, ApiError> {
    let (key, source_id) = q.target()?;
    let seconds = q.seconds()?;
    state.store.open_window(&key, seconds).await?;
    tracing::info!(
        device = source_id.as_deref().unwrap_or("all"),
        seconds,
        "learn window opened"
    );
    Ok(Json(LearnWindow { source_id, seconds }))
}

/// Close a learn window before its time.
#[utoipa::path(
    delete,
    path = "/devices/learn",
    operation_id = "learn_close",
    tag = "devices",
    params(LearnQuery),
    responses(
        (status = 200, description = "The window is closed (or was not open)"),
        (status = 400, response = crate::openapi::BadRequest),
    )
)]
pub async fn learn_close(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<LearnQuery>,
) -> Result<(), ApiError> {
    let (key, source_id) = q.target()?;
    // `seconds` means nothing here, but a value the document forbids is still refused.
    q.seconds()?;
    state.store.close_window(&key).await?;
    tracing::info!(
        device = source_id.as_deref().unwrap_or("all"),
        "learn window closed"
    );
    Ok(())
}

/// The open learn windows.
#[utoipa::path(
    get,
    path = "/devices/learn",
    operation_id = "learn_get",
    tag = "devices",
    responses(
        (status = 200, description = "Open windows", body = Vec<LearnWindow>),
    )
)]
pub async fn learn_get(State(state): State<AppState>) -> Result<Json<Vec<LearnWindow>>, ApiError> {
    let windows = state.store.open_windows().await?;
    Ok(Json(
        windows
            .into_iter()
            .map(|(source_id, seconds)| LearnWindow { source_id, seconds })
            .collect(),
    ))
}
