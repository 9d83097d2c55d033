"""Trino over the Iceberg catalog Spark writes: security, time travel, branches,
saved queries, maintenance, and gold tables equal to what Spark reads.

The Trino server is the project's own (infra/trino.sh) as an isolated test
instance over the test catalog (tests/e2e/trino_service.py). Tables this module needs are made
with Spark in the namespace ``trino_e2e`` (and one probe table in ``gold``,
since the analyst may read only gold and ops) and dropped afterwards.
"""
from __future__ import annotations

import base64
import json
import math
import re
import subprocess
from collections import Counter
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
import requests
from trino.exceptions import HttpError, TrinoUserError

from iceberg_catalog.config import settings
from iceberg_catalog.maintenance import Policy, maintain
from spark_jobs.pipeline import STAGES
from tests.e2e.speed_layer_service import HEADER, produce, run_until_caught_up
from tests.e2e.trino_service import ROOT, start_trino, stop_trino
from tests.listening import assert_only_loopback

TEST_NS = "trino_e2e"
PROBE = "gold.zz_trino_e2e_probe"  # dropped after the module; never a pipeline table
SAVED_QUERIES = ROOT / "iceberg_catalog" / "saved_queries"
# The pipeline fixture's few days are shorter than the 7-value baseline an anomaly needs.
MAY_BE_EMPTY = {"gold.usage_anomalies"}
GOLD_TABLES = sorted(t for stage in STAGES for t in stage.tables if t.startswith("gold."))
SAVED_QUERY_COLUMNS = {
    "dau_stickiness": ["event_date", "dau", "mau_30d", "stickiness", "stickiness_7d_avg"],
    "cohort_retention_matrix": ["cohort_week", "cohort_size", *[f"week_{k}" for k in range(26)]],
    "p95_load_time_by_app_version": ["app_version", "events", "p50_ms", "p95_ms", "p99_ms"],
    "latest_anomalies": ["event_date", "dimension", "dimension_value", "metric", "value", "baseline_mean",
                         "baseline_std", "z_score", "severity"],
    "bounce_rate_by_device_and_country": ["device_type", "country", "sessions", "bounced_sessions", "bounce_rate"],
    "power_users_by_country": ["country", "power_users", "total_duration_ms", "events", "avg_duration_ms_per_user"],
    "lastfm_top_songs": ["rank", "artist_name", "track_name", "plays"],
    "lastfm_top_sessions": ["rank", "user_id", "session_start", "session_end", "tracks", "user_top_sessions"],
}


def saved_query(name: str) -> str:
    """The file's statement without its terminating semicolon (the CLI wants it, the API refuses it)."""
    return (SAVED_QUERIES / f"{name}.sql").read_text().strip().rstrip(";")


def normalized(value):
    """Spark and Trino return the same stored value as different Python types."""
    if isinstance(value, datetime):
        # Trino: aware (timestamptz); Spark: naive in the process's local zone.
        return value.astimezone(timezone.utc).replace(tzinfo=None)
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return value


def sort_key(row):
    return tuple((v is None, str(type(v)), v if v is not None else 0) for v in row)


def normalized_rows(rows) -> list[tuple]:
    return sorted((tuple(normalized(v) for v in r) for r in rows), key=sort_key)


def assert_rows_equal(actual, expected, where: str) -> None:
    assert len(actual) == len(expected), f"{where}: {len(actual)} rows through Trino, {len(expected)} through Spark"
    for i, (a, e) in enumerate(zip(actual, expected)):
        same = len(a) == len(e) and all(
            (isinstance(x, float) and isinstance(y, float) and math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-12))
            or x == y for x, y in zip(a, e))
        assert same, f"{where}: row {i} differs\n  trino: {a}\n  spark: {e}"


def spark_rows(spark, sql: str) -> tuple[list[str], list[tuple]]:
    df = spark.sql(sql)
    return df.columns, [tuple(r) for r in df.collect()]


def snapshots(spark, table: str) -> list[tuple[int, datetime]]:
    return [(r.snapshot_id, r.committed_at) for r in
            spark.sql(f"SELECT snapshot_id, committed_at FROM iceberg.{table}.snapshots ORDER BY committed_at").collect()]


def denied(excinfo) -> bool:
    return isinstance(excinfo.value, TrinoUserError) and excinfo.value.error_name == "PERMISSION_DENIED"


@pytest.fixture(scope="module")
def trino_server(platform, pipeline_run, lastfm_run):
    """Trino over the test catalog, after the pipeline has published every table the saved
    queries and access rules name (a fresh catalog has none)."""
    service = start_trino()
    yield service
    stop_trino(service)


@pytest.fixture(scope="module")
def history(spark):
    """trino_e2e.events: snapshot 1 = rows 1-2, snapshot 2 = + row 3 on main,
    and branch audit_e2e = main + row 4 (a staged write not yet published)."""
    table = f"{TEST_NS}.events"
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS iceberg.{TEST_NS}")
    spark.sql(f"DROP TABLE IF EXISTS iceberg.{table} PURGE")
    spark.sql(f"CREATE TABLE iceberg.{table} (id BIGINT, name STRING, amount DOUBLE, event_date DATE) USING iceberg "
              "PARTITIONED BY (event_date) TBLPROPERTIES ('format-version'='2')")
    spark.sql(f"INSERT INTO iceberg.{table} VALUES (1, 'a', 1.5, DATE '2024-01-01'), (2, 'b', 2.5, DATE '2024-01-02')")
    spark.sql(f"INSERT INTO iceberg.{table} VALUES (3, 'c', 3.5, DATE '2024-01-03')")
    spark.sql(f"ALTER TABLE iceberg.{table} CREATE BRANCH audit_e2e")
    spark.sql(f"INSERT INTO iceberg.{table}.branch_audit_e2e VALUES (4, 'd', 4.5, DATE '2024-01-04')")
    yield {"table": table, "snapshots": snapshots(spark, table)}
    spark.sql(f"DROP TABLE IF EXISTS iceberg.{table} PURGE")


@pytest.fixture(scope="module")
def probe(spark):
    """A gold table the analyst can read, with two snapshots, to attack and time-travel."""
    spark.sql("CREATE NAMESPACE IF NOT EXISTS iceberg.gold")
    spark.sql(f"DROP TABLE IF EXISTS iceberg.{PROBE} PURGE")
    spark.sql(f"CREATE TABLE iceberg.{PROBE} (k STRING, v BIGINT) USING iceberg TBLPROPERTIES ('format-version'='2')")
    spark.sql(f"INSERT INTO iceberg.{PROBE} VALUES ('x', 1), ('y', 2)")
    spark.sql(f"INSERT INTO iceberg.{PROBE} VALUES ('z', 3)")
    yield {"table": PROBE, "snapshots": snapshots(spark, PROBE)}
    spark.sql(f"DROP TABLE IF EXISTS iceberg.{PROBE} PURGE")


def test_trino_postgresql_and_the_spark_driver_listen_on_loopback_only(trino_server, spark):
    spark_ui_port = int(spark.sparkContext.uiWebUrl.rsplit(":", 1)[1])
    assert_only_loopback({trino_server.https_port, trino_server.http_port, spark_ui_port, int(settings()["PG_PORT"])})


# --- authentication -------------------------------------------------------------------------------

def test_correct_password_over_https_is_accepted(trino_server):
    assert trino_server.query("SELECT 1", user="analyst") == [(1,)]
    assert trino_server.query("SELECT current_user", user="etl") == [("etl",)]


@pytest.mark.parametrize("user,password", [("analyst", "not-the-password"), ("etl", ""), ("mallory", "guess")])
def test_wrong_password_is_refused(trino_server, user, password):
    conn = trino_server.connect(user, password=password or "x")
    with pytest.raises(HttpError, match="401"):
        conn.cursor().execute("SELECT 1")


def test_https_without_credentials_is_refused(trino_server):
    session = requests.Session()
    session.trust_env = False
    r = session.post(f"https://localhost:{trino_server.https_port}/v1/statement", data="SELECT 1",
                     headers={"X-Trino-User": "analyst"}, verify=str(trino_server.ca_cert))
    assert r.status_code == 401


def test_plain_http_with_password_is_refused(trino_server):
    credentials = base64.b64encode(f"analyst:{trino_server.password('analyst')}".encode()).decode()
    session = requests.Session()
    session.trust_env = False
    r = session.post(f"http://127.0.0.1:{trino_server.http_port}/v1/statement", data="SELECT 1",
                     headers={"X-Trino-User": "analyst", "Authorization": f"Basic {credentials}"})
    assert r.status_code == 403
    assert "Authentication over HTTP is not enabled" in r.text
    assert "nextUri" not in r.text  # no query was created


def test_https_serves_the_generated_certificate_for_localhost(trino_server):
    out = subprocess.run(["openssl", "x509", "-in", str(trino_server.ca_cert), "-noout", "-ext", "subjectAltName"],
                         capture_output=True, text=True, check=True).stdout
    assert "DNS:localhost" in out and "IP Address:127.0.0.1" in out
    # The server presents exactly that certificate: verification against it alone succeeds.
    session = requests.Session()
    session.trust_env = False
    assert session.get(f"https://localhost:{trino_server.https_port}/v1/info", verify=str(trino_server.ca_cert)).ok


# --- access control -------------------------------------------------------------------------------

@pytest.mark.parametrize("statement", [
    f"INSERT INTO iceberg.{PROBE} VALUES ('evil', 666)",
    f"DELETE FROM iceberg.{PROBE} WHERE v > 0",
    f"UPDATE iceberg.{PROBE} SET v = 0",
    f"DROP TABLE iceberg.{PROBE}",
    f"ALTER TABLE iceberg.{PROBE} EXECUTE optimize",
    f"ALTER TABLE iceberg.{PROBE} EXECUTE expire_snapshots(retention_threshold => '0s')",
    f"ALTER TABLE iceberg.{PROBE} EXECUTE remove_orphan_files(retention_threshold => '0s')",
    "CALL iceberg.system.rollback_to_snapshot('gold', 'zz_trino_e2e_probe', 1)",
    f"CREATE TABLE iceberg.gold.zz_trino_e2e_created AS SELECT * FROM iceberg.{PROBE}",
    f"ALTER TABLE iceberg.{PROBE} ADD COLUMN w bigint",
])
def test_analyst_cannot_change_anything(trino_server, spark, probe, statement):
    with pytest.raises(TrinoUserError) as excinfo:
        trino_server.query(statement, user="analyst")
    assert denied(excinfo), excinfo.value
    rows = sorted(tuple(r) for r in spark.sql(f"SELECT k, v FROM iceberg.{PROBE}").collect())
    assert rows == [("x", 1), ("y", 2), ("z", 3)]
    assert [s for s, _ in snapshots(spark, PROBE)] == [s for s, _ in probe["snapshots"]]


@pytest.mark.parametrize("statement", [
    f"SELECT count(*) FROM iceberg.{TEST_NS}.events",  # any namespace but gold and ops, e.g. bronze, silver
    f'SELECT * FROM iceberg.{TEST_NS}."events$snapshots"',
    f"SELECT count(*) FROM iceberg.{TEST_NS}.events FOR VERSION AS OF 'audit_e2e'",
    "SELECT * FROM system.runtime.nodes",
    "SELECT * FROM system.jdbc.tables",
    "SELECT * FROM system.metadata.catalogs",
    "SELECT count(*) FROM iceberg_maintenance.gold.daily_engagement",
    "SET SESSION query_max_memory = '20GB'",
])
def test_analyst_reads_only_gold_and_ops(trino_server, history, statement):
    with pytest.raises(TrinoUserError) as excinfo:
        trino_server.query(statement, user="analyst")
    assert denied(excinfo), excinfo.value


def test_analyst_sees_only_the_iceberg_catalog_and_gold_ops(trino_server, history, probe):
    assert trino_server.query("SHOW CATALOGS", user="analyst") == [("iceberg",)]
    schemas = {r[0] for r in trino_server.query("SHOW SCHEMAS FROM iceberg", user="analyst")}
    assert schemas <= {"gold", "ops", "information_schema"} and "gold" in schemas
    assert TEST_NS not in schemas


def test_nobody_reads_catalog_internals(trino_server):
    for user in ("analyst", "etl"):
        with pytest.raises(TrinoUserError) as excinfo:
            trino_server.query("SELECT * FROM system.jdbc.catalogs", user=user)
        assert denied(excinfo)
        catalogs = {r[0] for r in trino_server.query("SHOW CATALOGS", user=user)}
        assert catalogs <= {"iceberg", "iceberg_maintenance"}  # no postgres connector, no system


SECRET_EXAMPLES = '{"element_count": 10, "unexpected_count": 2, "unexpected_percent": 20.0, "partial_unexpected_list": ["u-secret-1"]}'
GOLD_EXAMPLES = '{"element_count": 5, "unexpected_count": 1, "unexpected_percent": 20.0, "partial_unexpected_list": [7]}'
SECRET_METRICS = ('{"hot_keys": [{"user_id": "u-secret-2", "events": 9}], "error": "ValueError: u-secret-3", '
                  '"traceback": "File /secret/path.py", "wall_seconds": 1.5, "gate": {"passed": false}}')


@pytest.fixture(scope="module")
def raw_values_in_ops(spark, pipeline_run):
    """Run records holding raw values, as a failed bronze audit and a failed enrich leave them."""
    run = "mask_probe"
    spark.sql(f"""INSERT INTO iceberg.ops.quality_results VALUES
        ('{run}', 'ingest', 'bronze.interactions', NULL, NULL, 't', 'e1', 'warning', false, '{SECRET_EXAMPLES}', NULL, now()),
        ('{run}', 'ingest', 'bronze.interactions', NULL, NULL, 't', 'e2', 'warning', false, '"u-secret-max"', NULL, now()),
        ('{run}', 'engagement', 'gold.daily_engagement', NULL, NULL, 't', 'e3', 'warning', false, '{GOLD_EXAMPLES}',
         NULL, now())""")
    spark.sql(f"INSERT INTO iceberg.ops.job_runs VALUES ('{run}', 'enrich', now(), now(), 'failed', 1, 0, 0, "
              f"'{SECRET_METRICS}')")
    yield run
    spark.sql(f"DELETE FROM iceberg.ops.quality_results WHERE run_id = '{run}'")
    spark.sql(f"DELETE FROM iceberg.ops.job_runs WHERE run_id = '{run}'")


def test_analyst_sees_counts_of_audits_of_unreadable_tables_not_their_values(trino_server, raw_values_in_ops):
    sql = (f"SELECT expectation, observed_value FROM iceberg.ops.quality_results "
           f"WHERE run_id = '{raw_values_in_ops}' ORDER BY expectation")

    analyst = [(e, v and json.loads(v)) for e, v in trino_server.query(sql, user="analyst")]
    etl = trino_server.query(sql, user="etl")

    assert analyst == [("e1", {"element_count": 10, "unexpected_count": 2, "unexpected_percent": 20.0}),
                       ("e2", None),
                       ("e3", json.loads(GOLD_EXAMPLES))]  # gold: the analyst reads the table itself anyway
    assert etl == [("e1", SECRET_EXAMPLES), ("e2", '"u-secret-max"'), ("e3", GOLD_EXAMPLES)]
    assert trino_server.query(sql, user="bi") == trino_server.query(sql, user="analyst")


def test_analyst_sees_run_figures_not_hot_keys_errors_or_tracebacks(trino_server, raw_values_in_ops):
    sql = f"SELECT metrics_json FROM iceberg.ops.job_runs WHERE run_id = '{raw_values_in_ops}'"

    [(analyst,)] = trino_server.query(sql, user="analyst")
    [(etl,)] = trino_server.query(sql, user="etl")

    assert json.loads(analyst) == {"wall_seconds": 1.5, "gate": {"passed": False}}
    assert etl == SECRET_METRICS


def test_etl_reads_everything_but_writes_nothing(trino_server, history):
    assert trino_server.query(f"SELECT count(*) FROM iceberg.{history['table']}", user="etl") == [(3,)]
    for statement in (f"INSERT INTO iceberg_maintenance.{history['table']} VALUES (9, 'z', 0.0, DATE '2024-01-09')",
                      f"INSERT INTO iceberg.{history['table']} VALUES (9, 'z', 0.0, DATE '2024-01-09')",
                      f"DROP TABLE iceberg_maintenance.{history['table']}"):
        with pytest.raises(TrinoUserError) as excinfo:
            trino_server.query(statement, user="etl")
        assert denied(excinfo), statement


def test_etl_runs_table_maintenance(trino_server, spark):
    """Three small inserts, then optimize + expire + orphans with zero retention:
    one data file, one snapshot, an orphan file gone, the same rows."""
    table = f"{TEST_NS}.small_files"
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS iceberg.{TEST_NS}")
    spark.sql(f"DROP TABLE IF EXISTS iceberg.{table} PURGE")
    spark.sql(f"CREATE TABLE iceberg.{table} (id BIGINT, s STRING) USING iceberg TBLPROPERTIES ('format-version'='2')")
    try:
        for i in range(3):
            spark.sql(f"INSERT INTO iceberg.{table} VALUES ({i}, 'row{i}')")
        location = spark.sql(f"SELECT file_path FROM iceberg.{table}.files LIMIT 1").collect()[0][0]
        data_dir = Path(re.sub(r"^file:(//)?", "", location)).parent
        orphan = data_dir / "orphan-from-a-crashed-writer.parquet"
        orphan.write_bytes(b"not referenced by any snapshot")

        results = maintain([table], ["optimize", "expire_snapshots", "remove_orphan_files"],
                           Policy(snapshot_retention="0s", orphan_retention="0s"),
                           connect=lambda: trino_server.connect("etl", catalog="iceberg_maintenance"))

        by_action = {r.action: r for r in results}
        assert by_action["optimize"].data_files_before == 3
        assert by_action["optimize"].data_files_after == 1
        assert by_action["expire_snapshots"].snapshots_before == 4  # 3 inserts + the optimize rewrite
        assert by_action["expire_snapshots"].snapshots_after == 1
        assert not orphan.exists()
        spark.sql(f"REFRESH TABLE iceberg.{table}")  # Spark's catalog cache still holds the expired snapshot
        rows = sorted(tuple(r) for r in spark.sql(f"SELECT id, s FROM iceberg.{table}").collect())
        assert rows == [(0, "row0"), (1, "row1"), (2, "row2")]
    finally:
        spark.sql(f"DROP TABLE IF EXISTS iceberg.{table} PURGE")


# --- time travel and branches ---------------------------------------------------------------------

def test_time_travel_by_snapshot_id_returns_the_previous_data(trino_server, history):
    first, second = history["snapshots"][0][0], history["snapshots"][1][0]
    t = f"iceberg.{history['table']}"
    q = "SELECT id, name, amount, event_date FROM {} FOR VERSION AS OF {} ORDER BY id"
    before = trino_server.query(q.format(t, first), user="etl")
    assert [r[:3] for r in before] == [(1, "a", 1.5), (2, "b", 2.5)]
    assert [r[0] for r in trino_server.query(q.format(t, second), user="etl")] == [1, 2, 3]


def test_time_travel_to_the_parent_of_the_current_snapshot(trino_server, probe):
    """What an analyst does: find the previous snapshot in $snapshots, read it."""
    current = trino_server.query(
        'SELECT snapshot_id, parent_id FROM iceberg.gold."zz_trino_e2e_probe$snapshots" '
        "ORDER BY committed_at DESC LIMIT 1", user="analyst")[0]
    assert current[0] == probe["snapshots"][-1][0]
    previous = trino_server.query(
        f"SELECT k, v FROM iceberg.{PROBE} FOR VERSION AS OF {current[1]} ORDER BY k", user="analyst")
    assert previous == [("x", 1), ("y", 2)]
    now = trino_server.query(f"SELECT k, v FROM iceberg.{PROBE} ORDER BY k", user="analyst")
    assert now == [("x", 1), ("y", 2), ("z", 3)]


def test_time_travel_by_timestamp(trino_server, history):
    (_, first_at), (_, second_at) = history["snapshots"][:2]
    t = f"iceberg.{history['table']}"

    def ids_as_of(ts: datetime) -> list[int]:
        literal = normalized(ts).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        return [r[0] for r in trino_server.query(
            f"SELECT id FROM {t} FOR TIMESTAMP AS OF TIMESTAMP '{literal} UTC' ORDER BY id", user="etl")]

    assert ids_as_of(first_at) == [1, 2]
    assert ids_as_of(second_at) == [1, 2, 3]


def test_staged_branch_is_readable_by_name_before_publishing(trino_server, history):
    t = f"iceberg.{history['table']}"
    staged = trino_server.query(f"SELECT id FROM {t} FOR VERSION AS OF 'audit_e2e' ORDER BY id", user="etl")
    assert [r[0] for r in staged] == [1, 2, 3, 4]
    published = trino_server.query(f"SELECT id FROM {t} ORDER BY id", user="etl")
    assert [r[0] for r in published] == [1, 2, 3]
    refs = dict(trino_server.query(f'SELECT name, type FROM iceberg.{TEST_NS}."events$refs"', user="etl"))
    assert refs == {"main": "BRANCH", "audit_e2e": "BRANCH"}


# --- CLI and saved queries ------------------------------------------------------------------------

def test_cli_opens_an_authenticated_session_on_iceberg(trino_server, probe):
    out = subprocess.run([str(ROOT / "bin" / "trino"), "--output-format", "CSV_UNQUOTED",
                          "--execute", "SELECT current_user, current_catalog, current_schema, "
                                       "(SELECT sum(v) FROM zz_trino_e2e_probe)"],
                         capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, env=trino_server.env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "analyst,iceberg,gold,6"


def test_cli_runs_a_saved_query_file(trino_server):
    out = subprocess.run([str(ROOT / "bin" / "trino"), "--output-format", "CSV_HEADER_UNQUOTED",
                          "-f", str(SAVED_QUERIES / "power_users_by_country.sql")],
                         capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, env=trino_server.env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == ",".join(SAVED_QUERY_COLUMNS["power_users_by_country"])


def test_the_saved_queries_are_the_documented_ones(trino_server):
    assert sorted(p.stem for p in SAVED_QUERIES.glob("*.sql")) == sorted(SAVED_QUERY_COLUMNS)


@pytest.mark.parametrize("name", sorted(SAVED_QUERY_COLUMNS))
def test_every_saved_query_runs_as_analyst(trino_server, name):
    columns, rows = trino_server.columns_and_rows(saved_query(name), user="analyst")
    assert columns == SAVED_QUERY_COLUMNS[name]
    assert isinstance(rows, list)


# --- against the pipeline's gold tables -----------------------------------------------------------

@pytest.mark.parametrize("table", GOLD_TABLES)
def test_gold_table_through_trino_equals_spark(trino_server, spark, pipeline_run, table):
    spark_columns, expected = spark_rows(spark, f"SELECT * FROM iceberg.{table}")
    columns, actual = trino_server.columns_and_rows(f"SELECT * FROM iceberg.{table}", user="analyst")
    assert columns == spark_columns
    if table not in MAY_BE_EMPTY:
        assert len(expected) > 0, f"{table} is empty after the pipeline run: nothing compared"
    assert_rows_equal(normalized_rows(actual), normalized_rows(expected), table)


@pytest.mark.parametrize("name", sorted(SAVED_QUERY_COLUMNS))
def test_saved_query_returns_what_spark_computes_from_gold(trino_server, spark, pipeline_run, name):
    """The same statement through Spark over the same snapshot must agree."""
    _, expected = spark_rows(spark, saved_query(name))
    _, actual = trino_server.columns_and_rows(saved_query(name), user="analyst")
    assert_rows_equal(normalized_rows(actual), normalized_rows(expected), name)


def test_saved_queries_hold_the_gold_numbers(trino_server, spark, pipeline_run):
    """Spot checks against the gold tables themselves, not another query."""
    dau = trino_server.columns_and_rows(saved_query("dau_stickiness"))[1]
    gold = spark.sql("SELECT event_date, dau, mau_30d, stickiness FROM iceberg.gold.daily_engagement").collect()
    assert dau and sorted(r[:4] for r in dau) == sorted(tuple(r) for r in gold)

    power = trino_server.columns_and_rows(saved_query("power_users_by_country"))[1]
    assert sum(r[1] for r in power) == spark.table("iceberg.gold.power_users").count()

    bounce = trino_server.columns_and_rows(saved_query("bounce_rate_by_device_and_country"))[1]
    sessions = spark.table("iceberg.gold.sessions")
    assert sum(r[2] for r in bounce) == sessions.count()
    assert sum(r[3] for r in bounce) == sessions.where("is_bounce").count()

    p95 = trino_server.columns_and_rows(saved_query("p95_load_time_by_app_version"))[1]
    gold_p95 = {r.app_version: r.p95_ms for r in spark.table("iceberg.gold.app_version_latency_overall").collect()}
    assert {r[0]: r[3] for r in p95} == gold_p95

    matrix = trino_server.columns_and_rows(saved_query("cohort_retention_matrix"))[1]
    cells = spark.sql("SELECT cohort_week, week_offset, retention_rate FROM iceberg.gold.cohort_retention").collect()
    by_week = {r[0]: r for r in matrix}
    for c in cells:
        assert by_week[c.cohort_week][2 + c.week_offset] == c.retention_rate


def test_lastfm_saved_queries_hold_what_duckdb_computes_from_the_dump(trino_server, lastfm_run):
    from bench.duckdb_lastfm import lastfm_tables

    duck = lastfm_tables(lastfm_run["plays"])
    songs = trino_server.columns_and_rows(saved_query("lastfm_top_songs"), user="analyst")[1]
    assert [tuple(r) for r in songs] == [tuple(r) for r in duck["top_songs"]]
    sessions = trino_server.columns_and_rows(saved_query("lastfm_top_sessions"), user="analyst")[1]
    assert [(r[0], r[1], normalized(r[2]), normalized(r[3]), r[4]) for r in sessions] == [
        (rank, user, start, end, tracks) for rank, _, user, start, end, tracks in duck["top_sessions"]]
    per_user = Counter(r[1] for r in sessions)
    assert [r[5] for r in sessions] == [per_user[r[1]] for r in sessions]


def test_analyst_follows_the_speed_layer_in_trino(trino_server, spark, live, tmp_path):
    events = tmp_path / "events.csv"
    events.write_text(HEADER
                      + "a,2023-07-01 10:00:10,page_view,p1,100,1.0.0\n"
                      + "b,2023-07-01 10:00:20,page_view,p1,200,1.0.0\n"
                      + "a,2023-07-01 10:05:00,edit,p1,50,1.0.0\n"
                      + "c,2023-07-01 10:01:00,page_view,p1,12x,1.0.0\n")  # rejected: bronze reads it, no one else
    assert produce(events, live["topic"]) == 4
    run_until_caught_up(spark, live, tmp_path / "checkpoints")
    assert trino_server.query("SELECT event_date, dau FROM live_daily_active_users", user="analyst") == [
        (date(2023, 7, 1), 2)]
    rows_read = trino_server.query("SELECT query, sum(input_rows) FROM stream_progress GROUP BY query",
                                   user="analyst", schema="ops")
    assert dict(rows_read) == {"bronze": 4, "latency": 3, "sessions": 3, "dau": 3}


# --- configuration, without a server ----------------------------------------------------------------

def test_password_file_holds_bcrypt_hashes_trino_accepts():
    import bcrypt

    from infra.trino.render_etc import bcrypt_hash, password_file_lines

    lines = password_file_lines({"etl": "e-secret", "analyst": "a-secret"}, bcrypt_hash)
    assert [line.split(":", 1)[0] for line in lines] == ["analyst", "etl"]
    for line, password in zip(lines, ["a-secret", "e-secret"]):
        digest = line.split(":", 1)[1]
        assert digest.startswith("$2y$10$")  # the spelling Trino's file authenticator documents
        assert bcrypt.checkpw(password.encode(), digest.replace("$2y$", "$2b$", 1).encode())
        assert password not in line


def test_only_the_maintenance_catalog_allows_table_procedures():
    from infra.trino.render_etc import catalog_files

    files = catalog_files({"connector.name": "iceberg"})
    assert files["iceberg"]["iceberg.security"] == "read-only"
    assert files["iceberg_maintenance"]["iceberg.security"] == "allow-all"
    assert set(files) == {"iceberg", "iceberg_maintenance"}


def test_server_refuses_passwords_over_http_and_caps_queries():
    from infra.trino.render_etc import server_properties

    props = server_properties(https_port=1, http_port=2, keystore=Path("/k"), shared_secret="s",
                              etc_dir=Path("/e"), plugin_dir=Path("/p"), heap_gb=4)
    assert props["http-server.authentication.type"] == "PASSWORD"
    assert props["http-server.authentication.allow-insecure-over-http"] == "false"
    assert props["http-server.https.enabled"] == "true"
    assert props["query.max-memory"] == "2048MB" and props["query.max-execution-time"] == "10m"


def test_maintenance_statements():
    from iceberg_catalog.maintenance import MaintenanceError, action_sql

    policy = Policy()
    assert action_sql("gold.sessions", "optimize", policy) == \
        """ALTER TABLE iceberg_maintenance."gold"."sessions" EXECUTE optimize(file_size_threshold => '128MB')"""
    assert action_sql("gold.sessions", "expire_snapshots", policy).endswith("expire_snapshots(retention_threshold => '7d')")
    assert action_sql("gold.sessions", "remove_orphan_files", policy).endswith(
        "remove_orphan_files(retention_threshold => '3d')")
    with pytest.raises(MaintenanceError, match="not 'namespace.table'"):
        action_sql("gold.x; DROP TABLE y", "optimize", policy)
    with pytest.raises(MaintenanceError, match="not a Trino duration"):
        Policy(snapshot_retention="7 days")
