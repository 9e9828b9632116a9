#!/usr/bin/env bash
# Installs the machine packages iotc's run and test commands need, when they are missing.
# Debian/Ubuntu with apt; run as root (CI is root). Safe to run again.
set -euo pipefail

packages=()
need() { command -v "$1" >/dev/null 2>&1 || packages+=("$2"); }
need redis-server redis-server
need redis-cli redis-tools
need mosquitto mosquitto
need mosquitto_sub mosquitto-clients
need nginx nginx
need htpasswd apache2-utils
need openssl openssl
need docker-compose docker-compose
need python3 python3
# The container check (scripts/container-check.sh): podman with runc, and debootstrap for the
# Debian base image.
need podman podman
need buildah buildah
need runc runc
need debootstrap debootstrap
# Compose networks resolve service names (redis, api, ...) with podman's CNI dnsname plugin.
[ -x /usr/lib/cni/dnsname ] || packages+=(golang-github-containernetworking-plugin-dnsname)
# A pod's infra container (the Azure container group check) runs podman's catatonit.
[ -x /usr/libexec/podman/catatonit ] || command -v catatonit >/dev/null 2>&1 || packages+=(catatonit)
need curl curl
# The API client checks (scripts/api-clients.sh): generators from PyPI and npm.
need npm npm
python3 -c 'import ensurepip, venv' 2>/dev/null || packages+=(python3-venv)
if [ "${IOTC_WITH_BROWSER:-1}" = 1 ]; then need chromium chromium; fi

if [ ${#packages[@]} -gt 0 ]; then
  echo "installing: ${packages[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
# Debian starts nothing by itself in containers, but a host may have started the packaged
# services; the tests always start their own on free ports, so that does not matter.
