//! TLS for wss and https: the system's web roots, a given test CA, or no verification.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use iotc_core::tls;
use rustls::pki_types::CertificateDer;
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
        let builder = rustls::ClientConfig::builder_with_provider(tls::provider())
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
                .with_custom_certificate_verifier(tls::accept_any())
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
