//! The optional AP register, on real processes (Redis, ingress, API): a registered AP logs in
//! with its own password and gets through; the shared gateway login, an unknown AP and a wrong
//! password are refused (401); a token used with another AP's MAC is refused (1008); revoking
//! an AP through the API closes its open connection (1008) and its login.

use std::process::Command;
use std::time::Duration;

use iotc_e2e::{AP_PASSWORD, AP_USER, API_PASSWORD, API_USER, Proc, Redis, ap, bin, free_port};
use iotc_e2e::{radio, spawn_api, temp_dir, wait_port};
use redis::AsyncCommands;
use serde_json::{Value, json};

const AP_A: [u8; 6] = [0x02, 0x1a, 0x1e, 0x00, 0x00, 0xa1];
const AP_B: [u8; 6] = [0x02, 0x1a, 0x1e, 0x00, 0x00, 0xb2];
const PASSWORD_A: &str = "a-long-password-for-ap-a";
const PASSWORD_B: &str = "a-long-password-for-ap-b";

struct Setup {
    redis: Redis,
    _api: Proc,
    _ingress: Proc,
    api_port: u16,
    ingress_port: u16,
    _dir: tempfile::TempDir,
}

impl Setup {
    fn start() -> Setup {
        let dir = temp_dir();
        let redis = Redis::start(dir.path());
        let ingress_port = free_port();
        let mut cmd = Command::new(bin("iotc-ingress"));
        cmd.env("REDIS_URL", redis.url())
            .env("IOTC_INGRESS_PORT", ingress_port.to_string())
            .env("IOTC_INGRESS_BIND", "127.0.0.1")
            .env("IOT_GATEWAY_USERNAME", AP_USER)
            .env("IOT_GATEWAY_PASSWORD", AP_PASSWORD)
            .env("IOTC_AP_REGISTER", "true");
        let mut ingress = Proc::spawn("iotc-ingress", cmd, dir.path());
        wait_port(ingress_port, &mut ingress);
        let (api, api_port) = spawn_api(dir.path(), &redis, &[]);
        Setup {
            redis,
            _api: api,
            _ingress: ingress,
            api_port,
            ingress_port,
            _dir: dir,
        }
    }

    fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let url = format!("http://127.0.0.1:{}/api.beta/v1{path}", self.api_port);
        reqwest::Client::new()
            .request(method, url)
            .basic_auth(API_USER, Some(API_PASSWORD))
    }

    async fn register(&self, mac: [u8; 6], username: &str, password: &str) {
        let res = self
            .api(reqwest::Method::POST, "/aps")
            .json(&json!({"mac": hex::encode(mac), "username": username, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    }

    /// `POST /auth/aruba`: the status and the token if one was issued.
    async fn login(&self, user: &str, password: &str) -> (u16, Option<String>) {
        let res = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/auth/aruba", self.ingress_port))
            .json(&json!({"grant_type": "password", "username": user, "password": password}))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        (status, body["access_token"].as_str().map(str::to_string))
    }

    async fn socket(&self) -> ap::Socket {
        let url = format!("ws://127.0.0.1:{}/aruba", self.ingress_port);
        tokio_tungstenite::connect_async(url.as_str())
            .await
            .unwrap()
            .0
    }

    async fn stream_len(&self) -> usize {
        let mut redis = self.redis.conn().await;
        redis.xlen("iotc:telegrams").await.unwrap()
    }

    async fn metric(&self, line_start: &str) -> String {
        let url = format!("http://127.0.0.1:{}/metrics", self.ingress_port);
        let text = reqwest::get(url).await.unwrap().text().await.unwrap();
        text.lines()
            .filter(|l| l.starts_with(line_start))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn telegram(n: u8) -> Vec<u8> {
    radio::frame(&radio::telegram(
        0xA5,
        vec![n, 0, 0x80, 0x08],
        0x0190_a0a0,
        0,
        -60,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_admits_its_aps_only_and_revocation_disconnects() {
    let s = Setup::start();
    s.register(AP_A, "ap-a", PASSWORD_A).await;
    s.register(AP_B, "ap-b", PASSWORD_B).await;

    // Logins: only a registered AP with its own password.
    assert_eq!(s.login(AP_USER, AP_PASSWORD).await.0, 401, "shared login");
    assert_eq!(s.login("ap-c", PASSWORD_A).await.0, 401, "unknown AP");
    assert_eq!(
        s.login("ap-a", PASSWORD_B).await.0,
        401,
        "another AP's password"
    );
    let (status, token) = s.login("ap-a", PASSWORD_A).await;
    assert_eq!(status, 200);
    let token_a = token.unwrap();

    // The ingress loads the register within a second; until then nobody gets through.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // AP A with its own MAC gets through.
    let mut ws_a = s.socket().await;
    ap::send(&mut ws_a, &token_a, AP_A, &[&telegram(1)]).await;
    let mut forwarded = false;
    for _ in 0..100 {
        if s.stream_len().await == 1 {
            forwarded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(forwarded, "registered AP's telegram forwarded");

    // A's token used with B's MAC: refused with 1008, nothing forwarded.
    let mut ws_x = s.socket().await;
    ap::send(&mut ws_x, &token_a, AP_B, &[&telegram(2)]).await;
    assert_eq!(ap::close_code(&mut ws_x).await, Some(1008));
    assert_eq!(s.stream_len().await, 1);

    // Revoking A closes its open connection and its login.
    let res = s
        .api(reqwest::Method::DELETE, "/aps?mac=021a1e0000a1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        ap::close_code(&mut ws_a).await,
        Some(1008),
        "revoked AP disconnected"
    );
    assert_eq!(
        s.login("ap-a", PASSWORD_A).await.0,
        401,
        "revoked AP's login"
    );
    let mut ws_old = s.socket().await;
    ap::send(&mut ws_old, &token_a, AP_A, &[&telegram(3)]).await;
    assert_eq!(
        ap::close_code(&mut ws_old).await,
        Some(1008),
        "revoked AP's old token"
    );
    assert_eq!(s.stream_len().await, 1);

    // B is still fine.
    let (_, token_b) = s.login("ap-b", PASSWORD_B).await;
    let mut ws_b = s.socket().await;
    ap::send(&mut ws_b, &token_b.unwrap(), AP_B, &[&telegram(4)]).await;
    for _ in 0..100 {
        if s.stream_len().await == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(s.stream_len().await, 2, "other AP unaffected");

    // Counted.
    let rejected = s.metric("iotc_ingress_ws_rejected_total").await;
    assert!(
        rejected.contains("reason=\"mac_mismatch\"} 1"),
        "{rejected}"
    );
    assert!(rejected.contains("reason=\"revoked\"} 2"), "{rejected}");
    let auth = s.metric("iotc_ingress_auth_requests_total").await;
    assert!(auth.contains("result=\"not_registered\"} 4"), "{auth}");

    // The register is in the backup, hashes only; the API never shows a password.
    let backup: Value = s
        .api(reqwest::Method::GET, "/backup")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let aps = backup["AccessPoints"].as_array().expect("AccessPoints");
    assert_eq!(aps.len(), 1);
    assert_eq!(aps[0]["mac"], "021a1e0000b2");
    let hash = aps[0]["passwordHash"].as_str().unwrap();
    assert!(hash.starts_with("pbkdf2-sha256$") && !backup.to_string().contains(PASSWORD_B));
    // Restoring it brings the AP back after its removal.
    s.api(reqwest::Method::DELETE, "/aps?mac=021a1e0000b2")
        .send()
        .await
        .unwrap();
    assert_eq!(s.login("ap-b", PASSWORD_B).await.0, 401);
    let res = s
        .api(reqwest::Method::POST, "/backup")
        .json(&backup)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        s.login("ap-b", PASSWORD_B).await.0,
        200,
        "restored from the backup"
    );
}
