//! `/backup`: dump the device registry, restore it (replace) or merge into it.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use iotc_core::aps::ApRecord;
use iotc_core::model::EnOceanSensor;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::openapi::API_VERSION;
use crate::restore::{BackupImport, SensorImport};
use crate::time;
use crate::validate::{self, shown};

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
    ApiJson(backup): ApiJson<BackupImport>,
) -> Result<StatusCode, ApiError> {
    import(&state, backup, true).await
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
    ApiJson(backup): ApiJson<BackupImport>,
) -> Result<StatusCode, ApiError> {
    import(&state, backup, false).await
}

async fn import(
    state: &AppState,
    backup: BackupImport,
    replace: bool,
) -> Result<StatusCode, ApiError> {
    let aps = backup.access_points.clone();
    for ap in aps.iter().flatten() {
        crate::aps::check_record(ap)?;
    }
    let devices = checked(backup, state.only_secure)?;
    state.store.import(&devices, replace).await?;
    if let Some(aps) = aps {
        crate::aps::import(state, &aps, replace).await?;
    }
    tracing::info!(devices = devices.len(), replace, "backup imported");
    Ok(StatusCode::OK)
}

/// Validates the whole backup before anything is written, so an import applies fully or not at all.
pub fn checked(backup: BackupImport, only_secure: bool) -> Result<Vec<EnOceanSensor>, ApiError> {
    check_api_version(&backup.api_version)?;
    backup.report_unknown_fields();
    if let Some(app) = &backup.app_version
        && parse_version(app).is_none()
    {
        return Err(ApiError::invalid(
            "APPVersion",
            format!("{} is not a version like 1.3.0", shown(app)),
        ));
    }
    if !time::is_date_time(&backup.export_date) {
        return Err(ApiError::invalid(
            "ExportDate",
            format!(
                "{} is not a date-time like 2026-05-18T09:25:33Z",
                shown(&backup.export_date)
            ),
        ));
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let connections = backup.connections.unwrap_or_default();
    let mut devices = Vec::with_capacity(connections.len());
    for (i, dev) in connections.into_iter().enumerate() {
        let at = format!("Connections[{i}].");
        let dev = validate::sensor(SensorImport::into_sensor(dev), only_secure, &at)?;
        let field = iotc_core::keys::device_field(&dev.source_eurid, dev.destination());
        if let Some(first) = seen.insert(field.clone(), i) {
            return Err(ApiError::bad_request(
                "DUPLICATE_DEVICE",
                format!("Connections[{first}] and Connections[{i}] both name device {field}"),
            ));
        }
        devices.push(dev);
    }
    Ok(devices)
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

fn check_api_version(v: &str) -> Result<(), ApiError> {
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

    fn backup(json: serde_json::Value) -> BackupImport {
        serde_json::from_value(json).unwrap()
    }

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

    #[test]
    fn rejects_duplicates_and_names_the_bad_entry() {
        let dev = serde_json::json!({"eep":"A5-04-05","friendlyID":"a","sourceEurid":"a1b2c3d4"});
        let b = backup(
            serde_json::json!({"APIVersion":"1.3.0","ExportDate":"2026-01-01T00:00:00Z",
            "Connections":[dev, {"eep":"A5-04-05","friendlyID":"b","sourceEurid":"A1B2C3D4"}]}),
        );
        assert_eq!(checked(b, false).unwrap_err().code, "DUPLICATE_DEVICE");

        let b = backup(
            serde_json::json!({"APIVersion":"1.3.0","ExportDate":"2026-01-01T00:00:00Z",
            "Connections":[{"eep":"A5-04","friendlyID":"b","sourceEurid":"a1b2c3d4"}]}),
        );
        let err = checked(b, false).unwrap_err();
        assert!(err.message.starts_with("Connections[0].eep"), "{err:?}");

        let b = backup(serde_json::json!({"APIVersion":"1.3.0","ExportDate":"yesterday"}));
        assert!(
            checked(b, false)
                .unwrap_err()
                .message
                .starts_with("ExportDate")
        );
    }
}
