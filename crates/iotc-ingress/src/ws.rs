//! The AP WebSocket (`/aruba`, `/aruba/aos8`): binary frames are Telemetry messages; text
//! frames are not AP traffic and are only counted. Pings are answered by the WebSocket layer.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::response::Response;

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
        match message {
            Message::Binary(bytes) => {
                if let Verdict::Close { code, reason } = session.on_binary(&bytes).await {
                    break Some((code, reason));
                }
                if let (None, Some(mac)) = (&south_rx, session.mac()) {
                    south_rx = Some(south.attach(mac));
                }
            }
            Message::Text(_) => metrics::counter!("iotc_ingress_text_frames_total").increment(1),
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

/// The next southbound message for this connection; never before its AP is known.
async fn next_south(
    rx: &mut Option<tokio::sync::mpsc::Receiver<crate::south::SouthItem>>,
) -> Option<crate::south::SouthItem> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
