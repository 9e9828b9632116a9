//! The AP WebSocket (`/aruba`, `/aruba/aos8`): binary frames are Telemetry messages; text
//! frames are not AP traffic and are only counted. Pings are answered by the WebSocket layer.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::response::Response;
use futures_util::FutureExt;

use crate::App;
use crate::register::Macs;
use crate::server::Peer;
use crate::session::{Session, Verdict, close};

/// Initial read buffer of one AP connection. AP messages are a few hundred bytes; the
/// WebSocket library's default (128 KiB, allocated at once) made 1,000 idle APs cost 128 MiB.
/// A larger message grows the buffer, up to `max_message_bytes`.
const READ_BUFFER_BYTES: usize = 4096;

pub async fn aruba_ws(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.max_message_size(app.config.max_message_bytes)
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| serve_ap(socket, app, peer))
}

/// Resolves when the AP register changed; never without a register.
async fn register_changed(register: &mut Option<tokio::sync::watch::Receiver<Macs>>) {
    let changed = match register {
        Some(rx) => rx.changed().await.is_ok(),
        None => false,
    };
    if !changed {
        std::future::pending::<()>().await;
    }
}

async fn serve_ap(mut socket: WebSocket, app: Arc<App>, peer: Peer) {
    peer.conn.became_websocket();
    let deadline = peer.conn.deadline;
    let certificate = peer.certificate.clone();
    let peer = peer.to_string();
    metrics::counter!("iotc_ingress_ws_connections_total").increment(1);
    metrics::gauge!("iotc_ingress_ws_connections").increment(1.0);
    tracing::info!(%peer, "Connected client on WS handler");
    let mut shutdown = app.shutdown.clone();
    let idle = app.config.idle_timeout;
    let mut register = app.register.as_ref().map(|r| r.watch());
    let south = app.south.clone();
    let mut south_rx: Option<tokio::sync::mpsc::Receiver<crate::south::SouthItem>> = None;
    let mut session = Session::new(app, peer.clone());
    session.set_certificate(certificate);
    let end = loop {
        let authenticated = session.authenticated();
        let next = tokio::select! {
            _ = shutdown.changed() => break Some((1001, "server shutting down")),
            _ = register_changed(&mut register) => {
                if let Some(Verdict::Close { code, reason }) = session.revoked() {
                    break Some((code, reason));
                }
                continue;
            }
            _ = tokio::time::sleep_until(deadline), if !authenticated => {
                metrics::counter!("iotc_ingress_auth_deadline_total", "phase" => "websocket").increment(1);
                tracing::warn!(%peer, "Disconnecting AP with code 1008: no authenticated message before the deadline");
                break Some((close::POLICY, "no authenticated message in time"));
            }
            Some(item) = next_south(&mut south_rx) => {
                if let Some(bytes) = session.southbound(item)
                    && socket.send(Message::Binary(bytes.into())).await.is_err()
                {
                    break None;
                }
                continue;
            }
            next = tokio::time::timeout(idle, socket.recv()) => next,
        };
        let message = match next {
            Err(_) => break Some((1000, "idle timeout")),
            Ok(None) | Ok(Some(Ok(Message::Close(_)))) => break None,
            Ok(Some(Err(e))) => {
                tracing::debug!(%peer, error = %e, "WebSocket read error");
                break None;
            }
            Ok(Some(Ok(message))) => message,
        };
        let Message::Binary(first) = message else {
            if let Message::Text(_) = message {
                metrics::counter!("iotc_ingress_text_frames_total").increment(1);
            }
            continue;
        };
        // Messages already waiting are handled with this one: one Redis round trip for all.
        let (batch, after) = waiting(&mut socket, first);
        if let Verdict::Close { code, reason } = session.on_messages(&batch).await {
            break Some((code, reason));
        }
        if let (None, Some(mac)) = (&south_rx, session.mac()) {
            south_rx = Some(south.attach(mac));
        }
        match after {
            Some(Some(Ok(Message::Text(_)))) => {
                metrics::counter!("iotc_ingress_text_frames_total").increment(1)
            }
            Some(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => break None,
            _ => {}
        }
    };
    if let Some((code, reason)) = end {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = socket.send(Message::Close(Some(frame))).await;
    }
    drop(south_rx);
    if let Some(mac) = session.mac() {
        south.detach(mac);
    }
    metrics::gauge!("iotc_ingress_ws_connections").decrement(1.0);
    tracing::info!(%peer, "Disconnecting client on WS handler");
}

/// Binary messages taken together at most (and their bytes): bounds what one connection
/// holds in memory beyond the message limit.
const BATCH_MESSAGES: usize = 64;
const BATCH_BYTES: usize = 256 * 1024;

/// What one [`WebSocket::recv`] gave.
type Received = Option<Result<Message, axum::Error>>;

/// `first` and the binary messages that already arrived after it, up to the batch bounds;
/// with the first other thing received, if any (a close, a text frame, an error).
fn waiting(socket: &mut WebSocket, first: Bytes) -> (Vec<Bytes>, Option<Received>) {
    let mut size = first.len();
    let mut batch = vec![first];
    while batch.len() < BATCH_MESSAGES && size < BATCH_BYTES {
        match socket.recv().now_or_never() {
            Some(Some(Ok(Message::Binary(bytes)))) => {
                size += bytes.len();
                batch.push(bytes);
            }
            Some(other) => return (batch, Some(other)),
            None => break,
        }
    }
    (batch, None)
}

/// The next southbound message for this connection; never before its AP is known.
async fn next_south(
    rx: &mut Option<tokio::sync::mpsc::Receiver<crate::south::SouthItem>>,
) -> Option<crate::south::SouthItem> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
