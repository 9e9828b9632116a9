//! The live console: its page behind Basic auth, and `/console/events` fed by the engine's
//! live stream from a real Redis.

mod common;

use std::time::Duration;

use common::{Api, PASS, USER};
use iotc_api::console::{HISTORY, MAX_CLIENTS};
use iotc_core::keys;
use redis::AsyncCommands;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn console_page_is_behind_auth_and_loads_nothing_from_elsewhere() {
    let api = Api::start().await;
    let anonymous = api.http.get(api.url("/console/")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let events = api.http.get(api.url("/console/events")).send().await;
    assert_eq!(events.unwrap().status(), 401);

    let get = |path: &str| api.http.get(api.url(path)).basic_auth(USER, Some(PASS));
    let redirect = get("/console").send().await.unwrap();
    assert_eq!(redirect.status(), 307);
    assert_eq!(redirect.headers()["location"], "/console/");

    for (path, kind, needle) in [
        ("/console/", "text/html", "src=\"app.js\""),
        (
            "/console/app.js",
            "text/javascript",
            "new EventSource(\"events\")",
        ),
        ("/console/style.css", "text/css", "table.grid"),
    ] {
        let res = get(path).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let h = res.headers().clone();
        assert!(
            h["content-type"].to_str().unwrap().starts_with(kind),
            "{path}"
        );
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.starts_with("default-src 'self'"), "{path}: {csp}");
        let body = res.text().await.unwrap();
        assert!(body.contains(needle), "{path} lacks {needle}");
        // No address of another host in what the page is made of.
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{path}"
        );
    }
}

/// Reads an event stream until `needle` shows up; everything read so far.
async fn read_until(res: &mut reqwest::Response, seen: &mut String, needle: &str) {
    let found = tokio::time::timeout(WAIT, async {
        while !seen.contains(needle) {
            match res.chunk().await {
                Ok(Some(bytes)) => seen.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return false,
            }
        }
        true
    });
    assert!(found.await.unwrap_or(false), "no {needle:?} in {seen}");
}

async fn add_live(api: &Api, topic: &str, payload: &str, gateway: &str) {
    let mut r = api.redis.conn().await;
    let _: String = r
        .xadd(
            keys::LIVE_STREAM,
            "*",
            &[
                ("topic", topic),
                ("payload", payload),
                ("gateway", gateway),
                ("time", "1700000000000"),
            ],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn events_carry_history_then_live_entries_and_are_bounded() {
    let api = Api::start().await;
    let open = || {
        api.http
            .get(api.url("/console/events"))
            .basic_auth(USER, Some(PASS))
            .send()
    };
    // Written before any console connected: sent as history.
    add_live(
        &api,
        "sensor/0000aaaa/telemetry",
        r#"{"sensor":{"id":"0000aaaa"}}"#,
        "gw1",
    )
    .await;

    let mut first = open().await.unwrap();
    assert_eq!(first.status(), 200);
    assert!(
        first.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert_eq!(
        first.headers()["x-accel-buffering"],
        "no",
        "nginx must not buffer"
    );
    let mut seen = String::new();
    read_until(&mut first, &mut seen, "event: hello").await;
    assert!(
        seen.contains(&format!("\"maxClients\":{MAX_CLIENTS}")),
        "{seen}"
    );
    read_until(&mut first, &mut seen, "\"id\":\"0000aaaa\"").await;
    assert!(seen.contains("\"gateway\":\"gw1\""), "{seen}");

    // A connected console keeps the watcher key alive: the engine writes while it exists.
    let mut r = api.redis.conn().await;
    let ttl: i64 = r.ttl(keys::LIVE_WATCHERS).await.unwrap();
    assert!(ttl > 0, "watcher key TTL {ttl}");

    // Entries written now arrive live; a payload that is not JSON arrives as a string.
    add_live(
        &api,
        "sensor/0000bbbb/meta/event",
        r#"{"sensor":{"id":"0000bbbb"}}"#,
        "",
    )
    .await;
    add_live(&api, "odd/topic", "not json", "").await;
    read_until(&mut first, &mut seen, "\"payload\":\"not json\"").await;
    assert!(seen.contains("\"id\":\"0000bbbb\""), "{seen}");
    assert_eq!(
        seen.matches("\"topic\":\"sensor/0000aaaa/telemetry\"")
            .count(),
        1,
        "history is not sent again live: {seen}"
    );

    // History is the newest entries only.
    for i in 0..HISTORY + 5 {
        add_live(&api, &format!("t/{i}"), "{}", "").await;
    }
    let mut late = open().await.unwrap();
    let mut late_seen = String::new();
    let last = format!("\"topic\":\"t/{}\"", HISTORY + 4);
    read_until(&mut late, &mut late_seen, &last).await;
    assert_eq!(
        late_seen.matches("event: live").count(),
        HISTORY,
        "{late_seen}"
    );

    // At most MAX_CLIENTS consoles; the next one is refused until one leaves.
    let mut others = Vec::new();
    for _ in 2..MAX_CLIENTS {
        let res = open().await.unwrap();
        assert_eq!(res.status(), 200);
        others.push(res);
    }
    let refused = open().await.unwrap();
    assert_eq!(refused.status(), 503);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "TOO_MANY_CONSOLES");
    drop(late);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let res = open().await.unwrap();
        if res.status() == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no place freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// SIGTERM stops the binary although a console is connected: its stream ends instead of
/// holding the graceful shutdown open.
#[tokio::test]
async fn a_connected_console_does_not_hold_the_shutdown() {
    let redis = common::Redis::start();
    let port = common::free_port();
    let mut api = std::process::Command::new(env!("CARGO_BIN_EXE_iotc-api"))
        .env("BASIC_AUTH_USERNAME", USER)
        .env("BASIC_AUTH_PASSWORD", PASS)
        .env("IOTC_API_PORT", port.to_string())
        .env("IOTC_API_BIND", "127.0.0.1")
        .env("REDIS_URL", redis.url())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/console/events");
    let deadline = std::time::Instant::now() + WAIT;
    let mut res = loop {
        let client = reqwest::Client::new();
        if let Ok(res) = client.get(&url).basic_auth(USER, Some(PASS)).send().await {
            break res;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the API did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut seen = String::new();
    read_until(&mut res, &mut seen, "event: hello").await;

    let pid = api.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    assert!(killed.unwrap().success());
    // The stream ends, then the process.
    let ended = tokio::time::timeout(WAIT, async { while let Ok(Some(_)) = res.chunk().await {} });
    assert!(ended.await.is_ok(), "the event stream did not end");
    let deadline = std::time::Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = api.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = api.kill();
            panic!("iotc-api did not stop with a console connected");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
}
