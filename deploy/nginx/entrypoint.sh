#!/bin/sh
# Starts the iotc reverse proxy: checks the settings, writes the Basic auth password file from
# BASIC_AUTH_USERNAME / BASIC_AUTH_PASSWORD, renders nginx.conf.template and runs nginx in the
# foreground. Extra arguments go to nginx (`entrypoint.sh -t` only tests the configuration).
#
# Every IOTC_PROXY_* variable has a default that fits docker-compose.yml; the Azure compose
# file and the end-to-end test override them.
set -eu

fail() {
    echo "iotc-proxy: $*" >&2
    exit 1
}

here=$(cd "$(dirname "$0")" && pwd)

: "${IOTC_PROXY_TEMPLATE:=$here/nginx.conf.template}"
: "${IOTC_PROXY_RUN_DIR:=/var/run/iotc-proxy}"
: "${IOTC_PROXY_CONF:=$IOTC_PROXY_RUN_DIR/nginx.conf}"
: "${IOTC_PROXY_HTPASSWD:=$IOTC_PROXY_RUN_DIR/htpasswd}"
: "${IOTC_PROXY_CERT:=/etc/nginx/certs/cert.crt}"
: "${IOTC_PROXY_KEY:=/etc/nginx/certs/cert.key}"
: "${IOTC_PROXY_API_UPSTREAM:=api:1887}"
: "${IOTC_PROXY_INGRESS_UPSTREAM:=ingress:7070}"
: "${IOTC_PROXY_BIND:=0.0.0.0}"
: "${IOTC_PROXY_HTTP_PORT:=80}"
: "${IOTC_PROXY_HTTPS_PORT:=443}"
: "${IOTC_PROXY_INGRESS_PORT:=8080}"
: "${IOTC_PROXY_HEALTH_PORT:=9180}"
# The https port clients see (differs from IOTC_PROXY_HTTPS_PORT behind a port mapping).
: "${IOTC_PROXY_PUBLIC_HTTPS_PORT:=$IOTC_PROXY_HTTPS_PORT}"
: "${IOTC_PROXY_WORKER_USER:=nginx}"
: "${IOTC_PROXY_NGINX:=nginx}"
# A DNS server to look the upstream names up again while running, or "auto" (compose).
: "${IOTC_PROXY_RESOLVER:=}"

# IoTC's proxy refuses to start without API credentials; so does this one.
[ -n "${BASIC_AUTH_USERNAME:-}" ] || fail "BASIC_AUTH_USERNAME is not set"
[ -n "${BASIC_AUTH_PASSWORD:-}" ] || fail "BASIC_AUTH_PASSWORD is not set"
case "$BASIC_AUTH_USERNAME" in
*:* | *"
"*) fail "BASIC_AUTH_USERNAME must not contain ':' or a line break" ;;
esac

[ -r "$IOTC_PROXY_TEMPLATE" ] || fail "IOTC_PROXY_TEMPLATE: cannot read $IOTC_PROXY_TEMPLATE"
[ -r "$IOTC_PROXY_CERT" ] || fail "IOTC_PROXY_CERT: cannot read the certificate $IOTC_PROXY_CERT"
[ -r "$IOTC_PROXY_KEY" ] || fail "IOTC_PROXY_KEY: cannot read the private key $IOTC_PROXY_KEY"

for port in "$IOTC_PROXY_HTTP_PORT" "$IOTC_PROXY_HTTPS_PORT" "$IOTC_PROXY_INGRESS_PORT" "$IOTC_PROXY_HEALTH_PORT" \
    "$IOTC_PROXY_PUBLIC_HTTPS_PORT"; do
    case "$port" in
    '' | *[!0-9]*) fail "ports must be numbers, got '$port'" ;;
    esac
done

if [ "$IOTC_PROXY_PUBLIC_HTTPS_PORT" = 443 ]; then
    IOTC_PROXY_REDIRECT_PORT=""
else
    IOTC_PROXY_REDIRECT_PORT=":$IOTC_PROXY_PUBLIC_HTTPS_PORT"
fi

# Upstream names re-resolved at run time need nginx 1.27.3 or later ("server ... resolve").
# "auto" takes the container's DNS server from /etc/resolv.conf (Docker: 127.0.0.11, podman:
# the network's gateway) and, with an older nginx (Debian bookworm's 1.22), resolves once.
IOTC_PROXY_RESOLVER_DIRECTIVE=""
IOTC_PROXY_RESOLVE=""
resolve_supported() {
    version=$("$IOTC_PROXY_NGINX" -v 2>&1 | sed -n 's|.*nginx/\([0-9][0-9.]*\).*|\1|p')
    echo "$version" | awk -F. '{ exit !($1 > 1 || ($1 == 1 && ($2 > 27 || ($2 == 27 && $3 >= 3)))) }'
}
if [ "$IOTC_PROXY_RESOLVER" = auto ]; then
    IOTC_PROXY_RESOLVER=""
    if resolve_supported; then
        IOTC_PROXY_RESOLVER=$(awk '$1 == "nameserver" { print $2; exit }' /etc/resolv.conf 2>/dev/null || true)
    else
        echo "iotc-proxy: nginx ${version:-unknown} resolves the upstream names once, at start" >&2
    fi
fi
if [ -n "$IOTC_PROXY_RESOLVER" ]; then
    resolve_supported || fail "IOTC_PROXY_RESOLVER needs nginx 1.27.3 or later (this is ${version:-unknown})"
    IOTC_PROXY_RESOLVER_DIRECTIVE="resolver $IOTC_PROXY_RESOLVER valid=10s ipv6=off;"
    IOTC_PROXY_RESOLVE=" resolve"
fi

mkdir -p "$IOTC_PROXY_RUN_DIR"

# The password goes through stdin, never the command line (where `ps` would show it).
# SHA-512 crypt with 1000 rounds: nginx checks the hash on every request, and the plain
# password sits in this container's environment anyway, so a slow hash (bcrypt costs about
# 2 ms per request) would cost throughput without protecting anything. nginx verifies it
# through crypt(3). Older htpasswd without -5: bcrypt; no htpasswd: openssl (5000 rounds).
htpasswd_tmp="$IOTC_PROXY_HTPASSWD.tmp"
umask 027
if command -v htpasswd >/dev/null 2>&1; then
    printf '%s\n' "$BASIC_AUTH_PASSWORD" | htpasswd -ci5 -r 1000 "$htpasswd_tmp" "$BASIC_AUTH_USERNAME" 2>/dev/null ||
        printf '%s\n' "$BASIC_AUTH_PASSWORD" | htpasswd -ciB "$htpasswd_tmp" "$BASIC_AUTH_USERNAME" 2>/dev/null ||
        fail "could not write the password file $IOTC_PROXY_HTPASSWD"
elif command -v openssl >/dev/null 2>&1; then
    hash=$(printf '%s\n' "$BASIC_AUTH_PASSWORD" | openssl passwd -6 -stdin) ||
        fail "could not hash BASIC_AUTH_PASSWORD"
    printf '%s:%s\n' "$BASIC_AUTH_USERNAME" "$hash" >"$htpasswd_tmp"
else
    fail "neither htpasswd nor openssl is installed: cannot write the password file"
fi
# nginx workers read the file per request: give their group read access when we can.
if [ "$(id -u)" = 0 ]; then
    chgrp "$(id -gn "$IOTC_PROXY_WORKER_USER" 2>/dev/null || echo 0)" "$htpasswd_tmp" 2>/dev/null || true
fi
mv "$htpasswd_tmp" "$IOTC_PROXY_HTPASSWD"
umask 022

export IOTC_PROXY_RUN_DIR IOTC_PROXY_HTPASSWD IOTC_PROXY_CERT IOTC_PROXY_KEY \
    IOTC_PROXY_API_UPSTREAM IOTC_PROXY_INGRESS_UPSTREAM IOTC_PROXY_BIND IOTC_PROXY_HTTP_PORT \
    IOTC_PROXY_HTTPS_PORT IOTC_PROXY_INGRESS_PORT IOTC_PROXY_HEALTH_PORT IOTC_PROXY_REDIRECT_PORT \
    IOTC_PROXY_WORKER_USER IOTC_PROXY_RESOLVER_DIRECTIVE IOTC_PROXY_RESOLVE
placeholders="IOTC_PROXY_RUN_DIR IOTC_PROXY_HTPASSWD IOTC_PROXY_CERT IOTC_PROXY_KEY
    IOTC_PROXY_API_UPSTREAM IOTC_PROXY_INGRESS_UPSTREAM IOTC_PROXY_BIND IOTC_PROXY_HTTP_PORT
    IOTC_PROXY_HTTPS_PORT IOTC_PROXY_INGRESS_PORT IOTC_PROXY_HEALTH_PORT IOTC_PROXY_REDIRECT_PORT
    IOTC_PROXY_WORKER_USER IOTC_PROXY_RESOLVER_DIRECTIVE IOTC_PROXY_RESOLVE"
# Replaces ${NAME} for the names above only (nginx's own $variables stay), like envsubst with
# a list, but with nothing more than awk. Each line is scanned once, left to right.
awk -v names="$placeholders" '
    BEGIN { count = split(names, list) }
    {
        for (i = 1; i <= count; i++) {
            key = "${" list[i] "}"
            done = ""
            rest = $0
            while ((at = index(rest, key)) > 0) {
                done = done substr(rest, 1, at - 1) ENVIRON[list[i]]
                rest = substr(rest, at + length(key))
            }
            $0 = done rest
        }
        print
    }' "$IOTC_PROXY_TEMPLATE" >"$IOTC_PROXY_CONF.tmp"
if grep -qF 'IOTC_PROXY_' "$IOTC_PROXY_CONF.tmp"; then
    fail "the template has a placeholder this script does not fill"
fi
mv "$IOTC_PROXY_CONF.tmp" "$IOTC_PROXY_CONF"

echo "iotc-proxy: api -> $IOTC_PROXY_API_UPSTREAM (https :$IOTC_PROXY_HTTPS_PORT)," \
    "ingress -> $IOTC_PROXY_INGRESS_UPSTREAM (wss :$IOTC_PROXY_INGRESS_PORT)," \
    "redirect :$IOTC_PROXY_HTTP_PORT" >&2
exec "$IOTC_PROXY_NGINX" -e stderr -c "$IOTC_PROXY_CONF" -g 'daemon off;' "$@"
