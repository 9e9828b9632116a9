#!/bin/bash
# Proxy health check without curl or wget: GET /healthz over bash's /dev/tcp, healthy on "200".
#   healthcheck.sh PORT_VARIABLE DEFAULT_PORT
# The port is the proxy's own setting (IOTC_PROXY_HEALTH_PORT) when set.
set -eu
variable="${1:?usage: healthcheck.sh PORT_VARIABLE DEFAULT_PORT}"
port="${!variable:-${2:?usage: healthcheck.sh PORT_VARIABLE DEFAULT_PORT}}"
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
read -r -t 5 _ status _ <&3
[ "$status" = 200 ]
