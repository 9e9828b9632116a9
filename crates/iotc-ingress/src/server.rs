//! Routes and listeners: everything on one port, plain or with the ingress's own TLS.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::connect_info::Connected;
use axum::routing::{any, post};
use axum::serve::IncomingStream;
use tokio::net::TcpListener;

use crate::App;
use crate::auth::auth_aruba;
use crate::gate::{ConnState, Gate, GatedListener};
use crate::tls::TlsListener;
use crate::ws::aruba_ws;

/// The client's address, for logs (behind nginx: nginx's address), its connection's
/// admission state, and the SHA-256 of the client certificate it presented on the
/// ingress's own TLS listener.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    pub conn: Arc<ConnState>,
    pub certificate: Option<String>,
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.addr.fmt(f)
    }
}

impl Connected<IncomingStream<'_, GatedListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, GatedListener>) -> Self {
        Peer {
            addr: *stream.remote_addr(),
            conn: stream.io().state(),
            certificate: None,
        }
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        Peer {
            addr: *stream.remote_addr(),
            conn: stream.io().get_ref().0.state(),
            certificate: crate::tls::client_fingerprint(stream.io()),
        }
    }
}

pub fn router(app: Arc<App>) -> Router {
    let store = app.store.clone();
    let ready: iotc_core::ops::ReadyCheck = Arc::new(move || {
        let store = store.clone();
        Box::pin(async move { store.ping().await.map_err(|e| format!("redis: {e}")) })
    });
    Router::new()
        .route("/auth/aruba", post(auth_aruba))
        .route("/auth/aruba/", post(auth_aruba))
        .route("/aruba", any(aruba_ws))
        .route("/aruba/", any(aruba_ws))
        .route("/aruba/aos8", any(aruba_ws))
        .with_state(app)
        .merge(iotc_core::ops::ops_router(ready))
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    app: Arc<App>,
    tcp: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = app.config.limits;
    let gate = Gate::new(limits.max_connections, limits.auth_deadline);
    let service = router(app).into_make_service_with_connect_info::<Peer>();
    match tls {
        Some(config) => {
            let listener = TlsListener::new(tcp, config, gate)?;
            axum::serve(listener, service)
                .with_graceful_shutdown(shutdown)
                .await
        }
        None => {
            axum::serve(GatedListener::new(tcp, gate), service)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}
