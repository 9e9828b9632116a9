#!/bin/bash
# Container health check without curl: GET /healthz on the service's own port over bash's
# /dev/tcp, healthy on "200". The port comes from IOTC_HEALTH_PORT (set per image).
set -eu
port="${IOTC_HEALTH_PORT:?IOTC_HEALTH_PORT is not set}"
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
read -r -t 5 _ status _ <&3
[ "$status" = 200 ]
