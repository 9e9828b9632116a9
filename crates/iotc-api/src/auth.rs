//! HTTP Basic authentication (IoTC's `BASIC_AUTH_USERNAME` / `BASIC_AUTH_PASSWORD`).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// The accepted `user:password`, kept only as a SHA-256 digest so that comparing takes the
/// same time whatever is sent (including its length).
#[derive(Clone)]
pub struct Credentials {
    digest: Arc<[u8; 32]>,
}

impl Credentials {
    pub fn new(username: &str, password: &str) -> Self {
        Credentials {
            digest: Arc::new(digest(format!("{username}:{password}").as_bytes())),
        }
    }

    /// Whether the request's `Authorization: Basic ...` header carries the credentials.
    pub fn accepts(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return false;
        };
        let Some(encoded) = value.to_str().ok().and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        }) else {
            return false;
        };
        let Ok(decoded) = STANDARD.decode(encoded.trim()) else {
            return false;
        };
        digest(&decoded).ct_eq(&*self.digest).into()
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Middleware: 401 with a `WWW-Authenticate` challenge unless the credentials match.
pub async fn require(State(credentials): State<Credentials>, req: Request, next: Next) -> Response {
    if credentials.accepts(req.headers()) {
        next.run(req).await
    } else {
        metrics::counter!("iotc_api_auth_failures_total").increment(1);
        ApiError::unauthorized().into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn checks_basic_credentials() {
        let c = Credentials::new("admin", "s3cret");
        let good = format!("Basic {}", STANDARD.encode("admin:s3cret"));
        assert!(c.accepts(&headers(&good)));
        assert!(!c.accepts(&headers(&format!(
            "Basic {}",
            STANDARD.encode("admin:s3cre")
        ))));
        assert!(!c.accepts(&headers(&format!(
            "Basic {}",
            STANDARD.encode("admin:s3cret ")
        ))));
        assert!(!c.accepts(&headers("Basic !!!")));
        assert!(!c.accepts(&headers(&format!(
            "Bearer {}",
            STANDARD.encode("admin:s3cret")
        ))));
        assert!(!c.accepts(&HeaderMap::new()));
    }
}
