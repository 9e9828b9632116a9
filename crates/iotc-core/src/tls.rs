//! TLS plumbing the services share: one crypto provider, PEM files, root stores, and the two
//! relaxed server checks IoTC users ask for (no verification, no host name check).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, aws_lc_rs};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

/// A TLS file or setting that cannot be used; the message names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("certificate file {}: {reason}", path.display())]
    Certificate { path: PathBuf, reason: String },
    #[error("key file {}: {reason}", path.display())]
    Key { path: PathBuf, reason: String },
    #[error("CA file {}: {reason}", path.display())]
    Ca { path: PathBuf, reason: String },
    #[error("TLS: {0}")]
    Rustls(String),
}

/// The one crypto provider every TLS configuration is built with, so that all sides agree.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(aws_lc_rs::default_provider())
}

/// Makes [`provider`] the process default, for libraries that build their own configuration.
/// Later calls are no-ops, so every entry point may call it.
pub fn install_default_provider() {
    let _ = aws_lc_rs::default_provider().install_default();
}

/// Every certificate in a PEM file; a file without one is an error, not an empty chain.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |reason: String| TlsError::Certificate {
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// The first private key (PKCS#1, PKCS#8 or SEC1) in a PEM file.
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Key {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Roots from a CA file, or the system's CA certificates when none is given. The system store
/// may come back empty; the caller decides how to say so.
pub fn root_store(ca_file: Option<&Path>) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for cert in read_certs(path)? {
                store.add(cert).map_err(|e| TlsError::Ca {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })?;
            }
        }
        // A system store often holds a few certificates rustls cannot use; skip those.
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = store.add(cert);
            }
        }
    }
    Ok(store)
}

/// Accepts any server certificate: encryption without authenticating the server, for a lab with
/// a throw-away certificate (`--insecure`, `MQTT_USE_TLS_VERIFY=false`).
pub fn accept_any() -> Arc<dyn ServerCertVerifier> {
    Arc::new(RelaxedVerifier {
        algorithms: provider().signature_verification_algorithms,
        chain: None,
    })
}

/// Checks the chain against `roots` but accepts a certificate issued for another host name.
pub fn any_host_name(roots: Arc<RootCertStore>) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
    let provider = provider();
    let chain = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    Ok(Arc::new(RelaxedVerifier {
        algorithms: provider.signature_verification_algorithms,
        chain: Some(chain),
    }))
}

/// Handshake signatures are always checked; `chain` decides what happens to the certificate.
#[derive(Debug)]
struct RelaxedVerifier {
    algorithms: WebPkiSupportedAlgorithms,
    /// `None`: accept any certificate; `Some`: the chain must verify, the name may differ.
    chain: Option<Arc<WebPkiServerVerifier>>,
}

impl ServerCertVerifier for RelaxedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_empty_files_name_the_file() {
        let err = read_certs(Path::new("/no/such/cert.pem")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("certificate file /no/such/cert.pem: "),
            "{err}"
        );
        let err = read_key(Path::new("/no/such/key.pem")).unwrap_err();
        assert!(
            err.to_string().starts_with("key file /no/such/key.pem: "),
            "{err}"
        );

        let dir = std::env::temp_dir().join(format!("iotc-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = read_certs(&empty).unwrap_err();
        assert!(
            err.to_string().ends_with("no PEM certificate in it"),
            "{err}"
        );
        assert!(root_store(Some(&empty)).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
