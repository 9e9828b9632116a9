//! The ingress's own TLS (wss and https) for deployments without nginx in front.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use iotc_core::tls;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::ConfigError;
use crate::gate::{Gate, Gated};

/// Reads the PEM certificate chain and key; errors name the variable at fault. With
/// `client_certs`, clients may present a certificate (the AP register pins it by fingerprint).
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_certs: bool,
) -> Result<Arc<ServerConfig>, ConfigError> {
    let fail = |variable: &'static str, message: String| ConfigError { variable, message };
    let chain = tls::read_certs(cert).map_err(|e| fail("IOTC_INGRESS_TLS_CERT", e.to_string()))?;
    let key = tls::read_key(key).map_err(|e| fail("IOTC_INGRESS_TLS_KEY", e.to_string()))?;
    let builder = ServerConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| fail("IOTC_INGRESS_TLS_CERT", e.to_string()))?;
    let builder = if client_certs {
        builder.with_client_cert_verifier(Arc::new(PinnedClientCerts::new()))
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        fail(
            "IOTC_INGRESS_TLS_KEY",
            format!("does not match the certificate: {e}"),
        )
    })?;
    // APs speak HTTP/1.1 for the WebSocket upgrade.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Asks clients for a certificate without requiring one, and accepts any certificate whose
/// handshake signature is valid: APs carry self-signed certificates, which the AP register pins
/// by SHA-256 fingerprint (checked per connection, see `session`).
#[derive(Debug)]
struct PinnedClientCerts {
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl PinnedClientCerts {
    fn new() -> Self {
        PinnedClientCerts {
            algorithms: tls::provider().signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for PinnedClientCerts {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// SHA-256 (hex) of the client certificate a TLS connection presented.
pub fn client_fingerprint<S>(stream: &TlsStream<S>) -> Option<String> {
    let cert = stream.get_ref().1.peer_certificates()?.first()?;
    Some(hex::encode(Sha256::digest(cert.as_ref())))
}

/// A listener handing out connections whose TLS handshake has completed. Handshakes run in
/// their own tasks so that a slow or silent client cannot hold up the others.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<Gated<TcpStream>>, SocketAddr)>,
    local: SocketAddr,
}

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl TlsListener {
    /// Connections pass `gate` (limit and deadline) before their handshake starts.
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>, gate: Gate) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = gate.accept(&tcp).await;
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => {
                            metrics::counter!("iotc_ingress_tls_handshake_failures_total")
                                .increment(1);
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        }
                        Err(_) => {
                            metrics::counter!("iotc_ingress_tls_handshake_failures_total")
                                .increment(1);
                        }
                    }
                });
            }
        });
        Ok(TlsListener { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<Gated<TcpStream>>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accept task never ends by itself; if it did, stop accepting quietly.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
