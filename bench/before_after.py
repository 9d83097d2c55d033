"""Before/after figures of an optimization: the stages' job code at another git
revision against the code of this checkout, on the same input tables.

    python -m bench.before_after --before 03b27fe^ --stages engagement,performance --repeats 3

Runs on the bench catalog as the last `python -m bench.run` left it (silver
and bronze of its dataset); runs alternate before/after so both see the same
machine load. Per stage: wall time and the event log's task time, shuffle and
scan figures, medians over the repeats. Results: bench/results/before-after-<stages>.json/.md.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import tarfile
import tempfile
import zipfile
from io import BytesIO
from pathlib import Path

from bench.run import RESULTS, ROOT, fmt_bytes, load_average, median, prepare_platform, spark_submit

FIGURES = ("wall_s", "task_run_s", "shuffle_write_bytes", "input_bytes", "gc_share")


def export_revision(revision: str, into: Path) -> Path:
    """The job packages of ``revision``, unpacked into ``into``, plus their --py-files zip."""
    archive = subprocess.run(["git", "archive", revision, "spark_jobs", "iceberg_catalog"], cwd=ROOT,
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    zip_path = into / "pipeline.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(into.rglob("*.py")):
            z.write(f, f.relative_to(into))
    return zip_path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True, help="git revision of the code before the optimization")
    ap.add_argument("--stages", default="engagement,performance")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--master", default="local[*]")
    ap.add_argument("--driver-memory", default="4g")
    ap.add_argument("--landing", type=Path, help="landing directory the ingest stage reads (a bench dataset)")
    args = ap.parse_args(argv)
    stages = args.stages.split(",")
    prepare_platform()
    revision = subprocess.run(["git", "rev-parse", "--short", args.before], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    results: dict = {s: {"before": [], "after": []} for s in stages}
    with tempfile.TemporaryDirectory() as tmp:
        before_zip = export_revision(args.before, Path(tmp))
        code = {"before": (Path(tmp), before_zip), "after": (ROOT, ROOT / ".local/dist/pipeline.zip")}
        for i in range(args.repeats):
            for stage in stages:
                for side, (root, zip_path) in code.items():
                    run_id = f"before-after-{side}-{i}"
                    stage_args = ["--run-id", run_id]
                    if stage == "ingest" and args.landing:
                        stage_args += ["--interactions", str(args.landing / "user_interactions"),
                                       "--metadata", str(args.landing / "user_metadata")]
                    r = spark_submit(str(root / "spark_jobs" / f"{stage}.py"), f"{stage} {run_id}",
                                     stage_args, args.master, args.driver_memory, py_files=zip_path)
                    results[stage][side].append(r)
                    print(f"  {stage} {side} {i + 1}/{args.repeats}: {r['wall_s']:.1f}s (load {r['load_avg']})",
                          flush=True)
    report = {"before": revision, "stages": stages, "repeats": args.repeats, "load_avg": load_average(),
              "figures": {s: {side: {k: median([r.get(k) for r in runs]) for k in FIGURES}
                              for side, runs in sides.items()} for s, sides in results.items()},
              "runs": results}
    lines = [f"Before = the job code at {revision}, after = this checkout; medians of {args.repeats} alternating runs.",
             "", "| stage | wall s before -> after | task s before -> after | shuffle written | input read |",
             "|---|---|---|---|---|"]
    for s in stages:
        b, a = report["figures"][s]["before"], report["figures"][s]["after"]
        lines.append(f"| {s} | {b['wall_s']:.1f} -> {a['wall_s']:.1f} | {b['task_run_s']:.1f} -> {a['task_run_s']:.1f} | "
                     f"{fmt_bytes(b['shuffle_write_bytes'])} -> {fmt_bytes(a['shuffle_write_bytes'])} | "
                     f"{fmt_bytes(b['input_bytes'])} -> {fmt_bytes(a['input_bytes'])} |")
    name = f"before-after-{'-'.join(stages)}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=1, default=str))
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
