//! Assembles the service: the operations under `/api.beta/v1`, the OpenAPI document, Swagger UI,
//! Basic auth, and the unauthenticated `/healthz`, `/readyz` and `/metrics`.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::auth::{self, Credentials};
use crate::error::ApiError;
use crate::openapi::{self, ApiDoc, BASE_PATH};
use crate::store::Store;
use crate::{
    aps, availability, backup, command, console, device_data, devices, gateways, learn, queue,
    system, teach, unknown,
};

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// `ONLY_SECURE_DEVICES`: accept only devices with `AESKey` and `slf`.
    pub only_secure: bool,
    /// A gateway not heard for this long is `offline` in `/system/health`.
    pub gateway_timeout_secs: u64,
    /// Largest `POST`/`PATCH /backup` body in bytes (streamed, so not held in memory).
    pub max_backup_bytes: usize,
}

/// The settings of the HTTP surface.
pub struct HttpSettings {
    pub credentials: Credentials,
    pub max_body_bytes: usize,
}

/// The 20 operations, with paths relative to [`BASE_PATH`].
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(
            backup::backup_get,
            backup::backup_post,
            backup::backup_patch
        ))
        .routes(routes!(
            devices::device_get,
            devices::device_put,
            devices::device_post,
            devices::device_delete
        ))
        .routes(routes!(
            learn::learn_get,
            learn::learn_open,
            learn::learn_close
        ))
        .routes(routes!(
            availability::availability_get,
            availability::availability_put,
            availability::availability_delete
        ))
        .routes(routes!(command::command_post))
        .routes(routes!(unknown::unknown_get))
        .routes(routes!(teach::teach_in_post))
        .routes(routes!(queue::queue_get, queue::queue_delete))
        .routes(routes!(device_data::device_stats))
        .routes(routes!(device_data::device_recent_telemetry))
        .routes(routes!(device_data::device_recent_signals))
        .routes(routes!(gateways::gateway_get))
        .routes(routes!(gateways::gateway_stats))
        .routes(routes!(gateways::gateway_health))
        .routes(routes!(system::system_health_get))
        .routes(routes!(aps::aps_get, aps::aps_post, aps::aps_delete))
}

/// The whole service.
pub fn app(state: AppState, http: HttpSettings) -> Router {
    let (api, doc) = api_routes().split_for_parts();
    let doc = openapi::finish(doc);
    let ui = SwaggerUi::new(format!("{BASE_PATH}/ui"))
        .url(format!("{BASE_PATH}/openapi.json"), doc)
        .config(
            Config::default()
                .validator_url("none")
                .display_operation_id(true)
                .try_it_out_enabled(true),
        );
    // Built once: the 3.0 copy for tools that do not read 3.1.
    let v30 = openapi::document_v30_json();
    let protected = Router::new()
        .nest(BASE_PATH, api.with_state(state.clone()))
        .merge(ui)
        .route(
            &format!("{BASE_PATH}/openapi-3.0.json"),
            get(move || {
                let v30 = v30.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], v30) }
            }),
        )
        .route(
            "/",
            get(|| async { Redirect::temporary(&format!("{BASE_PATH}/ui/")) }),
        )
        .merge(console::router(&state.store))
        .route_layer(middleware::from_fn_with_state(
            http.credentials,
            auth::require,
        ));
    let store = state.store.clone();
    let ready: iotc_core::ops::ReadyCheck = Arc::new(move || {
        let store = store.clone();
        Box::pin(async move { store.ping().await.map_err(|e| format!("redis: {e}")) })
    });
    iotc_core::ops::ops_router(ready)
        .merge(protected)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(http.max_body_bytes))
        .layer(middleware::from_fn(count_requests))
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such path")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "this path does not support the method",
    )
}

/// Counts requests by route and status, and their duration.
async fn count_requests(req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let start = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("iotc_api_requests_total", "method" => method.clone(), "path" => path.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("iotc_api_request_seconds", "method" => method, "path" => path)
        .record(start.elapsed().as_secs_f64());
    response.into_response()
}
