#!/usr/bin/env bash
# The speed layer (spark_jobs/stream.py) as a background Spark application:
#
#   infra/stream.sh start [stream options]   starts it (the broker too); log .local/logs/stream.out
#   infra/stream.sh stop                     a clean stop: each query ends after its batch
#   infra/stream.sh status                   running or not, and its last batch
#
# Local mode (local[2]) unless SPARK_MASTER says otherwise. Its checkpoints are
# in .local/stream/checkpoints: a restart resumes where the last run stopped.
. "$(dirname "$0")/lib.sh"

PID_FILE="$PLATFORM_STATE/run/stream.pid"
LOG_FILE="$PLATFORM_STATE/logs/stream.out"

running() { [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; }

start() {
  if running; then log "speed layer already running (pid $(cat "$PID_FILE"))"; return; fi
  bash "$PLATFORM_HOME/infra/kafka.sh" start
  mkdir -p "$(dirname "$PID_FILE")" "$(dirname "$LOG_FILE")"
  cd "$PLATFORM_HOME"
  # The Python driver is the parent of its JVM: SIGTERM to it stops the queries cleanly.
  SPARK_MASTER="${SPARK_MASTER:-local[2]}" SPARK_DRIVER_MEMORY="${SPARK_DRIVER_MEMORY:-2g}" \
    nohup "$(venv_python)" -m spark_jobs.stream "$@" >> "$LOG_FILE" 2>&1 < /dev/null &
  echo $! > "$PID_FILE"
  for _ in $(seq 120); do
    grep -q "speed layer: .* queries" <(tail -n 50 "$LOG_FILE") && { log "speed layer running (pid $(cat "$PID_FILE")); log $LOG_FILE"; return; }
    running || die "the speed layer exited; see $LOG_FILE"
    sleep 1
  done
  die "the speed layer did not start in 120 s; see $LOG_FILE"
}

stop() {
  if running; then
    local pid; pid="$(cat "$PID_FILE")"
    kill -TERM "$pid"
    for _ in $(seq 120); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    log "stopped the speed layer"
  fi
  rm -f "$PID_FILE"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) stop ;;
  status) if running; then echo "speed layer running (pid $(cat "$PID_FILE")); $(grep "^bronze batch" "$LOG_FILE" | tail -n 1)"
          else echo "stopped"; exit 3; fi ;;
  *) echo "usage: $0 start [stream options]|stop|status" >&2; exit 2 ;;
esac
