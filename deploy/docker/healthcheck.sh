#!/bin/bash
# Container health check without curl: GET /healthz over bash's /dev/tcp, healthy on "200".
#   iotc-healthcheck PORT_VARIABLE DEFAULT_PORT
# The port is the service's own setting (e.g. IOTC_API_PORT) when set, so moving a service to
# another port does not make its container unhealthy.
set -eu
variable="${1:?usage: iotc-healthcheck PORT_VARIABLE DEFAULT_PORT}"
port="${!variable:-${2:?usage: iotc-healthcheck PORT_VARIABLE DEFAULT_PORT}}"
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
read -r -t 5 _ status _ <&3
[ "$status" = 200 ]
