// iotc live console: server-sent events from /console/events, everything else from the API.
// Plain DOM, no library; text goes in with textContent only.
"use strict";

const API = "/api.beta/v1";
const LIVE_MAX = 500; // rows kept in the live table
const REFRESH_MS = 10000; // devices and gateways tables
const DEV_MAX = 1000; // rows of the devices table (the filter reaches the others)
const FILL_MAX = 50; // devices whose last values are fetched per refresh
const RETRY_MS = 5000; // after the server refused the event stream

const $ = (id) => document.getElementById(id);
const devices = new Map(); // ID -> {lastValues, lastSeen, gateways: Map(mac -> best RSSI)}
let liveCount = 0;

// ---- helpers ----

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(API + path, init);
  } catch (e) {
    return { ok: false, status: 0, error: "the API is not reachable (" + e.message + ")" };
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = text; }
  if (res.ok) return { ok: true, status: res.status, data };
  const why = data && data.message ? data.code + ": " + data.message : text || res.statusText;
  return { ok: false, status: res.status, data, error: "the API answered " + res.status + " (" + why + ")" };
}

function say(id, text, ok) {
  const el = $(id);
  el.textContent = text;
  el.className = "msg " + (ok ? "ok" : "err");
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function button(tr, label, onClick) {
  const td = document.createElement("td");
  const b = action(label, onClick);
  td.appendChild(b);
  tr.appendChild(td);
  return b;
}

function action(label, onClick) {
  const b = document.createElement("button");
  b.textContent = label;
  b.addEventListener("click", onClick);
  return b;
}

function showTab(name) {
  document.querySelector('#tabs button[data-tab="' + name + '"]').click();
}

function clock(ms) {
  return ms ? new Date(ms).toLocaleTimeString() : "";
}

function ago(unixSeconds) {
  const s = Number(unixSeconds);
  if (!s) return "never";
  const d = Math.max(0, Math.round(Date.now() / 1000 - s));
  if (d < 60) return d + " s ago";
  if (d < 3600) return Math.round(d / 60) + " min ago";
  if (d < 86400) return Math.round(d / 3600) + " h ago";
  return new Date(s * 1000).toLocaleString();
}

function values(fields) {
  return (fields || [])
    .map((f) => f.key + "=" + (typeof f.value === "number" ? +f.value.toFixed(2) : f.value) + (f.unit ? " " + f.unit : ""))
    .join(", ");
}

function eventTexts(meta) {
  const out = [];
  for (const list of Object.values((meta && meta.events) || {})) {
    for (const ev of list || []) out.push(ev.code + (ev.message ? ": " + ev.message : ""));
  }
  return out;
}

function device(id) {
  if (!devices.has(id)) devices.set(id, { gateways: new Map() });
  return devices.get(id);
}

// ---- tabs ----

for (const b of document.querySelectorAll("#tabs button")) {
  b.addEventListener("click", () => {
    for (const o of document.querySelectorAll("#tabs button")) o.classList.toggle("active", o === b);
    for (const s of document.querySelectorAll("main > section")) s.hidden = s.id !== "tab-" + b.dataset.tab;
    if (b.dataset.tab === "devices") loadDevices();
    if (b.dataset.tab === "gateways") loadGateways();
    if (b.dataset.tab === "learn") { loadWindows(); loadUnknown(); }
  });
}

// ---- live ----

// One row per live entry: {id, topic, gateway, time, payload}.
function describe(e) {
  const p = e.payload || {};
  const row = { time: e.time, gateway: e.gateway, topic: e.topic, sender: "", name: "", eep: "", values: "", rssi: "", events: "" };
  if (p.sensor) {
    row.sender = p.sensor.id;
    row.name = p.sensor.friendlyID;
    row.eep = p.sensor.eep;
  }
  if (p.telemetry) {
    const signal = (p.telemetry.signal || []).length > 0;
    row.values = signal ? "signal: " + values(p.telemetry.signal) : values(p.telemetry.data);
    row.rssi = p.raw ? p.raw.rssi : "";
    row.uuid = p.raw ? p.raw.uuid : "";
    row.kind = signal ? "signal" : "telemetry";
  } else if (p.meta && p.meta.events) {
    row.events = eventTexts(p.meta).join("; ");
    row.kind = "event";
  } else if (p.gateway_info) {
    row.sender = p.gateway_info.mac;
    row.name = "gateway " + (p.gateway_info.hardwareDescriptor || "");
    row.values = (p.usb_info || []).map((u) => u.usb_identifier + " " + u.usb_health).join(", ");
    row.events = "GATEWAY_HEALTH";
    row.kind = "gateway";
  } else {
    row.values = e.topic;
    row.kind = "other";
  }
  return row;
}

// Stream IDs are "<ms>-<seq>": after a reconnection the history repeats what was shown.
let lastId = [0, 0];
function isNew(id) {
  const [ms, seq] = String(id || "0-0").split("-").map(Number);
  if (ms < lastId[0] || (ms === lastId[0] && seq <= lastId[1])) return false;
  lastId = [ms, seq];
  return true;
}

function onLive(e) {
  if (!isNew(e.id)) return;
  const r = describe(e);
  remember(r, e.payload);
  if (r.kind === "event" && r.events.includes("DEVICE_TAUGHT_IN")) taughtIn(r);
  if ($("live-pause").checked) return;
  const tr = document.createElement("tr");
  tr.className = "kind-" + r.kind;
  tr.dataset.sender = r.sender || "";
  tr.dataset.name = (r.name || "").toLowerCase();
  if (r.uuid) tr.dataset.uuid = r.uuid;
  cell(tr, clock(r.time), "muted");
  cell(tr, r.sender, "mono");
  cell(tr, r.name);
  cell(tr, r.eep, "mono");
  cell(tr, r.values);
  cell(tr, r.rssi === "" ? "" : r.rssi + " dBm");
  cell(tr, r.gateway, "mono");
  cell(tr, r.events, r.events ? "ev" : "");
  tr.hidden = !matches(tr);
  const body = $("live-rows");
  body.insertBefore(tr, body.firstChild);
  while (body.rows.length > LIVE_MAX) body.deleteRow(body.rows.length - 1);
  liveCount++;
  $("live-count").textContent = liveCount + " received";
}

// What the devices table shows from the live stream: last values, last seen, best gateway.
function remember(r, p) {
  if (r.kind !== "telemetry" || !r.sender) return;
  const d = device(r.sender);
  d.lastValues = r.values;
  d.lastSeen = Math.round((r.time || Date.now()) / 1000);
  if (r.gateway && r.rssi !== "") {
    const best = d.gateways.get(r.gateway);
    if (best === undefined || r.rssi > best) d.gateways.set(r.gateway, r.rssi);
  }
  if (p && p.telemetry && p.telemetry.meta && p.telemetry.meta.stats) {
    d.total = p.telemetry.meta.stats[0].totalTelegramCount;
  }
}

// Messages that are not IoTC telemetry, events or gateway health (e.g. retained state or
// discovery topics) show only when asked for.
function matches(tr) {
  if (tr.classList.contains("kind-other") && !$("live-other").checked) return false;
  const f = $("live-filter").value.trim().toLowerCase();
  return !f || tr.dataset.sender.includes(f) || tr.dataset.name.includes(f);
}

function refilter() {
  for (const tr of $("live-rows").rows) tr.hidden = !matches(tr);
}
$("live-filter").addEventListener("input", refilter);
$("live-other").addEventListener("change", refilter);
$("live-clear").addEventListener("click", () => {
  $("live-rows").textContent = "";
  liveCount = 0;
  $("live-count").textContent = "";
});

function connect() {
  const src = new EventSource("events");
  const status = $("status");
  src.addEventListener("hello", () => {
    status.textContent = "live";
    status.className = "badge on";
  });
  src.addEventListener("live", (m) => {
    try { onLive(JSON.parse(m.data)); } catch (e) { console.error("bad live entry", e); }
  });
  src.addEventListener("lagged", (m) => {
    status.textContent = "live (skipped " + m.data + ")";
  });
  src.onerror = () => {
    status.className = "badge off";
    status.textContent = "reconnecting";
    if (src.readyState !== EventSource.CLOSED) return; // the browser retries by itself
    // Refused (e.g. 503: too many consoles): the browser gives up, so retry here.
    setTimeout(connect, RETRY_MS);
    fetch("events", { method: "HEAD" }).then((r) => {
      if (r.status === 503) status.textContent = "refused: too many consoles; retrying";
    }).catch(() => {});
  };
}

// ---- devices ----

async function loadDevices() {
  const r = await api("GET", "/devices");
  if (!r.ok) return say("dev-msg", r.error, false);
  const list = Array.isArray(r.data) ? r.data : [r.data];
  say("dev-msg", list.length + " devices", true);
  const body = $("dev-rows");
  body.textContent = "";
  const f = $("dev-filter").value.trim().toLowerCase();
  const shown = list.filter((dev) => !f || [dev.sourceEurid, dev.friendlyID, dev.location].join(" ").toLowerCase().includes(f));
  let fills = 0;
  for (const dev of shown.slice(0, DEV_MAX)) {
    const d = device(dev.sourceEurid);
    const tr = document.createElement("tr");
    tr.dataset.sender = dev.sourceEurid;
    cell(tr, dev.sourceEurid, "mono");
    cell(tr, dev.friendlyID);
    cell(tr, dev.eep, "mono");
    cell(tr, dev.location);
    const vals = cell(tr, d.lastValues);
    const seen = cell(tr, d.lastSeen ? ago(d.lastSeen) : "");
    cell(tr, best(d), "mono");
    const total = cell(tr, d.total);
    const actions = document.createElement("td");
    actions.append(
      action("show live", () => {
        $("live-filter").value = dev.sourceEurid;
        refilter();
        showTab("live");
      }),
      action("command", () => {
        $("cmd-id").value = dev.sourceEurid;
        showTab("command");
      }),
    );
    tr.appendChild(actions);
    body.appendChild(tr);
    if (!d.filled && fills++ < FILL_MAX) fillDevice(dev.sourceEurid, d, vals, seen, total);
  }
}

// Last values and counters from the API for devices not heard since the page opened.
async function fillDevice(id, d, vals, seen, total) {
  d.filled = true;
  const t = await api("GET", "/devices/telemetry/most-recent?sourceID=" + id);
  if (t.ok && Array.isArray(t.data) && t.data.length && !d.lastValues) {
    try { d.lastValues = values(JSON.parse(t.data[0].egressOutput).telemetry.data); } catch (_) {}
  }
  const s = await api("GET", "/devices/metadata/statistics/telegrams?sourceID=" + id);
  if (s.ok && Array.isArray(s.data) && s.data.length) {
    const st = s.data[0].meta.stats;
    d.lastSeen = Math.max(d.lastSeen || 0, Number(st.lastSeen) || 0);
    d.total = Math.max(d.total || 0, st.totalTelegramCount);
  }
  vals.textContent = d.lastValues || "";
  seen.textContent = d.lastSeen ? ago(d.lastSeen) : "";
  total.textContent = d.total == null ? "" : d.total;
}

function best(d) {
  let mac = "", rssi = -Infinity;
  for (const [m, v] of d.gateways) if (v > rssi) { mac = m; rssi = v; }
  return mac ? mac + " (" + rssi + " dBm)" : "";
}

let devTimer = 0;
$("dev-filter").addEventListener("input", () => {
  clearTimeout(devTimer);
  devTimer = setTimeout(loadDevices, 300);
});
$("dev-refresh").addEventListener("click", loadDevices);

// ---- gateways ----

async function loadGateways() {
  const [health, stats, usb] = await Promise.all([
    api("GET", "/system/health"),
    api("GET", "/gateways/metadata/statistics/telegrams"),
    api("GET", "/gateways/metadata/health"),
  ]);
  const failed = [health, stats, usb].find((r) => !r.ok);
  if (failed) return say("gw-msg", failed.error, false);
  const rows = new Map();
  const row = (mac) => rows.get(mac) || rows.set(mac, { mac }).get(mac);
  for (const g of health.data.gateway_info || []) Object.assign(row(g.mac), { status: g.status, heard: g.timestamp });
  for (const g of stats.data || []) Object.assign(row(g.gatewayInfo.mac), { info: g.gatewayInfo, stats: g.stats });
  for (const g of usb.data || []) Object.assign(row(g.gatewayInfo.mac), { usb: g.usbInfo });
  say("gw-msg", rows.size + " gateways; services: " + services(health.data.system_health), true);
  const body = $("gw-rows");
  body.textContent = "";
  for (const g of rows.values()) {
    const tr = document.createElement("tr");
    const info = g.info || {}, st = g.stats || {};
    cell(tr, g.mac, "mono");
    cell(tr, g.status || "unknown", "status-" + (g.status || "unknown"));
    cell(tr, info.hardwareDescriptor);
    cell(tr, info.softwareVersion);
    cell(tr, (g.usb || []).map((u) => u.usbIdentifier + " " + u.usbHealth).join(", "));
    cell(tr, g.heard ? new Date(g.heard).toLocaleString() : "");
    cell(tr, st.totalTelegramCount);
    cell(tr, st.succesfullyProcessed);
    cell(tr, st.notProcessed);
    body.appendChild(tr);
  }
}

function services(h) {
  return Object.entries(h || {}).map(([k, v]) => k + " " + v).join(", ");
}

$("gw-refresh").addEventListener("click", loadGateways);

// ---- learn and onboarding ----

async function loadWindows() {
  const r = await api("GET", "/devices/learn");
  if (!r.ok) return say("learn-msg", r.error, false);
  const ul = $("learn-windows");
  ul.textContent = "";
  for (const w of r.data || []) {
    const li = document.createElement("li");
    li.dataset.source = w.sourceID || "all";
    li.textContent = (w.sourceID ? "device " + w.sourceID : "all devices") + ": open for " + w.seconds + " s ";
    const b = document.createElement("button");
    b.textContent = "close";
    b.className = "learn-close";
    b.addEventListener("click", () => closeWindow(w.sourceID));
    li.appendChild(b);
    ul.appendChild(li);
  }
  if (!(r.data || []).length) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = "no window open";
    ul.appendChild(li);
  }
}

async function closeWindow(id) {
  const r = await api("DELETE", "/devices/learn" + (id ? "?sourceID=" + id : ""));
  say("learn-msg", r.ok ? "window closed" : r.error, r.ok);
  loadWindows();
}

$("learn-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const id = $("learn-id").value.trim();
  const q = new URLSearchParams({ seconds: $("learn-seconds").value });
  if (id) q.set("sourceID", id);
  const r = await api("POST", "/devices/learn?" + q);
  say("learn-msg", r.ok ? "window open for " + r.data.seconds + " s" : r.error, r.ok);
  loadWindows();
});

function taughtIn(r) {
  const none = $("taught-none");
  if (none) none.remove();
  const li = document.createElement("li");
  li.textContent = clock(r.time) + " " + r.sender + " " + r.events;
  $("taught").insertBefore(li, $("taught").firstChild);
}

async function loadUnknown() {
  const r = await api("GET", "/devices/unknown");
  const body = $("unknown-rows");
  body.textContent = "";
  if (!r.ok) return say("unknown-msg", r.error, false);
  const list = r.data || [];
  say("unknown-msg", list.length ? list.length + " unknown devices heard" : "no unknown device heard", true);
  for (const u of list) {
    const tr = document.createElement("tr");
    tr.dataset.sender = u.sourceEurid;
    cell(tr, u.sourceEurid, "mono");
    cell(tr, u.eep, "mono");
    cell(tr, u.manufacturer);
    cell(tr, ago(u.lastSeen));
    cell(tr, u.gateway, "mono");
    cell(tr, u.count);
    button(tr, "onboard", () => onboardUnknown(u)).className = "onboard";
    body.appendChild(tr);
  }
}

// One click when the EEP is known; otherwise the form is filled and asks for it.
async function onboardUnknown(u) {
  $("ob-id").value = u.sourceEurid;
  $("ob-eep").value = u.eep || "";
  $("ob-name").value = (u.eep ? u.eep + " " : "device ") + u.sourceEurid;
  if (!u.eep) {
    say("ob-msg", "choose the EEP of " + u.sourceEurid + ", then onboard", false);
    $("ob-eep").focus();
    return;
  }
  await onboard();
}

async function onboard() {
  const dev = {
    sourceEurid: $("ob-id").value.trim().toLowerCase(),
    eep: $("ob-eep").value.trim(),
    friendlyID: $("ob-name").value.trim(),
  };
  const location = $("ob-location").value.trim();
  if (location) dev.location = location;
  const r = await api("POST", "/devices", dev);
  say("ob-msg", r.ok ? "onboarded " + dev.sourceEurid : r.error, r.ok);
  if (r.ok) loadUnknown();
}

$("onboard-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  onboard();
});
$("unknown-refresh").addEventListener("click", loadUnknown);

// ---- commands ----

function commandPath(what) {
  return "/devices/" + what + "?sourceID=" + encodeURIComponent($("cmd-id").value.trim());
}

function showCommand(r, done) {
  say("cmd-msg", r.ok ? done : r.error, r.ok);
  $("cmd-out").textContent = r.data == null ? "" : JSON.stringify(r.data, null, 2);
}

$("cmd-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const body = $("cmd-body").value;
  try { JSON.parse(body); } catch (e) { return say("cmd-msg", "the body is not JSON: " + e.message, false); }
  showCommand(await api("POST", commandPath("command"), body), "command accepted");
});
$("cmd-queue").addEventListener("click", async () => showCommand(await api("GET", commandPath("queue")), "queue"));
$("cmd-clear").addEventListener("click", async () => showCommand(await api("DELETE", commandPath("queue")), "queue cleared"));

// ---- start ----

connect();
loadDevices();
setInterval(() => {
  if (!$("tab-devices").hidden) loadDevices();
  if (!$("tab-gateways").hidden) loadGateways();
  if (!$("tab-learn").hidden) loadWindows();
}, REFRESH_MS);
