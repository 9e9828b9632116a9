#!/usr/bin/env python3
"""Runs a real Home Assistant core against a broker iotc publishes to, and checks through
HA's REST API (/api/states) that the discovered entities exist with the states iotc's state
topics hold. Used by scripts/ha-check.sh, with the Python of the Home Assistant venv.

  ha_check.py run --dir DIR --mqtt-port P --http-port H --device ID:NAME ...
  ha_check.py --lists     prints the schema lists of tests/tests/ha_support/lists.rs
"""

import argparse
import asyncio
import base64
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import datetime, timezone


def config_files(root, mqtt_port, http_port, frontend):
    """configuration.yaml and the MQTT config entry (the integration has no YAML for it); with
    the frontend, onboarding marked done so its pages open."""
    os.makedirs(os.path.join(root, ".storage"), exist_ok=True)
    with open(os.path.join(root, "configuration.yaml"), "w") as f:
        f.write(
            "homeassistant:\n  name: iotc-check\n  unit_system: metric\n  time_zone: UTC\n"
            "  latitude: 0\n  longitude: 0\n  elevation: 0\n"
            f"http:\n  server_host: 127.0.0.1\n  server_port: {http_port}\napi:\n"
            + ("frontend:\n" if frontend else "")
        )
    if frontend:
        done = {"done": ["user", "core_config", "analytics", "integration"]}
        with open(os.path.join(root, ".storage", "onboarding"), "w") as f:
            json.dump({"version": 4, "minor_version": 1, "key": "onboarding", "data": done}, f)
    now = datetime.now(timezone.utc).isoformat()
    entry = {
        "entry_id": uuid.uuid4().hex, "version": 1, "minor_version": 2, "domain": "mqtt",
        "title": "mosquitto", "data": {"broker": "127.0.0.1", "port": mqtt_port},
        "options": {"discovery": True, "discovery_prefix": "homeassistant"},
        "pref_disable_new_entities": False, "pref_disable_polling": False, "source": "user",
        "unique_id": None, "disabled_by": None, "discovery_keys": {}, "subentries": [],
        "created_at": now, "modified_at": now,
    }
    store = {"version": 1, "minor_version": 5, "key": "core.config_entries",
             "data": {"entries": [entry]}}
    with open(os.path.join(root, ".storage", "core.config_entries"), "w") as f:
        json.dump(store, f)
    return auth_file(root, now)


def auth_file(root, now):
    """An owner (an administrator: HA puts the users of a store without groups into its admin
    group) with a long-lived refresh token; service calls need an administrator. Returns the
    token's id and key."""
    user = uuid.uuid4().hex
    token = {"id": uuid.uuid4().hex, "jwt_key": os.urandom(32).hex(), "token": os.urandom(32).hex()}
    data = {
        "users": [{"id": user, "group_ids": [], "is_owner": True, "is_active": True,
                   "name": "iotc-check", "system_generated": False, "local_only": False}],
        "groups": [], "credentials": [],
        "refresh_tokens": [{
            **token, "user_id": user, "client_id": None, "client_name": "iotc-check",
            "client_icon": None, "token_type": "long_lived_access_token", "created_at": now,
            "access_token_expiration": 86400.0,
            "last_used_at": None, "last_used_ip": None, "expire_at": None,
            "credential_id": None}],
    }
    with open(os.path.join(root, ".storage", "auth"), "w") as f:
        json.dump({"version": 1, "minor_version": 1, "key": "auth", "data": data}, f)
    return token


def access_token(token):
    """A JWT HA accepts: signed with the refresh token's jwt_key, iss = its id."""
    import jwt  # PyJWT, a dependency of Home Assistant

    now = int(time.time())
    claims = {"iss": token["id"], "iat": now, "exp": now + 3600}
    return jwt.encode(claims, token["jwt_key"], algorithm="HS256")


def states(http_port, token):
    req = urllib.request.Request(
        f"http://127.0.0.1:{http_port}/api/states",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def retained(mqtt_port, topic):
    out = subprocess.run(
        ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(mqtt_port), "-t", topic, "-C", "1",
         "-W", "10"], capture_output=True, text=True)
    return json.loads(out.stdout) if out.stdout.strip() else {}


def call(http_port, token, service, data):
    domain, name = service.split(".", 1)
    req = urllib.request.Request(
        f"http://127.0.0.1:{http_port}/api/services/{domain}/{name}",
        data=json.dumps(data).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()


def command(args, token, all_states, spec):
    """Calls a service on an entity and returns what does not match in the command iotc's
    control topic gets. spec: NAME|SERVICE|DATA|TOPIC|KEY=VALUE,... (VALUE as JSON, or
    `state:<key>` for the device's retained state; KEY `channel` is the body's channel)."""
    name, service, data, topic, want = spec.split("|")
    entity = by_name(all_states, name)
    if entity is None:
        return [f"no entity '{name}'"]
    sub = subprocess.Popen(
        ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(args.mqtt_port), "-t", topic, "-C", "1",
         "-W", "15"], stdout=subprocess.PIPE, text=True)
    time.sleep(1)
    call(args.http_port, token, service, {"entity_id": entity["entity_id"], **json.loads(data)})
    out, _ = sub.communicate()
    if not out.strip():
        return [f"{service} on '{name}' sent nothing to {topic}"]
    body = json.loads(out)
    values = body if isinstance(body, list) else body.get("values", [])
    got = {v["key"]: v["value"] for v in values}
    if isinstance(body, dict) and "channel" in body:
        got["channel"] = body["channel"]
    problems = []
    for pair in want.split(","):
        key, value = pair.split("=", 1)
        close = False
        if value.startswith("state:"):
            # HA rounds a climate's current temperature to its precision (0.1).
            device_state = retained(args.mqtt_port, topic.rsplit("/", 1)[0] + "/state")
            value = json.dumps(device_state.get(value.removeprefix("state:")))
            close = isinstance(got.get(key), (int, float)) and json.loads(value) is not None \
                and abs(got[key] - json.loads(value)) <= 0.05 + 1e-9
        if got.get(key) != json.loads(value) and not close:
            problems.append(f"{service} on '{name}': {key} is {got.get(key)!r}, not {value}")
    if not problems:
        print(f"{service} on '{name}' sent {out.strip()}")
    return problems


def device_id(http_port, token, entity_id):
    req = urllib.request.Request(
        f"http://127.0.0.1:{http_port}/api/template",
        data=json.dumps({"template": f"{{{{ device_id('{entity_id}') }}}}"}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read().decode().strip()


def screenshots(args, refresh, token):
    """Home Assistant's pages in headless Chromium, driven over the DevTools protocol: the
    overview and the device pages of the entities given (--screenshot-device ENTITY=FILE)."""
    base = f"http://127.0.0.1:{args.http_port}"
    tokens = {"access_token": token, "token_type": "Bearer", "expires_in": 3600,
              "hassUrl": base, "clientId": base + "/", "refresh_token": refresh["token"],
              "expires": int(time.time() * 1000) + 3_600_000}
    pages = [("/lovelace/0", "ha-overview.png")]
    for spec in args.screenshot_device:
        entity, name = spec.split("=", 1)
        pages.append((f"/config/devices/device/{device_id(args.http_port, token, entity)}", name))
    asyncio.run(capture(args.screenshots, base, tokens, pages))


async def capture(folder, base, tokens, pages):
    import aiohttp  # a dependency of Home Assistant

    os.makedirs(folder, exist_ok=True)
    port = free_port()
    profile = os.path.join(folder, ".chromium-profile")
    chromium = subprocess.Popen(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--hide-scrollbars", "--window-size=1280,860", f"--remote-debugging-port={port}",
         f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    async with http.put(f"http://127.0.0.1:{port}/json/new?about:blank") as r:
                        target = await r.json(content_type=None)
                    break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.2)
            else:
                sys.exit("chromium's DevTools did not answer")
            async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                ids = iter(range(1, 1_000_000))

                async def cdp(method, **params):
                    n = next(ids)
                    await ws.send_json({"id": n, "method": method, "params": params})
                    async for msg in ws:
                        data = json.loads(msg.data)
                        if data.get("id") == n:
                            return data.get("result", {})

                await cdp("Page.navigate", url=base + "/manifest.json")
                await asyncio.sleep(1)
                await cdp("Runtime.evaluate", expression=(
                    f"localStorage.setItem('hassTokens', {json.dumps(json.dumps(tokens))})"))
                for path, name in pages:
                    await cdp("Page.navigate", url=base + path)
                    await asyncio.sleep(8)
                    shot = await cdp("Page.captureScreenshot", format="png")
                    with open(os.path.join(folder, name), "wb") as f:
                        f.write(base64.b64decode(shot["data"]))
                    print(f"screenshot {os.path.join(folder, name)}")
    finally:
        chromium.terminate()
        chromium.wait(10)
        subprocess.run(["rm", "-rf", profile])


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def onoff(args, all_states, spec):
    """NAME=ID:KEY: the entity is `on` when the device's state has KEY above 0, `off` at 0 and
    `unknown` without a number there."""
    name, source = spec.split("=", 1)
    eurid, key = source.split(":", 1)
    value = retained(args.mqtt_port, args.state_topic.replace("<ID>", eurid)).get(key)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        want = "unknown"
    else:
        want = "on" if value > 0 else "off"
    s = by_name(all_states, name)
    if s is None or s["state"] != want:
        return [f"'{name}' is {s and s['state']}, iotc's {key} {value!r} says {want}"]
    return []


def by_name(all_states, name):
    return next((s for s in all_states if s["attributes"].get("friendly_name") == name), None)


def problems(all_states, device, state):
    """What does not match for one device: missing entities or states unlike iotc's."""
    out = []
    checks = {
        "Temperature": state.get("temperature"),
        "Humidity": state.get("humidity"),
        "Illumination": state.get("illumination"),
        "RSSI": state.get("rssi"),
    }
    for name, want in checks.items():
        if want is None or not isinstance(want, (int, float)):
            continue
        s = by_name(all_states, f"{device} {name}")
        if s is None:
            out.append(f"no entity '{device} {name}'")
        elif s["state"] in ("unavailable", "unknown") or abs(float(s["state"]) - want) > 1e-6:
            out.append(f"'{device} {name}' is {s['state']}, iotc says {want}")
    if "contact" in state:
        s = by_name(all_states, f"{device} Contact")
        want = "on" if state["contact"] == "open" else "off"
        if s is None or s["state"] != want:
            out.append(f"'{device} Contact' is {s and s['state']}, iotc says {state['contact']}")
    return out


def run(args):
    root = args.dir
    refresh = config_files(root, args.mqtt_port, args.http_port, bool(args.screenshots))
    log = open(os.path.join(root, "hass.log"), "w")
    hass = subprocess.Popen([args.hass, "-c", root], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + args.timeout
    try:
        token = access_token(refresh)
        last = ["Home Assistant did not answer"]
        while time.time() < deadline:
            time.sleep(3)
            if hass.poll() is not None:
                sys.exit(f"Home Assistant exited with {hass.returncode}; see {root}/hass.log")
            try:
                all_states = states(args.http_port, token)
            except OSError as e:
                last = [f"/api/states: {e}"]
                continue
            last = []
            for spec in args.device:
                eurid, name = spec.split(":", 1)
                state = retained(args.mqtt_port, args.state_topic.replace("<ID>", eurid))
                if not state:
                    last.append(f"no retained state of {eurid}")
                    continue
                last += problems(all_states, name, state)
            for name in args.entity:
                if by_name(all_states, name) is None:
                    last.append(f"no entity '{name}'")
            for spec in args.onoff:
                last += onoff(args, all_states, spec)
            for name in args.event:
                if not any(s["entity_id"].startswith("event.") and
                           s["attributes"].get("friendly_name", "").startswith(name)
                           for s in all_states):
                    last.append(f"no event entity of '{name}'")
            if not last:
                for spec in args.command:
                    last += command(args, token, all_states, spec)
                if last:
                    break
                names = [d.split(":", 1)[1] for d in args.device] + args.event + ["iotc"]
                names += args.entity
                found = [s["entity_id"] for s in all_states
                         if s["attributes"].get("friendly_name", "").startswith(tuple(names))
                         and not s["entity_id"].startswith("zone.")]
                for spec in args.onoff:
                    name = spec.split("=", 1)[0]
                    print(f"'{name}' is {by_name(all_states, name)['state']}, as iotc's state says")
                print(f"Home Assistant shows {len(found)} iotc entities with iotc's states:")
                for s in sorted(found):
                    print("  ", s)
                if args.screenshots:
                    screenshots(args, refresh, token)
                return
        sys.exit("Home Assistant check failed:\n  " + "\n  ".join(last))
    finally:
        hass.terminate()
        try:
            hass.wait(30)
        except subprocess.TimeoutExpired:
            hass.kill()


def lists():
    from enum import Enum

    from homeassistant.components.binary_sensor import BinarySensorDeviceClass
    from homeassistant.components.event import EventDeviceClass
    from homeassistant.components.mqtt.abbreviations import DEVICE_ABBREVIATIONS
    from homeassistant.components.sensor.const import (
        DEVICE_CLASS_STATE_CLASSES, DEVICE_CLASS_UNITS, SensorDeviceClass, SensorStateClass)

    def units(dc):
        out = set()
        for u in DEVICE_CLASS_UNITS.get(dc, set()):
            if isinstance(u, type):
                out |= {m.value for m in u}
            else:
                out.add(u.value if isinstance(u, Enum) else u)
        return sorted(out, key=lambda x: (x is None, x or ""))

    def strs(items):
        return ", ".join(f'"{s}"' for s in items)

    print("/// Sensor device classes and the units each accepts (`None` = no unit).")
    print("pub const SENSOR_UNITS: &[(&str, &[Option<&str>])] = &[")
    for dc in SensorDeviceClass:
        us = ", ".join("None" if u is None else f'Some("{u}")' for u in units(dc))
        print(f'    ("{dc.value}", &[{us}]),')
    print("];")
    print("/// Sensor state classes.")
    print(f"pub const STATE_CLASSES: &[&str] = &[{strs(s.value for s in SensorStateClass)}];")
    print("/// Binary sensor device classes.")
    print(f"pub const BINARY_SENSOR_CLASSES: &[&str] = "
          f"&[{strs(s.value for s in BinarySensorDeviceClass)}];")
    print("/// Event device classes.")
    print(f"pub const EVENT_CLASSES: &[&str] = &[{strs(s.value for s in EventDeviceClass)}];")
    print("/// Device keys (full names).")
    print(f"pub const DEVICE_KEYS: &[&str] = "
          f"&[{strs(sorted(set(DEVICE_ABBREVIATIONS.values())))}];")
    print("/// The keys each component's discovery schema accepts.")
    print("pub const COMPONENT_KEYS: &[(&str, &[&str])] = &[")
    for comp, keys in component_keys():
        print(f'    ("{comp}", &[{strs(keys)}]),')
    print("];")
    print("/// State classes each sensor device class accepts.")
    print("pub const SENSOR_STATE_CLASSES: &[(&str, &[&str])] = &[")
    for dc in SensorDeviceClass:
        sc = sorted(s.value for s in DEVICE_CLASS_STATE_CLASSES.get(dc, set()))
        print(f'    ("{dc.value}", &[{strs(sc)}]),')
    print("];")


def component_keys():
    """The keys of each MQTT platform's discovery schema iotc publishes configs for."""
    import importlib

    platforms = [("binary_sensor", "binary_sensor", "DISCOVERY_SCHEMA"),
                 ("climate", "climate", "DISCOVERY_SCHEMA"),
                 ("cover", "cover", "DISCOVERY_SCHEMA"),
                 ("event", "event", "DISCOVERY_SCHEMA"),
                 ("light", "light.schema_basic", "DISCOVERY_SCHEMA_BASIC"),
                 ("sensor", "sensor", "DISCOVERY_SCHEMA"),
                 ("switch", "switch", "DISCOVERY_SCHEMA"),
                 ("valve", "valve", "DISCOVERY_SCHEMA")]
    for comp, module, attr in platforms:
        schema = getattr(importlib.import_module(f"homeassistant.components.mqtt.{module}"), attr)
        while not isinstance(getattr(schema, "schema", None), dict):
            schema = schema.validators[0]
        yield comp, sorted(str(k) for k in schema.schema)


def main():
    if sys.argv[1:] == ["--lists"]:
        return lists()
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--dir", required=True)
    r.add_argument("--hass", required=True)
    r.add_argument("--mqtt-port", type=int, required=True)
    r.add_argument("--http-port", type=int, required=True)
    r.add_argument("--state-topic", default="sensor/<ID>/state")
    r.add_argument("--device", action="append", default=[], help="EURID:friendly name")
    r.add_argument("--event", action="append", default=[], help="friendly name of a switch")
    r.add_argument("--entity", action="append", default=[], help="an entity's friendly name")
    r.add_argument("--onoff", action="append", default=[],
                   help="NAME=ID:KEY: a switch or light whose state follows KEY of ID's state")
    r.add_argument("--command", action="append", default=[],
                   help="NAME|SERVICE|DATA|TOPIC|KEY=VALUE,...: a service call and its command")
    r.add_argument("--screenshots", help="folder: screenshots of Home Assistant's pages")
    r.add_argument("--screenshot-device", action="append", default=[],
                   help="ENTITY_ID=FILE: the device page of an entity's device")
    r.add_argument("--timeout", type=int, default=240)
    run(p.parse_args())


if __name__ == "__main__":
    main()
