#!/usr/bin/env bash
# The container check: builds every image of the project and runs the deployment files the way
# users do, then checks the running containers (docs/deploy.md, "Container check").
#
#   scripts/container-check.sh
#
# 1. installs podman, buildah, runc, debootstrap, docker-compose (Debian packages) when missing;
# 2. makes the Debian bookworm base image with debootstrap (kept for later runs);
# 3. builds the release binaries once on the host and packages them (BINARIES=prebuilt), builds
#    the proxy and stand-ins for redis and mosquitto from Debian packages;
# 4. runs docker-compose.yml (docker-compose through podman's Docker API) with an IoTC-style
#    .env and test certificates, and checks health, the simulator through the proxy (exactly
#    once), the API's Basic auth, the 307 redirect, an engine killed under load, down/up with
#    the Redis volume, non-root users and stopping on SIGTERM;
# 5. runs deploy/azure/docker-compose.yml in one podman pod (shared localhost, as ACI) and
#    checks health, the simulator and the API through the proxy.
#
# Uses the host ports 80, 443, 8080 and 1883. Cleans up everything it started, also on failure
# or Ctrl-C; ends with a one-line summary and exits non-zero when any check failed.
# Settings: IOTC_CT_KEEP_BASE=0 rebuilds the base image; IOTC_CT_SIM_COUNT telegrams per run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
started=$(date +%s)

project=iotcct            # compose project (containers iotcct_<service>_1)
pod=iotcaci               # the Azure pod
base=localhost/debian:bookworm-slim
prefix=localhost/iotc
sim_count=${IOTC_CT_SIM_COUNT:-2000}

work=$(mktemp -d /var/tmp/iotc-ct.XXXXXX)
passed=()
failed=()
service_pid=""
health_pid=""

log() { echo "== container-check [+$(($(date +%s) - started)) s]: $*"; }
pass() {
    passed+=("$1")
    echo "   ok: $1"
}
fail() {
    failed+=("$1")
    echo "   FAILED: $1" >&2
}
# check NAME COMMAND...: runs COMMAND, records the result.
check() {
    local name="$1"
    shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}

summary() {
    local status="$1" seconds=$(($(date +%s) - started))
    if [ "$status" -eq 0 ] && [ ${#failed[@]} -eq 0 ] && [ ${#passed[@]} -gt 0 ]; then
        echo "container-check: ${#passed[@]} checks passed in ${seconds} s"
    elif [ ${#failed[@]} -eq 0 ]; then
        echo "container-check: stopped (exit status $status) after ${#passed[@]} checks passed, in ${seconds} s"
    else
        echo "container-check: ${#failed[@]} of $((${#passed[@]} + ${#failed[@]})) checks FAILED in ${seconds} s: ${failed[*]}"
    fi
}

# ---- podman ----------------------------------------------------------------------------

# Our own engine settings, not the machine's: runc (crun fails on hybrid cgroup hosts) and no
# default rlimits (refused in some containers).
export CONTAINERS_CONF="$work/containers.conf"
cat >"$CONTAINERS_CONF" <<'EOF'
[containers]
default_ulimits = []

[engine]
runtime = "runc"
EOF
export DOCKER_HOST="unix://$work/podman.sock"
export COMPOSE_HTTP_TIMEOUT=300

compose() {
    docker-compose -p "$project" --project-directory "$work/local" \
        -f "$work/local/docker-compose.yml" "$@"
}

cleanup() {
    local status=$?
    set +e
    log "cleaning up"
    [ -n "$health_pid" ] && kill "$health_pid" 2>/dev/null
    if [ -f "$work/local/docker-compose.yml" ] && [ -n "$service_pid" ]; then
        compose down -v --timeout 10 >/dev/null 2>&1
    fi
    podman pod rm -f -t 10 "$pod" >/dev/null 2>&1
    podman volume rm -f "$pod-redis" >/dev/null 2>&1
    # Anything of ours left over (a compose run that died half way).
    podman ps -a --format '{{.Names}}' | grep -E "^($project|$pod)[_-]" | xargs -r podman rm -f -v >/dev/null 2>&1
    podman volume ls --format '{{.Name}}' | grep -E "^${project}_" | xargs -r podman volume rm -f >/dev/null 2>&1
    podman network rm -f "${project}_default" >/dev/null 2>&1
    if [ -n "$service_pid" ]; then
        kill "$service_pid" 2>/dev/null
        wait "$service_pid" 2>/dev/null
    fi
    rm -rf "$work"
    summary "$status"
    [ "$status" -eq 0 ] && [ ${#failed[@]} -eq 0 ] && [ ${#passed[@]} -gt 0 ] && exit 0
    exit 1
}
trap cleanup EXIT
trap 'exit 130' INT TERM

install_engine() {
    local packages=()
    need() { command -v "$1" >/dev/null 2>&1 || packages+=("$2"); }
    need podman podman
    need buildah buildah
    need runc runc
    need debootstrap debootstrap
    # Compose networks resolve service names (redis, api, ...) with podman's CNI dnsname plugin.
    [ -x /usr/lib/cni/dnsname ] || packages+=(golang-github-containernetworking-plugin-dnsname)
    # A pod's infra container (the Azure container group check) runs podman's catatonit.
    [ -x /usr/libexec/podman/catatonit ] || command -v catatonit >/dev/null 2>&1 || packages+=(catatonit)
    need docker-compose docker-compose
    need mosquitto_sub mosquitto-clients
    need curl curl
    need openssl openssl
    if [ ${#packages[@]} -gt 0 ]; then
        log "installing ${packages[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${packages[@]}" >/dev/null
    fi
}

start_api_service() {
    podman system service --time=0 "$DOCKER_HOST" >"$work/podman-service.log" 2>&1 &
    service_pid=$!
    for _ in $(seq 1 100); do
        [ -S "$work/podman.sock" ] && return 0
        sleep 0.1
    done
    echo "podman system service did not start:" >&2
    cat "$work/podman-service.log" >&2
    return 1
}

# Podman without systemd has no timer to run health checks: run every declared check of our
# containers every 2 s, as Docker's daemon would on its interval.
start_health_runner() {
    (
        set +e +o pipefail
        while :; do
            podman ps --format '{{.Names}}' | grep -E "^($project|$pod)[_-]" |
                while read -r name; do podman healthcheck run "$name" </dev/null >/dev/null 2>&1; done
            sleep 2
        done
    ) &
    health_pid=$!
}

# ---- images ----------------------------------------------------------------------------

# Debian bookworm from Debian's archive, slimmed like the official debian:bookworm-slim.
make_base() {
    if [ "${IOTC_CT_KEEP_BASE:-1}" = 1 ] && podman image exists "$base"; then
        log "base image $base exists"
        return 0
    fi
    log "making $base with debootstrap"
    local rootfs="$work/rootfs"
    debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 ||
        {
            tail -20 "$work/debootstrap.log" >&2
            return 1
        }
    # The official slim images drop documentation and locales, also for later installs.
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
    # ... and keep no downloaded packages or package caches in an image layer.
    cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    rm -rf "$rootfs"/usr/share/{man,info,locale,lintian}/* "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/log/*.log
    tar -C "$rootfs" -c . | podman import --change 'CMD ["bash"]' - "$base" >/dev/null
    rm -rf "$rootfs"
}

build_release() {
    log "release build of the binaries (host, bookworm glibc)"
    cargo build --release --locked -p iotc-ingress -p iotc-engine -p iotc-api -p iotc-cli
    bin="${CARGO_TARGET_DIR:-$root/target}/release"
}

# Build context of the prebuilt images: only the four binaries.
prebuilt_context() {
    local ctx="$work/context"
    mkdir -p "$ctx/target/release"
    cp "$bin/iotc" "$bin/iotc-ingress" "$bin/iotc-engine" "$bin/iotc-api" "$ctx/target/release/"
    echo "$ctx"
}

build_images() {
    local ctx target
    ctx=$(prebuilt_context)
    for target in ingress engine api; do
        log "image $prefix/$target"
        podman build -q --format docker --pull=never --build-arg BINARIES=prebuilt --build-arg "BASE_IMAGE=$base" \
            -f deploy/docker/Dockerfile --target "$target" -t "$prefix/$target:latest" "$ctx" >/dev/null
    done
    log "image $prefix/proxy"
    podman build -q --format docker --pull=never --build-arg "BASE_IMAGE=$base" -t "$prefix/proxy:latest" deploy/nginx >/dev/null
    log "stand-in images for redis and mosquitto (Debian packages)"
    podman build -q --format docker --pull=never --build-arg "BASE_IMAGE=$base" -t localhost/iotc-test/redis:bookworm \
        deploy/test-images/redis >/dev/null
    podman build -q --format docker --pull=never --build-arg "BASE_IMAGE=$base" -t localhost/iotc-test/mosquitto:bookworm \
        deploy/test-images/mosquitto >/dev/null
    export IOTC_IMAGE_PREFIX="$prefix" IOTC_IMAGE_TAG=latest
    export IOTC_REDIS_IMAGE=localhost/iotc-test/redis:bookworm
    export IOTC_MQTT_IMAGE=localhost/iotc-test/mosquitto:bookworm
}

print_sizes() {
    log "image sizes"
    podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' |
        grep -E "^($prefix/|localhost/iotc-test/|$base)" | sort | sed 's/^/   /'
    local name bytes
    for name in ingress engine api; do
        bytes=$(podman image inspect --format '{{.Size}}' "$prefix/$name:latest")
        check "image $name is under 100 MB ($((bytes / 1000000)) MB)" [ "$bytes" -lt 100000000 ]
    done
}

# ---- the checks, shared by both deployments ---------------------------------------------

# An IoTC user's .env: IoTC's variables only (the license key is ignored).
write_env() {
    gw_user=gateway
    gw_pass="gw-$(openssl rand -hex 8)"
    api_user="admin"
    api_pass="api-$(openssl rand -hex 8)"
    cat >"$1" <<EOF
IOT_LICENSE_KEY=AAAAA-BBBBB-CCCCC-DDDDD
IOT_GATEWAY_USERNAME=$gw_user
IOT_GATEWAY_PASSWORD=$gw_pass
BASIC_AUTH_USERNAME=$api_user
BASIC_AUTH_PASSWORD=$api_pass
IOT_AUTH_CALLBACK=localhost:8080
EOF
}

# wait_healthy NAME...: until every named container reports healthy (at most 3 minutes).
wait_healthy() {
    local name status all
    for _ in $(seq 1 90); do
        all=1
        for name in "$@"; do
            status=$(podman inspect --format '{{.State.Health.Status}}' "$name" 2>/dev/null || echo missing)
            [ "$status" = healthy ] || all=0
        done
        [ "$all" = 1 ] && return 0
        sleep 2
    done
    for name in "$@"; do
        echo "   $name: $(podman inspect --format '{{.State.Status}} {{.State.Health.Status}}' "$name" 2>&1)" >&2
        podman logs --tail 20 "$name" >&2 2>&1 || true
    done
    return 1
}

# simulate OUT ARGS...: iotc simulate through the proxy (wss with the test CA, /auth/aruba),
# onboarding through the API on 443 and counting on the demo broker.
simulate() {
    local out="$1" status=0
    shift
    "$bin/iotc" simulate --url wss://localhost:8080/aruba --auth-url https://localhost:8080/auth/aruba \
        --username "$gw_user" --password "$gw_pass" --ca-file "$certs/ca.crt" \
        --onboard https://localhost/api.beta/v1 --api-username "$api_user" --api-password "$api_pass" \
        --expect-mqtt 127.0.0.1:1883 --gateways 3 --devices 1000 --shared 0.5 --copies 2 \
        --drain-timeout 60 "$@" >"$out" 2>&1 || status=$?
    sed 's/^/   | /' "$out"
    return $status
}

# Every telegram arrived once: all received, none lost, no extra copies on the topic.
exactly_once() {
    local out="$1" count="$2"
    grep -qE "received $count of $count, lost 0 " "$out" &&
        ! grep -q "other messages on the topic" "$out" &&
        grep -qE "heard by 2 gateways" "$out"
}

# At least once: nothing lost (an engine killed between publishing and acknowledging may
# publish a telegram again, as documented in docs/engine.md).
nothing_lost() {
    grep -qE "received ([0-9]+) of \1, lost 0 " "$1"
}

http_code() {
    curl -s -o /dev/null -w '%{http_code}' --cacert "$certs/ca.crt" "$@"
}

api_checks() {
    local url=https://localhost/api.beta/v1/gateways
    check "$1: API without credentials is 401" [ "$(http_code "$url")" = 401 ]
    check "$1: API with a wrong password is 401" [ "$(http_code -u "$api_user:wrong" "$url")" = 401 ]
    check "$1: API with Basic auth is 200" [ "$(http_code -u "$api_user:$api_pass" "$url")" = 200 ]
    local location
    location=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' http://localhost/api.beta/v1/gateways)
    check "$1: port 80 answers 307 to https" [ "$location" = "307 https://localhost/api.beta/v1/gateways" ]
    # Only the proxy (and the demo broker) are reachable from outside.
    local port
    for port in 1887 7070 9187 6379; do
        check "$1: port $port is not published" eval "! timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$port' 2>/dev/null"
    done
}

# Append-only with fsync every second, a memory cap and no eviction (docs/deploy.md, "Redis").
redis_settings() {
    local got
    got=$(podman exec "$1" redis-cli config get '*' | paste - - |
        grep -E '^(appendonly|appendfsync|maxmemory|maxmemory-policy)\s' | sort | tr '\t\n' '= ')
    echo "   $got"
    [[ "$got" =~ appendfsync=everysec\ appendonly=yes\ maxmemory=[1-9][0-9]*\ maxmemory-policy=noeviction ]]
}

device_count() {
    curl -sf --cacert "$certs/ca.crt" -u "$api_user:$api_pass" https://localhost/api.beta/v1/devices |
        python3 -c 'import json, sys
d = json.load(sys.stdin)
print(len(d if isinstance(d, list) else d.get("devices", d.get("items", []))))'
}

# ---- local deployment: docker-compose.yml ---------------------------------------------------

local_stack() {
    local dir="$work/local"
    # A copy, so the check never touches a developer's .env or deploy/certs (compose wants the
    # build folders to exist even when it only starts images).
    mkdir -p "$dir"
    cp docker-compose.yml "$dir/"
    cp -r deploy "$dir/"
    rm -rf "$dir/deploy/certs"
    certs="$dir/deploy/certs"
    scripts/dev-cert.sh localhost "$certs" >/dev/null
    write_env "$dir/.env"

    log "local: docker-compose up (IoTC-style .env, podman)"
    # compose waits for redis to be healthy; a bound keeps a broken health check from hanging CI.
    if ! timeout 300 docker-compose -p "$project" --project-directory "$work/local" \
        -f "$work/local/docker-compose.yml" up -d --no-build >"$work/up.log" 2>&1; then
        cat "$work/up.log" >&2
        fail "local: docker-compose up"
        return 0
    fi
    pass "local: docker-compose up with an IoTC .env"
    local services=(redis ingress engine api proxy)
    local names=("${services[@]/#/${project}_}")
    names=("${names[@]/%/_1}")
    check "local: every healthcheck healthy" wait_healthy "${names[@]}"
    check "local: redis has AOF, maxmemory and noeviction" redis_settings "${project}_redis_1"

    log "local: simulator through the proxy"
    check "local: simulator telegrams reach MQTT exactly once" \
        eval "simulate '$work/sim1.txt' --count $sim_count --rate 200 && exactly_once '$work/sim1.txt' $sim_count"
    api_checks local

    log "local: engine killed under load"
    simulate "$work/sim2.txt" --count $((2 * sim_count)) --rate 200 --id-base 05b00000 &
    local sim=$!
    sleep 8
    podman kill "${project}_engine_1" >/dev/null
    podman wait "${project}_engine_1" >/dev/null 2>&1 || true
    # The restart policy brings it back; should it not, start it (the check is about data).
    sleep 2
    if [ "$(podman inspect --format '{{.State.Running}}' "${project}_engine_1")" = true ]; then
        echo "   engine killed and restarted by its restart policy"
    else
        echo "   engine killed; the restart policy did not restart it within 2 s, starting it"
        podman start "${project}_engine_1" >/dev/null
    fi
    local status=0
    wait "$sim" || status=$?
    check "local: engine killed under load, nothing lost" eval "[ $status = 0 ] && nothing_lost '$work/sim2.txt'"

    log "local: down and up again"
    local before after
    before=$(device_count || echo 0)
    compose down --timeout 10 >/dev/null 2>&1
    timeout 300 docker-compose -p "$project" --project-directory "$work/local" \
        -f "$work/local/docker-compose.yml" up -d --no-build >"$work/up2.log" 2>&1 || cat "$work/up2.log" >&2
    wait_healthy "${names[@]}" || true
    after=$(device_count || echo 0)
    check "local: $before onboarded devices still there after down/up" \
        eval "[ $before -gt 0 ] && [ $before = $after ]"

    user_checks "${names[@]}"
    # In the order `docker compose stop` uses: dependents first, Redis last.
    stop_checks local "${project}_proxy_1" "${project}_api_1" "${project}_ingress_1" \
        "${project}_engine_1" "${project}_mqtt_1" "${project}_redis_1"
    compose down -v --timeout 10 >/dev/null 2>&1 || true
}

# The service images run unprivileged: the uid of each container's first process.
user_checks() {
    local name pid uid
    for name in "$@"; do
        case "$name" in *proxy* | *redis*) continue ;; esac
        pid=$(podman inspect --format '{{.State.Pid}}' "$name")
        uid=$(stat -c %u "/proc/$pid")
        check "$(basename "$name"): runs as uid $uid, not root" [ "$uid" != 0 ]
    done
    # nginx: the master binds the low ports as root, the workers serve as www-data.
    local proxy
    proxy=$(printf '%s\n' "$@" | grep proxy)
    local workers
    workers=$(podman top "$proxy" user args 2>/dev/null | grep -c '^www-data *nginx: worker' || true)
    check "proxy: nginx workers run as www-data" [ "$workers" -gt 0 ]
}

# SIGTERM (SIGQUIT for nginx) with 10 s grace: a container stopped by the engine's SIGKILL
# exits with 137 and fails the check. Each stop time is printed for docs/deploy.md.
stop_checks() {
    local label="$1" name t0 t1 code
    shift
    for name in "$@"; do
        t0=$(date +%s%N)
        podman stop -t 10 "$name" >/dev/null
        t1=$(date +%s%N)
        code=$(podman inspect --format '{{.State.ExitCode}}' "$name")
        echo "   $name stopped in $(((t1 - t0) / 1000000)) ms, exit code $code"
        check "$label: $name stops on its stop signal (exit $code)" [ "$code" != 137 ]
    done
}

# ---- Azure Container Instances: deploy/azure/docker-compose.yml in one pod -------------------

azure_stack() {
    local dir="$work/azure"
    mkdir -p "$dir"
    certs="$work/local/deploy/certs"
    write_env "$dir/.env"
    cat >>"$dir/.env" <<EOF
AZURE_DOMAIN_NAME=iotc-check
AZURE_FILE_SHARE=share
AZURE_STORAGE_ACCOUNT=account
MQTT_CONNSTRING=127.0.0.1:1883
EOF
    log "azure: the compose file as one pod (shared localhost, as a container group)"
    docker-compose --env-file "$dir/.env" -f deploy/azure/docker-compose.yml config >"$dir/config.yml"
    python3 scripts/container-pod.py "$dir/config.yml" "$pod" "$certs" >"$dir/pod.sh"
    sed 's/^/   | /' "$dir/pod.sh" | grep -v PASSWORD
    if ! bash -eu "$dir/pod.sh" >"$work/pod.log" 2>&1; then
        cat "$work/pod.log" >&2
        fail "azure: pod started"
        return 0
    fi
    pass "azure: pod started"
    # The Azure file declares no health checks (ACI has none for compose); the images' own.
    local names=("$pod-ingress" "$pod-engine" "$pod-api" "$pod-proxy")
    check "azure: every healthcheck healthy" wait_healthy "${names[@]}"
    check "azure: redis has AOF, maxmemory and noeviction" redis_settings "$pod-redis"
    check "azure: simulator telegrams reach MQTT exactly once" \
        eval "simulate '$work/sim3.txt' --count $sim_count --rate 200 --id-base 05c00000 && exactly_once '$work/sim3.txt' $sim_count"
    api_checks azure
    stop_checks azure "$pod-proxy" "$pod-api" "$pod-ingress" "$pod-engine"
}

# ---- main -------------------------------------------------------------------------------------

install_engine
start_api_service
make_base
build_release
build_images
print_sizes
start_health_runner
local_stack
azure_stack
