"""What every stage shares: the run's date range, casting to a table's schema,
actions side by side, and the ops.job_runs row."""
from __future__ import annotations

import datetime as dt
import json
import time
import traceback
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import tenacity
from pyspark import inheritable_thread_target
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from iceberg_catalog.tables import JOB_RUNS, TableSpec, create_tables


@dataclass(frozen=True)
class DateRange:
    """Inclusive event-date range of a run; both None means every date."""

    start: dt.date | None = None
    end: dt.date | None = None

    @property
    def everything(self) -> bool:
        return self.start is None and self.end is None

    def contains(self, date_col: Column) -> Column:
        if self.everything:
            return F.lit(True)
        return date_col.between(F.lit(self.start), F.lit(self.end))

    def widened(self, days_before: int = 0, days_after: int = 0) -> "DateRange":
        if self.everything:
            return self
        return DateRange(self.start - dt.timedelta(days=days_before), self.end + dt.timedelta(days=days_after))

    def __str__(self) -> str:
        return "all dates" if self.everything else f"{self.start}..{self.end}"


def conform(df: DataFrame, spec: TableSpec) -> DataFrame:
    """Selects the table's columns in its order, cast to its types; a missing
    column is an error naming the table and what the DataFrame had."""
    schema = [c.strip().split(" ")[:2] for c in spec.columns.split(",")]
    missing = [name for name, _ in schema if name not in df.columns]
    if missing:
        raise ValueError(f"{spec.name}: DataFrame lacks columns {missing}; it has {df.columns}")
    # One expression list: a Column per field would cost two Py4J calls each.
    return df.selectExpr(*[f"CAST(`{name}` AS {type_}) AS `{name}`" for name, type_ in schema])


def local_rows(spark: SparkSession, rows: list[tuple], spec: TableSpec) -> DataFrame:
    """A few rows built in Python (tuples in ``spec``'s column order) as a DataFrame
    of the table's types. They reach the JVM as Arrow: a list of tuples would go
    through Python worker processes, which a stage's application otherwise never
    starts (about 2 s of CPU in a new application)."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import StructType

    struct = StructType.fromDDL(spec.columns)
    # Naive datetimes are UTC (the sessions' time zone), whatever the machine's zone.
    table = pa.Table.from_pylist([dict(zip(struct.names, row)) for row in rows], schema=to_arrow_schema(struct))
    return spark.createDataFrame(table, struct)


def side_by_side(spark: SparkSession, *actions: Callable[[], Any]) -> list[Any]:
    """Runs independent Spark actions, such as the writes of a stage's small
    tables, each from a driver thread of its own; returns their results in order.

    A small table's write is mostly driver work (planning, the Iceberg commit and
    its catalog round trips) around jobs of one or two tasks, so one at a time
    leaves the cores idle; side by side, one's tasks run while another commits.
    Each thread gets its own copy of the caller's local properties (job group,
    pipeline stage): Spark sets a query's execution id in them. Every action
    runs to its end, then the first failure is raised. The tables must exist:
    concurrent CREATE NAMESPACE statements can race."""
    with ThreadPoolExecutor(max_workers=len(actions)) as pool:
        futures = [pool.submit(inheritable_thread_target(spark)(action)) for action in actions]
        wait(futures)
    for future in futures:
        if future.exception() is not None:
            raise future.exception()
    return [future.result() for future in futures]


def estimated_bytes(df: DataFrame) -> int:
    """What Spark's optimizer estimates ``df`` to read (for Iceberg, from the
    manifests of the files left after partition pruning), without running a job."""
    return int(str(df._jdf.queryExecution().optimizedPlan().stats().sizeInBytes()))


# Below this much input, the job's queries are evaluated by Spark's interpreted
# expressions instead of Java it generates and compiles for each query: on a few
# MB the compiling costs more than it saves (a 1,000-event pipeline: 29 -> 26 s).
CODEGEN_MIN_INPUT_BYTES = 8 * 1024 * 1024


def plan_for_input_size(spark: SparkSession, input_bytes: int) -> bool:
    """Sets code generation on or off for the job's input size; True when on."""
    codegen = input_bytes >= CODEGEN_MIN_INPUT_BYTES
    spark.conf.set("spark.sql.codegen.wholeStage", str(codegen).lower())
    spark.conf.set("spark.sql.codegen.factoryMode", "FALLBACK" if codegen else "NO_CODEGEN")
    return codegen


@dataclass
class JobRun:
    job: str
    run_id: str
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))
    rows_in: int | None = None
    rows_out: int | None = None
    rows_rejected: int | None = None
    metrics: dict = field(default_factory=dict)
    status: str = "succeeded"  # when the run ends without an exception; a blocked gate says "blocked"


def _commit_conflict(exc: BaseException) -> bool:
    text = str(exc)
    return any(sign in text for sign in ("ValidationException: Found conflicting files", "CommitFailedException",
                                         "the table has been concurrently modified"))


# The ops tables take row-level writes from stages running side by side: Iceberg
# refuses a commit that another one made stale, and a MERGE whose table another
# commit changed while it was planned, and the write is done again on the new
# state (it writes the same rows, so doing it again is safe).
retry_on_commit_conflict = tenacity.retry(retry=tenacity.retry_if_exception(_commit_conflict),
                                          stop=tenacity.stop_after_attempt(8),
                                          wait=tenacity.wait_random_exponential(multiplier=0.5, max=10), reraise=True)


def sql_str(value: str) -> str:
    """``value`` inside a SQL string literal."""
    return value.replace("'", "''")


@retry_on_commit_conflict
def record_job_run(spark: SparkSession, run: JobRun, status: str, finished: dt.datetime | None = None) -> None:
    """Writes the run's one ops.job_runs row: inserted, or replacing the row an
    earlier attempt of the same (run id, job) left, so a retry never adds one."""
    row = [(run.run_id, run.job, run.started_at, finished, status, run.rows_in, run.rows_out, run.rows_rejected,
            json.dumps(run.metrics, default=str, sort_keys=True))]
    create_tables(spark, [JOB_RUNS])
    view = f"job_run_{run.job}_{abs(hash(run.run_id))}"
    local_rows(spark, row, JOB_RUNS).createOrReplaceTempView(view)
    # The literals give Iceberg the rows this MERGE can touch: only a commit to
    # this (job, run id) conflicts with it, not the other stages' rows.
    spark.sql(f"""MERGE INTO {JOB_RUNS.identifier} t USING {view} s
                  ON t.job = '{sql_str(run.job)}' AND t.run_id = '{sql_str(run.run_id)}'
                     AND t.run_id = s.run_id AND t.job = s.job
                  WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *""")
    spark.catalog.dropTempView(view)


@contextmanager
def job_run(spark: SparkSession, job: str, run_id: str, date_range: DateRange, branch: str | None):
    """The run's ops.job_runs row: ``running`` while the driver lives (a driver
    killed later leaves it so, for the DAG's failure callback to mark
    ``failed``), then its outcome whatever happens; failures are re-raised.

    The ``running`` row is written beside the run's first steps, not before
    them: in a new application its MERGE is the first query, seconds of cold
    code that the stage's own work would otherwise wait on."""
    run = JobRun(job, run_id)
    run.metrics.update({"date_range": str(date_range), "branch": branch, "app_id": spark.sparkContext.applicationId,
                        "master": spark.sparkContext.master})
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=1) as background:
        running = background.submit(inheritable_thread_target(spark)(record_job_run), spark,
                                    replace(run, metrics=dict(run.metrics)), "running")
        status = "failed"
        try:
            yield run
            status = run.status
        except Exception as exc:
            run.metrics["error"] = f"{type(exc).__name__}: {exc}"[:4000]
            run.metrics["traceback"] = traceback.format_exc()[-4000:]
            raise
        finally:
            wait([running])  # the outcome replaces the running row, never races it
            if running.exception() is not None:
                print(f"[{job}] the running row of run {run_id} was not written: {running.exception()}", flush=True)
            run.metrics["wall_seconds"] = round(time.monotonic() - t0, 3)
            record_job_run(spark, run, status, dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))
            print(f"[{job}] run {run_id} {status} in {run.metrics['wall_seconds']}s: "
                  f"rows_in={run.rows_in} rows_out={run.rows_out} rows_rejected={run.rows_rejected}")


def stage_metrics(spark: SparkSession, job_group: str) -> dict:
    """Shuffle bytes, spill and max/median task time of the widest stage of the
    Spark jobs run under ``job_group``.

    Read in the driver from the status store that the Spark UI's REST API serves
    (the same StageData and task quantiles), not over HTTP: the REST API's first
    request in an application starts its web framework, about a second."""
    sc = spark.sparkContext
    try:
        # The listener bus fills the store asynchronously: without this, a job that
        # asks right after its write may miss that write's last tasks.
        sc._jsc.sc().listenerBus().waitUntilEmpty()
        tracker = sc.statusTracker()
        jobs = [tracker.getJobInfo(j) for j in tracker.getJobIdsForGroup(job_group)]
        stage_ids = sorted({s for job in jobs if job for s in job.stageIds})  # None: no longer retained
        store, jvm, gateway = sc._jsc.sc().statusStore(), sc._jvm, sc._gateway
        stages = []
        for sid in stage_ids:
            # stageData(stageId, details, taskStatus, withSummaries, unsortedQuantiles): every attempt
            attempts = store.stageData(sid, False, jvm.java.util.ArrayList(), False, gateway.new_array(jvm.double, 0))
            it = attempts.iterator()
            while it.hasNext():
                s = it.next()
                if str(s.status()) == "COMPLETE":
                    stages.append(s)
        if not stages:
            return {"available": False}
        widest = max(stages, key=lambda s: (s.numTasks(), s.executorRunTime()))
        quantiles = gateway.new_array(jvm.double, 2)
        quantiles[0], quantiles[1] = 0.5, 1.0
        run_time = store.taskSummary(widest.stageId(), widest.attemptId(), quantiles).get().executorRunTime()
        median, maximum = run_time.apply(0), run_time.apply(1)
        return {
            "available": True,
            "stages": len(stages),
            "shuffle_read_bytes": sum(s.shuffleReadBytes() for s in stages),
            "shuffle_write_bytes": sum(s.shuffleWriteBytes() for s in stages),
            "spill_bytes": sum(s.memoryBytesSpilled() + s.diskBytesSpilled() for s in stages),
            "widest_stage_id": widest.stageId(),
            "widest_stage_tasks": widest.numTasks(),
            "widest_stage_task_ms_median": median,
            "widest_stage_task_ms_max": maximum,
            "widest_stage_max_median_ratio": round(maximum / median, 3) if median else None,
        }
    except Exception as exc:  # metrics must never fail the job
        return {"available": False, "error": str(exc)[:500]}
