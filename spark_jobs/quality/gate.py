"""The gate of one stage for one run: validate the run's branch of every table
the stage writes, record the results, publish only if no ``error``
expectation failed.

Re-running is safe: a published table no longer has the run's branch, so it is
validated from main and not published again; when no table has the branch and
an earlier gate of the same run and stage passed, the gate does nothing.
"""
from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from pyspark import StorageLevel
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from spark_jobs.quality import data_docs
from spark_jobs.quality.parameters import ParameterContext, ParameterError, RunScope, Thresholds, compute_parameters, scoped
from spark_jobs.quality.publishing import TableRefs, identifier, publish, read_ref, table_refs
from spark_jobs.quality.results import append_results, result_rows, stage_passed_before
from spark_jobs.quality.suites import Suite, load_suites
from spark_jobs.quality.validation import TableValidation, Validator


class GateError(RuntimeError):
    """The gate could not judge the run (as opposed to judging it bad)."""


@dataclass
class GateResult:
    stage: str
    run_id: str
    branch: str
    passed: bool
    already_published: bool = False
    validations: list[TableValidation] = field(default_factory=list)
    refs: dict[str, TableRefs] = field(default_factory=dict)
    published: dict[str, str] = field(default_factory=dict)
    page_url: str = ""
    page_path: str = ""
    gate_seconds: float = 0.0
    table_seconds: dict[str, float] = field(default_factory=dict)
    phase_seconds: dict[str, float] = field(default_factory=dict)
    stage_seconds: float | None = None

    @property
    def blocking_failures(self) -> list[str]:
        return [f"{v.table}: {o.describe()}" for v in self.validations for o in v.outcomes if o.blocks]

    @property
    def warnings(self) -> list[str]:
        return [f"{v.table}: {o.describe()}" for v in self.validations for o in v.outcomes
                if o.severity == "warning" and not o.success]

    def summary(self) -> str:
        if self.already_published:
            return (f"gate {self.stage} run {self.run_id}: already published by an earlier gate run "
                    f"(no table has branch {self.branch}); nothing new published")
        lines = [f"gate {self.stage} run {self.run_id} branch {self.branch}: "
                 + ("PASSED, published" if self.passed else "FAILED, main left untouched, branch kept")]
        lines += [f"  {t}: {what}" for t, what in self.published.items()]
        lines += [f"  error failed  -> {f}" for f in self.blocking_failures]
        lines += [f"  warning       -> {w}" for w in self.warnings]
        ratio = f" ({self.gate_seconds / self.stage_seconds:.0%} of the stage's {self.stage_seconds:.1f}s)" \
            if self.stage_seconds else ""
        lines.append(f"  gate took {self.gate_seconds:.1f}s{ratio}")
        lines.append(f"  Data Docs: {self.page_url}  ({self.page_path})")
        return "\n".join(lines)


def stage_seconds(spark: SparkSession, run_id: str, stage: str) -> float | None:
    """Wall time of the run's latest successful stage job, from ops.job_runs."""
    if not spark.catalog.tableExists(identifier("ops.job_runs")):
        return None
    rows = (spark.table(identifier("ops.job_runs"))
            .where((F.col("run_id") == run_id) & (F.col("job") == stage) & (F.col("status") == "succeeded"))
            .orderBy(F.col("finished_at").desc())
            .select((F.col("finished_at").cast("double") - F.col("started_at").cast("double")).alias("s"))
            .limit(1).collect())
    return float(rows[0]["s"]) if rows else None


def batch_frame(spark: SparkSession, suite: Suite, refs: TableRefs, branch: str, scope: RunScope):
    df = scoped(read_ref(spark, suite.table, refs, branch), suite.date_column, scope)
    if suite.run_id_column:
        df = df.where(F.col(suite.run_id_column) == scope.run_id)
    return df


class PhaseClock:
    """Wall time of each gate phase, to show where a gate's cost goes."""

    def __init__(self, stage: str):
        self.stage, self.seconds, self._last = stage, {}, time.monotonic()

    def lap(self, phase: str) -> None:
        now = time.monotonic()
        took = now - self._last
        self.seconds[phase] = round(self.seconds.get(phase, 0) + took, 3)
        self._last = now
        print(f"[gate {self.stage}] {phase}: {took:.1f}s", flush=True)


def run_gate(spark: SparkSession, stage: str, tables: list[str], scope: RunScope, branch: str,
             thresholds: Thresholds = Thresholds(), expectations_dir: Path | None = None,
             cache_batches: bool = True, publish_on_pass: bool = True) -> GateResult:
    started = time.monotonic()
    clock = PhaseClock(stage)
    result = GateResult(stage, scope.run_id, branch, passed=False)
    result.phase_seconds = clock.seconds
    missing = [t for t in tables if not spark.catalog.tableExists(identifier(t))]
    if missing:
        raise GateError(f"gate {stage} run {scope.run_id}: tables {missing} do not exist; did the stage run?")
    result.refs = {t: table_refs(spark, t, branch) for t in tables}
    clock.lap("branch refs")
    if all(r.branch is None for r in result.refs.values()):
        if stage_passed_before(spark, scope.run_id, stage):
            result.passed = result.already_published = True
            result.gate_seconds = time.monotonic() - started
            return result
        raise GateError(f"gate {stage} run {scope.run_id}: none of {tables} has branch {branch} and no earlier gate "
                        f"of this run passed; did the stage run with --branch {branch}?")

    suites = load_suites(tables, expectations_dir)
    try:
        parameters = compute_parameters(set().union(*(s.parameters() for s in suites)),
                                        ParameterContext(spark, scope, thresholds))
    except ParameterError as exc:
        raise GateError(f"gate {stage} run {scope.run_id}: {exc}") from exc
    clock.lap("suite parameters")
    validator = Validator(data_docs.data_docs_dir(), data_docs.results_store_dir())
    clock.lap("GX context")
    for suite in suites:
        df = batch_frame(spark, suite, result.refs[suite.table], branch, scope)
        # GX runs one Spark job per metric; caching the batch reads the files once.
        if cache_batches:
            df = df.persist(StorageLevel.MEMORY_AND_DISK)
        table_started = time.monotonic()
        try:
            result.validations.append(validator.validate(
                suite, df, parameters, run_name=f"{scope.run_id}", batch_label=f"{suite.table}@{branch}"))
        finally:
            if cache_batches:
                df.unpersist()
        result.table_seconds[suite.table] = round(time.monotonic() - table_started, 3)
        clock.lap(f"validate {suite.table}")

    validated_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    append_results(spark, [row for v in result.validations
                           for row in result_rows(v, scope.run_id, stage, branch, result.refs[v.table].branch,
                                                  validated_at)])
    clock.lap("append ops.quality_results")
    result.passed = all(v.passed for v in result.validations)
    if result.passed and publish_on_pass:
        for table, refs in result.refs.items():
            result.published[table] = publish(spark, refs, branch)
        clock.lap("publish")

    result.page_path = data_docs.gate_page_path(branch, stage)
    result.page_url = data_docs.url(result.page_path)
    verdict = "passed, published" if result.passed else "FAILED, main untouched, branch kept"
    data_docs.write_gate_page(branch, stage, data_docs.render_gate_page(
        scope.run_id, stage, branch, verdict,
        [{"table": v.table, "snapshot_id": result.refs[v.table].branch, "passed": v.passed,
          "page": v.data_docs_page, "published": result.published.get(v.table, ""),
          "failures": [o.describe() for o in v.outcomes if not o.success]} for v in result.validations]))
    result.gate_seconds = time.monotonic() - started
    result.stage_seconds = stage_seconds(spark, scope.run_id, stage)
    return result


def result_json(result: GateResult) -> str:
    return json.dumps({
        "stage": result.stage, "run_id": result.run_id, "branch": result.branch, "passed": result.passed,
        "already_published": result.already_published, "published": result.published,
        "blocking_failures": result.blocking_failures, "warnings": result.warnings,
        "data_docs_url": result.page_url, "gate_seconds": round(result.gate_seconds, 3),
        "stage_seconds": result.stage_seconds, "table_seconds": result.table_seconds,
        "phase_seconds": result.phase_seconds,
    })
