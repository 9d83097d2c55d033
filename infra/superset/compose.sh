#!/usr/bin/env bash
# The entrypoint of docker-compose's Superset image (infra/superset/Dockerfile):
# what `infra/superset.sh start` does, for a container. Settings come from the
# container's environment only (no platform.env); Superset is the image's
# Python, with infra/superset/requirements.txt installed.
#
# init  superset_config.py, `superset db upgrade`, `superset init`, the admin
#       user (SUPERSET_ADMIN_PASSWORD), then, once Trino answers at
#       https://$TRINO_HOST:$TRINO_PORT trusting $TRINO_CA_CERT, the Trino
#       connection (as bi, TRINO_BI_PASSWORD) and the dashboards of
#       infra/superset/assets (provision.py import).
# run   superset_config.py, then gunicorn on $SUPERSET_BIND (inside the
#       container; compose publishes it on the host's loopback).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/write_config.sh"

: "${SUPERSET_HOME:?}"
export SUPERSET_CONFIG_PATH="$SUPERSET_HOME/superset_config.py"
# As in infra/superset.sh: these would override the CA file a Trino connection is given.
NO_CA_OVERRIDE=(env -u REQUESTS_CA_BUNDLE -u CURL_CA_BUNDLE)

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# Importing the connection lists Trino's schemas, so Trino must answer first.
wait_for_trino() {
  python - <<'PY'
import json, os, ssl, sys, time, urllib.request

url = f"https://{os.environ['TRINO_HOST']}:{os.environ['TRINO_PORT']}/v1/info"
deadline = time.monotonic() + int(os.environ.get("TRINO_WAIT_S", "300"))
while True:
    try:
        context = ssl.create_default_context(cafile=os.environ["TRINO_CA_CERT"])
        with urllib.request.urlopen(url, context=context, timeout=5) as response:
            if json.load(response).get("starting") is False:
                break
    except (OSError, ValueError):
        pass
    if time.monotonic() > deadline:
        sys.exit(f"no Trino at {url} (trusting {os.environ['TRINO_CA_CERT']})")
    time.sleep(2)
PY
}

write_superset_config "infra/superset/compose.sh from the container's environment"

case "${1:-}" in
  init)
    log "superset db upgrade ($SUPERSET_DB on $PG_HOST)"
    "${NO_CA_OVERRIDE[@]}" superset db upgrade
    "${NO_CA_OVERRIDE[@]}" superset init
    "${NO_CA_OVERRIDE[@]}" python "$HERE/provision.py" admin
    log "waiting for Trino at https://$TRINO_HOST:$TRINO_PORT"
    wait_for_trino
    exec "${NO_CA_OVERRIDE[@]}" python "$HERE/provision.py" import
    ;;
  run)
    exec "${NO_CA_OVERRIDE[@]}" gunicorn --chdir "$SUPERSET_HOME" \
      --bind "${SUPERSET_BIND:?}" --workers "${SUPERSET_WORKERS:-2}" --worker-class gthread --threads 4 \
      --timeout 120 --limit-request-line 0 --limit-request-field_size 0 \
      --access-logfile - --error-logfile - \
      "superset.app:create_app()"
    ;;
  *) echo "usage: $0 init|run" >&2; exit 2 ;;
esac
