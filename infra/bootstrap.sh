#!/usr/bin/env bash
# Installs everything the project needs on a fresh machine; a second run does
# nothing (the venv is keyed by requirements.txt, downloads by checksum).
. "$(dirname "$0")/lib.sh"
. "$PLATFORM_HOME/infra/versions.sh"

# Debian packages, only those missing, in one apt run: the PostgreSQL server;
# Node.js and npm (the Data Docs assets, infra/datadocs.sh install); Chromium
# and its WebDriver (the browser the Superset and Data Docs tests drive; never
# a browser downloaded by a test tool).
apt_missing=()
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt_missing+=(postgresql)
fi
command -v npm >/dev/null 2>&1 || apt_missing+=(nodejs npm)
command -v chromium >/dev/null 2>&1 || apt_missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || apt_missing+=(chromium-driver)
if [ "${#apt_missing[@]}" -gt 0 ]; then
  log "installing Debian packages: ${apt_missing[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${apt_missing[@]}" >/dev/null
fi

# Python venv, rebuilt only when requirements.txt changes.
stamp="$PLATFORM_HOME/.venv/.requirements.sha256"
want="$(sha256sum "$PLATFORM_HOME/requirements.txt" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "creating .venv from requirements.txt"
  python3.11 -m venv "$PLATFORM_HOME/.venv"
  "$PLATFORM_HOME/.venv/bin/pip" install -q --upgrade pip
  "$PLATFORM_HOME/.venv/bin/pip" install -q -r "$PLATFORM_HOME/requirements.txt"
  echo "$want" > "$stamp"
fi
# Every Spark this venv starts (pyspark's SparkSession, its spark-submit) runs
# pyspark's bin/load-spark-env.sh: there a driver of pyspark's own conf/, its
# UI included, gets loopback unless SPARK_LOCAL_IP says otherwise. A
# SPARK_CONF_DIR of its own (the YARN profile's) decides in its spark-env.sh.
# Not in conf/spark-env.sh: conf/ is on the driver's class path and must stay
# empty for the class archive (JDK 17 maps none with a non-empty directory).
pyspark_home="$("$PLATFORM_HOME/.venv/bin/python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"
rm -f "$pyspark_home/conf/spark-env.sh"  # an earlier bootstrap's
loopback_line='[ "$SPARK_CONF_DIR" != "$SPARK_HOME/conf" ] || export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"  # infra/bootstrap.sh'
grep -qxF "$loopback_line" "$pyspark_home/bin/load-spark-env.sh" ||
  printf '%s\n' "$loopback_line" >> "$pyspark_home/bin/load-spark-env.sh"

# Jars Spark puts on spark.jars: the Iceberg runtime for our Spark minor and
# the JDBC driver of the catalog database; and the local file system on the
# driver's class path (iceberg_catalog.config.spark_driver_conf).
fetch_maven org.apache.iceberg "iceberg-spark-runtime-$SPARK_SCALA_SUFFIX" "$ICEBERG_VERSION" >/dev/null
fetch_maven org.postgresql postgresql "$POSTGRES_JDBC_VERSION" >/dev/null
fetch_maven com.globalmentor hadoop-bare-naked-local-fs "$BARE_LOCAL_FS_VERSION" >/dev/null

ensure_platform_env

# Each service with downloads of its own installs them here (idempotent).
for component in hadoop kafka trino airflow datadocs superset; do
  script="$PLATFORM_HOME/infra/$component.sh"
  if [ -x "$script" ]; then "$script" install; fi
done
bash "$PLATFORM_HOME/infra/spark_class_archive.sh"
log "bootstrap done"
