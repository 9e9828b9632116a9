//! `/backup`: dump the device registry, restore it (replace) or merge into it.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use iotc_core::aps::ApRecord;
use iotc_core::model::EnOceanSensor;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::error::ApiError;
use crate::openapi::API_VERSION;
use crate::restore::BackupImport;
use crate::restore_stream;
use crate::time;
use crate::validate::shown;

/// A dump of all onboarded devices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Backup {
    /// Version of the API that wrote the dump; this API reads 1.x.y.
    #[serde(rename = "APIVersion")]
    #[schema(
        pattern = r"^([0-9]{1,4})\.([0-9]{1,4})\.([0-9]{1,4})$",
        example = "1.3.0"
    )]
    pub api_version: String,
    /// Version of the application that wrote the dump.
    #[serde(
        rename = "APPVersion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(
        pattern = r"^([0-9]{1,4})\.([0-9]{1,4})\.([0-9]{1,4})$",
        example = "0.1.0"
    )]
    pub app_version: Option<String>,
    /// When the dump was written (UTC).
    #[serde(rename = "ExportDate")]
    #[schema(format = DateTime, example = "2026-05-18T09:25:33Z")]
    pub export_date: String,
    #[serde(rename = "Connections", default)]
    pub connections: Vec<EnOceanSensor>,
    /// The AP register (password hashes only). When absent (e.g. an IoTC dump), an import
    /// leaves the register as it is.
    #[serde(
        rename = "AccessPoints",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub access_points: Option<Vec<ApRecord>>,
}

/// Dump all devices.
#[utoipa::path(
    get,
    path = "/backup",
    operation_id = "backup_get",
    tag = "backup",
    responses((status = 200, description = "Dump", body = Backup))
)]
pub async fn backup_get(State(state): State<AppState>) -> Result<Json<Backup>, ApiError> {
    let connections = state.store.devices().await?;
    let access_points = crate::aps::all(&state).await?;
    Ok(Json(Backup {
        access_points: (!access_points.is_empty()).then_some(access_points),
        api_version: API_VERSION.to_string(),
        app_version: Some(env!("CARGO_PKG_VERSION").to_string()),
        export_date: time::rfc3339(iotc_core::ops::unix_seconds()),
        connections,
    }))
}

/// Import a previously executed backup dump: the stored devices are replaced by it.
#[utoipa::path(
    post,
    path = "/backup",
    operation_id = "backup_post",
    tag = "backup",
    request_body = BackupImport,
    responses(
        (status = 200, description = "Import a previously executed backup dump. Existing storage will be replaced with sent payload."),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 413, response = crate::openapi::PayloadTooLarge),
    )
)]
pub async fn backup_post(
    State(state): State<AppState>,
    req: Request,
) -> Result<StatusCode, ApiError> {
    restore_stream::restore(&state, req, true).await
}

/// Import a previously executed backup dump: its devices are added to (or replace) the stored ones.
#[utoipa::path(
    patch,
    path = "/backup",
    operation_id = "backup_patch",
    tag = "backup",
    request_body = BackupImport,
    responses(
        (status = 200, description = "Import a previously executed backup dump. Existing storage will be updated with sent payload."),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 413, response = crate::openapi::PayloadTooLarge),
    )
)]
pub async fn backup_patch(
    State(state): State<AppState>,
    req: Request,
) -> Result<StatusCode, ApiError> {
    restore_stream::restore(&state, req, false).await
}

pub(crate) fn check_app_version(app: &str) -> Result<(), ApiError> {
    if parse_version(app).is_none() {
        return Err(ApiError::invalid(
            "APPVersion",
            format!("{} is not a version like 1.3.0", shown(app)),
        ));
    }
    Ok(())
}

pub(crate) fn check_export_date(date: &str) -> Result<(), ApiError> {
    if !time::is_date_time(date) {
        return Err(ApiError::invalid(
            "ExportDate",
            format!(
                "{} is not a date-time like 2026-05-18T09:25:33Z",
                shown(date)
            ),
        ));
    }
    Ok(())
}

fn parse_version(v: &str) -> Option<[u16; 3]> {
    let parts: Vec<&str> = v.split('.').collect();
    let [a, b, c] = parts.as_slice() else {
        return None;
    };
    let num = |p: &str| {
        (!p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse().ok())
            .flatten()
    };
    Some([num(a)?, num(b)?, num(c)?])
}

pub(crate) fn check_api_version(v: &str) -> Result<(), ApiError> {
    let ours = parse_version(API_VERSION).expect("valid API_VERSION");
    match parse_version(v) {
        None => Err(ApiError::invalid(
            "APIVersion",
            format!("{} is not a version like {API_VERSION}", shown(v)),
        )),
        Some(theirs) if theirs[0] != ours[0] => Err(ApiError::bad_request(
            "UNSUPPORTED_API_VERSION",
            format!(
                "APIVersion {v} is not supported: this API ({API_VERSION}) reads backups of API version {}.x.y",
                ours[0]
            ),
        )),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version("1.3.0"), Some([1, 3, 0]));
        assert_eq!(parse_version("1x3x0"), None);
        assert_eq!(parse_version("1.3"), None);
        assert_eq!(parse_version("12345.0.0"), None);
        assert!(check_api_version("1.2.0").is_ok());
        assert_eq!(
            check_api_version("2.0.0").unwrap_err().code,
            "UNSUPPORTED_API_VERSION"
        );
        assert_eq!(check_api_version("one").unwrap_err().code, "INVALID_FIELD");
    }
}
