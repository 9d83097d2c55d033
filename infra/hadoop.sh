#!/usr/bin/env bash
# A single-node YARN (Hadoop's own ResourceManager and NodeManager) and the
# Spark History Server, as plain JVM processes of this project.
#
#   infra/hadoop.sh install        jars from Maven Central, checksum-pinned (idempotent, offline 2nd run)
#   infra/hadoop.sh start|stop     RM + NM + History Server
#   infra/hadoop.sh yarn-start|yarn-stop|history-start|history-stop
#   infra/hadoop.sh status         what runs, and the URLs
#   infra/hadoop.sh env            exports that send spark-submit to this YARN:  eval "$(infra/hadoop.sh env)"
#   infra/hadoop.sh configure      (re)writes the generated configuration only
#   infra/hadoop.sh run ROLE       inside a docker-compose.yml container: resourcemanager|nodemanager|history|client
#   infra/hadoop.sh lock           after changing the pom: records the jars' sha256 in infra/hadoop/lib.sha256
#
# Jars: .cache/hadoop/<version>/lib. Config: .local/hadoop/conf (HADOOP_CONF_DIR)
# and .local/hadoop/spark-conf (SPARK_CONF_DIR). Pids: .local/run. Logs: .local/logs.
. "$(dirname "$0")/lib.sh"
. "$PLATFORM_HOME/infra/versions.sh"

HADOOP_VERSION="${HADOOP_VERSION:-3.5.0}"
HADOOP_SRC="$PLATFORM_HOME/infra/hadoop"
HADOOP_LIB="$PLATFORM_CACHE/hadoop/$HADOOP_VERSION/lib"
HADOOP_STATE="$PLATFORM_STATE/hadoop"
LOCAL_HADOOP_CONF_DIR="$HADOOP_STATE/conf"
SPARK_CONF_DIR_LOCAL="$HADOOP_STATE/spark-conf"
YARN_HOST=127.0.0.1
RUN_DIR="$PLATFORM_STATE/run"
LOG_DIR="$PLATFORM_STATE/logs"
VENV_PYTHON="$(venv_python)"
RM_CLASS=org.apache.hadoop.yarn.server.resourcemanager.ResourceManager
NM_CLASS=org.apache.hadoop.yarn.server.nodemanager.NodeManager
HS_CLASS=org.apache.spark.deploy.history.HistoryServer

# The module openings Spark's own launcher passes on Java 17; Hadoop's
# reflection (Guice, Jersey, UGI) needs a subset of the same.
JAVA17_OPENS=(
  -XX:+IgnoreUnrecognizedVMOptions
  --add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.lang.invoke=ALL-UNNAMED
  --add-opens=java.base/java.lang.reflect=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED
  --add-opens=java.base/java.net=ALL-UNNAMED --add-opens=java.base/java.nio=ALL-UNNAMED
  --add-opens=java.base/java.util=ALL-UNNAMED --add-opens=java.base/java.util.concurrent=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens=java.base/sun.nio.cs=ALL-UNNAMED --add-opens=java.base/sun.security.action=ALL-UNNAMED
  --add-opens=java.base/sun.util.calendar=ALL-UNNAMED --add-opens=java.security.jgss/sun.security.krb5=ALL-UNNAMED
)

java_home() { dirname "$(dirname "$(readlink -f "$(command -v java)")")"; }
pyspark_home() { "$VENV_PYTHON" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))'; }

# ---------------------------------------------------------------- install
install() { maven_closure_install "hadoop-$HADOOP_VERSION" "$HADOOP_SRC" "$HADOOP_LIB" -Dhadoop.version="$HADOOP_VERSION"; }
lock() { maven_closure_lock hadoop "$HADOOP_SRC" -Dhadoop.version="$HADOOP_VERSION"; }

# ---------------------------------------------------------------- settings
# Ports YARN and the History Server listen on, kept in platform.env next to
# the other services'. Older platform.env files lack them: append once.
YARN_PORT_DEFAULTS="YARN_RM_PORT=8032 YARN_RM_SCHEDULER_PORT=8030 YARN_RM_TRACKER_PORT=8031
YARN_RM_ADMIN_PORT=8033 YARN_RM_WEBAPP_PORT=8088 YARN_NM_WEBAPP_PORT=8042 YARN_NM_LOCALIZER_PORT=8040
SPARK_HISTORY_PORT=18080"

ensure_yarn_env() {  # this machine's single node: ports from platform.env, loopback only
  # shellcheck disable=SC2086  # one NAME=PORT word each
  ensure_ports $YARN_PORT_DEFAULTS
  export YARN_NM_HOST="$YARN_HOST" SPARK_HISTORY_HOST="$YARN_HOST" HADOOP_DEFAULT_FS="file:///"
  export SPARK_DRIVER_BIND_HOST="$YARN_HOST"
  export SPARK_EVENT_LOG_DIR="${SPARK_EVENT_LOG_DIR:-file://$PLATFORM_STATE/spark-events}"
  export SPARK_YARN_STAGING_DIR="file://$HADOOP_STATE/staging"
  derived_settings
}

# docker-compose.yml: one container per daemon, hosts named by the compose
# services, standard ports, HDFS for staging and event logs. Everything comes
# from the container's environment; platform.env is not used.
cluster_settings() {
  local pair name
  for pair in $YARN_PORT_DEFAULTS; do name="${pair%%=*}"; export "$name=${!name:-${pair#*=}}"; done
  export YARN_HOST="${YARN_RM_HOST:-resourcemanager}" YARN_NM_HOST="${YARN_NM_HOST:-$(hostname)}"
  export SPARK_HISTORY_HOST="${SPARK_HISTORY_HOST:-spark-history}" SPARK_DRIVER_BIND_HOST=""
  export HADOOP_DEFAULT_FS="${HADOOP_DEFAULT_FS:-hdfs://namenode:8020}"
  export SPARK_EVENT_LOG_DIR="${SPARK_EVENT_LOG_DIR:-$HADOOP_DEFAULT_FS/spark-events}"
  export SPARK_YARN_STAGING_DIR="${SPARK_YARN_STAGING_DIR:-$HADOOP_DEFAULT_FS/user}"
  derived_settings
}

derived_settings() {
  # Memory and vcores the NodeManager offers; overridable for bigger machines.
  # vcores are YARN's scheduling units, not the machine's cores: there are
  # enough for memory to be what limits how many applications run at once.
  export YARN_NM_MEMORY_MB="${YARN_NM_MEMORY_MB:-12288}" YARN_NM_VCORES="${YARN_NM_VCORES:-12}"
  export YARN_HOST HADOOP_STATE VENV_PYTHON LOCAL_HADOOP_CONF_DIR
  export HADOOP_CONF_DIR="$LOCAL_HADOOP_CONF_DIR" SPARK_CONF_DIR="$SPARK_CONF_DIR_LOCAL"
  PYSPARK_HOME="$(pyspark_home)"; export PYSPARK_HOME
  ICEBERG_SPARK_JARS="$(cd "$PLATFORM_HOME" && "$VENV_PYTHON" -c \
    'from iceberg_catalog.config import spark_jars; print(",".join(spark_jars()))')" ||
    die "Iceberg/JDBC jars missing: run make bootstrap"
  export ICEBERG_SPARK_JARS
}

port_is_busy() { [ "$(free_port "$1")" != "$1" ]; }

# A port recorded in platform.env can be taken later by something else (the
# default 18080 is also Trino's). Before starting a daemon, move each of its
# busy ports to a free one and record that; the config is rendered after.
move_busy_ports() {  # VAR...
  local name port
  for name in "$@"; do
    port="${!name}"
    port_is_busy "$port" || continue
    local new; new="$(free_port $((port + 1)))"
    while port_taken_in_env "$new"; do new="$(free_port $((new + 1)))"; done
    sed -i "s/^$name=.*/$name=$new/" "$PLATFORM_ENV_FILE"
    export "$name=$new"
    log "port $port ($name) is in use by another program; using $new (recorded in $PLATFORM_ENV_FILE)"
  done
}

render() {  # TEMPLATE DEST 'VAR1 VAR2 ...': substitute only the named variables
  local vars="" v
  for v in $3; do vars="$vars \${$v}"; done
  envsubst "$vars" < "$1" > "$2"
}

configure() {  # renders the configuration for the settings exported before
  mkdir -p "$HADOOP_CONF_DIR" "$SPARK_CONF_DIR" "$HADOOP_STATE"/{tmp,nm-local,nm-logs,staging,bin}
  case "$SPARK_EVENT_LOG_DIR" in file:*) mkdir -p "${SPARK_EVENT_LOG_DIR#file://}" ;; esac
  render "$HADOOP_SRC/core-site.xml.in" "$HADOOP_CONF_DIR/core-site.xml" "HADOOP_STATE HADOOP_DEFAULT_FS"
  render "$HADOOP_SRC/yarn-site.xml.in" "$HADOOP_CONF_DIR/yarn-site.xml" \
    "YARN_HOST YARN_NM_HOST YARN_RM_PORT YARN_RM_SCHEDULER_PORT YARN_RM_TRACKER_PORT YARN_RM_ADMIN_PORT YARN_RM_WEBAPP_PORT
     YARN_NM_WEBAPP_PORT YARN_NM_LOCALIZER_PORT YARN_NM_MEMORY_MB YARN_NM_VCORES HADOOP_STATE HADOOP_CONF_DIR"
  cp "$HADOOP_SRC/capacity-scheduler.xml" "$HADOOP_SRC/log4j.properties" "$HADOOP_CONF_DIR/"
  render "$HADOOP_SRC/spark-defaults.conf.in" "$SPARK_CONF_DIR/spark-defaults.conf" \
    "PYSPARK_HOME ICEBERG_SPARK_JARS SPARK_YARN_STAGING_DIR VENV_PYTHON SPARK_EVENT_LOG_DIR SPARK_HISTORY_HOST SPARK_HISTORY_PORT SPARK_CONF_DIR"
  render "$HADOOP_SRC/spark-env.sh.in" "$SPARK_CONF_DIR/spark-env.sh" "LOCAL_HADOOP_CONF_DIR SPARK_CONF_DIR SPARK_DRIVER_BIND_HOST"
  if [ -n "$SPARK_DRIVER_BIND_HOST" ]; then  # the containers of a single node listen there too
    printf '%s\n' "spark.yarn.appMasterEnv.SPARK_LOCAL_IP $SPARK_DRIVER_BIND_HOST" \
      "spark.executorEnv.SPARK_LOCAL_IP $SPARK_DRIVER_BIND_HOST" >> "$SPARK_CONF_DIR/spark-defaults.conf"
  fi
  # `yarn application -list|-kill ID`, for people and for Airflow's
  # SparkSubmitHook, which kills a task's YARN application with that command.
  cat > "$HADOOP_STATE/bin/yarn" <<SH
#!/usr/bin/env bash
# Generated by infra/hadoop.sh: the yarn CLI's application subcommands on this project's jars.
case "\${1:-}" in
  application|applicationattempt|container) ;;
  *) echo "usage: yarn application|applicationattempt|container ..." >&2; exit 2 ;;
esac
export HADOOP_CONF_DIR="\${HADOOP_CONF_DIR:-$LOCAL_HADOOP_CONF_DIR}"
exec java -Xmx256m -Dlog4j.configuration=file:$LOCAL_HADOOP_CONF_DIR/log4j.properties -Dhadoop.root.logger=WARN,RFA \\
  -Dhadoop.log.dir=$LOG_DIR -Dhadoop.log.file=yarn-cli.log \\
  -cp "\$HADOOP_CONF_DIR:$HADOOP_LIB/*" org.apache.hadoop.yarn.client.cli.ApplicationCLI "\$@"
SH
  chmod +x "$HADOOP_STATE/bin/yarn"
}

# ---------------------------------------------------------------- processes
pid_file() { echo "$RUN_DIR/$1.pid"; }

is_running() {  # NAME CLASS: the pid file's process is alive and is that JVM
  local pf; pf="$(pid_file "$1")"
  [ -f "$pf" ] || return 1
  local pid; pid="$(cat "$pf")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "$2"
}

start_jvm() {  # NAME CLASS HEAP [JVM ARGS...]: a detached daemon with its own log
  local name="$1" class="$2" heap="$3"; shift 3
  # setsid: the daemon outlives the shell (and the test) that started it.
  setsid nohup java "-Xmx$heap" "${JAVA17_OPENS[@]}" \
    -Dproc_"$name" -Dhadoop.log.dir="$LOG_DIR" -Dhadoop.log.file="$name.log" \
    -Dyarn.log.dir="$LOG_DIR" -Dyarn.log.file="$name.log" \
    -Dlog4j.configuration="file:$HADOOP_CONF_DIR/log4j.properties" \
    "$@" -cp "$HADOOP_CONF_DIR:$HADOOP_LIB/*" "$class" \
    >"$LOG_DIR/$name.out" 2>&1 < /dev/null &
  echo $! > "$(pid_file "$name")"
}

wait_for() {  # NAME CLASS SECONDS COMMAND...: poll until COMMAND succeeds, while NAME runs
  local name="$1" class="$2" limit="$3"; shift 3
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    is_running "$name" "$class" || return 1
    sleep 1
  done
}

rm_url() { echo "http://$YARN_HOST:$YARN_RM_WEBAPP_PORT"; }
history_url() { echo "http://$SPARK_HISTORY_HOST:$SPARK_HISTORY_PORT"; }

rm_answers() { curl -fsS "$(rm_url)/ws/v1/cluster/info" | grep -q '"state":"STARTED"'; }
node_is_active() { curl -fsS "$(rm_url)/ws/v1/cluster/metrics" | grep -qE '"activeNodes":[1-9]'; }
history_answers() { curl -fsS "$(history_url)/api/v1/applications?limit=1" >/dev/null; }

yarn_start() {
  install
  ensure_yarn_env
  is_running yarn-resourcemanager "$RM_CLASS" || move_busy_ports YARN_RM_PORT YARN_RM_SCHEDULER_PORT \
    YARN_RM_TRACKER_PORT YARN_RM_ADMIN_PORT YARN_RM_WEBAPP_PORT
  is_running yarn-nodemanager "$NM_CLASS" || move_busy_ports YARN_NM_WEBAPP_PORT YARN_NM_LOCALIZER_PORT
  configure
  local t0=$SECONDS
  # Both JVMs start at once: the NM retries the RM every second until it answers.
  if is_running yarn-resourcemanager "$RM_CLASS"; then
    log "ResourceManager already running"
  else
    start_jvm yarn-resourcemanager "$RM_CLASS" 768m
  fi
  if is_running yarn-nodemanager "$NM_CLASS"; then
    log "NodeManager already running"
  else
    # Containers launch $JAVA_HOME/bin/java: give the NM the machine's JDK.
    JAVA_HOME="$(java_home)" start_jvm yarn-nodemanager "$NM_CLASS" 512m
  fi
  wait_for yarn-resourcemanager "$RM_CLASS" 120 rm_answers ||
    die "ResourceManager did not start; see $LOG_DIR/yarn-resourcemanager.log and .out"
  wait_for yarn-nodemanager "$NM_CLASS" 120 node_is_active ||
    die "NodeManager did not register; see $LOG_DIR/yarn-nodemanager.log and .out"
  log "YARN up in $((SECONDS - t0))s: $(rm_url)"
}

history_opts() {
  echo "-Dspark.history.fs.logDirectory=$SPARK_EVENT_LOG_DIR -Dspark.history.ui.port=$SPARK_HISTORY_PORT" \
    "-Dspark.port.maxRetries=0 -Dspark.history.fs.update.interval=5s -Dspark.history.retainedApplications=20"
}

history_launch() {  # starts the History Server without waiting for it
  ensure_yarn_env
  is_running spark-history "$HS_CLASS" || move_busy_ports SPARK_HISTORY_PORT
  configure
  if is_running spark-history "$HS_CLASS"; then
    log "Spark History Server already running"
    return
  fi
  # Bound to loopback like YARN; port retries off so a taken port fails loudly.
  SPARK_HOME="$PYSPARK_HOME" SPARK_CONF_DIR="$SPARK_CONF_DIR" SPARK_DAEMON_MEMORY=512m SPARK_LOCAL_IP="$YARN_HOST" \
    SPARK_HISTORY_OPTS="$(history_opts)" \
    setsid nohup "$PYSPARK_HOME/bin/spark-class" "$HS_CLASS" \
    >"$LOG_DIR/spark-history.out" 2>&1 < /dev/null &
  echo $! > "$(pid_file spark-history)"
}

history_wait() {
  wait_for spark-history "$HS_CLASS" 120 history_answers ||
    die "Spark History Server did not start; see $LOG_DIR/spark-history.out"
  log "Spark History Server up: $(history_url)"
}

stop_daemon() {  # NAME CLASS: TERM, then KILL after 30 s
  local name="$1" class="$2" pf pid
  pf="$(pid_file "$name")"
  if is_running "$name" "$class"; then
    pid="$(cat "$pf")"
    kill "$pid"
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    log "$name stopped"
  fi
  rm -f "$pf"
}

yarn_stop() {
  ensure_yarn_env
  stop_daemon yarn-nodemanager "$NM_CLASS"
  stop_daemon yarn-resourcemanager "$RM_CLASS"
}

history_stop() { ensure_yarn_env; stop_daemon spark-history "$HS_CLASS"; }

status() {
  ensure_yarn_env
  local rc=0 name class
  for name in yarn-resourcemanager:$RM_CLASS yarn-nodemanager:$NM_CLASS spark-history:$HS_CLASS; do
    class="${name#*:}"; name="${name%%:*}"
    if is_running "$name" "$class"; then echo "$name: running (pid $(cat "$(pid_file "$name")"))"
    else echo "$name: stopped"; rc=3; fi
  done
  echo "YARN ResourceManager UI: $(rm_url)"
  echo "Spark History Server:    $(history_url)"
  return $rc
}

# docker-compose.yml: `hadoop.sh run ROLE` renders the cluster configuration
# and becomes the daemon (foreground, logs on stdout, the container's PID 1).
run_in_container() {
  cluster_settings
  configure
  local log_opts=(-Dhadoop.root.logger=INFO,console -Dlog4j.configuration="file:$HADOOP_CONF_DIR/log4j.properties")
  case "$1" in
    resourcemanager) exec java -Xmx1g "${JAVA17_OPENS[@]}" "${log_opts[@]}" -cp "$HADOOP_CONF_DIR:$HADOOP_LIB/*" "$RM_CLASS" ;;
    nodemanager) exec java -Xmx1g "${JAVA17_OPENS[@]}" "${log_opts[@]}" -cp "$HADOOP_CONF_DIR:$HADOOP_LIB/*" "$NM_CLASS" ;;
    history) SPARK_HOME="$PYSPARK_HOME" SPARK_HISTORY_OPTS="$(history_opts)" SPARK_NO_DAEMONIZE=1 \
      exec "$PYSPARK_HOME/bin/spark-class" "$HS_CLASS" ;;
    client) print_env ;;  # Airflow containers: configuration for spark-submit, exports on stdout
    *) die "usage: $0 run resourcemanager|nodemanager|history|client" ;;
  esac
}

# What a shell, Airflow or a test exports to submit to this YARN. A remote
# cluster: export HADOOP_CONF_DIR=<its client config> afterwards; nothing else changes.
print_env() {
  [ -f "$SPARK_CONF_DIR/spark-defaults.conf" ] || configure
  # PLATFORM_*: jobs shipped as --py-files zips cannot find the checkout from
  # their own file path, so they read it from these.
  cat <<ENV
export PLATFORM_HOME="$PLATFORM_HOME"
export PLATFORM_STATE="$PLATFORM_STATE"
export PLATFORM_CACHE="$PLATFORM_CACHE"
export SPARK_HOME="$PYSPARK_HOME"
export HADOOP_CONF_DIR="$HADOOP_CONF_DIR"
export YARN_CONF_DIR="$HADOOP_CONF_DIR"
export SPARK_CONF_DIR="$SPARK_CONF_DIR"
export SPARK_MASTER=yarn
export PYSPARK_PYTHON="$VENV_PYTHON"
export PATH="$HADOOP_STATE/bin:\$PATH"
export YARN_RM_URL="$(rm_url)"
export SPARK_HISTORY_URL="$(history_url)"
ENV
  # On a single node the DAG's tasks give spark-submit these settings as a file
  # and no SPARK_CONF_DIR (dags/pipeline_tasks.py): that directory would come
  # first on the driver's class path, where JDK 17 maps no class archive. Their
  # drivers listen on loopback all the same (pyspark's load-spark-env.sh, infra/bootstrap.sh).
  if [ -n "$SPARK_DRIVER_BIND_HOST" ]; then
    echo "export PIPELINE_SPARK_PROPERTIES_FILE=\"$SPARK_CONF_DIR/spark-defaults.conf\""
  fi
}

case "${1:-}" in
  install) install ;;
  lock) lock ;;
  configure) ensure_yarn_env; configure; log "wrote $LOCAL_HADOOP_CONF_DIR and $SPARK_CONF_DIR_LOCAL" ;;
  start) t0=$SECONDS; history_launch; yarn_start; history_wait; log "all up in $((SECONDS - t0))s" ;;
  stop) history_stop; yarn_stop ;;
  yarn-start) yarn_start ;;
  yarn-stop) yarn_stop ;;
  history-start) history_launch; history_wait ;;
  history-stop) history_stop ;;
  status) status ;;
  env) ensure_yarn_env; print_env ;;
  run) run_in_container "${2:-}" ;;
  *) die "usage: $0 install|start|stop|status|env|yarn-start|yarn-stop|history-start|history-stop|configure|lock" ;;
esac
