//! TLS for wss and https: the system's web roots, a given test CA, or no verification.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;

/// How server certificates are checked.
#[derive(Clone)]
pub enum Trust {
    /// Public web roots.
    Default,
    /// Only this CA (PEM bytes).
    Ca(Vec<u8>),
    /// Anything: for a lab with a throw-away certificate.
    Insecure,
}

impl Trust {
    pub fn from_args(ca_file: Option<&Path>, insecure: bool) -> anyhow::Result<Trust> {
        Ok(match (ca_file, insecure) {
            (_, true) => Trust::Insecure,
            (Some(path), false) => Trust::Ca(
                std::fs::read(path).with_context(|| format!("--ca-file {}", path.display()))?,
            ),
            (None, false) => Trust::Default,
        })
    }

    /// The WebSocket connector (`None`: tungstenite's default with web roots).
    pub fn ws_connector(&self) -> anyhow::Result<Option<tokio_tungstenite::Connector>> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let config = match self {
            Trust::Default => return Ok(None),
            Trust::Ca(pem) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(pem) {
                    roots.add(cert.context("--ca-file: not a PEM certificate")?)?;
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            Trust::Insecure => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
                .with_no_client_auth(),
        };
        Ok(Some(tokio_tungstenite::Connector::Rustls(Arc::new(config))))
    }

    /// An HTTP client for /auth/aruba and the API.
    pub fn http_client(&self) -> anyhow::Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder().timeout(std::time::Duration::from_secs(15));
        match self {
            Trust::Default => {}
            Trust::Ca(pem) => {
                for cert in reqwest::Certificate::from_pem_bundle(pem).context("--ca-file")? {
                    builder = builder.add_root_certificate(cert);
                }
            }
            Trust::Insecure => builder = builder.danger_accept_invalid_certs(true),
        }
        Ok(builder.build()?)
    }
}

/// Accepts every certificate (signatures are still checked for form).
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
