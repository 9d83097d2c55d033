#!/usr/bin/env bash
# The project's own PostgreSQL server: a data dir under .local/pg, listening
# on 127.0.0.1:$PG_PORT, holding the Iceberg catalog database and the metadata
# databases of Airflow and Superset.
#
# Each client has its own login role, none of them superuser (names and
# passwords in platform.env): PG_CATALOG_USER owns the catalog databases
# (Spark, PyIceberg); PG_TRINO_USER reads them and may update table pointers
# (the maintenance DAG's commits through Trino), nothing else; PG_AIRFLOW_USER
# and PG_SUPERSET_USER own their metadata database. Only its owner (and Trino,
# for a catalog) may connect to a database. PG_USER, the bootstrap superuser,
# only creates roles and databases.
#
#   start | stop | status
#   database NAME catalog|airflow|superset [--fresh]   create (or recreate) and grant
#   drop-database NAME
. "$(dirname "$0")/lib.sh"
ensure_platform_env

PGBIN="$(dirname "$(readlink -f "$(command -v initdb 2>/dev/null || ls /usr/lib/postgresql/*/bin/initdb | tail -1)")")"
PGDATA="$PLATFORM_STATE/pg"
PGLOG="$PLATFORM_STATE/logs/postgres.log"

# PostgreSQL refuses to run as root; as root, run it as the package's user.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  if [ ! -f "$PGDATA/PG_VERSION" ]; then
    log "initdb $PGDATA"
    mkdir -p "$PGDATA"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$PGDATA" "$PLATFORM_STATE/logs"
    local pwfile; pwfile="$(mktemp)"; echo "$PG_PASSWORD" > "$pwfile"
    [ "$(id -u)" = 0 ] && chown postgres "$pwfile"
    as_pg "$PGBIN/initdb" -D "$PGDATA" -U "$PG_USER" --pwfile="$pwfile" \
      --auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$pwfile"
  fi
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$PLATFORM_STATE/logs" && touch "$PGLOG" && chown postgres "$PGLOG"
  if as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    log "postgres already running on $PG_PORT"
  else
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGLOG" -w -t 60 \
      -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k /tmp -c max_connections=200" start >/dev/null
    log "postgres started on 127.0.0.1:$PG_PORT"
  fi
  for role in "$PG_CATALOG_USER:$PG_CATALOG_PASSWORD" "$PG_TRINO_USER:$PG_TRINO_PASSWORD" \
              "$PG_AIRFLOW_USER:$PG_AIRFLOW_PASSWORD" "$PG_SUPERSET_USER:$PG_SUPERSET_PASSWORD"; do
    ensure_role "${role%%:*}" "${role#*:}"
  done
  database "$ICEBERG_CATALOG_DB" catalog
  database "$AIRFLOW_DB" airflow
}

psql_admin() {
  PGPASSWORD="$PG_PASSWORD" PGOPTIONS="-c client_min_messages=warning" \
    psql -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -v ON_ERROR_STOP=1 -qtA "$@" >/dev/null
}

ensure_role() {  # ensure_role NAME PASSWORD
  psql_admin -d postgres -v name="$1" -v password="$2" -f "$PLATFORM_HOME/infra/postgres/role.sql"
}

database() {
  local name="$1" kind="$2" owner reader=""
  case "$kind" in
    catalog) owner="$PG_CATALOG_USER" reader="$PG_TRINO_USER" ;;
    airflow) owner="$PG_AIRFLOW_USER" ;;
    superset) owner="$PG_SUPERSET_USER" ;;
    *) die "usage: $0 database NAME catalog|airflow|superset [--fresh]" ;;
  esac
  if [ "${3:-}" = --fresh ]; then drop_database "$name"; fi
  psql_admin -d postgres -v name="$name" -v owner="$owner" -v reader="$reader" -f "$PLATFORM_HOME/infra/postgres/database.sql"
}

drop_database() {
  psql_admin -d postgres -v name="$1" <<'SQL'
SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', :'name') \gexec
SQL
}

stop() {
  if [ -f "$PGDATA/PG_VERSION" ] && as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
    log "postgres stopped"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status ;;
  database) shift; database "$@" ;;
  drop-database) drop_database "$2" ;;
  *) die "usage: $0 start|stop|status|database NAME KIND [--fresh]|drop-database NAME" ;;
esac
