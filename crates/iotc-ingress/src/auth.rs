//! `POST /auth/aruba`: the AP trades its user name and password for an access token
//! (Aruba's OAuth2-style pre-authentication). Answers as IoTC does: JSON only.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::App;

/// The request body; Aruba sends `grant_type`, `username`, `password`, `client_id` and `scope`
/// (or `client_id` and `client_secret` for client credentials).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AuthRequest {
    grant_type: Option<String>,
    username: Option<String>,
    password: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct AuthResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
}

/// Why authentication failed: an HTTP status, an OAuth2 error code and a message.
struct Refusal {
    status: StatusCode,
    error: &'static str,
    description: &'static str,
    metric: &'static str,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = json!({"error": self.error, "error_description": self.description});
        (self.status, Json(body)).into_response()
    }
}

const NOT_JSON: Refusal = Refusal {
    status: StatusCode::BAD_REQUEST,
    error: "invalid_request",
    description: "Failed to authenticate AP. Payload is not JSON.",
    metric: "not_json",
};
const INVALID: Refusal = Refusal {
    status: StatusCode::BAD_REQUEST,
    error: "invalid_request",
    description: "Validation Error. Could not authenticate AP: the body needs grant_type, username and password.",
    metric: "invalid_request",
};
const UNSUPPORTED_GRANT: Refusal = Refusal {
    status: StatusCode::BAD_REQUEST,
    error: "unsupported_grant_type",
    description: "Only the grant types password and client_credentials are supported.",
    metric: "unsupported_grant",
};
const WRONG_CREDENTIALS: Refusal = Refusal {
    status: StatusCode::UNAUTHORIZED,
    error: "invalid_client",
    description: "Incorrect credentials.",
    metric: "wrong_credentials",
};
const NO_LOGIN: Refusal = Refusal {
    status: StatusCode::UNAUTHORIZED,
    error: "invalid_client",
    description: "Password authentication is not configured; use the static access token.",
    metric: "not_configured",
};
const NOT_REGISTERED: Refusal = Refusal {
    status: StatusCode::UNAUTHORIZED,
    error: "invalid_client",
    description: "Incorrect credentials.",
    metric: "not_registered",
};
const UNAVAILABLE: Refusal = Refusal {
    status: StatusCode::SERVICE_UNAVAILABLE,
    error: "temporarily_unavailable",
    description: "The token store (Redis) is not reachable; try again.",
    metric: "unavailable",
};

pub async fn auth_aruba(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<crate::server::Peer>,
    body: Bytes,
) -> Response {
    let result = authenticate(&app, &body).await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(r) => r.metric,
    };
    metrics::counter!("iotc_ingress_auth_requests_total", "result" => outcome).increment(1);
    match result {
        Ok(answer) => {
            tracing::info!(%peer, "AP authentication request accepted");
            Json(answer).into_response()
        }
        Err(refusal) => {
            tracing::warn!(%peer, reason = refusal.description, "AP authentication request refused");
            refusal.into_response()
        }
    }
}

async fn authenticate(app: &App, body: &[u8]) -> Result<AuthResponse, Refusal> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| NOT_JSON)?;
    let request: AuthRequest = serde_json::from_value(value).map_err(|_| INVALID)?;
    let (user, secret) = match request.grant_type.as_deref().unwrap_or("password") {
        "password" => (request.username, request.password),
        "client_credentials" => (request.client_id.clone(), request.client_secret),
        _ => return Err(UNSUPPORTED_GRANT),
    };
    let (Some(user), Some(secret)) = (user, secret) else {
        return Err(INVALID);
    };
    if let Some(register) = &app.register {
        return register_login(app, register, &user, &secret).await;
    }
    let Some((want_user, want_secret)) = &app.config.credentials.login else {
        return Err(NO_LOGIN);
    };
    let user_ok = want_user.as_bytes().ct_eq(user.as_bytes());
    let secret_ok = want_secret.as_bytes().ct_eq(secret.as_bytes());
    if !bool::from(user_ok & secret_ok) {
        return Err(WRONG_CREDENTIALS);
    }
    let client = request.client_id.unwrap_or_default();
    let access_token = app.tokens.issue(&client).await.map_err(store_down)?;
    Ok(answer(app, access_token))
}

fn store_down(e: redis::RedisError) -> Refusal {
    tracing::error!(error = %e, "cannot reach Redis for an AP login");
    UNAVAILABLE
}

/// With the AP register on: the AP's own login, and a token bound to its MAC.
async fn register_login(
    app: &App,
    register: &crate::register::Register,
    user: &str,
    secret: &str,
) -> Result<AuthResponse, Refusal> {
    let Some(mac) = register.login(user, secret).await.map_err(store_down)? else {
        return Err(NOT_REGISTERED);
    };
    let access_token = app.tokens.issue_for_ap(&mac).await.map_err(store_down)?;
    tracing::info!(%mac, "registered AP logged in");
    Ok(answer(app, access_token))
}

fn answer(app: &App, access_token: String) -> AuthResponse {
    AuthResponse {
        access_token,
        token_type: "bearer",
        expires_in: app.tokens.lifetime().as_secs(),
        api_url: app.config.api_url.clone(),
    }
}
