#!/usr/bin/env bash
# One Apache Kafka broker in KRaft mode (broker and controller in one JVM, no
# ZooKeeper) on localhost, from Maven Central's jars:
#
#   infra/kafka.sh install       the broker's jars (infra/kafka/lib.sha256) and Spark's Kafka
#                                source (infra/spark-kafka/lib.sha256), checksum-pinned (idempotent)
#   infra/kafka.sh start|stop|status
#   infra/kafka.sh bootstrap     prints host:port for clients
#   infra/kafka.sh run           in a docker-compose.yml container: the broker in the foreground
#   infra/kafka.sh lock          after changing either pom.xml
#
# Ports: KAFKA_PORT and KAFKA_CONTROLLER_PORT in .local/platform.env (chosen
# free once). Log directories: .local/kafka/data, formatted once with a
# cluster id. New topics get KAFKA_PARTITIONS partitions (default 3) unless
# their creator says otherwise. Broker log: .local/logs/kafka.out.
. "$(dirname "$0")/lib.sh"
. "$PLATFORM_HOME/infra/versions.sh"

KAFKA_SRC="$PLATFORM_HOME/infra/kafka"
KAFKA_LIB="$PLATFORM_CACHE/kafka/$KAFKA_VERSION/lib"
KAFKA_STATE="${KAFKA_STATE:-$PLATFORM_STATE/kafka}"
PID_FILE="$PLATFORM_STATE/run/kafka.pid"
LOG_FILE="$PLATFORM_STATE/logs/kafka.out"

SPARK_KAFKA_SRC="$PLATFORM_HOME/infra/spark-kafka"
SPARK_KAFKA_LIB="$PLATFORM_CACHE/spark-kafka/$SPARK_VERSION/lib"  # iceberg_catalog/config.py: spark_kafka_jars

install() {
  maven_closure_install "kafka-$KAFKA_VERSION" "$KAFKA_SRC" "$KAFKA_LIB" -Dkafka.version="$KAFKA_VERSION"
  maven_closure_install "spark-kafka-$SPARK_VERSION" "$SPARK_KAFKA_SRC" "$SPARK_KAFKA_LIB" -Dspark.version="$SPARK_VERSION"
}
lock() {
  maven_closure_lock kafka "$KAFKA_SRC" -Dkafka.version="$KAFKA_VERSION"
  maven_closure_lock spark-kafka "$SPARK_KAFKA_SRC" -Dspark.version="$SPARK_VERSION"
}

settings() {  # this machine: ports from platform.env, loopback only
  ensure_ports KAFKA_PORT=9092 KAFKA_CONTROLLER_PORT=9093
  KAFKA_LISTEN_HOST="${KAFKA_LISTEN_HOST:-127.0.0.1}" KAFKA_ADVERTISED_HOST="${KAFKA_ADVERTISED_HOST:-127.0.0.1}"
}

server_properties() {
  cat <<PROPS
# Rendered by infra/kafka.sh; do not edit the copy.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$KAFKA_ADVERTISED_HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$KAFKA_LISTEN_HOST:$KAFKA_PORT,CONTROLLER://$KAFKA_LISTEN_HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$KAFKA_ADVERTISED_HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$KAFKA_STATE/data
num.partitions=${KAFKA_PARTITIONS:-3}
# Topics are created on purpose, with their partition count, never by a typo.
auto.create.topics.enable=false
# One broker: every internal topic has one replica.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
}

# The broker's JVM on the pinned jars.
JVM=(java -Xms256m -Xmx1g -Dlog4j2.configurationFile="$KAFKA_SRC/log4j2.properties" -cp "$KAFKA_LIB/*")

prepare() {  # the configuration, and log directories formatted once
  install
  mkdir -p "$KAFKA_STATE" "$(dirname "$PID_FILE")" "$(dirname "$LOG_FILE")"
  server_properties > "$KAFKA_STATE/server.properties"
  if [ ! -f "$KAFKA_STATE/data/meta.properties" ]; then
    local cluster_id
    cluster_id="$(python3 -c 'import base64, uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')"
    "${JVM[@]}" kafka.tools.StorageTool format --cluster-id "$cluster_id" --config "$KAFKA_STATE/server.properties" \
      >> "$LOG_FILE" 2>&1 || die "formatting $KAFKA_STATE/data failed; see $LOG_FILE"
  fi
}

running() { [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; }

start() {
  settings
  if running; then log "kafka already running on $KAFKA_ADVERTISED_HOST:$KAFKA_PORT"; return; fi
  prepare
  local started; started="$(date +%s)"
  nohup "${JVM[@]}" kafka.Kafka "$KAFKA_STATE/server.properties" >> "$LOG_FILE" 2>&1 < /dev/null &
  echo $! > "$PID_FILE"
  for _ in $(seq 120); do
    if (echo > "/dev/tcp/$KAFKA_ADVERTISED_HOST/$KAFKA_PORT") 2>/dev/null && grep -q "Kafka Server started" "$LOG_FILE"; then
      log "kafka up in $(( $(date +%s) - started )) s on $KAFKA_ADVERTISED_HOST:$KAFKA_PORT (pid $(cat "$PID_FILE"))"
      return
    fi
    running || break
    sleep 0.5
  done
  die "kafka did not start on port $KAFKA_PORT; see $LOG_FILE"
}

stop() {
  if running; then
    local pid; pid="$(cat "$PID_FILE")"
    kill "$pid"  # a clean shutdown: the broker flushes and closes its logs
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    log "stopped kafka"
  fi
  rm -f "$PID_FILE"
}

case "${1:-}" in
  install) install ;;
  lock) lock ;;
  start) start ;;
  stop) stop ;;
  status) settings; if running; then echo "kafka on $KAFKA_ADVERTISED_HOST:$KAFKA_PORT (pid $(cat "$PID_FILE"))"; else echo "stopped"; exit 3; fi ;;
  bootstrap) settings; echo "$KAFKA_ADVERTISED_HOST:$KAFKA_PORT" ;;
  run) KAFKA_PORT="${KAFKA_PORT:-9092}" KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
       KAFKA_LISTEN_HOST=0.0.0.0 KAFKA_ADVERTISED_HOST="${KAFKA_ADVERTISED_HOST:-kafka}"
       prepare; exec "${JVM[@]}" kafka.Kafka "$KAFKA_STATE/server.properties" ;;
  *) echo "usage: $0 install|lock|start|stop|status|bootstrap|run" >&2; exit 2 ;;
esac
