"""LastFM benchmark: the lastfm_sessions DAG's layout (one spark-submit per
stage, local mode, gates included) on generated plays, beside DuckDB computing
the same two tables from the same file (bench.duckdb_lastfm).

    python -m bench.lastfm                      # 19,150,868 plays, the dump's size
    python -m bench.lastfm --plays 1000000 --driver-memory 2g

Reports per stage: wall time (spark-submit launch to exit), gate seconds and
the peak JVM heap of the driver (local mode: the only executor) from the
application's event log; the run's total; DuckDB's time; their ratio; and the
load average before each, since a loaded machine inflates every figure.
Generated files are cached in .local/bench-data; results go to
bench/results/lastfm-<plays>.json and .md. Uses the bench catalog
(iceberg_bench, .local/bench-warehouse).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import subprocess
import time
from pathlib import Path

from bench.run import (DATA_CACHE, PY, RESULTS, ROOT, fmt_bytes, job_run_row, load_average, machine,  # noqa: I001
                       prepare_platform, reset_catalog, spark_submit)
from bench import duckdb_lastfm

DUMP_PLAYS = 19_150_868


def plays_file(plays: int, seed: int) -> Path:
    path = DATA_CACHE / f"lastfm-{plays}-s{seed}" / "userid-timestamp-artid-artname-traid-traname.tsv"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([PY, "-m", "datagen.lastfm", "--out", str(path), "--plays", str(plays), "--seed", str(seed)],
                       check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return path


def run_stage(stage: str, run_id: str, args: list[str], driver_memory: str) -> dict:
    result = spark_submit(str(ROOT / "spark_jobs" / f"{stage}.py"), f"{stage} {run_id}", ["--run-id", run_id, *args],
                          "local[*]", driver_memory)
    printed = re.search(r"^\s*gate took ([0-9.]+)s", result.pop("stdout"), re.M)
    gate = (job_run_row(run_id, stage).get("metrics") or {}).get("gate") or {}
    heap = max((result.get("peak_jvm_heap_bytes") or {}).values(), default=None)
    return {"wall_s": result["wall_s"], "gate_s": gate.get("seconds", float(printed.group(1)) if printed else None),
            "peak_jvm_heap_bytes": heap, "load_avg": result["load_avg"], "event_log": result.get("event_log")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plays", type=int, default=DUMP_PLAYS)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--driver-memory", default="4g", help="the driver's heap limit (default: 4g, the target)")
    ap.add_argument("--duckdb-threads", type=int, default=2)
    args = ap.parse_args(argv)

    path = plays_file(args.plays, args.seed)
    prepare_platform()
    reset_catalog()
    run_id = "bench_lastfm_" + dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    stages = {
        "lastfm_ingest": run_stage("lastfm_ingest", run_id, ["--plays", str(path)], args.driver_memory),
        "lastfm_sessions": run_stage("lastfm_sessions", run_id, [], args.driver_memory),
    }
    spark_s = round(sum(s["wall_s"] for s in stages.values()), 3)
    load_before_duckdb = load_average()
    started = time.perf_counter()
    duck = duckdb_lastfm.lastfm_tables(path, con=duckdb_lastfm.connect(threads=args.duckdb_threads))
    duckdb_s = round(time.perf_counter() - started, 3)
    from iceberg_catalog.config import load_pyiceberg_catalog

    catalog = load_pyiceberg_catalog()
    published = duckdb_lastfm.published_tables(lambda t: catalog.load_table(t).scan().to_arrow().to_pylist())
    same = published == {"top_sessions": duck["top_sessions"], "top_songs": duck["top_songs"]}
    report = {
        "plays": args.plays, "file": str(path), "bytes": path.stat().st_size, "run_id": run_id,
        "driver_memory": args.driver_memory, "machine": machine(), "stages": stages, "spark_s": spark_s,
        "duckdb_s": duckdb_s, "duckdb_threads": args.duckdb_threads, "duckdb_load_avg": load_before_duckdb,
        "spark_over_duckdb": round(spark_s / duckdb_s, 2), "same_tables": same,
        "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    lines = [f"# LastFM sessions, {args.plays:,} plays ({report['bytes'] / 1e9:.2f} GB), local mode, "
             f"{report['machine']['cpus']} cores, driver {args.driver_memory}", "",
             "| stage | wall s | gate s | peak driver heap | load before |", "|---|---|---|---|---|"]
    for name, s in stages.items():
        lines.append(f"| {name} | {s['wall_s']:.1f} | {s['gate_s'] or 0:.1f} | {fmt_bytes(s['peak_jvm_heap_bytes'])} "
                     f"| {s['load_avg']} |")
    lines += [f"| **DAG run** | **{spark_s:.1f}** | | | |", "",
              f"DuckDB ({args.duckdb_threads} threads, same file, same tables): {duckdb_s:.1f} s, load before "
              f"{load_before_duckdb}. Spark/DuckDB: {report['spark_over_duckdb']}. "
              f"Spark's gold tables {'equal' if same else 'DIFFER FROM'} DuckDB's."]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"lastfm-{args.plays}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / f"lastfm-{args.plays}.md").write_text(text)
    return 0 if same else 1  # a time for the wrong tables is no result


if __name__ == "__main__":
    raise SystemExit(main())
