"""The audit and publish steps of a stage run (write-audit-publish).

The stage has written its run's branch of every output table; here, in the
same Spark application, each table's suite validates exactly the rows the run
owns on that branch (the same condition its write replaced), the results go
to ``ops.quality_results`` and Data Docs, and only if no ``error``
expectation failed is ``main`` fast-forwarded to each branch.

Iceberg commits each table on its own (a JDBC catalog has no multi-table
commit), so while a stage publishes, a reader may see some of its tables
published and the others not yet; each table it sees is audited. A run killed
there is finished by its retry, which rebuilds, audits and publishes them all.
"""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from spark_jobs.quality import data_docs
from spark_jobs import failpoints
from spark_jobs.quality.publishing import TableRefs, identifier, speed_layer_appends_only, table_refs
from spark_jobs.quality.publishing import publish as publish_table
from spark_jobs.quality.results import record_results, result_rows
from spark_jobs.quality.suites import Suite, SuiteError, load_suites
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
                "audited_snapshots": {t: r.branch for t, r in self.refs.items()},
                "engines": {v.table: v.engine for v in self.validations}, "data_docs": self.page_url}


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


class MainMoved(RuntimeError):
    """Another run published a table since this run's branch was made from main:
    the branch is rebuilt from the new main and audited again, never forced."""


def new_validator() -> Validator:
    return Validator(data_docs.data_docs_dir(), data_docs.results_store_dir())


def audit(run: "StageRun", validator: Validator) -> GateResult:
    """Validates the rows the run owns on its branches and records the results."""
    spark, stage, branch = run.spark, run.stage.name, run.branch
    result = GateResult(stage, run.run_id, branch)
    clock = PhaseClock(stage, result.phase_seconds)
    suites = load_suites(run.stage.tables)
    parameters = suite_parameters(run, set().union(*(s.parameters() for s in suites)))
    result.refs = {t: table_refs(spark, t, branch) for t in run.stage.tables}
    clock.lap("suite parameters")

    def validate(suite: Suite) -> TableValidation:
        # Exactly the rows the run's write replaced.
        df = spark.table(run.branch_identifier(suite.table)).where(run.owned(suite.table))
        return validator.validate(suite, df, parameters, run_name=run.run_id, batch_label=f"{suite.table}@{branch}")

    # Side by side, here and below: one table's Spark jobs and commits (JVM work)
    # run while another's GX steps and the Data Docs pages (Python work) are made.
    result.validations = run.side_by_side(*[partial(validate, suite) for suite in suites])
    clock.lap("validate")
    validated_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    run.side_by_side(validator.build_data_docs, lambda: record_results(spark, run.run_id, stage, [
        row for v in result.validations
        for row in result_rows(v, run.run_id, stage, branch, result.refs[v.table].branch, validated_at)]))
    clock.lap("Data Docs, ops.quality_results")
    result.passed = all(v.passed for v in result.validations)
    return result


def publish(run: "StageRun", result: GateResult) -> None:
    """Fast-forwards main of every table to its audited branch, then drops the
    branch. Checks first that no other run published since the branch was made:
    then nothing is published and MainMoved is raised. A table that only the
    speed layer appended to meanwhile (rows no run owns) gets the run's audited
    rows copied from the branch instead: no rebuild for a stream's rejects."""
    spark, clock = run.spark, PhaseClock(run.stage.name, result.phase_seconds)
    now = {t: table_refs(spark, t, run.branch) for t in result.refs}
    moved = {t: (run.base[t], r.main) for t, r in now.items() if r.main != run.base[t]}
    copied = {t for t, (base, main) in moved.items() if speed_layer_appends_only(spark, t, base, main)}
    if set(moved) - copied:
        raise MainMoved(f"main moved since run {run.run_id} made its branches (table: (base, now)): {moved}")
    for table, refs in now.items():
        try:
            if table in copied:
                result.published[table] = copy_owned_rows(run, table, refs)
            else:
                result.published[table] = publish_table(spark, refs, run.branch)
        except Exception as exc:
            if "Cannot fast-forward" in str(exc):  # a run published between the check and here
                raise MainMoved(f"{table}: {exc}") from exc
            raise
        failpoints.reached(f"published:{table}")
    clock.lap("publish")


def copy_owned_rows(run: "StageRun", table: str, refs: TableRefs) -> str:
    """Publishes by replacing the rows the run owns on main with the branch's (the audited ones), then drops the branch."""
    owned = run.owned(table)
    run.spark.table(run.branch_identifier(table)).where(owned).writeTo(identifier(table)).overwrite(owned)
    run.spark.sql(f"ALTER TABLE {identifier(table)} DROP BRANCH IF EXISTS {run.branch}")
    return (f"main {refs.main} had speed-layer appends: the run's rows copied from {refs.branch}; "
            f"dropped branch {run.branch}")


def write_page(run: "StageRun", result: GateResult) -> None:
    """The run's gate page in Data Docs: verdict, rows validated, failures, what was published."""
    result.page_path = data_docs.gate_page_path(run.branch, run.stage.name)
    result.page_url = data_docs.url(result.page_path)
    verdict = "passed, published" if result.passed else "FAILED, main untouched, branch kept"
    data_docs.write_gate_page(run.branch, run.stage.name, data_docs.render_gate_page(
        run.run_id, run.stage.name, run.branch, verdict,
        [{"table": v.table, "snapshot_id": result.refs[v.table].branch, "passed": v.passed,
          "page": v.data_docs_page, "published": result.published.get(v.table, ""),
          "owns": run.stage.output(v.table).owns.describe,
          "failures": [o.describe() for o in v.outcomes if not o.success]} for v in result.validations],
        run.record.metrics.get("input_report")))
