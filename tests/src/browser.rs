//! Headless Chromium driven through the DevTools protocol (CDP) over its WebSocket: enough
//! to load a page with credentials, record every request it makes, run script in it, wait
//! for what it shows and take screenshots.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use crate::{Proc, free_port};

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// What the page did that the test looks at afterwards.
#[derive(Default)]
struct Seen {
    requests: Mutex<Vec<String>>,
    errors: Mutex<Vec<String>>,
}

/// A headless Chromium with a fresh profile, killed on drop.
pub struct Browser {
    pub proc: Proc,
    port: u16,
}

impl Browser {
    /// Starts Chromium; waits until its DevTools endpoint answers.
    pub async fn start(dir: &Path) -> Browser {
        let port = free_port();
        let mut cmd = Command::new("chromium");
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            "--window-size=1400,900",
            &format!("--remote-debugging-port={port}"),
            &format!("--user-data-dir={}", dir.join("chromium-profile").display()),
            "about:blank",
        ]);
        let mut proc = Proc::spawn("chromium", cmd, dir);
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("http://127.0.0.1:{port}/json/version");
        while reqwest::get(&url).await.is_err() {
            assert!(proc.running(), "chromium exited:\n{}", proc.log_tail(30));
            assert!(
                Instant::now() < deadline,
                "chromium's DevTools did not answer"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Browser { proc, port }
    }

    /// A new tab.
    pub async fn page(&self) -> Page {
        let url = format!("http://127.0.0.1:{}/json/new?about:blank", self.port);
        let target: Value = reqwest::Client::new()
            .put(&url)
            .send()
            .await
            .expect("DevTools /json/new")
            .json()
            .await
            .expect("target JSON");
        let ws = target["webSocketDebuggerUrl"]
            .as_str()
            .expect("webSocketDebuggerUrl");
        Page::connect(ws).await
    }
}

/// One tab; it records the URL of every request the page sent and every uncaught script
/// error.
pub struct Page {
    out: mpsc::UnboundedSender<String>,
    pending: Pending,
    next: AtomicU64,
    seen: Arc<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Page {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Page {
    async fn connect(url: &str) -> Page {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("DevTools WebSocket");
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<String>();
        let pending: Pending = Arc::default();
        let seen: Arc<Seen> = Arc::default();
        let (p, r) = (pending.clone(), seen.clone());
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(text) = out_rx.recv() => {
                        if sink.send(Message::Text(text.into())).await.is_err() { return; }
                    }
                    msg = stream.next() => match msg {
                        Some(Ok(Message::Text(t))) => dispatch(t.as_str(), &p, &r),
                        Some(Ok(_)) => {}
                        _ => return,
                    },
                }
            }
        });
        Page {
            out,
            pending,
            next: AtomicU64::new(1),
            seen,
            task,
        }
    }

    /// Calls a CDP method; its result (panics on a protocol error).
    pub async fn call(&self, method: &str, params: Value) -> Value {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        let msg = json!({"id": id, "method": method, "params": params});
        self.out.send(msg.to_string()).expect("DevTools connection");
        let reply = tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .unwrap_or_else(|_| panic!("{method}: no answer"))
            .expect("DevTools connection");
        assert!(reply.get("error").is_none(), "{method}: {reply}");
        reply["result"].clone()
    }

    /// Sends `Authorization: Basic ...` with every request, as a browser does after its login
    /// prompt, and starts recording requests.
    pub async fn login(&self, user: &str, password: &str) {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.call("Network.enable", json!({})).await;
        self.call("Page.enable", json!({})).await;
        self.call("Runtime.enable", json!({})).await;
        let headers = json!({"headers": {"Authorization": format!("Basic {token}")}});
        self.call("Network.setExtraHTTPHeaders", headers).await;
    }

    pub async fn navigate(&self, url: &str) {
        self.call("Page.navigate", json!({"url": url})).await;
    }

    /// The value of a script expression (promises are awaited); panics if it throws.
    pub async fn eval(&self, expression: &str) -> Value {
        match self.try_eval(expression).await {
            Ok(v) => v,
            Err(e) => panic!("{expression}: {e}"),
        }
    }

    async fn try_eval(&self, expression: &str) -> Result<Value, Value> {
        let params = json!({"expression": expression, "returnByValue": true, "awaitPromise": true});
        let r = self.call("Runtime.evaluate", params).await;
        match r.get("exceptionDetails") {
            Some(e) => Err(e.clone()),
            None => Ok(r["result"]["value"].clone()),
        }
    }

    /// Polls `expression` until it is truthy; its value, or `None` after `timeout`. Throwing
    /// counts as not yet (the page may still be loading).
    pub async fn wait_for(&self, expression: &str, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.try_eval(expression).await.unwrap_or(Value::Null);
            let truthy =
                !matches!(&v, Value::Null | Value::Bool(false)) && v != json!("") && v != json!(0);
            if truthy {
                return Some(v);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Writes a PNG of the visible page.
    pub async fn screenshot(&self, path: &Path) {
        let shot = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("base64 PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot folder");
        }
        std::fs::write(path, png).expect("write screenshot");
    }

    /// Every URL the page requested so far.
    pub fn requests(&self) -> Vec<String> {
        self.seen.requests.lock().unwrap().clone()
    }

    /// Every uncaught script error so far.
    pub fn errors(&self) -> Vec<String> {
        self.seen.errors.lock().unwrap().clone()
    }
}

/// Routes a reply to its caller and records requests and script errors.
fn dispatch(text: &str, pending: &Pending, seen: &Seen) {
    let Ok(msg) = serde_json::from_str::<Value>(text) else {
        return;
    };
    if let Some(id) = msg["id"].as_u64() {
        if let Some(tx) = pending.lock().unwrap().remove(&id) {
            let _ = tx.send(msg);
        }
        return;
    }
    let params = &msg["params"];
    match msg["method"].as_str() {
        Some("Network.requestWillBeSent") => {
            if let Some(url) = params["request"]["url"].as_str() {
                seen.requests.lock().unwrap().push(url.to_string());
            }
        }
        Some("Runtime.exceptionThrown") => {
            let details = &params["exceptionDetails"];
            let text = details["exception"]["description"]
                .as_str()
                .or(details["text"].as_str())
                .unwrap_or("script error");
            seen.errors.lock().unwrap().push(text.to_string());
        }
        _ => {}
    }
}
