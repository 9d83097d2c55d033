#!/usr/bin/env bash
# install|start|stop|status|url|import|export of the project's Superset: the
# dashboards in infra/superset/assets over Trino, served on localhost.
#
# install  .venv-superset from infra/superset/requirements.txt (Python 3.11;
#          its own venv because its pins conflict with Airflow's), keyed by the
#          file's sha256: a second run is offline and a no-op.
# start    PostgreSQL, the metadata database $SUPERSET_DB, `superset db upgrade`
#          and `superset init`, the admin user (password SUPERSET_ADMIN_PASSWORD),
#          the dashboards imported from infra/superset/assets (overwriting what
#          the UI changed), then gunicorn on 127.0.0.1:$SUPERSET_PORT.
# import   re-import infra/superset/assets into a running or stopped instance.
# export   write what the instance holds back to infra/superset/assets (after
#          editing a dashboard in the UI), machine-specific values as placeholders.
#
# Superset reaches one database: Trino over HTTPS as the read-only user `bi`
# (TRINO_BI_PASSWORD), trusting .local/trino/tls/trino-ca.pem. The caller's
# environment wins over platform.env, so tests run an isolated instance with
# their own SUPERSET_HOME, SUPERSET_PORT, SUPERSET_DB and TRINO_PORT.
. "$(dirname "$0")/lib.sh"
. "$PLATFORM_HOME/infra/superset/write_config.sh"
ensure_platform_env

SUPERSET_VENV="$PLATFORM_HOME/.venv-superset"
REQUIREMENTS="$PLATFORM_HOME/infra/superset/requirements.txt"
export SUPERSET_HOME="${SUPERSET_HOME:-$PLATFORM_STATE/superset}"
export SUPERSET_CONFIG_PATH="$SUPERSET_HOME/superset_config.py"
export SUPERSET_ASSETS_DIR="${SUPERSET_ASSETS_DIR:-$PLATFORM_HOME/infra/superset/assets}"
export TRINO_CA_CERT="${TRINO_CA_CERT:-$PLATFORM_STATE/trino/tls/trino-ca.pem}"
SUPERSET_WORKERS="${SUPERSET_WORKERS:-2}"
PID_FILE="$SUPERSET_HOME/run/gunicorn.pid"
LOG_DIR="$SUPERSET_HOME/logs"
URL="http://localhost:$SUPERSET_PORT"
# requests lets these override the CA file a Trino connection is given
# (connect_args.verify), and they point at the system bundle, which does not
# hold our self-signed certificate: Superset's processes run without them.
NO_CA_OVERRIDE=(env -u REQUESTS_CA_BUNDLE -u CURL_CA_BUNDLE)

install() {
  local stamp="$SUPERSET_VENV/.requirements.sha256" want
  want="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return; fi
  command -v python3.11 >/dev/null || die "Superset needs python3.11"
  log "creating .venv-superset from infra/superset/requirements.txt"
  rm -rf "$SUPERSET_VENV"
  python3.11 -m venv "$SUPERSET_VENV"
  "$SUPERSET_VENV/bin/pip" install -q --upgrade pip
  "$SUPERSET_VENV/bin/pip" install -q -r "$REQUIREMENTS"
  echo "$want" > "$stamp"
}

# superset_config.py from platform.env (infra/superset/write_config.sh).
write_config() {
  mkdir -p "$SUPERSET_HOME" "$SUPERSET_HOME/run" "$LOG_DIR"
  write_superset_config "infra/superset.sh from $PLATFORM_ENV_FILE"
}

superset_cli() {
  "${NO_CA_OVERRIDE[@]}" "$SUPERSET_VENV/bin/superset" "$@"
}

provision() {  # provision import|export|admin: infra/superset/provision.py in Superset's venv
  "${NO_CA_OVERRIDE[@]}" "$SUPERSET_VENV/bin/python" "$PLATFORM_HOME/infra/superset/provision.py" "$@"
}

# Importing the connection lists Trino's schemas, so Trino must answer first.
require_trino() {
  curl -fsS --cacert "$TRINO_CA_CERT" "https://localhost:$TRINO_PORT/v1/info" 2>/dev/null | grep -q '"starting":false' ||
    die "no Trino at https://localhost:$TRINO_PORT (trusting $TRINO_CA_CERT): run make trino-start first"
}

pid_alive() { [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; }

healthy() { curl -fsS "http://127.0.0.1:$SUPERSET_PORT/health" 2>/dev/null | grep -q OK; }

prepare() {
  install
  bash "$PLATFORM_HOME/infra/postgres.sh" start
  write_config
  bash "$PLATFORM_HOME/infra/postgres.sh" database "$SUPERSET_DB" superset
  require_trino
  log "superset db upgrade ($SUPERSET_DB)"
  superset_cli db upgrade >"$LOG_DIR/db-upgrade.log" 2>&1 || { tail -20 "$LOG_DIR/db-upgrade.log"; die "superset db upgrade failed"; }
  superset_cli init >"$LOG_DIR/init.log" 2>&1 || { tail -20 "$LOG_DIR/init.log"; die "superset init failed"; }
  provision admin
  provision import
}

start() {
  local t0=$SECONDS
  if pid_alive && healthy; then
    log "superset already running at $URL"
    return
  fi
  prepare
  # setsid: gunicorn leads its own process group, so stop ends its workers too.
  setsid nohup "${NO_CA_OVERRIDE[@]}" "$SUPERSET_VENV/bin/gunicorn" --chdir "$SUPERSET_HOME" \
    --bind "127.0.0.1:$SUPERSET_PORT" --workers "$SUPERSET_WORKERS" --worker-class gthread --threads 4 \
    --timeout 120 --limit-request-line 0 --limit-request-field_size 0 \
    --access-logfile "$LOG_DIR/access.log" --error-logfile "$LOG_DIR/gunicorn.log" \
    "superset.app:create_app()" >"$LOG_DIR/gunicorn.out" 2>&1 </dev/null &
  echo $! > "$PID_FILE"
  local deadline=$((SECONDS + 180))
  until healthy; do
    pid_alive || { tail -30 "$LOG_DIR/gunicorn.log" >&2; die "superset exited during startup; log: $LOG_DIR/gunicorn.log"; }
    [ $SECONDS -lt $deadline ] || die "superset not healthy after 180 s; log: $LOG_DIR/gunicorn.log"
    sleep 1
  done
  log "superset up in $((SECONDS - t0)) s at $URL (user admin)"
}

stop() {
  pid_alive || { rm -f "$PID_FILE"; return 0; }
  local pid; pid="$(cat "$PID_FILE")"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$PID_FILE"
  log "superset stopped"
}

status() {
  if pid_alive && healthy; then echo "superset running at $URL (pid $(cat "$PID_FILE"))"; else echo "superset not running"; return 3; fi
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) status ;;
  url) echo "$URL" ;;
  import) install; write_config; require_trino; provision import ;;
  export) install; write_config; provision export ;;
  *) die "usage: $0 install|start|stop|restart|status|url|import|export" ;;
esac
