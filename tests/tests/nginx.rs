//! The proxy of deploy/nginx, run by the real nginx through its real entrypoint, in front of
//! the real services (redis-server, mosquitto, iotc-ingress, iotc-engine, iotc-api), all on
//! free loopback ports with certificates from scripts/dev-cert.sh:
//! - an AP's telegram goes through `POST /auth/aruba` and the `/aruba` WebSocket over TLS and
//!   comes out of MQTT; a bad token closes the socket with 1008 through the proxy; `iotc
//!   simulate` (three APs, onboarding through the API) loses nothing through the proxy;
//! - the API and its Swagger UI answer on the https port only with the right credentials;
//! - the plain port redirects with 307;
//! - TLS 1.0 and 1.1 are refused, TLS 1.2 is accepted.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use iotc_e2e::{
    AP_PASSWORD, AP_USER, API_PASSWORD, API_USER, Proc, Stack, Subscriber, ap, bin, free_port,
    repo_root, temp_dir, wait_port,
};
use serde_json::{Value, json};
use test_support::current_user;
use test_support::nginx::binary as nginx_binary;
use tokio_tungstenite::tungstenite::Message;

/// The onboarded test device (A5-02-05, temperature 0..40 °C).
const SENSOR: &str = "0190e2e1";

/// Makes certificates for localhost / 127.0.0.1 with the project's script.
fn dev_certs(dir: &Path) -> PathBuf {
    let certs = dir.join("certs");
    let out = Command::new(repo_root().join("scripts/dev-cert.sh"))
        .arg("localhost")
        .arg(&certs)
        .output()
        .expect("run scripts/dev-cert.sh");
    assert!(
        out.status.success(),
        "dev-cert.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    certs
}

/// The proxy's ports: plain (80), API (443), AP (8080) and the loopback health listener.
struct Ports {
    http: u16,
    https: u16,
    wss: u16,
    health: u16,
}

impl Ports {
    fn pick() -> Ports {
        Ports {
            http: free_port(),
            https: free_port(),
            wss: free_port(),
            health: free_port(),
        }
    }
}

/// The entrypoint of the proxy image, with the settings the test needs instead of the
/// container's (upstreams, ports, files). Credentials are left to the caller.
fn proxy_command(dir: &Path, certs: &Path, ports: &Ports, api: u16, ingress: u16) -> Command {
    let mut cmd = Command::new(repo_root().join("deploy/nginx/entrypoint.sh"));
    cmd.env_remove("BASIC_AUTH_USERNAME")
        .env_remove("BASIC_AUTH_PASSWORD")
        .env("IOTC_PROXY_NGINX", nginx_binary())
        .env("IOTC_PROXY_RUN_DIR", dir.join("proxy"))
        .env("IOTC_PROXY_CERT", certs.join("cert.crt"))
        .env("IOTC_PROXY_KEY", certs.join("cert.key"))
        .env("IOTC_PROXY_WORKER_USER", current_user())
        .env("IOTC_PROXY_BIND", "127.0.0.1")
        .env("IOTC_PROXY_HTTP_PORT", ports.http.to_string())
        .env("IOTC_PROXY_HTTPS_PORT", ports.https.to_string())
        .env("IOTC_PROXY_PUBLIC_HTTPS_PORT", ports.https.to_string())
        .env("IOTC_PROXY_INGRESS_PORT", ports.wss.to_string())
        .env("IOTC_PROXY_HEALTH_PORT", ports.health.to_string())
        .env("IOTC_PROXY_API_UPSTREAM", format!("127.0.0.1:{api}"))
        .env(
            "IOTC_PROXY_INGRESS_UPSTREAM",
            format!("127.0.0.1:{ingress}"),
        );
    cmd
}

/// nginx started by the entrypoint in front of a running [`Stack`].
struct Proxy {
    proc: Proc,
    ports: Ports,
    ca_pem: Vec<u8>,
    ca_file: PathBuf,
}

impl Proxy {
    fn start(stack: &Stack) -> Proxy {
        let dir = stack.dir.path();
        let certs = dev_certs(dir);
        let ports = Ports::pick();
        let mut cmd = proxy_command(dir, &certs, &ports, stack.api_port, stack.ingress_port);
        cmd.env("BASIC_AUTH_USERNAME", API_USER)
            .env("BASIC_AUTH_PASSWORD", API_PASSWORD);
        let mut proc = Proc::spawn("nginx", cmd, dir);
        for port in [ports.http, ports.https, ports.wss, ports.health] {
            wait_port(port, &mut proc);
        }
        Proxy {
            proc,
            ports,
            ca_pem: std::fs::read(certs.join("ca.crt")).expect("read ca.crt"),
            ca_file: certs.join("ca.crt"),
        }
    }

    /// An HTTPS client that trusts only the development CA and follows no redirects.
    fn client(&self) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(&self.ca_pem).expect("CA certificate");
        reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client")
    }

    fn api_url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.ports.https)
    }

    fn log(&self) -> String {
        self.proc.log_tail(30)
    }
}

impl Drop for Proxy {
    /// SIGTERM: a SIGKILLed nginx master leaves its workers running (and listening).
    fn drop(&mut self) {
        self.proc.terminate(Duration::from_secs(5));
    }
}

// ---------------------------------------------------------------------------------------------
// The checks.

/// Without BASIC_AUTH_USERNAME or BASIC_AUTH_PASSWORD the proxy does not start (as IoTC's).
#[test]
fn proxy_refuses_to_start_without_credentials() {
    let dir = temp_dir();
    let certs = dev_certs(dir.path());
    let ports = Ports::pick();
    for (set, missing) in [
        (("BASIC_AUTH_PASSWORD", "p"), "BASIC_AUTH_USERNAME"),
        (("BASIC_AUTH_USERNAME", "u"), "BASIC_AUTH_PASSWORD"),
    ] {
        let mut cmd = proxy_command(dir.path(), &certs, &ports, free_port(), free_port());
        let out = cmd
            .env(set.0, set.1)
            .stdin(Stdio::null())
            .output()
            .expect("run entrypoint");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "started without {missing}");
        assert!(
            stderr.contains(&format!("{missing} is not set")),
            "unclear message: {stderr}"
        );
        assert!(
            TcpStream::connect(("127.0.0.1", ports.https)).is_err(),
            "nginx is listening"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_in_front_of_the_services() {
    let stack = Stack::start().await;
    let proxy = Proxy::start(&stack);
    let checks = async {
        api_needs_the_credentials(&proxy).await;
        plain_http_redirects_with_307(&proxy).await;
        old_tls_versions_are_refused(&proxy).await;
        ap_telegram_reaches_mqtt_through_wss(&stack, &proxy).await;
        simulated_aps_lose_nothing_through_the_proxy(&stack, &proxy).await;
        console_events_pass_through_at_once(&stack, &proxy).await;
    };
    if tokio::time::timeout(Duration::from_secs(120), checks)
        .await
        .is_err()
    {
        panic!("the checks did not finish in 120 s\n{}", proxy.log());
    }
}

async fn api_needs_the_credentials(proxy: &Proxy) {
    let client = proxy.client();
    let url = proxy.api_url("/api.beta/v1/gateways");

    let anonymous = client
        .get(&url)
        .send()
        .await
        .expect("GET without credentials");
    assert_eq!(anonymous.status(), 401, "no credentials");
    let challenge = anonymous
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap_or(""));
    assert_eq!(challenge, Some("Basic realm=\"API Area Restricted\""));
    // The proxy refuses it itself (nginx's HTML page), before the API (JSON) sees it.
    let content_type = anonymous
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or(""));
    assert_eq!(
        content_type,
        Some("text/html"),
        "the 401 does not come from the proxy"
    );
    assert!(
        anonymous
            .headers()
            .contains_key("strict-transport-security"),
        "HSTS missing on the 401"
    );

    let wrong = client
        .get(&url)
        .basic_auth(API_USER, Some("wrong"))
        .send()
        .await
        .expect("GET");
    assert_eq!(wrong.status(), 401, "wrong password");

    let ok = client
        .get(&url)
        .basic_auth(API_USER, Some(API_PASSWORD))
        .send()
        .await
        .expect("GET with credentials");
    assert_eq!(ok.status(), 200, "right credentials");
    let hsts = ok
        .headers()
        .get("strict-transport-security")
        .expect("HSTS header");
    assert!(hsts.to_str().unwrap_or("").contains("max-age=31536000"));
    let body: Value = ok.json().await.expect("gateways JSON");
    assert!(body.is_array(), "gateways: {body}");

    // The Swagger UI is at / (the API redirects to its UI path) and behind the same login.
    let root = client.get(proxy.api_url("/")).send().await.expect("GET /");
    assert_eq!(root.status(), 401, "Swagger UI without credentials");
    let root = client
        .get(proxy.api_url("/"))
        .basic_auth(API_USER, Some(API_PASSWORD))
        .send()
        .await
        .expect("GET /");
    assert!(
        root.status().is_redirection(),
        "GET / answered {}",
        root.status()
    );
    let location = root
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        location.ends_with("/api.beta/v1/ui/"),
        "GET / redirects to {location}"
    );
    let ui = client
        .get(proxy.api_url("/api.beta/v1/ui/"))
        .basic_auth(API_USER, Some(API_PASSWORD))
        .send()
        .await
        .expect("GET the UI");
    assert_eq!(ui.status(), 200);
    let html = ui.text().await.unwrap_or_default();
    assert!(
        html.to_lowercase().contains("swagger"),
        "not the Swagger UI: {html:.200}"
    );
}

async fn plain_http_redirects_with_307(proxy: &Proxy) {
    let client = proxy.client();
    let path = "/api.beta/v1/devices?sourceID=0190e2e1";
    let url = format!("http://127.0.0.1:{}{path}", proxy.ports.http);
    for method in [reqwest::Method::GET, reqwest::Method::POST] {
        let res = client
            .request(method.clone(), &url)
            .send()
            .await
            .expect("plain request");
        assert_eq!(res.status(), 307, "{method} on the plain port");
        let location = res.headers().get("location").and_then(|v| v.to_str().ok());
        let expected = format!("https://127.0.0.1:{}{path}", proxy.ports.https);
        assert_eq!(
            location,
            Some(expected.as_str()),
            "{method} redirect target"
        );
    }
}

/// `openssl s_client` with one protocol version; the client allows every cipher, so a refusal
/// comes from the server.
async fn tls_handshake(port: u16, version: &str) -> (bool, String) {
    let out = tokio::process::Command::new("openssl")
        .args([
            "s_client",
            "-brief",
            "-connect",
            &format!("127.0.0.1:{port}"),
        ])
        .args([
            "-servername",
            "localhost",
            version,
            "-cipher",
            "DEFAULT:@SECLEVEL=0",
        ])
        .stdin(Stdio::null())
        .output();
    let out = tokio::time::timeout(Duration::from_secs(15), out)
        .await
        .expect("openssl s_client timed out")
        .expect("run openssl s_client");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn old_tls_versions_are_refused(proxy: &Proxy) {
    for port in [proxy.ports.https, proxy.ports.wss] {
        for old in ["-tls1", "-tls1_1"] {
            let (ok, text) = tls_handshake(port, old).await;
            assert!(!ok, "{old} accepted on port {port}:\n{text}");
            assert!(
                text.contains("alert protocol version"),
                "{old} on {port} failed otherwise:\n{text}"
            );
        }
        let (ok, text) = tls_handshake(port, "-tls1_2").await;
        assert!(
            ok && text.contains("TLSv1.2"),
            "TLS 1.2 refused on {port}:\n{text}"
        );
    }
}

/// An ERP1 4BS telegram of A5-02-05 in an ESP3 frame: DB1 = 0x80 is 40 - 128 * 40 / 255 °C.
fn temperature_frame(sender: u32) -> Vec<u8> {
    let mut data = vec![0xA5, 0x00, 0x00, 0x80, 0x08];
    data.extend_from_slice(&sender.to_be_bytes());
    data.push(0x00);
    // Optional data: sub-telegram count, destination (broadcast), dBm, security level.
    let optional = [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0x40, 0x00];
    enocean::esp3::Packet::new(0x01, data, optional.to_vec()).encode()
}

/// TLS settings for the WebSocket client: only the development CA.
fn wss_connector(ca_pem: &[u8]) -> tokio_tungstenite::Connector {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.expect("CA PEM")).expect("add CA");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_tungstenite::Connector::Rustls(Arc::new(config))
}

async fn ap_telegram_reaches_mqtt_through_wss(stack: &Stack, proxy: &Proxy) {
    let client = proxy.client();
    let topic = format!("sensor/{SENSOR}/telemetry");
    let published = Subscriber::start(stack.mqtt.port, &topic).await;

    // Onboard the sensor through the proxy.
    let device = json!({"sourceEurid": SENSOR, "friendlyID": "e2e temperature", "eep": "A5-02-05"});
    let res = client
        .post(proxy.api_url("/api.beta/v1/devices"))
        .basic_auth(API_USER, Some(API_PASSWORD))
        .json(&device)
        .send()
        .await
        .expect("POST /devices");
    assert!(
        res.status().is_success(),
        "onboarding answered {}",
        res.status()
    );

    // The AP logs in on the ingress port of the proxy.
    let auth_url = format!("https://127.0.0.1:{}/auth/aruba", proxy.ports.wss);
    let login = |password: &str| {
        json!({"grant_type": "password", "username": AP_USER, "password": password,
               "client_id": "e2e-ap"})
    };
    let refused = client
        .post(&auth_url)
        .json(&login("wrong"))
        .send()
        .await
        .expect("POST /auth/aruba");
    assert_eq!(refused.status(), 401, "wrong AP password");
    let res = client
        .post(&auth_url)
        .json(&login(AP_PASSWORD))
        .send()
        .await
        .expect("POST /auth/aruba");
    assert_eq!(res.status(), 200, "AP login");
    let body: Value = res.json().await.expect("token JSON");
    let token = body["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();

    // The WebSocket over TLS through the proxy.
    let ws_url = format!("wss://127.0.0.1:{}/aruba", proxy.ports.wss);
    let (mut ws, response) = tokio_tungstenite::connect_async_tls_with_config(
        ws_url.as_str(),
        None,
        false,
        Some(wss_connector(&proxy.ca_pem)),
    )
    .await
    .unwrap_or_else(|e| panic!("wss connect: {e}\n{}", proxy.log()));
    assert_eq!(response.status(), 101);

    const MAC: [u8; 6] = [0x02, 0x1a, 0x1e, 0x00, 0xe2, 0xe1];
    let sender = u32::from_str_radix(SENSOR, 16).expect("hex id");
    let frame = temperature_frame(sender);

    // Sent again every 5 s (beyond the duplicate window) until the engine has the device.
    let mut received = None;
    for _ in 0..6 {
        ap::send(&mut ws, &token, MAC, &[&frame]).await;
        if let Some(first) = published
            .wait_for(&topic, 1, Duration::from_secs(5))
            .await
            .first()
        {
            received = Some(first.payload.clone());
            break;
        }
    }
    let payload = received.unwrap_or_else(|| panic!("nothing on {topic}\n{}", proxy.log()));
    let json: Value = serde_json::from_slice(&payload).expect("telemetry JSON");
    let data = json["telemetry"]["data"]
        .as_array()
        .expect("telemetry.data");
    let temperature = data
        .iter()
        .find(|d| d["key"] == "temperature")
        .and_then(|d| d["value"].as_f64())
        .unwrap_or_else(|| panic!("no temperature in {json}"));
    let expected = 40.0 - 128.0 * 40.0 / 255.0;
    assert!(
        (temperature - expected).abs() < 0.1,
        "temperature {temperature}, expected {expected}"
    );
    let _ = ws.close(None).await;

    // A message with a token the ingress never issued: the close code 1008 reaches the AP
    // through the proxy.
    let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        ws_url.as_str(),
        None,
        false,
        Some(wss_connector(&proxy.ca_pem)),
    )
    .await
    .expect("second wss connect");
    ap::send(&mut ws, "not-a-token", MAC, &[&frame]).await;
    let close = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Close(frame) = message {
                return frame.map(|f| u16::from(f.code));
            }
        }
        None
    })
    .await
    .expect("no close frame after a bad token");
    assert_eq!(close, Some(1008), "close code for a bad token");
}

/// `iotc simulate` as a user would run it against a deployment: three APs log in and send
/// through the proxy's wss port, the devices are onboarded through the proxy's https port,
/// and every telegram must come out of MQTT.
async fn simulated_aps_lose_nothing_through_the_proxy(stack: &Stack, proxy: &Proxy) {
    let count = 200;
    let out = tokio::process::Command::new(bin("iotc"))
        .arg("simulate")
        .args([
            "--url",
            &format!("wss://127.0.0.1:{}/aruba", proxy.ports.wss),
        ])
        .args([
            "--auth-url",
            &format!("https://127.0.0.1:{}/auth/aruba", proxy.ports.wss),
        ])
        .arg("--ca-file")
        .arg(&proxy.ca_file)
        .args(["--onboard", &proxy.api_url("/api.beta/v1")])
        .args(["--expect-mqtt", &format!("127.0.0.1:{}", stack.mqtt.port)])
        // 100 devices at 100 telegrams/s: a device sends once a second, so no repeated
        // reading falls into the ingress's duplicate window (500 ms) and is dropped there.
        .args(["--gateways", "3", "--devices", "100", "--shared", "0.3"])
        .args(["--rate", "100", "--count", &count.to_string()])
        .env("IOT_ENDPOINT_USERNAME", AP_USER)
        .env("IOT_ENDPOINT_PASSWORD", AP_PASSWORD)
        .env("IOT_API_USERNAME", API_USER)
        .env("IOT_API_PASSWORD", API_PASSWORD)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run iotc simulate");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "iotc simulate failed:\n{report}\n{}",
        proxy.log()
    );
    let expected = format!("received {count} of {count}, lost 0 ");
    assert!(
        report.contains(&expected),
        "telegrams lost:\n{report}\n{}",
        proxy.log()
    );
}

/// The live console's server-sent events reach the browser through nginx one by one, not
/// when a buffer fills (docs/console.md).
async fn console_events_pass_through_at_once(stack: &Stack, proxy: &Proxy) {
    use redis::AsyncCommands;
    let mut res = proxy
        .client()
        .get(proxy.api_url("/console/events"))
        .basic_auth(API_USER, Some(API_PASSWORD))
        .send()
        .await
        .expect("GET /console/events through nginx");
    assert_eq!(res.status(), 200);
    let mut seen = String::new();
    let mut read_until = async |needle: &str| {
        let wait = tokio::time::timeout(Duration::from_secs(5), async {
            while !seen.contains(needle) {
                match res.chunk().await {
                    Ok(Some(b)) => seen.push_str(&String::from_utf8_lossy(&b)),
                    _ => return false,
                }
            }
            true
        });
        assert!(
            wait.await.unwrap_or(false),
            "no {needle:?} through nginx: {seen}"
        );
    };
    read_until("event: hello").await;
    let mut r = stack.redis.conn().await;
    let fields = [
        ("topic", "through/nginx"),
        ("payload", "{}"),
        ("gateway", ""),
        ("time", "1"),
    ];
    let _: String = r
        .xadd(iotc_core::keys::LIVE_STREAM, "*", &fields)
        .await
        .unwrap();
    read_until("through/nginx").await;
}
