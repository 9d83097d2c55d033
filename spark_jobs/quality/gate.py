"""The audit and publish steps of a stage run (write-audit-publish).

The stage has written its run's branch of every output table; here, in the
same Spark application, each table's suite validates exactly the rows the run
owns on that branch (the same condition its write replaced), the results go
to ``ops.quality_results`` and Data Docs, and only if no ``error``
expectation failed is ``main`` fast-forwarded to each branch.
"""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pyspark import StorageLevel

from spark_jobs.quality import data_docs
from spark_jobs.quality.publishing import TableRefs, publish, table_refs
from spark_jobs.quality.results import append_results, result_rows
from spark_jobs.quality.suites import SuiteError, load_suites
from spark_jobs.quality.validation import TableValidation, Validator

if TYPE_CHECKING:
    from spark_jobs.stage import StageRun


@dataclass
class GateResult:
    stage: str
    run_id: str
    branch: str
    passed: bool = False
    validations: list[TableValidation] = field(default_factory=list)
    refs: dict[str, TableRefs] = field(default_factory=dict)
    published: dict[str, str] = field(default_factory=dict)
    page_url: str = ""
    page_path: str = ""
    phase_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def blocking_failures(self) -> list[str]:
        return [f"{v.table}: {o.describe()}" for v in self.validations for o in v.outcomes if o.blocks]

    @property
    def warnings(self) -> list[str]:
        return [f"{v.table}: {o.describe()}" for v in self.validations for o in v.outcomes
                if o.severity == "warning" and not o.success]

    @property
    def seconds(self) -> float:
        return round(sum(self.phase_seconds.values()), 3)

    def summary(self) -> str:
        lines = [f"gate {self.stage} run {self.run_id} branch {self.branch}: "
                 + ("PASSED, published" if self.passed else "FAILED, main left untouched, branch kept")]
        lines += [f"  {t}: {what}" for t, what in self.published.items()]
        lines += [f"  error failed  -> {f}" for f in self.blocking_failures]
        lines += [f"  warning       -> {w}" for w in self.warnings]
        lines.append(f"  gate took {self.seconds:.1f}s: "
                     + ", ".join(f"{phase} {s:.1f}s" for phase, s in self.phase_seconds.items()))
        lines.append(f"  Data Docs: {self.page_url}  ({self.page_path})")
        return "\n".join(lines)

    def record(self) -> dict:
        """What ops.job_runs keeps of the gate."""
        return {"passed": self.passed, "published": self.published, "blocking_failures": len(self.blocking_failures),
                "warnings": len(self.warnings), "seconds": self.seconds, "phase_seconds": self.phase_seconds,
                "audited_snapshots": {t: r.branch for t, r in self.refs.items()}, "data_docs": self.page_url}


class PhaseClock:
    """Wall time of each gate phase, to show where a gate's cost goes."""

    def __init__(self, stage: str, into: dict[str, float]):
        self.stage, self.seconds, self._last = stage, into, time.monotonic()

    def lap(self, phase: str) -> None:
        now = time.monotonic()
        took = now - self._last
        self.seconds[phase] = round(self.seconds.get(phase, 0) + took, 3)
        self._last = now
        print(f"[gate {self.stage}] {phase}: {took:.1f}s", flush=True)


def suite_parameters(run: "StageRun", names: set[str]) -> dict:
    """The stage's params and the values its suite_parameters computes, by name."""
    given = {**vars(run.params), **run.stage.suite_parameters(run)}
    missing = names - set(given)
    if missing:
        raise SuiteError(f"the suites of stage {run.stage.name} use parameters {sorted(missing)} that neither its "
                         f"params nor its suite_parameters give; they give {sorted(given)}")
    return {name: list(value) if isinstance(value, tuple) else value for name, value in given.items() if name in names}


def audit_and_publish(run: "StageRun") -> GateResult:
    spark, stage, branch = run.spark, run.stage.name, run.branch
    result = GateResult(stage, run.run_id, branch)
    clock = PhaseClock(stage, result.phase_seconds)
    suites = load_suites(run.stage.tables)
    parameters = suite_parameters(run, set().union(*(s.parameters() for s in suites)))
    result.refs = {t: table_refs(spark, t, branch) for t in run.stage.tables}
    clock.lap("suite parameters")
    validator = Validator(data_docs.data_docs_dir(), data_docs.results_store_dir())
    clock.lap("GX context")
    for suite in suites:
        # Exactly the rows the run's write replaced.
        df = spark.table(run.branch_identifier(suite.table)).where(run.owned(suite.table))
        # GX runs several Spark jobs per table; the cache reads the files once.
        df = df.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            result.validations.append(validator.validate(
                suite, df, parameters, run_name=run.run_id, batch_label=f"{suite.table}@{branch}"))
        finally:
            df.unpersist()
        clock.lap(f"validate {suite.table}")

    validated_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    append_results(spark, [row for v in result.validations
                           for row in result_rows(v, run.run_id, stage, branch, result.refs[v.table].branch,
                                                  validated_at)])
    clock.lap("append ops.quality_results")
    result.passed = all(v.passed for v in result.validations)
    if result.passed:
        for table, refs in result.refs.items():
            result.published[table] = publish(spark, refs, branch)
        clock.lap("publish")

    result.page_path = data_docs.gate_page_path(branch, stage)
    result.page_url = data_docs.url(result.page_path)
    verdict = "passed, published" if result.passed else "FAILED, main untouched, branch kept"
    data_docs.write_gate_page(branch, stage, data_docs.render_gate_page(
        run.run_id, stage, branch, verdict,
        [{"table": v.table, "snapshot_id": result.refs[v.table].branch, "passed": v.passed,
          "page": v.data_docs_page, "published": result.published.get(v.table, ""),
          "owns": run.stage.output(v.table).owns.describe,
          "failures": [o.describe() for o in v.outcomes if not o.success]} for v in result.validations]))
    return result
