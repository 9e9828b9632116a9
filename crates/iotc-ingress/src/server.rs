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
use crate::tls::TlsListener;
use crate::ws::aruba_ws;

/// The client's address, for logs (behind nginx: nginx's address), and the SHA-256 of the
/// client certificate it presented on the ingress's own TLS listener.
#[derive(Debug, Clone)]
pub struct Peer(pub SocketAddr, pub Option<String>);

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Connected<IncomingStream<'_, TcpListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        Peer(*stream.remote_addr(), None)
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        Peer(
            *stream.remote_addr(),
            crate::tls::client_fingerprint(stream.io()),
        )
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
    let service = router(app).into_make_service_with_connect_info::<Peer>();
    match tls {
        Some(config) => {
            let listener = TlsListener::new(tcp, config)?;
            axum::serve(listener, service)
                .with_graceful_shutdown(shutdown)
                .await
        }
        None => {
            axum::serve(tcp, service)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}
