//! The live console in headless Chromium against the whole connector: the simulator's AP
//! sends telegrams through ingress and engine, the page shows them live, lists the device and
//! the gateway, opens and closes a learn window and onboards a device. No request of the page
//! leaves the API's host. Screenshots go to `IOTC_CONSOLE_SCREENSHOTS` (default
//! `target/console-screenshots`; `docs/img` for the documentation).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use iotc_core::keys;
use iotc_e2e::browser::{Browser, Page};
use iotc_e2e::{API_PASSWORD, API_USER, Proc, Stack, Subscriber, ap, bin, radio, repo_root};
use redis::AsyncCommands;

const SIM_DEVICE: &str = "05c00001";
const SIM_GATEWAY: &str = "021c00000001";
const NEW_DEVICE: &str = "05c00099";
const WAIT: Duration = Duration::from_secs(20);
/// Consoles one API process serves (`iotc_api::console::MAX_CLIENTS`, docs/console.md).
const MAX_CONSOLES: usize = 16;

fn shots() -> PathBuf {
    match std::env::var("IOTC_CONSOLE_SCREENSHOTS") {
        Ok(dir) if !dir.is_empty() => repo_root().join(dir),
        _ => repo_root().join("target/console-screenshots"),
    }
}

/// `iotc simulate`: one AP, one A5-02-05 device onboarded through the API, two telegrams a
/// second until it is dropped.
fn simulator(stack: &Stack) -> Proc {
    let mut cmd = Command::new(bin("iotc"));
    cmd.args(stack.simulate_args())
        .args(["--onboard", &stack.api_url("")])
        .args(["--api-username", API_USER, "--api-password", API_PASSWORD])
        .args(["--gateways", "1", "--devices", "1", "--eep", "A5-02-05"])
        .args(["--id-base", SIM_DEVICE, "--rate", "2", "--duration", "0"])
        .args(["--shared", "0", "--health-interval", "5"]);
    Proc::spawn("iotc-simulate", cmd, stack.dir.path())
}

async fn click(page: &Page, selector: &str) {
    let js = format!("document.querySelector({selector:?}).click(), true");
    page.eval(&js).await;
}

async fn fill(page: &Page, id: &str, value: &str) {
    page.eval(&format!(
        "document.getElementById({id:?}).value = {value:?}, true"
    ))
    .await;
}

async fn must_show(page: &Page, what: &str, expression: &str) -> serde_json::Value {
    match page.wait_for(expression, WAIT).await {
        Some(v) => v,
        None => panic!(
            "the console never showed {what} ({expression}); page text:\n{}",
            page.eval("document.body.innerText").await
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_shows_live_telegrams_devices_gateways_and_onboards() {
    let stack = Stack::start().await;
    let browser = Browser::start(stack.dir.path()).await;
    let page = browser.page().await;
    page.login(API_USER, API_PASSWORD).await;
    let origin = format!("http://127.0.0.1:{}/", stack.api_port);
    page.navigate(&format!("{origin}console")).await;
    must_show(
        &page,
        "the live connection",
        "document.getElementById('status').textContent === 'live'",
    )
    .await;

    // Live: the simulator's telegrams appear with name, EEP, values, RSSI and gateway.
    let _sim = simulator(&stack);
    let row = format!("#live-rows tr[data-sender='{SIM_DEVICE}']");
    must_show(
        &page,
        "a telegram of the simulator",
        &format!("!!document.querySelector(\"{row}\")"),
    )
    .await;
    let cells = page
        .eval(&format!(
            "[...document.querySelector(\"{row}\").cells].map(c => c.textContent)"
        ))
        .await;
    let cells: Vec<String> = serde_json::from_value(cells).unwrap();
    assert_eq!(cells[1], SIM_DEVICE, "{cells:?}");
    assert!(!cells[2].is_empty(), "name: {cells:?}");
    assert_eq!(cells[3], "a5-02-05", "{cells:?}");
    assert!(
        cells[4].contains("temperature=") && cells[4].contains("°C"),
        "{cells:?}"
    );
    assert!(cells[5].ends_with(" dBm"), "{cells:?}");
    assert_eq!(cells[6], SIM_GATEWAY, "{cells:?}");

    // The next telegram published on MQTT is on the page within two seconds.
    let topic = format!("sensor/{SIM_DEVICE}/telemetry");
    let sub = Subscriber::start(stack.mqtt.port, &topic).await;
    let got = sub.wait_for(&topic, 1, WAIT).await;
    let published = Instant::now();
    let uuid = got[0].json()["raw"]["uuid"].as_str().unwrap().to_string();
    let shown = page
        .wait_for(
            &format!("!!document.querySelector(\"#live-rows tr[data-uuid='{uuid}']\")"),
            Duration::from_secs(2),
        )
        .await;
    let took = published.elapsed();
    assert!(
        shown.is_some(),
        "telegram {uuid} not shown within 2 s of its publication"
    );
    eprintln!("console: shown {} ms after MQTT delivery", took.as_millis());

    // A second connection (as after a reconnection) replays the history: nothing is shown
    // twice.
    page.eval("connect(), true").await;
    let rows = "document.querySelectorAll('#live-rows tr[data-uuid]').length";
    let before = page.eval(rows).await.as_u64().unwrap();
    must_show(&page, "a newer telegram", &format!("{rows} > {before}")).await;
    let unique = "(u => new Set(u).size === u.length)([...document.querySelectorAll('#live-rows tr[data-uuid]')].map(r => r.dataset.uuid))";
    assert_eq!(page.eval(unique).await, true, "a telegram shown twice");

    // The filter keeps one device's rows.
    fill(&page, "live-filter", "ffffffff").await;
    page.eval("document.getElementById('live-filter').dispatchEvent(new Event('input')), true")
        .await;
    let visible = "[...document.querySelectorAll('#live-rows tr')].filter(r => !r.hidden).length";
    assert_eq!(page.eval(visible).await, 0);
    fill(&page, "live-filter", SIM_DEVICE).await;
    page.eval("document.getElementById('live-filter').dispatchEvent(new Event('input')), true")
        .await;
    assert!(page.eval(visible).await.as_u64().unwrap() > 0);
    fill(&page, "live-filter", "").await;
    page.eval("document.getElementById('live-filter').dispatchEvent(new Event('input')), true")
        .await;

    // A message that is not IoTC's (a retained state topic, say) shows only when asked for.
    let mut r = stack.redis.conn().await;
    let fields = [
        ("topic", "sensor/05c00001/state"),
        ("payload", r#"{"temperature":21.5}"#),
        ("gateway", ""),
        ("time", "1"),
    ];
    let _: String = r.xadd(keys::LIVE_STREAM, "*", &fields).await.unwrap();
    let other = "document.querySelector('#live-rows tr.kind-other')";
    must_show(
        &page,
        "the other topic's row",
        &format!("{other} && {other}.hidden"),
    )
    .await;
    click(&page, "#live-other").await;
    must_show(
        &page,
        "the other topic's row",
        &format!("{other} && !{other}.hidden"),
    )
    .await;
    click(&page, "#live-other").await;
    page.screenshot(&shots().join("console-live.png")).await;

    // Devices: last values, last seen and best gateway.
    click(&page, "#tabs button[data-tab=devices]").await;
    let dev = format!("#dev-rows tr[data-sender='{SIM_DEVICE}']");
    must_show(
        &page,
        "the device with its best gateway",
        &format!(
            "(r => r && r.cells[4].textContent.includes('temperature=') && r.cells[6].textContent.startsWith('{SIM_GATEWAY}'))(document.querySelector(\"{dev}\"))"
        ),
    )
    .await;
    page.screenshot(&shots().join("console-devices.png")).await;

    // Gateways: the simulated AP, healthy, with its stick and counters.
    click(&page, "#tabs button[data-tab=gateways]").await;
    must_show(
        &page,
        "the healthy gateway",
        &format!(
            "[...document.querySelectorAll('#gw-rows tr')].some(r => r.cells[0].textContent === '{SIM_GATEWAY}' && r.cells[1].textContent === 'healthy' && Number(r.cells[6].textContent) > 0)"
        ),
    )
    .await;
    page.screenshot(&shots().join("console-gateways.png")).await;

    learn_and_onboard(&stack, &page).await;

    // Command form: the API's answer is shown, whatever it is.
    click(&page, "#tabs button[data-tab=command]").await;
    fill(&page, "cmd-id", SIM_DEVICE).await;
    click(&page, "#cmd-send").await;
    must_show(
        &page,
        "the command's answer",
        "document.getElementById('cmd-msg').textContent",
    )
    .await;
    page.screenshot(&shots().join("console-command.png")).await;

    // The page holds two streams; with the API's other places taken, a third is refused,
    // the page says so and retries until a place is free.
    let mut others = Vec::new();
    for _ in 2..MAX_CONSOLES {
        let res = reqwest::Client::new()
            .get(format!("{origin}console/events"))
            .basic_auth(API_USER, Some(API_PASSWORD))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        others.push(res);
    }
    page.eval("connect(), true").await;
    must_show(
        &page,
        "the refusal",
        "document.getElementById('status').textContent.startsWith('refused: too many consoles')",
    )
    .await;
    others.clear();
    must_show(
        &page,
        "the stream again",
        "document.getElementById('status').textContent === 'live'",
    )
    .await;

    // Nothing but the API's host was asked for anything.
    let requests = page.requests();
    assert!(
        requests.iter().any(|u| u.ends_with("/console/events")),
        "{requests:?}"
    );
    assert!(
        requests.iter().any(|u| u.contains("/api.beta/v1/devices")),
        "{requests:?}"
    );
    let elsewhere: Vec<_> = requests
        .iter()
        .filter(|u| !u.starts_with(&origin) && *u != "about:blank")
        .collect();
    assert!(
        elsewhere.is_empty(),
        "requests leaving the API: {elsewhere:?}"
    );
}

/// Opens the learn window for all devices, onboards a device not known yet (from the unknown
/// list when the API has it, else with the form), closes the window.
async fn learn_and_onboard(stack: &Stack, page: &Page) {
    click(page, "#tabs button[data-tab=learn]").await;
    fill(page, "learn-id", "").await;
    fill(page, "learn-seconds", "120").await;
    click(page, "#learn-open").await;
    must_show(
        page,
        "the open window",
        "!!document.querySelector(\"#learn-windows li[data-source='all']\")",
    )
    .await;
    let (status, windows) = stack.api_get("/devices/learn").await;
    assert_eq!(status, 200);
    assert_eq!(windows[0]["sourceID"], serde_json::Value::Null, "{windows}");

    // A device nobody onboarded sends a 4BS teach-in while the window is open. It names no
    // EEP, so it cannot be onboarded by itself: it is listed, and onboarded with a click.
    let token = stack.ap_token().await;
    let mut ws = stack.ap_socket().await;
    let teach = radio::telegram(0xA5, vec![0x00, 0x00, 0x00, 0x00], 0x05c0_0099, 0, -58);
    let frame = radio::frame(&teach);
    ap::send(&mut ws, &token, [0x02, 0x1c, 0, 0, 0, 0x01], &[&frame]).await;

    let (unknown_status, _) = stack.api_get("/devices/unknown").await;
    if unknown_status == 200 {
        let row = format!("#unknown-rows tr[data-sender='{NEW_DEVICE}']");
        let deadline = Instant::now() + WAIT;
        while page
            .eval(&format!("!!document.querySelector(\"{row}\")"))
            .await
            != true
        {
            assert!(Instant::now() < deadline, "unknown device not listed");
            click(page, "#unknown-refresh").await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        click(page, &format!("{row} button.onboard")).await;
        if page.eval("document.getElementById('ob-eep').value").await == "" {
            fill(page, "ob-eep", "A5-02-05").await;
            click(page, "#ob-submit").await;
        }
    } else {
        // Without the unknown-devices operation the panel says why, and the form onboards.
        must_show(
            page,
            "the API's answer about unknown devices",
            "document.getElementById('unknown-msg').textContent.includes('404')",
        )
        .await;
        fill(page, "ob-id", NEW_DEVICE).await;
        fill(page, "ob-eep", "A5-02-05").await;
        fill(page, "ob-name", "Meeting room").await;
        fill(page, "ob-location", "Floor 2").await;
        click(page, "#ob-submit").await;
    }
    must_show(
        page,
        "the onboarding result",
        &format!("document.getElementById('ob-msg').textContent === 'onboarded {NEW_DEVICE}'"),
    )
    .await;
    let (status, device) = stack
        .api_get(&format!("/devices?sourceID={NEW_DEVICE}"))
        .await;
    assert_eq!(status, 200, "{device}");
    assert_eq!(
        device["eep"].as_str().unwrap().to_ascii_uppercase(),
        "A5-02-05"
    );
    page.screenshot(&shots().join("console-learn.png")).await;

    click(
        page,
        "#learn-windows li[data-source='all'] button.learn-close",
    )
    .await;
    must_show(
        page,
        "the closed window",
        "!document.querySelector(\"#learn-windows li[data-source='all']\")",
    )
    .await;
    let (_, windows) = stack.api_get("/devices/learn").await;
    assert_eq!(windows, serde_json::json!([]));
}
