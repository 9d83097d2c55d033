"""pipeline: stages in order in one Spark application.

    spark-submit --py-files .local/dist/pipeline.zip spark_jobs/pipeline.py \
        --run-id RUN [--start-date D --end-date D] [--stages enrich,engagement] [--branch wap_RUN]

The DAG runs each stage and each gate as its own spark-submit, so that each can
be retried and re-run on its own. This runs them in one JVM. Use it on a laptop,
for a benchmark, or to re-run a date range by hand. It saves every later stage
its JVM, session and catalog start-up and its JIT warm-up; docs/performance.md
has the figures. Each stage still records its own ops.job_runs row.

Without --branch, each stage writes main. With --branch, each stage writes
that branch, and its quality gate audits it and publishes it to main before
the next stage reads main, as in the DAG. A failed gate stops the run with
exit 1, leaving main untouched and the branch kept.
"""
from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

from iceberg_catalog.tables import STAGE_OUTPUTS, STAGES
from spark_jobs.common import base_parser, parse_args
from spark_jobs.session import build_spark_session

EXPECTATIONS_DIR = Path(__file__).resolve().parent.parent / "expectations"
# Set on every Spark job of a stage (and "gate_<stage>" for its gate), so the
# event log and the Spark UI tell the stages of the one application apart.
STAGE_PROPERTY = "pipeline.stage"


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__)
    parser.add_argument("--stages", default=",".join(STAGES),
                        help="comma-separated stages to run, in pipeline order (default: all)")
    parser.add_argument("--interactions", help="ingest: landing path of the interactions (default: ingest's)")
    parser.add_argument("--metadata", help="ingest: landing path of the user metadata (default: ingest's)")
    args, dates = parse_args(parser, argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = [s for s in stages if s not in STAGES]
    if unknown or not stages:
        parser.error(f"--stages must name stages among {STAGES}, got {args.stages!r}")
    stages = [s for s in STAGES if s in stages]

    common = ["--run-id", args.run_id]
    if not dates.everything:
        common += ["--start-date", str(dates.start), "--end-date", str(dates.end)]
    if args.branch:
        common += ["--branch", args.branch]
    spark = build_spark_session(f"pipeline {args.run_id}")
    try:
        for stage in stages:
            stage_args = list(common)
            if stage == "ingest":
                for flag, value in (("--interactions", args.interactions), ("--metadata", args.metadata)):
                    if value:
                        stage_args += [flag, value]
            spark.sparkContext.setLocalProperty(STAGE_PROPERTY, stage)
            started = time.monotonic()
            conf_before = spark.conf.getAll
            importlib.import_module(f"spark_jobs.{stage}").main(stage_args)
            _restore_conf(spark, conf_before)
            print(f"[pipeline] stage {stage} {time.monotonic() - started:.3f}s", flush=True)
            if args.branch and not _gate(spark, stage, args, dates):
                return 1
        return 0
    finally:
        spark.sparkContext.setLocalProperty(STAGE_PROPERTY, None)


def _restore_conf(spark, before: dict[str, str]) -> None:
    """Undoes what a stage set on the session (enrich turns auto-broadcast off),
    so each stage runs with the settings it would have in its own application."""
    for key, value in spark.conf.getAll.items():
        if value == before.get(key) or not spark.conf.isModifiable(key):
            continue
        if key in before:
            spark.conf.set(key, before[key])
        else:
            spark.conf.unset(key)


def _gate(spark, stage: str, args, dates) -> bool:
    """The stage's quality gate, on this session: publishes the branch when it passes."""
    from spark_jobs.quality.gate import run_gate
    from spark_jobs.quality.parameters import RunScope, Thresholds

    spark.sparkContext.setLocalProperty(STAGE_PROPERTY, f"gate_{stage}")
    started = time.monotonic()
    result = run_gate(spark, stage, STAGE_OUTPUTS[stage], RunScope(args.run_id, dates.start, dates.end),
                      args.branch, Thresholds.from_env(), expectations_dir=EXPECTATIONS_DIR)
    print(result.summary())
    print(f"[pipeline] gate {stage} {time.monotonic() - started:.3f}s", flush=True)
    if not result.passed:
        print(f"error: gate {stage} failed for run {args.run_id}: {len(result.blocking_failures)} error "
              f"expectation(s) failed; main is untouched, branch {args.branch} kept; see {result.page_url}",
              file=sys.stderr)
    return result.passed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
