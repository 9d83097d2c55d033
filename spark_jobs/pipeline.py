"""pipeline: the stages of a pipeline, in order, in one Spark application.

    spark-submit --py-files .local/dist/pipeline.zip spark_jobs/pipeline.py [--pipeline NAME] \
        --run-id RUN [--start-date D --end-date D] [--stages enrich,engagement] [--<stage option> V ...]

The DAG runs each stage as its own spark-submit, so that each can be retried
and re-run on its own. This runs them in one JVM: on a laptop, for a
benchmark, or to re-run a date range by hand. Each stage writes, audits and
publishes exactly as in the DAG, records its own ops.job_runs row, and a
blocked gate stops the run (exit 65) before the next stage. It takes every
option of every stage it runs.

``PIPELINES`` are the pipelines, one DAG each: every stage in the order they
run, each declared in its own module. The DAGs, the docs and the tests derive
from them. ``STAGES`` is the GoodNote pipeline's.
"""
from __future__ import annotations

import argparse
import sys
import time

from iceberg_catalog.tables import OPS_TABLES
from spark_jobs import engagement, enrich, ingest, lastfm_ingest, lastfm_sessions, performance, sessions
from spark_jobs.stage import GATE_BLOCKED_EXIT, Stage, add_run_arguments, parse_run_arguments

PIPELINES: dict[str, list[Stage]] = {
    "goodnote_pipeline": [ingest.STAGE, enrich.STAGE, engagement.STAGE, performance.STAGE, sessions.STAGE],
    "lastfm_sessions": [lastfm_ingest.STAGE, lastfm_sessions.STAGE],
}
STAGES = PIPELINES["goodnote_pipeline"]
BY_NAME = {s.name: s for stages in PIPELINES.values() for s in stages}
# Every table the pipelines write, by name.
TABLES = {spec.name: spec for spec in [o.table for s in BY_NAME.values() for o in s.outputs] + list(OPS_TABLES)}
# Set on every Spark job of a stage, so the event log and the Spark UI tell the
# stages of the one application apart.
STAGE_PROPERTY = "pipeline.stage"


def parser(pipeline: str) -> argparse.ArgumentParser:
    stages = PIPELINES[pipeline]
    p = argparse.ArgumentParser(prog="spark_jobs/pipeline.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pipeline", choices=list(PIPELINES), default=pipeline, help="the pipeline to run")
    add_run_arguments(p, dated=all(s.dated for s in stages))
    p.add_argument("--stages", default=",".join(s.name for s in stages),
                   help="comma-separated stages to run, in pipeline order (default: all)")
    for stage in stages:
        group = p.add_argument_group(f"{stage.name} options")
        for param in stage.params:
            param.add_to(group)
    return p


def main(argv: list[str] | None = None) -> int:
    from spark_jobs.spark_session import build_spark_session

    which = argparse.ArgumentParser(add_help=False)
    which.add_argument("--pipeline", choices=list(PIPELINES), default="goodnote_pipeline")
    pipeline = which.parse_known_args(argv)[0].pipeline
    stages = PIPELINES[pipeline]
    p = parser(pipeline)
    args, dates = parse_run_arguments(p, argv)
    names = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = [s for s in names if s not in {s.name for s in stages}]
    if unknown or not names:
        p.error(f"--stages must name stages among {[s.name for s in stages]}, got {args.stages!r}")
    spark = build_spark_session(f"pipeline {args.run_id}")
    try:
        for stage in [s for s in stages if s.name in names]:
            spark.sparkContext.setLocalProperty(STAGE_PROPERTY, stage.name)
            started = time.monotonic()
            result = stage.run(spark, args, dates)
            print(f"[pipeline] stage {stage.name} {time.monotonic() - started:.3f}s "
                  f"(gate {result.seconds:.3f}s)", flush=True)
            if not result.passed:
                return GATE_BLOCKED_EXIT
        return 0
    finally:
        spark.sparkContext.setLocalProperty(STAGE_PROPERTY, None)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
