//! The AP register with a pinned client certificate, on the ingress's own wss listener: the
//! registered AP presenting its certificate gets through; the same login and token without the
//! certificate, or with another one, are refused with 1008 and counted.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use iotc_e2e::{
    API_PASSWORD, API_USER, Proc, Redis, ap, bin, free_port, radio, spawn_api, temp_dir, wait_port,
};
use redis::AsyncCommands;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const AP: [u8; 6] = [0x02, 0x1a, 0x1e, 0x00, 0x00, 0xc3];
const PASSWORD: &str = "a-long-password-for-ap-c";

type Cert = rcgen::CertifiedKey<rcgen::KeyPair>;

fn client_config(server: &Cert, client: Option<&Cert>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server.cert.der().clone()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(iotc_core::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some(c) => {
            let key =
                rustls::pki_types::PrivateKeyDer::try_from(c.signing_key.serialize_der()).unwrap();
            builder
                .with_client_auth_cert(vec![c.cert.der().clone()], key)
                .unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

async fn socket(port: u16, config: Arc<rustls::ClientConfig>) -> ap::Socket {
    let url = format!("wss://localhost:{port}/aruba");
    let connector = tokio_tungstenite::Connector::Rustls(config);
    tokio_tungstenite::connect_async_tls_with_config(url, None, false, Some(connector))
        .await
        .expect("wss connection")
        .0
}

fn telegram(n: u8) -> Vec<u8> {
    radio::frame(&radio::telegram(
        0xA5,
        vec![n, 0, 0x80, 0x08],
        0x0190_c0c0,
        0,
        -60,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_certificate_is_required() {
    let dir = temp_dir();
    let redis = Redis::start(dir.path());
    let server = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let ap_cert = rcgen::generate_simple_self_signed(vec!["ap-c".into()]).unwrap();
    let other_cert = rcgen::generate_simple_self_signed(vec!["intruder".into()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, server.cert.pem()).unwrap();
    std::fs::write(&key_path, server.signing_key.serialize_pem()).unwrap();

    let port = free_port();
    let mut cmd = Command::new(bin("iotc-ingress"));
    cmd.env("REDIS_URL", redis.url())
        .env("IOTC_INGRESS_PORT", port.to_string())
        .env("IOTC_INGRESS_BIND", "127.0.0.1")
        .env("IOTC_AP_REGISTER", "true")
        .env("IOTC_INGRESS_TLS_CERT", &cert_path)
        .env("IOTC_INGRESS_TLS_KEY", &key_path);
    let mut ingress = Proc::spawn("iotc-ingress", cmd, dir.path());
    wait_port(port, &mut ingress);
    let (_api, api_port) = spawn_api(dir.path(), &redis, &[]);

    // Register the AP with its certificate's fingerprint.
    let fingerprint = hex::encode(Sha256::digest(ap_cert.cert.der()));
    let res = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{api_port}/api.beta/v1/aps"))
        .basic_auth(API_USER, Some(API_PASSWORD))
        .json(
            &json!({"mac": hex::encode(AP), "username": "ap-c", "password": PASSWORD,
                      "certificateSha256": fingerprint}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let shown: Value = res.json().await.unwrap();
    assert_eq!(shown["certificateSha256"], fingerprint);

    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(server.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let login: Value = https
        .post(format!("https://localhost:{port}/auth/aruba"))
        .json(&json!({"grant_type": "password", "username": "ap-c", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().expect("token").to_string();
    tokio::time::sleep(Duration::from_millis(1500)).await; // register loaded

    // Without a certificate, or with another one: refused.
    for config in [
        client_config(&server, None),
        client_config(&server, Some(&other_cert)),
    ] {
        let mut ws = socket(port, config).await;
        ap::send(&mut ws, &token, AP, &[&telegram(1)]).await;
        assert_eq!(ap::close_code(&mut ws).await, Some(1008));
    }
    let mut conn = redis.conn().await;
    let len: usize = conn.xlen("iotc:telegrams").await.unwrap();
    assert_eq!(len, 0, "nothing forwarded without the pinned certificate");

    // With its certificate: forwarded.
    let mut ws = socket(port, client_config(&server, Some(&ap_cert))).await;
    ap::send(&mut ws, &token, AP, &[&telegram(2)]).await;
    let mut len = 0;
    for _ in 0..100 {
        len = conn.xlen("iotc:telegrams").await.unwrap();
        if len == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(len, 1, "the AP with its certificate gets through");

    let metrics = https
        .get(format!("https://localhost:{port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("iotc_ingress_ws_rejected_total{reason=\"certificate\"} 2"),
        "{metrics}"
    );
}
