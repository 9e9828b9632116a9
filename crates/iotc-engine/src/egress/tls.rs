//! rustls client configuration for MQTTS / WSS: CA file or system roots, optional client
//! certificate, and the two relaxations IoTC users ask for (no verification, no host name check).

use std::path::PathBuf;
use std::sync::Arc;

use iotc_core::tls::{self, TlsError};
use rustls::ClientConfig;
use rustls::sign::SingleCertAndKey;

use super::EgressError;

/// What the TLS connection needs, resolved from the settings.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain and key for mutual TLS.
    pub client_auth: Option<(PathBuf, PathBuf)>,
    /// Verify the server certificate at all.
    pub verify: bool,
    /// Check that the certificate names the host.
    pub check_hostname: bool,
}

/// Builds the rustls configuration; any unreadable file is a configuration error naming it.
pub fn client_config(s: &TlsSettings) -> Result<Arc<ClientConfig>, EgressError> {
    let builder = ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| EgressError::Config(format!("TLS: {e}")))?;
    let builder = if !s.verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(tls::accept_any())
    } else {
        let roots = Arc::new(tls::root_store(s.ca_file.as_deref()).map_err(bad_file)?);
        if roots.is_empty() {
            return Err(EgressError::Config(
                "TLS: no CA certificate (set MQTT_CA_FILE or install system CA certificates)"
                    .into(),
            ));
        }
        if s.check_hostname {
            builder.with_root_certificates(roots)
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(tls::any_host_name(roots).map_err(bad_file)?)
        }
    };
    let config = match &s.client_auth {
        Some((cert, key)) => {
            let chain = tls::read_certs(cert).map_err(bad_file)?;
            let key = tls::read_key(key).map_err(bad_file)?;
            // Not `with_client_auth_cert`: it refuses X.509 v1 certificates, which brokers take.
            let certified = tls::client_cert(chain, key).map_err(|e| {
                EgressError::Config(format!("TLS client certificate {}: {e}", cert.display()))
            })?;
            builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified)))
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// A file that cannot be used: the message names it.
fn bad_file(e: TlsError) -> EgressError {
    EgressError::Config(e.to_string())
}
