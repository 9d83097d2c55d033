"""DDL of every table the pipeline publishes, and which stage writes which.

Schemas and partition specs are explicit (never inferred from a DataFrame) so
that a job producing a wrong column fails at write time. Date-scoped tables are
partitioned by identity on their date column: re-running a date overwrites
exactly the partitions of that date, which Iceberg can do without rewriting
files outside them.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TableSpec:
    name: str  # namespace.table
    columns: str  # Spark SQL column list
    partitioned_by: str = ""  # Spark SQL partition transforms
    comment: str = ""
    # Parquet dictionary encoding off. bronze.interactions is written once per run and
    # read once, by enrich: at 10M events the dictionary lookups of its nearly unique
    # timestamps cost the ingest write 3 s, more than plain files cost enrich's read.
    # Silver keeps them: three stages scan it, each about a second slower on plain files.
    plain_encoding: bool = False

    @property
    def identifier(self) -> str:
        return f"iceberg.{self.name}"

    def ddl(self) -> str:
        partition = f"PARTITIONED BY ({self.partitioned_by})" if self.partitioned_by else ""
        plain = ", 'parquet.enable.dictionary'='false'" if self.plain_encoding else ""
        return (
            f"CREATE TABLE IF NOT EXISTS {self.identifier} ({self.columns}) USING iceberg {partition} "
            f"COMMENT '{self.comment}' "
            "TBLPROPERTIES ('format-version'='2', 'write.wap.enabled'='true', "
            # zstd level 1 writes faster than the default level 3, and no larger here.
            f"'write.parquet.compression-codec'='zstd', 'write.parquet.compression-level'='1'{plain})"
        )


INTERACTION_COLUMNS = (
    "user_id STRING NOT NULL, event_ts TIMESTAMP NOT NULL, event_date DATE NOT NULL, "
    "action_type STRING, page_id STRING, duration_ms BIGINT NOT NULL, app_version STRING NOT NULL"
)
USER_COLUMNS = "join_date DATE, country STRING, device_type STRING, subscription_type STRING"

TABLES = {
    t.name: t
    for t in [
        TableSpec("bronze.interactions", f"{INTERACTION_COLUMNS}, source_file STRING", "event_date",
                  "Accepted landing interactions, typed; no deduplication", plain_encoding=True),
        TableSpec("bronze.user_metadata", f"user_id STRING NOT NULL, {USER_COLUMNS}, source_file STRING", "",
                  "Accepted landing user metadata as read"),
        TableSpec("bronze.rejected_rows",
                  "dataset STRING NOT NULL, event_date DATE, source_file STRING, raw STRING, reason STRING NOT NULL, run_id STRING NOT NULL",
                  "dataset, event_date",
                  "Landing rows that failed parsing, with the reason; event_date is NULL when unknown"),
        TableSpec("silver.user_dim", f"user_id STRING NOT NULL, {USER_COLUMNS}", "",
                  "One row per user_id: earliest join_date, ties to the smallest attributes"),
        TableSpec("silver.interactions_enriched", f"{INTERACTION_COLUMNS}, {USER_COLUMNS}", "event_date",
                  "Every bronze interaction once, left joined to silver.user_dim"),
        TableSpec("gold.daily_engagement",
                  "event_date DATE NOT NULL, dau BIGINT, mau_30d BIGINT, stickiness DOUBLE, events BIGINT, total_duration_ms BIGINT",
                  "event_date"),
        TableSpec("gold.monthly_active_users", "month DATE NOT NULL, mau BIGINT", "month"),
        TableSpec("gold.power_users",
                  "user_id STRING NOT NULL, total_duration_ms BIGINT, events BIGINT, active_days BIGINT, "
                  "country STRING, device_type STRING, subscription_type STRING"),
        TableSpec("gold.cohort_retention",
                  "cohort_week DATE NOT NULL, week_offset INT NOT NULL, cohort_size BIGINT, active_users BIGINT, retention_rate DOUBLE"),
        TableSpec("gold.app_version_latency",
                  "event_date DATE NOT NULL, app_version STRING, events BIGINT, p50_ms DOUBLE, p95_ms DOUBLE, p99_ms DOUBLE",
                  "event_date"),
        TableSpec("gold.app_version_latency_overall",
                  "app_version STRING, events BIGINT, p50_ms DOUBLE, p95_ms DOUBLE, p99_ms DOUBLE"),
        TableSpec("gold.device_latency",
                  "device_type STRING, events BIGINT, mean_ms DOUBLE, p50_ms DOUBLE, p95_ms DOUBLE, p99_ms DOUBLE"),
        TableSpec("gold.device_latency_association",
                  "events BIGINT, eta_squared DOUBLE, kruskal_h DOUBLE, kruskal_p_value DOUBLE"),
        TableSpec("gold.usage_anomalies",
                  "event_date DATE NOT NULL, dimension STRING, dimension_value STRING, metric STRING, value DOUBLE, "
                  "baseline_mean DOUBLE, baseline_std DOUBLE, z_score DOUBLE, severity STRING",
                  "event_date"),
        TableSpec("gold.sessions",
                  "session_id STRING NOT NULL, user_id STRING NOT NULL, session_start TIMESTAMP, session_end TIMESTAMP, "
                  "session_date DATE NOT NULL, actions BIGINT, session_duration_ms BIGINT, is_bounce BOOLEAN, "
                  "device_type STRING, country STRING",
                  "session_date"),
        TableSpec("gold.session_daily",
                  "session_date DATE NOT NULL, dimension STRING, dimension_value STRING, sessions BIGINT, users BIGINT, "
                  "avg_actions DOUBLE, avg_duration_ms DOUBLE, p50_duration_ms DOUBLE, bounce_rate DOUBLE, sessions_per_user DOUBLE",
                  "session_date"),
        TableSpec("ops.job_runs",
                  "run_id STRING NOT NULL, job STRING NOT NULL, started_at TIMESTAMP, finished_at TIMESTAMP, status STRING, "
                  "rows_in BIGINT, rows_out BIGINT, rows_rejected BIGINT, metrics_json STRING",
                  "job", "One row per job run"),
    ]
}

# What each stage publishes (ops.job_runs is written by every job, straight to main).
STAGE_OUTPUTS: dict[str, list[str]] = {
    "ingest": ["bronze.interactions", "bronze.user_metadata", "bronze.rejected_rows"],
    "enrich": ["silver.user_dim", "silver.interactions_enriched"],
    "engagement": ["gold.daily_engagement", "gold.monthly_active_users", "gold.power_users", "gold.cohort_retention"],
    "performance": ["gold.app_version_latency", "gold.app_version_latency_overall", "gold.device_latency",
                    "gold.device_latency_association", "gold.usage_anomalies"],
    "sessions": ["gold.sessions", "gold.session_daily"],
}
STAGES = list(STAGE_OUTPUTS)


def create_all(spark, names: list[str] | None = None) -> None:
    """Creates the namespaces and tables that do not exist yet."""
    specs = [TABLES[n] for n in names] if names else list(TABLES.values())
    for namespace in sorted({s.name.split(".")[0] for s in specs}):
        spark.sql(f"CREATE NAMESPACE IF NOT EXISTS iceberg.{namespace}")
    for spec in specs:
        spark.sql(spec.ddl())
