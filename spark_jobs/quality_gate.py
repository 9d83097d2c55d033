"""Quality gate of one stage (write-audit-publish).

    spark-submit --py-files .local/dist/pipeline.zip spark_jobs/quality_gate.py \
        --stage enrich --run-id RUN --branch wap_RUN [--start-date D --end-date D]

Validates the stage's tables on Iceberg branch --branch with their suites in
expectations/, appends the results to ops.quality_results, builds Data Docs,
and, when no ``error`` expectation failed, fast-forwards main to the branch and
drops it. Exits 1 (main untouched, branch kept) when the gate fails.
Thresholds: flags below, or QUALITY_<NAME> in the environment.
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib
import threading
import re
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file by spark-submit: make `spark_jobs` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from iceberg_catalog.tables import STAGE_OUTPUTS  # noqa: E402
from spark_jobs.quality.gate import GateError, result_json, run_gate  # noqa: E402
from spark_jobs.quality.parameters import RunScope, Thresholds  # noqa: E402

EXPECTATIONS_DIR = Path(__file__).resolve().parent.parent / "expectations"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = Thresholds.from_env()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", required=True, choices=sorted(STAGE_OUTPUTS))
    p.add_argument("--run-id", required=True)
    p.add_argument("--branch", required=True)
    p.add_argument("--start-date", type=dt.date.fromisoformat)
    p.add_argument("--end-date", type=dt.date.fromisoformat)
    p.add_argument("--max-rejected-share", type=float, default=defaults.max_rejected_share,
                   help="error if a run rejects more than this share of the rows it read (default %(default)s)")
    p.add_argument("--min-metadata-match-share", type=float, default=defaults.min_metadata_match_share,
                   help="warning if fewer events than this share have user metadata (default %(default)s)")
    p.add_argument("--min-metadata-match-share-error", type=float, default=defaults.min_metadata_match_share_error,
                   help="error below this share: the join is broken (default %(default)s)")
    p.add_argument("--no-cache", action="store_true", help="do not cache each batch while GX validates it")
    args = p.parse_args(argv)
    if not re.fullmatch(r"[A-Za-z0-9_]+", args.branch):
        p.error(f"--branch must match [A-Za-z0-9_]+, got {args.branch!r}")
    if (args.start_date is None) != (args.end_date is None):
        args.start_date = args.start_date or args.end_date
        args.end_date = args.end_date or args.start_date
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Importing GX takes seconds; do it while the JVM starts.
    threading.Thread(target=importlib.import_module, args=("great_expectations",), daemon=True).start()
    from spark_jobs.session import build_spark_session

    spark = build_spark_session(f"gate_{args.stage}")
    try:
        result = run_gate(
            spark, args.stage, STAGE_OUTPUTS[args.stage], RunScope(args.run_id, args.start_date, args.end_date),
            args.branch, Thresholds(args.max_rejected_share, args.min_metadata_match_share,
                                    args.min_metadata_match_share_error),
            expectations_dir=EXPECTATIONS_DIR, cache_batches=not args.no_cache)
    except GateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        spark.stop()
    print(result.summary())
    print("GATE_RESULT " + result_json(result))
    if not result.passed:
        print(f"error: gate {args.stage} failed for run {args.run_id}: {len(result.blocking_failures)} error "
              f"expectation(s) failed; see {result.page_url}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
