//! `/aps`: the optional register of access points, each with its own login (docs/security.md).
//! The ingress enforces it only with `IOTC_AP_REGISTER=true`; passwords are stored hashed.

use std::sync::LazyLock;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use iotc_core::aps::{self, ApRecord};
use iotc_core::keys;
use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use crate::store::StoreError;

/// Bounds of what an operator sets.
const PASSWORD_MIN: usize = 16;
const PASSWORD_MAX: usize = 128;
const USERNAME_MAX: usize = 64;
const DESCRIPTION_MAX: usize = 256;

/// A registered AP as the API shows it (never the password or its hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AccessPoint {
    #[schema(pattern = "^[a-f0-9]{12}$", example = "24f27fca1ba4")]
    pub mac: String,
    #[schema(example = "ap-lobby-1")]
    pub username: String,
    #[serde(default)]
    #[schema(example = "Lobby, ceiling")]
    pub description: String,
    /// SHA-256 of the client certificate the AP must present (ingress's own wss listener).
    #[serde(
        rename = "certificateSha256",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(pattern = "^[a-f0-9]{64}$")]
    pub certificate_sha256: Option<String>,
}

/// Registers an AP, or replaces its registration (new password, user name or description).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApRegistration {
    /// MAC address, 12 hexadecimal digits (`:` or `-` separators allowed).
    #[schema(example = "24:f2:7f:ca:1b:a4")]
    pub mac: String,
    /// User name for `/auth/aruba`; the MAC (12 lower-case hex digits) when omitted.
    #[serde(default)]
    #[schema(max_length = 64, example = "ap-lobby-1")]
    pub username: Option<String>,
    /// The AP's password for `/auth/aruba`, 16 to 128 characters. Stored only as a salted hash.
    #[schema(min_length = 16, max_length = 128, example = "Jk3x9-Qw7ZpL2mVt")]
    pub password: String,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub description: String,
    /// SHA-256 of the AP's client certificate (DER, 64 hex digits; `:` separators allowed).
    /// When set, the AP must also present this certificate on the ingress's own wss listener.
    #[serde(rename = "certificateSha256", default)]
    #[schema(example = "3f1c…")]
    pub certificate_sha256: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query, style = Form)]
pub struct ApId {
    /// MAC address of the AP, 12 hexadecimal digits.
    #[param(example = "24f27fca1ba4")]
    pub mac: String,
}

/// The MAC as stored: 12 lower-case hex digits, separators removed.
pub fn normalize_mac(raw: &str) -> Result<String, ApiError> {
    let mac: String = raw
        .chars()
        .filter(|c| *c != ':' && *c != '-')
        .collect::<String>()
        .to_ascii_lowercase();
    if mac.len() == 12 && mac.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(mac)
    } else {
        Err(ApiError::invalid(
            "mac",
            format!("{raw:?} is not a MAC address"),
        ))
    }
}

fn record(reg: ApRegistration) -> Result<ApRecord, ApiError> {
    let mac = normalize_mac(&reg.mac)?;
    let username = reg.username.unwrap_or_else(|| mac.clone());
    let printable = username.chars().all(|c| c.is_ascii_graphic());
    if username.is_empty() || username.len() > USERNAME_MAX || !printable {
        return Err(ApiError::invalid(
            "username",
            "1 to 64 printable ASCII characters",
        ));
    }
    let chars = reg.password.chars().count();
    if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&chars) {
        return Err(ApiError::invalid("password", "16 to 128 characters"));
    }
    if reg.description.chars().count() > DESCRIPTION_MAX {
        return Err(ApiError::invalid("description", "at most 256 characters"));
    }
    let certificate_sha256 = match reg.certificate_sha256 {
        Some(raw) => Some(fingerprint(&raw)?),
        None => None,
    };
    Ok(ApRecord {
        mac,
        username,
        password_hash: aps::hash_password(&reg.password),
        description: reg.description,
        certificate_sha256,
    })
}

fn fingerprint(raw: &str) -> Result<String, ApiError> {
    let fp = raw.replace(':', "").to_ascii_lowercase();
    if aps::valid_fingerprint(&fp) {
        Ok(fp)
    } else {
        Err(ApiError::invalid(
            "certificateSha256",
            "64 hexadecimal digits (SHA-256 of the DER certificate)",
        ))
    }
}

/// Checks a record restored from a backup: valid MAC, user name and hash.
pub fn check_record(r: &ApRecord) -> Result<(), ApiError> {
    if normalize_mac(&r.mac)? != r.mac {
        return Err(ApiError::invalid(
            "AccessPoints.mac",
            "12 lower-case hex digits",
        ));
    }
    if r.username.is_empty() || r.username.len() > USERNAME_MAX {
        return Err(ApiError::invalid(
            "AccessPoints.username",
            "1 to 64 characters",
        ));
    }
    if r.certificate_sha256
        .as_deref()
        .is_some_and(|f| !aps::valid_fingerprint(f))
    {
        return Err(ApiError::invalid(
            "AccessPoints.certificateSha256",
            "64 lower-case hex digits",
        ));
    }
    if !aps::valid_hash(&r.password_hash) {
        return Err(ApiError::invalid(
            "AccessPoints.passwordHash",
            "not a pbkdf2-sha256 hash",
        ));
    }
    Ok(())
}

/// KEYS: register, users, version. ARGV: mac, username, record JSON.
/// Returns the MAC that already uses the user name, or nil when stored.
const PUT: &str = r#"
local owner = redis.call('HGET', KEYS[2], ARGV[2])
if owner and owner ~= ARGV[1] then return owner end
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then redis.call('HDEL', KEYS[2], cjson.decode(old).username) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
redis.call('INCR', KEYS[3])
return false
"#;

/// KEYS: register, users, version. ARGV: mac. Returns 1 when removed.
const DELETE: &str = r#"
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return 0 end
redis.call('HDEL', KEYS[2], cjson.decode(old).username)
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('INCR', KEYS[3])
return 1
"#;

static PUT_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(PUT));
static DELETE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(DELETE));

fn register_script(script: &'static Script) -> redis::ScriptInvocation<'static> {
    let mut inv = script.prepare_invoke();
    inv.key(keys::AP_REGISTER)
        .key(keys::AP_USERS)
        .key(keys::AP_REGISTER_VERSION);
    inv
}

/// All registered APs, by MAC.
#[utoipa::path(
    get,
    path = "/aps",
    operation_id = "aps_get",
    tag = "aps",
    responses((status = 200, description = "Registered access points", body = Vec<AccessPoint>))
)]
pub async fn aps_get(State(state): State<AppState>) -> Result<Json<Vec<AccessPoint>>, ApiError> {
    Ok(Json(all(&state).await?.into_iter().map(shown).collect()))
}

fn shown(r: ApRecord) -> AccessPoint {
    AccessPoint {
        mac: r.mac,
        username: r.username,
        description: r.description,
        certificate_sha256: r.certificate_sha256,
    }
}

/// Every register record, ordered by MAC; unreadable ones are skipped.
pub async fn all(state: &AppState) -> Result<Vec<ApRecord>, StoreError> {
    let raw: Vec<(String, String)> = state.store.redis().hgetall(keys::AP_REGISTER).await?;
    let mut records: Vec<ApRecord> = raw
        .into_iter()
        .filter_map(|(_, json)| serde_json::from_str(&json).ok())
        .collect();
    records.sort_by(|a, b| a.mac.cmp(&b.mac));
    Ok(records)
}

/// Register an AP (or replace its registration) with its own user name and password.
#[utoipa::path(
    post,
    path = "/aps",
    operation_id = "aps_post",
    tag = "aps",
    request_body = ApRegistration,
    responses(
        (status = 200, description = "Registered", body = AccessPoint),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 409, description = "The user name belongs to another AP", body = crate::error::Error),
    )
)]
pub async fn aps_post(
    State(state): State<AppState>,
    ApiJson(reg): ApiJson<ApRegistration>,
) -> Result<Json<AccessPoint>, ApiError> {
    let rec = record(reg)?;
    let json = serde_json::to_string(&rec).expect("a record serialises");
    let mut inv = register_script(&PUT_SCRIPT);
    inv.arg(&rec.mac).arg(&rec.username).arg(json);
    let owner: Option<String> = inv
        .invoke_async(&mut state.store.redis())
        .await
        .map_err(StoreError::from)?;
    if let Some(owner) = owner {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "USERNAME_TAKEN",
            format!("username: already used by AP {owner}"),
        ));
    }
    tracing::info!(mac = %rec.mac, username = %rec.username, "AP registered");
    Ok(Json(shown(rec)))
}

/// Revoke an AP: it can no longer log in, and its open connections are closed (1008).
#[utoipa::path(
    delete,
    path = "/aps",
    operation_id = "aps_delete",
    tag = "aps",
    params(ApId),
    responses(
        (status = 200, description = "Revoked"),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 404, description = "No AP with this MAC", body = crate::error::Error),
    )
)]
pub async fn aps_delete(
    State(state): State<AppState>,
    ApiQuery(id): ApiQuery<ApId>,
) -> Result<StatusCode, ApiError> {
    let mac = normalize_mac(&id.mac)?;
    let mut inv = register_script(&DELETE_SCRIPT);
    inv.arg(&mac);
    let removed: i64 = inv
        .invoke_async(&mut state.store.redis())
        .await
        .map_err(StoreError::from)?;
    if removed == 0 {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "AP_NOT_FOUND",
            format!("no registered AP with MAC {mac}"),
        ));
    }
    tracing::info!(%mac, "AP revoked");
    Ok(StatusCode::OK)
}

/// Writes backup records: the register is replaced (or merged) in one transaction.
pub async fn import(
    state: &AppState,
    records: &[ApRecord],
    replace: bool,
) -> Result<(), StoreError> {
    let mut pipe = redis::pipe();
    pipe.atomic();
    if replace {
        pipe.del(keys::AP_REGISTER)
            .del(keys::AP_USERS)
            .ignore()
            .ignore();
    }
    for r in records {
        let json = serde_json::to_string(r).expect("a record serialises");
        pipe.hset(keys::AP_REGISTER, &r.mac, json)
            .ignore()
            .hset(keys::AP_USERS, &r.username, &r.mac)
            .ignore();
    }
    pipe.incr(keys::AP_REGISTER_VERSION, 1).ignore();
    pipe.query_async::<()>(&mut state.store.redis()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_normalized() {
        assert_eq!(normalize_mac("24:F2:7F:CA:1B:A4").unwrap(), "24f27fca1ba4");
        assert!(normalize_mac("24f27fca1b").is_err());
        assert!(normalize_mac("zzf27fca1ba4").is_err());
    }

    #[test]
    fn registration_is_checked_and_hashed() {
        let reg = |pw: &str, user: Option<&str>| ApRegistration {
            mac: "24f27fca1ba4".into(),
            username: user.map(str::to_string),
            password: pw.into(),
            description: String::new(),
            certificate_sha256: None,
        };
        assert!(record(reg("short", None)).is_err());
        assert!(record(reg("long enough password", Some("with space"))).is_err());
        let r = record(reg("long enough password", None)).unwrap();
        assert_eq!(r.username, "24f27fca1ba4");
        assert!(!r.password_hash.contains("long enough"));
        assert!(aps::verify_password(
            "long enough password",
            &r.password_hash
        ));
        assert!(check_record(&r).is_ok());
    }
}
