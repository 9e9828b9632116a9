//! The live console (docs/console.md): one HTML page, a script and a style sheet compiled into
//! the binary, and `/console/events`, the server-sent events of what the engine publishes.
//! The page calls the API's own operations for everything else. Behind the API's Basic auth.

mod hub;

use std::convert::Infallible;
use std::sync::LazyLock;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

pub use hub::{HISTORY, MAX_CLIENTS};
use hub::{Hub, Item, StreamPos, Subscription};

use crate::error::ApiError;
use crate::store::Store;

const INDEX: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("app.js");
const STYLE: &str = include_str!("style.css");

/// A comment line this often keeps proxies from closing a quiet stream and frees the place
/// of a console that left without closing.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(5);

/// Nothing but this origin: the page cannot load or send anything elsewhere.
const CSP: &str = "default-src 'self'; img-src 'self' data:; base-uri 'none'; \
                   form-action 'self'; frame-ancestors 'none'";

/// Set once the service stops: every console's stream ends, so that the graceful shutdown
/// does not wait for connections that never end by themselves.
static CLOSING: LazyLock<watch::Sender<bool>> = LazyLock::new(|| watch::channel(false).0);

/// Ends the event streams of every console (call when the service stops).
pub fn close_all() {
    CLOSING.send_replace(true);
}

async fn closing() {
    let mut rx = CLOSING.subscribe();
    let _ = rx.wait_for(|closing| *closing).await;
}

/// The console's routes; merge them under the API's auth layer.
pub fn router(store: &Store) -> Router {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::temporary("/console/") }),
        )
        .route(
            "/console/",
            get(|| asset("text/html; charset=utf-8", INDEX)),
        )
        .route(
            "/console/app.js",
            get(|| asset("text/javascript; charset=utf-8", SCRIPT)),
        )
        .route(
            "/console/style.css",
            get(|| asset("text/css; charset=utf-8", STYLE)),
        )
        .route("/console/events", get(events))
        .with_state(Hub::new(store.redis()))
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `hello`, then the newest entries of the live stream, then each new one as it comes
/// (`live`); `lagged` with the number of entries skipped when this console fell behind.
async fn events(State(hub): State<Hub>) -> Result<Response, ApiError> {
    let Some(sub) = hub.subscribe() else {
        metrics::counter!("iotc_api_console_refused_total").increment(1);
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "TOO_MANY_CONSOLES",
            format!("{MAX_CLIENTS} consoles are connected already; close one"),
        ));
    };
    let history = hub.history().await.unwrap_or_default();
    let after = history.last().map(|i| i.id).unwrap_or_default();
    hub.ensure_reader(after);
    let hello = serde_json::json!({"maxClients": MAX_CLIENTS, "history": history.len()});
    let head = std::iter::once(Event::default().event("hello").data(hello.to_string()))
        .chain(history.into_iter().map(live_event))
        .map(Ok);
    let events = stream::iter(head)
        .chain(follow(sub, after))
        .take_until(closing());
    // nginx passes each event on at once instead of buffering the response.
    let headers = [
        (header::CACHE_CONTROL, "no-cache"),
        (HeaderName::from_static("x-accel-buffering"), "no"),
    ];
    Ok((
        headers,
        Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)),
    )
        .into_response())
}

/// The broadcast entries newer than `after` (those older were sent as history).
fn follow(sub: Subscription, after: StreamPos) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(sub, move |mut sub| async move {
        loop {
            let event = match sub.rx.recv().await {
                Ok(it) if it.id <= after => continue,
                Ok(it) => live_event(it),
                Err(RecvError::Lagged(n)) => {
                    metrics::counter!("iotc_api_console_lagged_total").increment(n);
                    Event::default().event("lagged").data(n.to_string())
                }
                Err(RecvError::Closed) => return None,
            };
            return Some((Ok(event), sub));
        }
    })
}

fn live_event(it: Item) -> Event {
    Event::default().event("live").data(&*it.json)
}
