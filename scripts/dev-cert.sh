#!/usr/bin/env bash
# Makes a development certificate authority and a server certificate for the iotc proxy.
#
#   scripts/dev-cert.sh [HOSTNAME] [OUT_DIR]
#
# HOSTNAME (default localhost) is the name the access points and API clients use; it goes into
# the certificate's CN and subjectAltName (an IP address becomes an IP entry). OUT_DIR defaults to
# deploy/certs. It writes:
#   ca.crt / ca.key       the development CA: upload ca.crt to the AP as "Trusted CA"
#   cert.crt / cert.key   the server certificate (with the chain) and key the proxy loads
# An existing CA in OUT_DIR is kept, so APs that already trust it keep working when the server
# certificate is made again (for a new host name, or when it expires). For development only.
set -euo pipefail

host="${1:-localhost}"
repo_root="$(cd "$(dirname "$0")/.." && pwd)"
out="${2:-$repo_root/deploy/certs}"
ca_days="${IOTC_CA_DAYS:-3650}"
# 825 days is the longest validity common TLS clients accept for a server certificate.
cert_days="${IOTC_CERT_DAYS:-825}"

command -v openssl >/dev/null || { echo "dev-cert: openssl is not installed" >&2; exit 1; }
case "$host" in
'' | *[!A-Za-z0-9.:-]*) echo "dev-cert: '$host' is not a host name or IP address" >&2; exit 1 ;;
esac

mkdir -p "$out"
umask 077
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [[ "$host" =~ ^[0-9.]+$ || "$host" == *:* ]]; then
    san="IP:$host"
else
    san="DNS:$host"
fi
if [ "$host" = localhost ]; then
    san="$san,IP:127.0.0.1,IP:::1"
fi

if [ ! -s "$out/ca.key" ] || [ ! -s "$out/ca.crt" ]; then
    echo "dev-cert: new development CA in $out/ca.crt"
    openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days "$ca_days" \
        -subj "/O=iotc development/CN=iotc development CA" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" \
        -keyout "$out/ca.key" -out "$out/ca.crt" 2>/dev/null
else
    echo "dev-cert: keeping the CA in $out/ca.crt"
fi

# RSA 2048: every Aruba OS release and every TLS client accepts it.
openssl req -new -newkey rsa:2048 -nodes -sha256 \
    -subj "/O=iotc development/CN=$host" \
    -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
cat >"$work/ext.cnf" <<EOF
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = $san
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
openssl x509 -req -sha256 -days "$cert_days" -in "$work/server.csr" \
    -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial -CAserial "$work/ca.srl" \
    -extfile "$work/ext.cnf" -out "$work/server.crt" 2>/dev/null

# The proxy sends the whole chain, so clients that trust the CA can verify the server.
cat "$work/server.crt" "$out/ca.crt" >"$out/cert.crt"
mv "$work/server.key" "$out/cert.key"
chmod 644 "$out/ca.crt" "$out/cert.crt"
chmod 600 "$out/ca.key" "$out/cert.key"

openssl verify -CAfile "$out/ca.crt" "$work/server.crt" >/dev/null
echo "dev-cert: server certificate for $host ($san) in $out/cert.crt and $out/cert.key"
