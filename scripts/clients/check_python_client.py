"""Uses the Python client that openapi-python-client generated from iotc-api's OpenAPI document
against a running API (real Redis), the way an IoTC user's script would. Exits non-zero on the
first answer that differs from what the API documents.

    python3 check_python_client.py BASE_URL USER PASSWORD   (the generated package on PYTHONPATH)
"""

import datetime
import sys

from iotc_client import Client
from iotc_client.api.backup import backup_get, backup_post
from iotc_client.api.devices import (
    device_delete,
    device_get,
    device_get_metadata_statitics_telegram,
    device_post,
    device_put,
)
from iotc_client.api.gateways import (
    gateway_get,
    gateway_get_metadata_health,
    gateway_get_metadata_statitics_telegram,
)
from iotc_client.api.system import system_health_get
from iotc_client.models import BackupImport, EnOceanSensor, Error, SensorImport


def check(what, got, want):
    if got != want:
        sys.exit(f"python client: {what}: got {got!r}, want {want!r}")
    print(f"ok  {what}")


def main(base, user, password):
    api = Client(base_url=f"{base}/api.beta/v1", httpx_args={"auth": (user, password)})

    # Onboard as IoTC's docs show it; the answer is the stored device.
    sensor = EnOceanSensor(
        eep="a5-04-05", friendly_id="Room Panel 02", source_eurid="A1B2C3D4", location="Level 2"
    )
    r = device_post.sync_detailed(client=api, body=sensor)
    check("POST /devices status", r.status_code, 200)
    check("POST /devices answer", (r.parsed.source_eurid, r.parsed.eep), ("a1b2c3d4", "a5-04-05"))

    # The list, with and without IoTC's default destinationID.
    for kwargs in ({}, {"destination_id": "FFFFFFFF"}):
        listed = device_get.sync(client=api, **kwargs)
        check(f"GET /devices {kwargs} is a list", isinstance(listed, list), True)
        check(f"GET /devices {kwargs} ids", [d.source_eurid for d in listed], ["a1b2c3d4"])
    one = device_get.sync(client=api, source_id="a1b2c3d4")
    check("GET /devices?sourceID is one device", isinstance(one, EnOceanSensor), True)
    check("GET /devices?sourceID location", one.location, "Level 2")

    one.friendly_id = "Renamed"
    r = device_put.sync_detailed(client=api, source_id="a1b2c3d4", body=one)
    check("PUT /devices", (r.status_code, r.parsed.friendly_id), (200, "Renamed"))

    r = device_get_metadata_statitics_telegram.sync_detailed(client=api, source_id="a1b2c3d4")
    check("device statistics before any telegram", r.status_code, 204)

    # Empty collections are empty lists.
    check("GET /gateways", gateway_get.sync(client=api), [])
    check("GET gateway statistics", gateway_get_metadata_statitics_telegram.sync(client=api), [])
    check("GET gateway health", gateway_get_metadata_health.sync(client=api), [])
    health = system_health_get.sync(client=api)
    check("GET /system/health redis", health.system_health.redis, "running")

    # Dump, then restore it the way IoTC wrote it (string booleans, lower-case EEP).
    dump = backup_get.sync(client=api)
    check("GET /backup devices", len(dump.connections), 1)
    restore = BackupImport(
        api_version="1.2.0",
        # IoTC wrote it without an offset (Python's naive isoformat).
        export_date=datetime.datetime(2022, 5, 18, 9, 25, 33),
        connections=[
            SensorImport(
                eep="d2-14-41", friendly_id="Multisensor", source_eurid="0413D759",
                active_flag="false", is_ptm="false",
            )
        ],
    )
    r = backup_post.sync_detailed(client=api, body=restore)
    check("POST /backup", r.status_code, 200)
    restored = device_get.sync(client=api, source_id="0413d759")
    check("restored device", (restored.eep, restored.active_flag), ("d2-14-41", False))
    check("restore replaced the rest", len(device_get.sync(client=api)), 1)

    r = device_delete.sync_detailed(client=api, source_id="0413d759")
    check("DELETE /devices", r.status_code, 200)
    gone = device_get.sync(client=api, source_id="0413d759")
    check("deleted device is an Error", isinstance(gone, Error), True)
    check("deleted device error code", gone.code, "DEVICE_NOT_FOUND")

    wrong = Client(base_url=f"{base}/api.beta/v1", httpx_args={"auth": (user, "wrong")})
    check("wrong password", device_get.sync_detailed(client=wrong).status_code, 401)


if __name__ == "__main__":
    main(*sys.argv[1:4])
