"""How a table is declared and created. Each stage declares its output tables
(spark_jobs/<stage>.py); the ops tables every run writes are declared here.

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
    # Partitions of a few hundred kB each (LastFM's 1,587 days). Iceberg's adaptive split
    # size packs only four such files in a task and each task costs more than reading
    # its files: splits of 128 MB, a file weighed at 1 MB, take the 19M plays' users in
    # 13 tasks and 1.9 s instead of 397 tasks and 11.7 s.
    small_partitions: bool = False

    @property
    def identifier(self) -> str:
        return f"iceberg.{self.name}"

    def ddl(self) -> str:
        partition = f"PARTITIONED BY ({self.partitioned_by})" if self.partitioned_by else ""
        plain = ", 'parquet.enable.dictionary'='false'" if self.plain_encoding else ""
        packed = (", 'read.split.adaptive-size.enabled'='false', 'read.split.open-file-cost'='1048576'"
                  if self.small_partitions else "")
        return (
            f"CREATE TABLE IF NOT EXISTS {self.identifier} ({self.columns}) USING iceberg {partition} "
            f"COMMENT '{self.comment}' "
            "TBLPROPERTIES ('format-version'='2', 'write.wap.enabled'='true', "
            # zstd level 1 writes faster than the default level 3, and no larger here.
            f"'write.parquet.compression-codec'='zstd', 'write.parquet.compression-level'='1'{plain}{packed})"
        )


# Tables every stage writes straight to main: they record runs and audits, they are not audited.
JOB_RUNS = TableSpec(
    "ops.job_runs",
    "run_id STRING NOT NULL, job STRING NOT NULL, started_at TIMESTAMP, finished_at TIMESTAMP, status STRING, "
    "rows_in BIGINT, rows_out BIGINT, rows_rejected BIGINT, metrics_json STRING",
    "job", "One row per job run")
QUALITY_RESULTS = TableSpec(
    "ops.quality_results",
    "run_id STRING NOT NULL, stage STRING NOT NULL, table_name STRING NOT NULL, branch STRING, snapshot_id BIGINT, "
    "expectation_type STRING NOT NULL, expectation STRING NOT NULL, severity STRING NOT NULL, "
    "success BOOLEAN NOT NULL, observed_value STRING, data_docs_page STRING, validated_at TIMESTAMP NOT NULL",
    "days(validated_at)", "One row per expectation per table per quality-gate run")
OPS_TABLES = (JOB_RUNS, QUALITY_RESULTS)


def create_tables(spark, specs) -> None:
    """Creates the namespaces and tables that do not exist yet. Stages that run
    side by side may create the same ones at once: the one that loses the race
    finds them made."""
    statements = [f"CREATE NAMESPACE IF NOT EXISTS iceberg.{ns}" for ns in sorted({s.name.split(".")[0] for s in specs})]
    for statement in statements + [spec.ddl() for spec in specs]:
        try:
            spark.sql(statement)
        except Exception as exc:
            if "already exists" not in str(exc).lower():
                raise
