"""A pipeline stage, declared once, and how every stage runs: write, audit, publish.

A stage module (``spark_jobs/<stage>.py``) declares ``STAGE = Stage(...)``:
its output tables with, for each, the rows a run owns (``Owns``); its
parameters (``Param``: default, bounds, help); and a ``compute`` function that
reads upstream tables and writes its outputs through the ``StageRun`` it is
given. Everything else derives from that declaration: the job's command line,
the tables' DDL, the one-application pipeline, the DAG's tasks and trigger
form, and the docs' option table.

Every run of a stage is one unit, in one Spark application:

1. each output table's branch ``wap_<run id>`` is (re)created from the current
   ``main``, so a retry never builds on a stale branch;
2. ``compute`` writes the branch: each write replaces exactly the rows the run
   owns (``Owns``), and a row outside them fails the write;
3. the stage's Great Expectations suites validate exactly those rows on the
   branch (spark_jobs/quality/gate.py);
4. only if no ``error`` expectation failed, ``main`` of every output is
   fast-forwarded to its branch; otherwise ``main`` is untouched, the branches
   are kept for inspection and the process exits with ``GATE_BLOCKED_EXIT``.

Any other failure raises (exit 1): an infrastructure fault the DAG retries.
"""
from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from types import SimpleNamespace
from typing import Any, Callable

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from iceberg_catalog.tables import TableSpec, create_tables
from spark_jobs import failpoints
from spark_jobs.common import DateRange, JobRun, conform, job_run, side_by_side

# How many times a run starts over when another run published its tables first.
MAX_REBUILDS = 3
# sysexits' EX_DATAERR: the data failed its audit. Retrying cannot change a
# verdict, so the DAG fails the task without retry; every other exit code is a
# fault worth a retry.
GATE_BLOCKED_EXIT = 65


# --- parameters ---------------------------------------------------------------

KINDS = ("int", "float", "str", "list", "path")


@dataclass(frozen=True)
class Param:
    """A stage option: a job flag (``--name-with-dashes``) and a DAG trigger-form field."""

    name: str
    kind: str  # int | float | str | list (of strings) | path (optional string)
    default: Any
    help: str
    minimum: float | None = None
    exclusive_minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"param {self.name}: kind {self.kind!r} is not one of {KINDS}")
        if self.default is not None:
            self.check(self.default)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parse(self, text: str) -> Any:
        """The value of the flag's text; ValueError says what was expected."""
        try:
            if self.kind == "int":
                value: Any = int(text)
            elif self.kind == "float":
                value = float(text)
            elif self.kind == "list":
                value = tuple(item.strip() for item in text.split(",") if item.strip())
            else:
                value = text
        except ValueError:
            raise ValueError(f"{self.flag}: expected {'an integer' if self.kind == 'int' else 'a number'}, "
                             f"got {text!r}") from None
        self.check(value)
        return value

    def check(self, value: Any) -> None:
        if self.kind == "list" and not value:
            raise ValueError(f"{self.flag}: expected at least one value, got none")
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"{self.flag}: expected at least {self.minimum}, got {value}")
        if self.exclusive_minimum is not None and value <= self.exclusive_minimum:
            raise ValueError(f"{self.flag}: expected more than {self.exclusive_minimum}, got {value}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"{self.flag}: expected at most {self.maximum}, got {value}")
        if self.choices and value not in self.choices:
            raise ValueError(f"{self.flag}: expected one of {list(self.choices)}, got {value!r}")

    def argument(self, value: Any) -> str:
        """The flag's text for a value (the inverse of ``parse``)."""
        return ",".join(value) if self.kind == "list" else str(value)

    def json_schema(self) -> dict:
        """The trigger form's field: JSON Schema, as Airflow's Param takes it."""
        schema: dict[str, Any] = {
            "int": {"type": "integer"},
            "float": {"type": "number"},
            "str": {"type": "string"},
            "list": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "path": {"type": ["null", "string"]},
        }[self.kind]
        for key, value in (("minimum", self.minimum), ("exclusiveMinimum", self.exclusive_minimum),
                           ("maximum", self.maximum)):
            if value is not None:
                schema[key] = value
        if self.choices:
            schema["enum"] = list(self.choices)
        return schema

    def form_default(self) -> Any:
        return list(self.default) if self.kind == "list" else self.default

    def add_to(self, parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
        def parse(text: str) -> Any:
            try:
                return self.parse(text)
            except ValueError as exc:
                raise argparse.ArgumentTypeError(str(exc).removeprefix(f"{self.flag}: ")) from None

        parse.__name__ = self.kind  # argparse names the type in its error message
        default = self.argument(self.default) if self.default is not None else "none"
        parser.add_argument(self.flag, dest=self.name, type=parse, default=self.default,
                            help=f"{self.help} (default: {default})")


# --- the rows a run owns ----------------------------------------------------


@dataclass(frozen=True)
class Owns:
    """The rows of a table one run rewrites: the condition of its overwrite and
    the batch its audit validates. ``describe`` is for people (docs, errors)."""

    describe: str
    rows: Callable[["StageRun"], Column] = field(compare=False)


def run_dates(column: str, days_after: int = 0) -> Owns:
    """Rows dated in the run's dates, and ``days_after`` more days after them."""
    after = f" and the {days_after} days after" if days_after else ""
    return Owns(f"`{column}` in the run's dates{after}",
                lambda run: run.dates.widened(days_after=days_after).contains(F.col(column)))


def run_months(column: str) -> Owns:
    """Rows of the calendar months the run's dates touch (``column`` = first of month)."""
    def rows(run: StageRun) -> Column:
        if run.dates.everything:
            return F.lit(True)
        return F.col(column).between(F.lit(run.dates.start.replace(day=1)), F.lit(run.dates.end.replace(day=1)))
    return Owns(f"`{column}` in the months of the run's dates", rows)


def dates_from(column: str, fact: str, why: str) -> Owns:
    """Rows dated on or after a date the run's compute establishes (``run.facts[fact]``)."""
    def rows(run: StageRun) -> Column:
        first = run.facts.get(fact)
        if run.dates.everything or first is None:
            return F.lit(True)
        return F.col(column) >= F.lit(first)
    return Owns(f"`{column}` from {why} on", rows)


WHOLE_TABLE = Owns("the whole table", lambda run: F.lit(True))


@dataclass(frozen=True)
class Output:
    table: TableSpec
    owns: Owns

    @property
    def name(self) -> str:
        return self.table.name


# --- the stage -----------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    name: str
    description: str
    outputs: tuple[Output, ...]
    compute: Callable[["StageRun"], None]
    params: tuple[Param, ...] = ()
    after: tuple[str, ...] = ()  # stages whose published tables this one reads
    # Run-time values the suites refer to as {"$PARAMETER": name}, besides the params.
    suite_parameters: Callable[["StageRun"], dict] = lambda run: {}
    session_conf: dict = field(default_factory=dict)  # Spark SQL settings for this stage only
    # Whether a run processes a range of dates (--start-date/--end-date), or all of its input.
    dated: bool = True
    # Whether the stage's own driver (the DAG's layout) runs the client JIT compiler only:
    # for stages whose time goes to planning, committing and auditing many small tables,
    # where the optimising compiler's work is not repaid (iceberg_catalog.config.spark_driver_conf).
    client_compiler: bool = False

    @property
    def tables(self) -> list[str]:
        return [o.name for o in self.outputs]

    def output(self, table: str) -> Output:
        for o in self.outputs:
            if o.name == table:
                return o
        raise KeyError(f"stage {self.name} does not write {table}; it writes {self.tables}")

    def parser(self) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(prog=f"spark_jobs/{self.name}.py", description=self.description)
        add_run_arguments(parser, self.dated)
        for p in self.params:
            p.add_to(parser)
        return parser

    def parse_args(self, argv: list[str] | None) -> tuple[argparse.Namespace, DateRange]:
        return parse_run_arguments(self.parser(), argv)

    def main(self, argv: list[str] | None = None) -> int:
        """The job's entry point: its own Spark application (spark-submit, python -m, the DAG)."""
        from spark_jobs.spark_session import build_spark_session

        args, dates = self.parse_args(argv)
        spark = build_spark_session(f"{self.name} {args.run_id}")
        return 0 if self.run(spark, args, dates).passed else GATE_BLOCKED_EXIT

    def run(self, spark: SparkSession, args: argparse.Namespace, dates: DateRange):
        """Write, audit, publish, on ``spark``; returns the gate's result.

        If another run publishes one of the stage's tables while this one works
        (a backfill beside a scheduled run, maintenance compacting a table), the
        publish refuses to move main (MainMoved) and the run starts over from
        the new main: rebuilt, audited again, published."""
        from spark_jobs.quality.gate import MainMoved, audit, new_validator, publish, write_page

        params = SimpleNamespace(**{p.name: getattr(args, p.name) for p in self.params})
        branch = args.branch or wap_branch(args.run_id)
        conf_before = spark.conf.getAll
        for key, value in self.session_conf.items():
            spark.conf.set(key, value)
        # Great Expectations' import and context take seconds: made while the stage computes.
        validators = ThreadPoolExecutor(max_workers=1)
        try:
            with job_run(spark, self.name, args.run_id, dates, branch) as record:
                for attempt in range(1, MAX_REBUILDS + 2):
                    validator = validators.submit(new_validator)
                    run = StageRun(self, spark, args.run_id, dates, branch, params, record)
                    run.open_branches()
                    self.compute(run)
                    unwritten = set(self.tables) - set(run.written)
                    if unwritten:
                        raise RuntimeError(f"stage {self.name} run {args.run_id} did not write {sorted(unwritten)}")
                    failpoints.reached("written")
                    result = audit(run, validator.result())
                    if result.passed:
                        failpoints.reached("audited")
                        try:
                            publish(run, result)
                        except MainMoved as moved:
                            if attempt > MAX_REBUILDS:
                                raise
                            print(f"[{self.name}] {moved}; rebuilding from the new main", flush=True)
                            record.metrics["rebuilds"] = attempt
                            continue
                    break
                write_page(run, result)
                record.status = "succeeded" if result.passed else "blocked"
                record.metrics["gate"] = result.record()
        finally:
            validators.shutdown(wait=False)
            _restore_conf(spark, conf_before)
        print(result.summary(), flush=True)
        if not result.passed:
            print(f"error: quality gate of {self.name} blocked run {args.run_id}: "
                  f"{len(result.blocking_failures)} error expectation(s) failed; main untouched, "
                  f"branch {branch} kept; Data Docs: {result.page_url}", file=sys.stderr, flush=True)
        return result


def _restore_conf(spark: SparkSession, before: dict[str, str]) -> None:
    """Undoes what a run set on the session, so the next stage of a one-application
    pipeline runs with the settings it would have in its own application."""
    for key, value in spark.conf.getAll.items():
        if value == before.get(key) or not spark.conf.isModifiable(key):
            continue
        if key in before:
            spark.conf.set(key, before[key])
        else:
            spark.conf.unset(key)


@dataclass
class StageRun:
    """One run of a stage, as its compute function sees it."""

    stage: Stage
    spark: SparkSession
    run_id: str
    dates: DateRange
    branch: str
    params: SimpleNamespace
    record: JobRun
    facts: dict = field(default_factory=dict)  # what compute established that ownership depends on
    written: set = field(default_factory=set)
    base: dict = field(default_factory=dict)  # table -> main's snapshot the branch was made from

    def owned(self, table: str) -> Column:
        return self.stage.output(table).owns.rows(self)

    def branch_identifier(self, table: str) -> str:
        return f"{self.stage.output(table).table.identifier}.branch_{self.branch}"

    def open_branches(self) -> None:
        """Every output's branch, new from main's current snapshot: whatever an
        earlier attempt left on it is discarded, never built upon."""
        from spark_jobs.quality.publishing import branch_heads

        create_tables(self.spark, [o.table for o in self.stage.outputs])

        def open_branch(o: Output) -> None:
            if self.branch in (heads := branch_heads(self.spark, o.name)) and heads.get("main") is None:
                # Iceberg replaces a branch only with main's snapshot: on a table main has
                # none of (an earlier attempt of its first run), the branch is made anew.
                self.spark.sql(f"ALTER TABLE {o.table.identifier} DROP BRANCH {self.branch}")
            self.spark.sql(f"ALTER TABLE {o.table.identifier} CREATE OR REPLACE BRANCH {self.branch}")
            heads = branch_heads(self.spark, o.name)
            # The branch starts at main's snapshot; on a table main has none of, at an empty one.
            self.base[o.name] = heads[self.branch] if heads.get("main") is not None else None

        # Side by side: each table's branch is a few catalog round trips and a commit of its own.
        self.side_by_side(*[partial(open_branch, o) for o in self.stage.outputs])

    def read(self, table: str) -> DataFrame:
        """A published table (main): upstream stages published before this one runs."""
        return self.spark.table(f"iceberg.{table}")

    def read_output(self, table: str) -> DataFrame:
        """This run's branch of one of its own outputs, as written so far."""
        return self.spark.table(self.branch_identifier(table))

    def write(self, table: str, df: DataFrame, clustered_by_partition: bool = False,
              sorted_by_partition: bool = False) -> None:
        """Replaces the rows the run owns in ``table`` (on its branch) with ``df``, in one commit.

        A row of ``df`` outside them fails the write: it would land where no
        later run replaces it and no audit of this run looks.
        ``clustered_by_partition`` says each task of ``df`` already holds the rows
        of a few partitions only, so Iceberg's shuffle by partition is skipped.
        ``sorted_by_partition`` says each task of ``df`` holds whole partitions,
        sorted by them: its writer then keeps one file open at a time, where
        Iceberg's own writer opens one per partition the task holds at once (of
        a table of a thousand days, too many to buffer)."""
        owns = self.stage.output(table).owns
        owned = owns.rows(self)
        outside = F.raise_error(F.lit(f"{table}: run {self.run_id} wrote a row outside the rows it owns "
                                      f"({owns.describe})"))
        guarded = conform(df, self.stage.output(table).table).where(F.when(owned, F.lit(True)).otherwise(outside))
        if failpoints.active(f"in_write:{table}"):
            point, env = f"in_write:{table}", failpoints.settings()
            pause = F.udf(lambda: failpoints.reached(point, env) or True, "boolean").asNondeterministic()
            guarded = guarded.where(pause())
        writer = guarded.writeTo(self.branch_identifier(table))
        if clustered_by_partition or sorted_by_partition:
            writer = writer.option("distribution-mode", "none")
        if sorted_by_partition:
            writer = writer.option("fanout-enabled", "false")
        writer.overwrite(owned)
        self.written.add(table)

    def side_by_side(self, *actions: Callable[[], Any]) -> list[Any]:
        return side_by_side(self.spark, *actions)


# --- the arguments every stage takes -------------------------------------------


def wap_branch(run_id: str) -> str:
    """The Iceberg branch of a run: its id made safe for ``table.branch_<name>``."""
    return "wap_" + re.sub(r"[^a-z0-9]+", "_", run_id.lower()).strip("_")


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {value!r}") from None


def add_run_arguments(parser: argparse.ArgumentParser, dated: bool = True) -> None:
    parser.add_argument("--run-id", default=None, help="identifies the run in ops tables (default: manual__<utc time>)")
    if dated:
        parser.add_argument("--start-date", type=_date, help="first event date to process (inclusive)")
        parser.add_argument("--end-date", type=_date, help="last event date to process (inclusive)")
    parser.add_argument("--branch", default=None,
                        help="the Iceberg branch the run writes and audits before publishing (default: wap_<run id>)")


def parse_run_arguments(parser: argparse.ArgumentParser, argv: list[str] | None) -> tuple[argparse.Namespace, DateRange]:
    args = parser.parse_args(argv)
    start, end = getattr(args, "start_date", None), getattr(args, "end_date", None)
    if (start is None) != (end is None):
        start = args.start_date = start or end
        end = args.end_date = end or start
    if start and start > end:
        parser.error(f"--start-date {start} is after --end-date {end}")
    if args.run_id is None:
        args.run_id = "manual__" + dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if args.branch is not None and not re.fullmatch(r"[A-Za-z0-9_]+", args.branch):
        parser.error(f"--branch must match [A-Za-z0-9_]+, got {args.branch!r}")
    return args, DateRange(start, end)
