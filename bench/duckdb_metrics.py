"""An independent DuckDB implementation of the table contract (docs/tables.md).

Written from the metric contract alone (not from spark_jobs/transforms), so the
parity test can catch a misreading on either side, and timed by the benchmark
as the single-machine yardstick for Spark.

Every table is computed with SQL straight from the landing files:

    python -m bench.duckdb_metrics --landing .local/landing [--out DIR]

Stages mirror the Spark jobs (ingest, enrich, engagement, performance,
sessions); each materialises its tables in the connection, so a stage can be
timed on its own. Choices where the contract leaves room are listed in
CHOICES and in docs/performance.md.
"""
from __future__ import annotations

import argparse
import glob
import os
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
from scipy.stats import chi2  # imported once, outside any timed stage
from spark_jobs.pipeline import STAGES as PIPELINE_STAGES

INTERACTION_COLUMNS = ["user_id", "timestamp", "action_type", "page_id", "duration_ms", "app_version"]
METADATA_COLUMNS = ["user_id", "join_date", "country", "device_type", "subscription_type"]


@dataclass(frozen=True)
class Params:
    duration_cap_ms: int = 28_800_000
    power_user_fraction: str = "0.01"      # a decimal string: k = ceil(fraction * N) exactly
    latency_actions: tuple[str, ...] = ("page_view",)
    anomaly_min_events: int = 20
    session_gap_seconds: int = 1800
    cohort_weeks: int = 26


# Where docs/tables.md leaves room, what this implementation does (the parity test
# and docs/performance.md list them next to the Spark side's choices).
CHOICES = {
    "reject_reason_order": "first failing check in the order column count, empty user_id, timestamp, duration_ms, app_version",
    "metadata_rejects": "column count wrong, empty user_id, or join_date not YYYY-MM-DD",
    "anomaly_app_version_events": "all events of the version (every action_type), not only page loads",
    "total_duration_ms": "daily_engagement.total_duration_ms sums raw (uncapped) duration_ms",
    "session_last_event": "the last event in the (event_ts, action_type, page_id, duration_ms) order",
    "csv_quoting": "none: a line is split on every comma (the challenge generator never quotes; Spark parses RFC 4180 quotes)",
    "blank_csv_line": "rejected with reason column_count (Spark's CSV reader skips it)",
}


# --- landing files ---------------------------------------------------------------------------

def landing_files(path: str | Path) -> list[str]:
    """Every data file under a landing path (one file or a directory tree)."""
    p = Path(path)
    if p.is_file():
        return [str(p)]
    files = [f for f in glob.glob(str(p / "**" / "*"), recursive=True)
             if os.path.isfile(f) and not Path(f).name.startswith(("_", "."))]
    if not files:
        raise FileNotFoundError(f"no data files under {p}")
    return sorted(files)


def csv_header(file: str) -> list[str]:
    with open(file, encoding="utf-8", newline="") as fh:
        return fh.readline().rstrip("\r\n").split(",")


def sql_list(values) -> str:
    return "[" + ", ".join("'" + str(v).replace("'", "''") + "'" for v in values) + "]"


def hive_value(column: str) -> str:
    """SQL for the value of a Hive-style `column=value/` folder of the row's file (NULL if none)."""
    return f"nullif(regexp_extract(source_file, '[/\\\\]{column}=([^/\\\\]+)[/\\\\]', 1), '')"


def raw_rows_sql(files: list[str], expected: list[str]) -> str:
    """One row per data line: source_file, raw line, column_count, and each expected column
    as text (from the file, else from a Hive folder of the path)."""
    csv = [f for f in files if not f.endswith(".parquet")]
    parquet = [f for f in files if f.endswith(".parquet")]
    parts = []
    if csv:
        headers = {tuple(csv_header(f)) for f in csv}
        if len(headers) != 1:
            raise ValueError(f"CSV files disagree on their header: {headers}")
        header = list(headers.pop())
        fields = ", ".join(
            f"f[{header.index(c) + 1}] AS {c}" if c in header else f"{hive_value(c)} AS {c}" for c in expected)
        parts.append(f"""
            SELECT source_file, line, coalesce(len(f), 1) <> {len(header)} AS bad_column_count, {fields}
            FROM (SELECT filename AS source_file, rtrim(line, chr(13)) AS line,
                         string_split(rtrim(line, chr(13)), ',') AS f
                  FROM read_csv({sql_list(csv)}, columns={{'line': 'VARCHAR'}}, header=true, delim=chr(31),
                                quote='', escape='', auto_detect=false, filename=true))""")
    if parquet:
        present = set(duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet({sql_list(parquet)}, hive_partitioning=false)")
                      .df()["column_name"])
        fields = ", ".join(f"CAST({c} AS VARCHAR) AS {c}" if c in present else f"{hive_value(c)} AS {c}"
                           for c in expected)
        parts.append(f"""
            SELECT source_file, to_json(struct_pack({', '.join(c for c in expected if c in present)})) AS line,
                   false AS bad_column_count, * EXCLUDE (source_file)
            FROM (SELECT filename AS source_file, {fields}
                  FROM read_parquet({sql_list(parquet)}, filename=true, hive_partitioning=false))""")
    return " UNION ALL ".join(parts)


# --- stages ----------------------------------------------------------------------------------

def stage_ingest(con: duckdb.DuckDBPyConnection, interactions: str, metadata: str) -> None:
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE raw_interactions AS
        SELECT *, CASE
            WHEN bad_column_count THEN 'column_count'
            WHEN coalesce(user_id, '') = '' THEN 'empty_user_id'
            WHEN NOT regexp_full_match(coalesce(timestamp, ''), '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}} [0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}')
                 OR try_strptime(timestamp, '%Y-%m-%d %H:%M:%S') IS NULL THEN 'bad_timestamp'
            WHEN NOT regexp_full_match(coalesce(duration_ms, ''), '[0-9]+')
                 OR try_cast(duration_ms AS BIGINT) IS NULL THEN 'bad_duration_ms'
            WHEN NOT regexp_full_match(coalesce(app_version, ''), '[0-9]+\\.[0-9]+\\.[0-9]+') THEN 'bad_app_version'
          END AS reject_reason
        FROM ({raw_rows_sql(landing_files(interactions), INTERACTION_COLUMNS)})""")
    con.execute("""
        CREATE OR REPLACE TABLE bronze_interactions AS
        SELECT user_id, strptime(timestamp, '%Y-%m-%d %H:%M:%S') AS event_ts,
               CAST(strptime(timestamp, '%Y-%m-%d %H:%M:%S') AS DATE) AS event_date,
               action_type, page_id, CAST(duration_ms AS BIGINT) AS duration_ms, app_version
        FROM raw_interactions WHERE reject_reason IS NULL""")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE raw_metadata AS
        SELECT *, CASE
            WHEN bad_column_count THEN 'column_count'
            WHEN coalesce(user_id, '') = '' THEN 'empty_user_id'
            WHEN NOT regexp_full_match(coalesce(join_date, ''), '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}')
                 OR try_strptime(join_date, '%Y-%m-%d') IS NULL THEN 'bad_join_date'
          END AS reject_reason
        FROM ({raw_rows_sql(landing_files(metadata), METADATA_COLUMNS)})""")
    con.execute("""
        CREATE OR REPLACE TABLE bronze_user_metadata AS
        SELECT user_id, CAST(strptime(join_date, '%Y-%m-%d') AS DATE) AS join_date,
               country, device_type, subscription_type
        FROM raw_metadata WHERE reject_reason IS NULL""")
    con.execute("""
        CREATE OR REPLACE TABLE bronze_rejected_rows AS
        SELECT 'user_interactions' AS source, source_file, line AS raw_line, reject_reason AS reason
        FROM raw_interactions WHERE reject_reason IS NOT NULL
        UNION ALL
        SELECT 'user_metadata', source_file, line, reject_reason FROM raw_metadata WHERE reject_reason IS NOT NULL""")
    con.execute("DROP TABLE raw_interactions; DROP TABLE raw_metadata")


def stage_enrich(con: duckdb.DuckDBPyConnection) -> None:
    # Earliest join_date wins; ties go to the byte-smallest (country, device_type,
    # subscription_type) -- DuckDB compares VARCHAR bytewise.
    con.execute("""
        CREATE OR REPLACE TABLE silver_user_dim AS
        SELECT user_id, join_date, country, device_type, subscription_type
        FROM bronze_user_metadata
        QUALIFY row_number() OVER (PARTITION BY user_id
                                   ORDER BY join_date, country, device_type, subscription_type) = 1""")
    con.execute("""
        CREATE OR REPLACE TABLE silver_interactions_enriched AS
        SELECT i.*, d.join_date, d.country, d.device_type, d.subscription_type
        FROM bronze_interactions i LEFT JOIN silver_user_dim d USING (user_id)""")


def stage_engagement(con: duckdb.DuckDBPyConnection, p: Params) -> None:
    # mau_30d: a user active on date x with next active date y counts on the days
    # [x, min(x+30, y)); those intervals never overlap per user, so a running sum
    # of +1/-1 edges over the calendar is the exact distinct count.
    con.execute("""
        CREATE OR REPLACE TABLE gold_daily_engagement AS
        WITH user_days AS (SELECT DISTINCT user_id, event_date FROM silver_interactions_enriched),
        spans AS (SELECT event_date AS first_day,
                         least(event_date + 30, coalesce(lead(event_date) OVER (PARTITION BY user_id ORDER BY event_date),
                                                        event_date + 30)) AS end_day
                  FROM user_days),
        edges AS (SELECT first_day AS d, 1 AS delta FROM spans UNION ALL SELECT end_day, -1 FROM spans),
        mau AS (SELECT d, sum(sum(delta)) OVER (ORDER BY d) AS mau_30d FROM edges GROUP BY d),
        daily AS (SELECT event_date, count(DISTINCT user_id) AS dau, count(*) AS events,
                         sum(duration_ms) AS total_duration_ms
                  FROM silver_interactions_enriched GROUP BY event_date)
        SELECT daily.event_date, dau, CAST(mau.mau_30d AS BIGINT) AS mau_30d,
               dau / mau.mau_30d AS stickiness, events, CAST(total_duration_ms AS BIGINT) AS total_duration_ms
        FROM daily JOIN mau ON mau.d = daily.event_date""")
    con.execute("""
        CREATE OR REPLACE TABLE gold_monthly_active_users AS
        SELECT CAST(date_trunc('month', event_date) AS DATE) AS month, count(DISTINCT user_id) AS mau
        FROM silver_interactions_enriched GROUP BY 1""")
    fraction = Decimal(p.power_user_fraction)
    con.execute(f"""
        CREATE OR REPLACE TABLE gold_power_users AS
        WITH per_user AS (
            SELECT user_id, CAST(sum(least(duration_ms, {p.duration_cap_ms})) AS BIGINT) AS total_duration_ms,
                   count(*) AS events, count(DISTINCT event_date) AS active_days
            FROM silver_interactions_enriched GROUP BY user_id),
        ranked AS (SELECT total_duration_ms, row_number() OVER (ORDER BY total_duration_ms DESC) AS rank_desc,
                          count(*) OVER () AS n FROM per_user),
        threshold AS (SELECT total_duration_ms AS t FROM ranked
                      WHERE rank_desc = ceil(n * CAST('{fraction}' AS DECIMAL(38, 18))))
        SELECT u.user_id, u.total_duration_ms, u.events, u.active_days, d.country, d.device_type, d.subscription_type
        FROM per_user u LEFT JOIN silver_user_dim d USING (user_id)
        WHERE u.total_duration_ms >= (SELECT t FROM threshold)""")
    con.execute(f"""
        CREATE OR REPLACE TABLE gold_cohort_retention AS
        WITH w AS (SELECT CAST(date_trunc('week', max(event_date)) AS DATE) AS latest_week
                   FROM silver_interactions_enriched),
        -- Every silver.user_dim user of the week, with or without events (docs/tables.md).
        members AS (SELECT user_id, CAST(date_trunc('week', join_date) AS DATE) AS cohort_week FROM silver_user_dim),
        cohorts AS (SELECT cohort_week, count(*) AS cohort_size FROM members, w
                    WHERE cohort_week BETWEEN latest_week - {7 * (p.cohort_weeks - 1)} AND latest_week
                    GROUP BY cohort_week),
        grid AS (SELECT cohort_week, cohort_size, k AS week_offset
                 FROM cohorts, w, (SELECT CAST(range AS INTEGER) AS k FROM range(0, {p.cohort_weeks})) AS r
                 WHERE cohort_week + 7 * k <= latest_week),
        active AS (SELECT m.cohort_week, CAST((CAST(date_trunc('week', e.event_date) AS DATE) - m.cohort_week) / 7 AS BIGINT)
                          AS week_offset, count(DISTINCT e.user_id) AS active_users
                   FROM (SELECT DISTINCT user_id, event_date FROM silver_interactions_enriched) e
                   JOIN members m USING (user_id)
                   WHERE m.cohort_week IN (SELECT cohort_week FROM cohorts)
                     AND date_trunc('week', e.event_date) >= m.cohort_week
                   GROUP BY 1, 2)
        SELECT g.cohort_week, g.week_offset, g.cohort_size, coalesce(a.active_users, 0) AS active_users,
               coalesce(a.active_users, 0) / g.cohort_size AS retention_rate
        FROM grid g LEFT JOIN active a USING (cohort_week, week_offset)""")


def stage_performance(con: duckdb.DuckDBPyConnection, p: Params) -> dict:
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE page_loads AS
        SELECT event_date, app_version, device_type, duration_ms FROM silver_interactions_enriched
        WHERE action_type IN (SELECT unnest({sql_list(p.latency_actions)}))""")
    pct = "quantile_cont(duration_ms, 0.5) AS p50_ms, quantile_cont(duration_ms, 0.95) AS p95_ms, " \
          "quantile_cont(duration_ms, 0.99) AS p99_ms"
    con.execute(f"""CREATE OR REPLACE TABLE gold_app_version_latency AS
        SELECT event_date, app_version, count(*) AS events, {pct} FROM page_loads GROUP BY 1, 2""")
    con.execute(f"""CREATE OR REPLACE TABLE gold_app_version_latency_overall AS
        SELECT app_version, count(*) AS events, {pct} FROM page_loads GROUP BY 1""")
    con.execute(f"""CREATE OR REPLACE TABLE gold_device_latency AS
        SELECT device_type, count(*) AS events, avg(duration_ms) AS mean_ms, {pct} FROM page_loads GROUP BY 1""")
    # eta^2 and Kruskal-Wallis from (device, duration) cells: average rank of a
    # value = rows below it + (ties + 1) / 2.
    row = con.execute("""
        WITH x AS (SELECT device_type AS g, CAST(duration_ms AS DOUBLE) AS v FROM page_loads WHERE device_type IS NOT NULL),
        cells AS (SELECT g, v, count(*) AS c FROM x GROUP BY g, v),
        vals AS (SELECT v, sum(c) AS t FROM cells GROUP BY v),
        ranks AS (SELECT v, t, sum(t) OVER (ORDER BY v) - t + (t + 1) / 2.0 AS avg_rank FROM vals),
        groups AS (SELECT g, sum(c) AS n_g, sum(c * v) / sum(c) AS mean_g, sum(c * r.avg_rank) AS rank_sum
                   FROM cells JOIN ranks r USING (v) GROUP BY g),
        tot AS (SELECT sum(n_g) AS n, sum(n_g * mean_g) / sum(n_g) AS mean, count(*) AS k FROM groups),
        sst AS (SELECT sum(c * (v - tot.mean) * (v - tot.mean)) AS sst FROM cells, tot),
        ssb AS (SELECT sum(n_g * (mean_g - tot.mean) * (mean_g - tot.mean)) AS ssb FROM groups, tot),
        h AS (SELECT 12.0 / (tot.n * (tot.n + 1.0)) * sum(rank_sum * rank_sum / n_g) - 3.0 * (tot.n + 1.0) AS h_raw
              FROM groups, tot GROUP BY tot.n),
        ties AS (SELECT 1.0 - sum(t * t * t - t) / (CAST(tot.n AS DOUBLE) ** 3 - tot.n) AS correction FROM vals, tot GROUP BY tot.n)
        SELECT tot.n, tot.k, ssb.ssb / sst.sst, h.h_raw / ties.correction FROM tot, sst, ssb, h, ties""").fetchone()
    # No page load with a known device: still one row, with nothing measured.
    events, groups, eta_squared, kruskal_h = row or (0, 0, None, None)

    p_value = float(chi2.sf(kruskal_h, groups - 1)) if kruskal_h is not None and groups and groups > 1 else None
    con.execute("CREATE OR REPLACE TABLE gold_device_latency_association AS SELECT CAST(? AS BIGINT) AS events, "
                "CAST(? AS DOUBLE) AS eta_squared, CAST(? AS DOUBLE) AS kruskal_h, CAST(? AS DOUBLE) AS kruskal_p_value",
                [int(events or 0), eta_squared, kruskal_h, p_value])
    con.execute(f"""
        CREATE OR REPLACE TABLE gold_usage_anomalies AS
        WITH series AS (
            SELECT event_date, 'overall' AS dimension, 'all' AS dimension_value, 'events' AS metric,
                   CAST(count(*) AS DOUBLE) AS value FROM silver_interactions_enriched GROUP BY event_date
            UNION ALL
            SELECT event_date, 'overall', 'all', 'dau', count(DISTINCT user_id)
            FROM silver_interactions_enriched GROUP BY event_date
            UNION ALL
            SELECT event_date, 'app_version', app_version, 'events', count(*)
            FROM silver_interactions_enriched GROUP BY event_date, app_version
            UNION ALL
            SELECT event_date, 'app_version', app_version, 'p95_ms', quantile_cont(duration_ms, 0.95)
            FROM page_loads GROUP BY event_date, app_version HAVING count(*) >= {p.anomaly_min_events}),
        scored AS (
            SELECT s.event_date, s.dimension, s.dimension_value, s.metric, s.value,
                   avg(b.value) AS baseline_mean, stddev_samp(b.value) AS baseline_std, count(b.value) AS n
            FROM series s JOIN series b
              ON b.dimension = s.dimension AND b.dimension_value = s.dimension_value AND b.metric = s.metric
             AND b.event_date BETWEEN s.event_date - 14 AND s.event_date - 1
            GROUP BY ALL)
        SELECT event_date, dimension, dimension_value, metric, value, baseline_mean, baseline_std,
               (value - baseline_mean) / baseline_std AS z_score,
               CASE WHEN abs((value - baseline_mean) / baseline_std) >= 4 THEN 'critical'
                    WHEN abs((value - baseline_mean) / baseline_std) >= 3.5 THEN 'high' ELSE 'medium' END AS severity
        FROM scored
        WHERE n >= 7 AND baseline_std IS NOT NULL AND baseline_std <> 0
          AND abs((value - baseline_mean) / baseline_std) >= 3""")
    con.execute("DROP TABLE page_loads")
    return {"events": events, "groups": groups}


def stage_sessions(con: duckdb.DuckDBPyConnection, p: Params) -> None:
    con.execute(f"""
        CREATE OR REPLACE TABLE gold_sessions AS
        WITH ordered AS (
            SELECT user_id, event_ts, duration_ms, device_type, country,
                   row_number() OVER w AS seq,
                   CASE WHEN lag(event_ts) OVER w IS NULL
                          OR epoch(event_ts) - epoch(lag(event_ts) OVER w) > {p.session_gap_seconds}
                        THEN 1 ELSE 0 END AS starts_session
            FROM silver_interactions_enriched
            WINDOW w AS (PARTITION BY user_id ORDER BY event_ts, action_type, page_id, duration_ms)),
        numbered AS (SELECT *, sum(starts_session) OVER (PARTITION BY user_id ORDER BY seq) AS session_no FROM ordered),
        agg AS (SELECT user_id, session_no, min(event_ts) AS session_start, max(event_ts) AS session_end,
                       count(*) AS actions, arg_max(duration_ms, seq) AS last_duration_ms,
                       any_value(device_type) AS device_type, any_value(country) AS country
                FROM numbered GROUP BY user_id, session_no)
        SELECT md5(user_id || '|' || strftime(session_start, '%Y-%m-%d %H:%M:%S')) AS session_id,
               user_id, session_start, session_end, CAST(session_start AS DATE) AS session_date, actions,
               CAST((epoch_ms(session_end) - epoch_ms(session_start)) + last_duration_ms AS BIGINT) AS session_duration_ms,
               actions = 1 AS is_bounce, device_type, country
        FROM agg""")
    dims = {"all": "'all'", "device_type": "coalesce(device_type, 'unknown')", "country": "coalesce(country, 'unknown')"}
    union = " UNION ALL ".join(f"""
        SELECT session_date, '{name}' AS dimension, {expr} AS dimension_value, count(*) AS sessions,
               count(DISTINCT user_id) AS users, avg(actions) AS avg_actions,
               avg(session_duration_ms) AS avg_duration_ms, quantile_cont(session_duration_ms, 0.5) AS p50_duration_ms,
               sum(CASE WHEN is_bounce THEN 1 ELSE 0 END) / count(*) AS bounce_rate,
               count(*) / count(DISTINCT user_id) AS sessions_per_user
        FROM gold_sessions GROUP BY 1, 2, 3""" for name, expr in dims.items())
    con.execute(f"CREATE OR REPLACE TABLE gold_session_daily AS {union}")


# Same stages and tables as the pipeline; DuckDB names them <namespace>_<table>.
STAGES = [s.name for s in PIPELINE_STAGES]
STAGE_TABLES = {s.name: [t.replace(".", "_") for t in s.tables] for s in PIPELINE_STAGES}


def connect(threads: int | None = None, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    return con


def run_stage(con, stage: str, interactions: str, metadata: str, params: Params) -> None:
    if stage == "ingest":
        stage_ingest(con, interactions, metadata)
    elif stage == "enrich":
        stage_enrich(con)
    elif stage == "engagement":
        stage_engagement(con, params)
    elif stage == "performance":
        stage_performance(con, params)
    elif stage == "sessions":
        stage_sessions(con, params)
    else:
        raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")


def compute_all(landing: str | Path, params: Params = Params(), con=None, timings: dict | None = None):
    """Runs every stage over LANDING; returns the connection holding all tables.
    If `timings` is a dict, fills it with seconds per stage."""
    landing = Path(landing)
    con = con or connect()
    for stage in STAGES:
        started = time.perf_counter()
        run_stage(con, stage, str(landing / "user_interactions"), str(landing / "user_metadata"), params)
        if timings is not None:
            timings[stage] = time.perf_counter() - started
    return con


def tables_as_frames(con) -> dict:
    """Every output table as a pandas DataFrame, keyed by its Iceberg name (e.g. gold.sessions)."""
    out = {}
    for tables in STAGE_TABLES.values():
        for t in tables:
            ns, _, name = t.partition("_")
            out[f"{ns}.{name}"] = con.execute(f"SELECT * FROM {t}").df()
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--landing", default=os.environ.get("LANDING_DIR", ".local/landing"))
    ap.add_argument("--out", help="write every table as DIR/<table>.parquet")
    ap.add_argument("--threads", type=int)
    args = ap.parse_args(argv)
    timings: dict = {}
    con = compute_all(args.landing, con=connect(args.threads), timings=timings)
    for stage, seconds in timings.items():
        print(f"{stage:12s} {seconds:8.2f} s")
    for tables in STAGE_TABLES.values():
        for t in tables:
            n = con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            print(f"  {t:36s} {n:>12,d} rows")
            if args.out:
                Path(args.out).mkdir(parents=True, exist_ok=True)
                con.execute(f"COPY {t} TO '{Path(args.out) / t}.parquet' (FORMAT parquet)")


if __name__ == "__main__":
    main()
