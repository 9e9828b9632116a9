//! The `iotc-api` binary: refuses to start without credentials, serves, writes its heartbeat.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{PASS, Redis, USER, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_iotc-api");

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn command() -> Command {
    let mut cmd = Command::new(BIN);
    for var in [
        "BASIC_AUTH_USERNAME",
        "BASIC_AUTH_PASSWORD",
        "ONLY_SECURE_DEVICES",
        "IOTC_API_PORT",
    ] {
        cmd.env_remove(var);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

#[test]
fn refuses_to_start_without_credentials() {
    for (user, pass) in [
        (None, None),
        (Some(USER), None),
        (None, Some(PASS)),
        (Some(USER), Some("")),
    ] {
        let mut cmd = command();
        cmd.env("IOTC_API_PORT", free_port().to_string());
        if let Some(u) = user {
            cmd.env("BASIC_AUTH_USERNAME", u);
        }
        if let Some(p) = pass {
            cmd.env("BASIC_AUTH_PASSWORD", p);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains("BASIC_AUTH_USERNAME"), "{stderr}");
    }
}

#[test]
fn bad_setting_is_one_line_naming_the_variable() {
    let out = command()
        .env("BASIC_AUTH_USERNAME", USER)
        .env("BASIC_AUTH_PASSWORD", PASS)
        .env("ONLY_SECURE_DEVICES", "perhaps")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("ONLY_SECURE_DEVICES"), "{stderr}");
}

#[test]
fn prints_the_document() {
    let out = command().arg("--print-openapi").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        iotc_api::openapi::document_json()
    );
}

#[tokio::test]
async fn serves_and_writes_its_heartbeat() {
    let redis = Redis::start();
    let port = free_port();
    let _api = Running(
        command()
            .env("BASIC_AUTH_USERNAME", USER)
            .env("BASIC_AUTH_PASSWORD", PASS)
            .env("IOTC_API_PORT", port.to_string())
            .env("IOTC_API_BIND", "127.0.0.1")
            .env("REDIS_URL", format!("127.0.0.1:{}", redis.port))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/api.beta/v1/devices");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(resp) = http.get(&url).basic_auth(USER, Some(PASS)).send().await {
            assert_eq!(resp.status(), 200);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the binary did not start listening"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut conn = redis.conn().await;
    let key = iotc_core::keys::heartbeat("api");
    let value: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    let value: serde_json::Value =
        serde_json::from_str(&value.expect("heartbeat written")).unwrap();
    assert_eq!(value["status"], "running");
    assert!(value["timestamp"].as_u64().unwrap() > 1_700_000_000);
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((1..=30).contains(&ttl), "ttl {ttl}");
}
