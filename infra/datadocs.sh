#!/usr/bin/env bash
# Serves the quality gates' Data Docs (.local/data_docs) over HTTP on localhost:
#   infra/datadocs.sh install|start|stop|status|url
# The port is DATA_DOCS_PORT from .local/platform.env (added on first use if
# that file predates it). A static file server: the gates write the HTML, this
# only serves it, so it can be started before or after any gate runs.
# The stylesheets and scripts the pages would load from CDNs are npm packages
# (infra/datadocs/package.json + package-lock.json), installed by `install`
# into .local/datadocs-assets (keyed by the lock file's sha256: a second run is
# offline and a no-op) and served at /_assets/ (spark_jobs/quality/offline_assets.py).
. "$(dirname "$0")/lib.sh"
ensure_platform_env
if [ -z "${DATA_DOCS_PORT:-}" ]; then
  DATA_DOCS_PORT="$(free_port 8765)"
  [ -z "$(tail -c1 "$PLATFORM_ENV_FILE")" ] || echo >> "$PLATFORM_ENV_FILE"
  echo "DATA_DOCS_PORT=$DATA_DOCS_PORT" >> "$PLATFORM_ENV_FILE"
fi
DATA_DOCS_DIR="${DATA_DOCS_DIR:-$PLATFORM_STATE/data_docs}"
# Overridable, so a test serves its own folder on its own port beside the demo's server.
PID_FILE="${DATA_DOCS_PID_FILE:-$PLATFORM_STATE/run/datadocs.pid}"
LOG_FILE="${DATA_DOCS_LOG_FILE:-$PLATFORM_STATE/logs/datadocs.log}"
URL="http://localhost:$DATA_DOCS_PORT/"
ASSETS_SRC="$PLATFORM_HOME/infra/datadocs"
ASSETS_HOME="$PLATFORM_STATE/datadocs-assets"

install() {
  local stamp="$ASSETS_HOME/.installed" want
  want="$(cat "$ASSETS_SRC/package.json" "$ASSETS_SRC/package-lock.json" "$ASSETS_SRC/.npmrc" | sha256sum | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -d "$ASSETS_HOME/node_modules" ]; then return; fi
  command -v npm >/dev/null || die "npm missing (make bootstrap installs Debian's nodejs and npm)"
  log "installing the Data Docs assets (npm ci) into $ASSETS_HOME"
  rm -rf "$ASSETS_HOME"; mkdir -p "$ASSETS_HOME"
  cp "$ASSETS_SRC/package.json" "$ASSETS_SRC/package-lock.json" "$ASSETS_SRC/.npmrc" "$ASSETS_HOME/"
  npm ci --prefix "$ASSETS_HOME" --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
  echo "$want" > "$stamp"
}

running() { [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; }

start() {
  mkdir -p "$DATA_DOCS_DIR"
  if running; then log "Data Docs already served at $URL"; echo "$URL"; return; fi
  [ -f "$DATA_DOCS_DIR/index.html" ] || cat > "$DATA_DOCS_DIR/index.html" <<'HTML'
<!doctype html><html><body><h1>Data Docs</h1><p>No quality gate has run yet.</p></body></html>
HTML
  install
  nohup python3 "$ASSETS_SRC/serve.py" --port "$DATA_DOCS_PORT" --directory "$DATA_DOCS_DIR" \
    --assets-dir "$ASSETS_HOME/node_modules" >> "$LOG_FILE" 2>&1 &
  echo $! > "$PID_FILE"
  for _ in $(seq 50); do
    curl -fsS -o /dev/null "$URL" 2>/dev/null && { log "Data Docs served at $URL (pid $(cat "$PID_FILE"))"; echo "$URL"; return; }
    running || break
    sleep 0.2
  done
  die "Data Docs server did not start on port $DATA_DOCS_PORT; see $LOG_FILE"
}

stop() {
  if running; then kill "$(cat "$PID_FILE")"; log "stopped Data Docs server"; fi
  rm -f "$PID_FILE"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) if running; then echo "serving $DATA_DOCS_DIR at $URL (pid $(cat "$PID_FILE"))"; else echo "stopped"; exit 3; fi ;;
  url) echo "$URL" ;;
  *) echo "usage: $0 install|start|stop|status|url" >&2; exit 2 ;;
esac
