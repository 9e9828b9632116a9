//! Basic auth, /healthz /readyz /metrics, Swagger UI, JSON errors for unknown paths and methods,
//! and recovery after a Redis restart.

mod common;

use std::time::{Duration, Instant};

use common::{Api, PASS, USER, assert_error, device, send};
use reqwest::Method;
use serde_json::Value;

#[tokio::test]
async fn every_operation_needs_basic_auth() {
    let api = Api::start().await;
    let paths = [
        (Method::GET, "/backup"),
        (Method::POST, "/backup"),
        (Method::PATCH, "/backup"),
        (Method::GET, "/devices"),
        (Method::PUT, "/devices?sourceID=a1b2c3d4"),
        (Method::POST, "/devices"),
        (Method::DELETE, "/devices?sourceID=a1b2c3d4"),
        (
            Method::GET,
            "/devices/metadata/statistics/telegrams?sourceID=a1b2c3d4",
        ),
        (
            Method::GET,
            "/devices/telemetry/most-recent?sourceID=a1b2c3d4",
        ),
        (
            Method::GET,
            "/devices/signals/most-recent?sourceID=a1b2c3d4",
        ),
        (Method::GET, "/gateways"),
        (Method::GET, "/gateways/metadata/statistics/telegrams"),
        (Method::GET, "/gateways/metadata/health"),
        (Method::GET, "/system/health"),
        (Method::GET, "/openapi.json"),
        (Method::GET, "/ui/"),
    ];
    for (method, path) in paths {
        let url = api.url(&format!("/api.beta/v1{path}"));
        for auth in [None, Some((USER, "wrong")), Some(("other", PASS))] {
            let mut req = api.http.request(method.clone(), &url);
            if let Some((u, p)) = auth {
                req = req.basic_auth(u, Some(p));
            }
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 401, "{method} {path} with {auth:?}");
            let challenge = resp.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .to_string();
            assert!(challenge.starts_with("Basic realm="), "{challenge}");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["code"], "UNAUTHORIZED");
        }
    }
    let resp = api.http.get(api.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 401, "the UI at / is protected too");
    assert_eq!(api.get("/devices").await.0, 200);
}

#[tokio::test]
async fn ops_routes_are_open() {
    let api = Api::start().await;
    for path in ["/healthz", "/readyz"] {
        let resp = api.http.get(api.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
    api.get("/devices").await;
    let metrics = api.http.get(api.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(text.contains("iotc_api_requests_total"), "{text}");
}

#[tokio::test]
async fn swagger_ui_and_document_are_served() {
    let api = Api::start().await;
    let resp = api
        .http
        .get(api.url("/"))
        .basic_auth(USER, Some(PASS))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_redirection());
    assert_eq!(resp.headers()["location"], "/api.beta/v1/ui/");

    let page = api.req(Method::GET, "/ui/").send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("swagger-ui"));
    let init = api
        .req(Method::GET, "/ui/swagger-initializer.js")
        .send()
        .await
        .unwrap();
    let init = init.text().await.unwrap();
    assert!(init.contains("/api.beta/v1/openapi.json"), "{init}");
    assert!(init.contains("\"validatorUrl\": \"none\""), "{init}");

    let (s, doc) = api.get("/openapi.json").await;
    assert_eq!(s, 200);
    assert_eq!(
        doc,
        serde_json::to_value(iotc_api::openapi::document()).unwrap()
    );
}

#[tokio::test]
async fn unknown_paths_and_methods_get_json_errors() {
    let api = Api::start().await;
    let (s, b) = send(api.req(Method::GET, "/nothing")).await;
    assert_error(s, &b, 404, "NOT_FOUND", "path");
    let (s, b) = send(api.req(Method::DELETE, "/gateways")).await;
    assert_error(s, &b, 405, "METHOD_NOT_ALLOWED", "method");
}

#[tokio::test]
async fn survives_a_redis_restart() {
    let mut api = Api::start().await;
    assert_eq!(
        api.post("/devices", &device("a1b2c3d4", "A5-04-05"))
            .await
            .0,
        200
    );
    api.redis.stop();

    let (s, b) = api.get("/devices").await;
    assert_error(s, &b, 503, "STORE_UNAVAILABLE", "Redis");
    let ready = api.http.get(api.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);

    api.redis.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (s, _) = api.post("/devices", &device("a1b2c3d5", "A5-04-05")).await;
        if s == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no reconnect after the restart (last status {s})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (s, body) = api.get("/devices?sourceID=a1b2c3d5").await;
    assert_eq!((s, body["sourceEurid"].as_str()), (200, Some("a1b2c3d5")));
    let ready = api.http.get(api.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
}
