//! TLS plumbing the services share: one crypto provider, PEM files, root stores, and the two
//! relaxed server checks IoTC users ask for (no verification, no host name check).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, aws_lc_rs};
use rustls::sign::CertifiedKey;
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

/// A client certificate chain and its private key, for mutual TLS.
///
/// The certificate's version is not judged here: mosquitto's documented recipe
/// (`openssl x509 -req` without extensions) makes an X.509 v1 certificate, which OpenSSL
/// brokers accept and webpki refuses to parse ("UnsupportedCertVersion"); the server decides.
/// The key must still belong to the certificate: the public key is read from the DER directly.
pub fn client_cert(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<CertifiedKey>, String> {
    let signing_key = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("unusable private key: {e}"))?;
    let first = chain.first().ok_or("no certificate")?;
    let cert_spki = subject_public_key_info(first).ok_or("not an X.509 certificate")?;
    // A key type whose public half the provider cannot derive is left to the handshake.
    if let Some(key_spki) = signing_key.public_key()
        && key_spki.as_ref() != cert_spki
    {
        return Err("the private key does not belong to the certificate".into());
    }
    Ok(Arc::new(CertifiedKey::new(chain, signing_key)))
}

/// One DER element and what follows it.
struct Der<'a> {
    tag: u8,
    /// Tag, length and content.
    whole: &'a [u8],
    content: &'a [u8],
    rest: &'a [u8],
}

/// Reads the DER element at the start of `input` (definite lengths up to 4 bytes).
fn der_element(input: &[u8]) -> Option<Der<'_>> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    let header = input.len() - rest.len();
    Some(Der {
        tag,
        whole: &input[..header + len],
        content: &rest[..len],
        rest: &rest[len..],
    })
}

/// The `subjectPublicKeyInfo` of a certificate, any version (RFC 5280 section 4.1).
fn subject_public_key_info(cert: &[u8]) -> Option<&[u8]> {
    const SEQUENCE: u8 = 0x30;
    const VERSION: u8 = 0xa0;
    let sequence = |input| der_element(input).filter(|e| e.tag == SEQUENCE);
    let tbs = sequence(sequence(cert)?.content)?.content;
    let first = der_element(tbs)?;
    // The version is absent in v1.
    let mut rest = if first.tag == VERSION {
        first.rest
    } else {
        tbs
    };
    // serialNumber, signature, issuer, validity, subject, then the key.
    for _ in 0..5 {
        rest = der_element(rest)?.rest;
    }
    Some(sequence(rest)?.whole)
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
    use std::process::Command;

    fn openssl(dir: &Path, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    }

    /// mosquitto's documented recipe (mosquitto-tls(7)): the `x509 -req` step without
    /// extensions makes an X.509 v1 client certificate.
    #[test]
    fn accepts_a_v1_client_certificate_and_refuses_a_foreign_key() {
        let dir = std::env::temp_dir().join(format!("iotc-tls-v1-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let subj = ["-subj", "/CN=client1"];
        openssl(
            &dir,
            &["req", "-new", "-x509", "-days", "2", "-extensions", "v3_ca"]
                .iter()
                .chain(&[
                    "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=ca",
                ])
                .copied()
                .collect::<Vec<_>>(),
        );
        for name in ["client.key", "other.key"] {
            openssl(&dir, &["genrsa", "-out", name, "2048"]);
        }
        openssl(
            &dir,
            &[
                &["req", "-out", "client.csr", "-key", "client.key", "-new"][..],
                &subj,
            ]
            .concat(),
        );
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "client.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "client.crt",
                "-days",
                "2",
            ],
        );
        let chain = read_certs(&dir.join("client.crt")).unwrap();
        // webpki itself refuses it: the reason for reading the key from the DER here.
        assert!(rustls::server::ParsedCertificate::try_from(&chain[0]).is_err());
        let ours = client_cert(chain.clone(), read_key(&dir.join("client.key")).unwrap());
        assert!(ours.is_ok(), "{:?}", ours.err());
        let foreign = client_cert(chain, read_key(&dir.join("other.key")).unwrap());
        assert_eq!(
            foreign.err().as_deref(),
            Some("the private key does not belong to the certificate")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn der_walk_refuses_garbage() {
        assert_eq!(subject_public_key_info(&[]), None);
        assert_eq!(
            subject_public_key_info(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
            None
        );
        assert_eq!(
            subject_public_key_info(&[0x30, 0x03, 0x30, 0x01, 0x02]),
            None
        );
        assert_eq!(subject_public_key_info(b"not der at all"), None);
    }

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
