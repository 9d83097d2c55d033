#!/usr/bin/env bash
# docker-compose's trino-init: what `infra/trino.sh start` does before a local
# start, for the trino container. Writes Trino's etc/ into the volume the trino
# service mounts at /etc/trino (TLS key pair for the names `trino` and
# `localhost`, made once; the CA certificate also into /trino-ca for the
# clients; passwords, access rules and catalogs from the environment), owned
# by the trino image's user.
set -euo pipefail
ETC=/etc/trino TLS=/etc/trino/tls CA_OUT=/trino-ca TRINO_UID=1000
mkdir -p "$TLS" "$CA_OUT"
if [ ! -f "$TLS/keystore.pem" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 825 -sha256 \
    -keyout "$TLS/key.pem" -out "$TLS/ca.pem" -subj "/CN=trino/O=analytics-platform" \
    -addext "subjectAltName=DNS:trino,DNS:localhost,IP:127.0.0.1" 2>/dev/null
  cat "$TLS/key.pem" "$TLS/ca.pem" > "$TLS/keystore.pem"
  rm -f "$TLS/key.pem"
fi
[ -s "$TLS/shared-secret" ] || (umask 077; openssl rand -base64 48 | tr -d '\n' > "$TLS/shared-secret")
cp "$TLS/ca.pem" "$CA_OUT/trino-ca.pem"
python infra/trino/render_etc.py --etc-dir "$ETC" --data-dir /data/trino --plugin-dir /usr/lib/trino/plugin \
  --keystore "$TLS/keystore.pem" --shared-secret-file "$TLS/shared-secret" \
  --https-port 8443 --http-port 8080 --heap "${TRINO_HEAP:-4G}"
chown -R "$TRINO_UID:$TRINO_UID" "$ETC"
chmod 644 "$CA_OUT/trino-ca.pem"
