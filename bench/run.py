"""Pipeline benchmark: every stage with spark-submit, local mode, in one application
(spark_jobs/pipeline.py; --apps per-stage: one application per stage, as the DAG
runs them), against DuckDB computing the same tables (bench.duckdb_metrics) on the
same input.

    python -m bench.run --events 1000000 --repeats 3          # what `make bench` runs
    python -m bench.run --events 1000000 --extras             # + CSV->Parquet baseline, 1k-event run
    python -m bench.run --events 3000000 --repeats 1 --no-duckdb

Per stage it prints the median over the repeats of: wall time (the stage's own
time inside the one application, or its spark-submit's launch to exit), rows/s,
start-up time (launch to SparkContext up), peak JVM heap (local mode: the driver
is the only executor), peak task execution memory, shuffle bytes written, spill,
GC share of task time and max/median task time of the widest stage, all read
from the run's Spark event log in .local/spark-events
(the History Server shows the same logs). Results: bench/results/bench-<events>.json
and .md. The machine's load average is recorded with every run, since a loaded
machine inflates every figure.

Benchmarks use their own catalog database and warehouse (iceberg_bench,
.local/bench-warehouse) and cache generated data per size+seed in .local/bench-data.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("ICEBERG_CATALOG_DB", "iceberg_bench")
os.environ.setdefault("ICEBERG_WAREHOUSE", str(ROOT / ".local" / "bench-warehouse"))

from bench import duckdb_metrics, eventlog  # noqa: E402
from iceberg_catalog.config import spark_driver_conf, spark_jars  # noqa: E402
from spark_jobs.pipeline import STAGES as PIPELINE_STAGES  # noqa: E402

STAGES = [s.name for s in PIPELINE_STAGES]

RESULTS = ROOT / "bench" / "results"
DATA_CACHE = ROOT / ".local" / "bench-data"
PY = sys.executable


def load_average() -> float:
    return round(os.getloadavg()[0], 1)


def machine() -> dict:
    mem_gb = None
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
    except OSError:
        cpu = platform.processor()
    return {"cpus": os.cpu_count(), "cpu_model": cpu, "memory_gb": mem_gb, "kernel": platform.release(),
            "python": platform.python_version()}


def dataset(events: int, seed: int, days: int, users: int | None, mode: str = "realistic",
            hot: tuple[int, float] | None = None) -> Path:
    """Generated landing data, cached per (mode, events, users, days, seed, hot users)."""
    name = f"{mode}-{events}-u{users or 'default'}-d{days}-s{seed}" + (f"-hot{hot[0]}x{hot[1]}" if hot else "")
    out = DATA_CACHE / name
    if not (out / "_manifest.json").exists():
        args = [PY, "-m", "infra.datagen", "--mode", mode, "--out", str(out), "--events", str(events),
                "--days", str(days), "--start-date", "2023-01-01", "--seed", str(seed)]
        if users:
            args += ["--users", str(users)]
        if hot:
            args += ["--hot-users", str(hot[0]), "--hot-user-share", str(hot[1])]
        subprocess.run(args, check=True, cwd=ROOT)
    return out


def prepare_platform() -> None:
    subprocess.run(["bash", str(ROOT / "infra/postgres.sh"), "start"], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["bash", str(ROOT / "infra/package.sh")], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


def reset_catalog() -> None:
    """Drops every pipeline table of the bench catalog and empties its warehouse, so each
    repeat starts from the same state (no growing snapshot history)."""
    from iceberg_catalog.config import load_pyiceberg_catalog
    from spark_jobs.pipeline import TABLES

    catalog = load_pyiceberg_catalog()
    for name in [*TABLES, "ops.quality_results"]:
        try:
            catalog.drop_table(name)
        except Exception:  # absent table
            pass
    warehouse = Path(os.environ["ICEBERG_WAREHOUSE"])
    if warehouse.exists() and warehouse.resolve().is_relative_to((ROOT / ".local").resolve()):
        shutil.rmtree(warehouse)


def job_run_row(run_id: str, job: str) -> dict:
    from pyiceberg.expressions import And, EqualTo

    from iceberg_catalog.config import load_pyiceberg_catalog

    try:
        t = load_pyiceberg_catalog().load_table("ops.job_runs")
        df = t.scan(row_filter=And(EqualTo("run_id", run_id), EqualTo("job", job))).to_pandas()
    except Exception as exc:
        return {"error": str(exc)[:300]}
    if df.empty:
        return {}
    r = df.iloc[-1]
    return {"rows_in": int(r["rows_in"]) if r["rows_in"] == r["rows_in"] else None,
            "rows_out": int(r["rows_out"]) if r["rows_out"] == r["rows_out"] else None,
            "status": r["status"], "metrics": json.loads(r["metrics_json"] or "{}")}


def submit_env() -> dict:
    """spark-submit of the venv: its SPARK_HOME is the pyspark package, its Python the venv's."""
    import pyspark

    env = dict(os.environ)
    env["SPARK_HOME"] = str(Path(pyspark.__file__).parent)
    env["PYSPARK_PYTHON"] = sys.executable
    # Modules imported from pipeline.zip resolve the project root to the zip itself,
    # so the state/cache directories (platform.env, jars, event logs) are given explicitly.
    env.setdefault("PLATFORM_STATE", str(ROOT / ".local"))
    env.setdefault("PLATFORM_CACHE", str(ROOT / ".cache"))
    env.setdefault("SPARK_EVENT_LOG_DIR", (ROOT / ".local" / "spark-events").as_uri())
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return env


def spark_submit(script: str, app_tag: str, args: list[str], master: str, driver_memory: str,
                 conf: dict[str, str] | None = None, py_files: Path = ROOT / ".local/dist/pipeline.zip") -> dict:
    """Runs one spark-submit and returns wall time plus the figures of its event log."""
    cmd = [str(ROOT / ".venv/bin/spark-submit"), "--master", master, "--driver-memory", driver_memory,
           "--conf", "spark.eventLog.logStageExecutorMetrics=true",
           # The catalog jars must be on spark-submit's command line: set from inside the
           # job (spark.jars), they arrive after the session extensions are loaded.
           "--jars", ",".join(spark_jars())]
    for k, v in {**spark_driver_conf(), **(conf or {})}.items():
        cmd += ["--conf", f"{k}={v}"]
    cmd += ["--py-files", str(py_files), script, *args]
    load_before = load_average()
    launched = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=submit_env())
    wall = time.time() - launched
    if proc.returncode != 0:
        failure_log = ROOT / ".local" / "bench-logs" / f"{app_tag.replace(' ', '_')}.log"
        failure_log.parent.mkdir(parents=True, exist_ok=True)
        failure_log.write_text(proc.stdout + "\n----- stderr -----\n" + proc.stderr)
        important = [l for l in (proc.stdout + proc.stderr).splitlines()
                     if not l.lstrip().startswith("at ") and any(w in l for w in ("Error", "Exception", "Traceback", "File \""))]
        raise RuntimeError(f"{' '.join(cmd)} failed (full output in {failure_log}):\n" + "\n".join(important[-40:]))
    log = eventlog.find_app(eventlog.default_log_dir(), app_tag, newer_than=launched - 5)
    result = {"wall_s": round(wall, 3), "load_avg": load_before, "event_log": str(log) if log else None,
              "stdout": proc.stdout}
    if log:
        app = eventlog.summarize(log)
        totals = app.totals()
        result.update(totals)
        result["startup_s"] = round(app.start_ms / 1000 - launched, 3) if app.start_ms else None
        result["first_job_s"] = round(app.first_job_ms / 1000 - launched, 3) if app.first_job_ms else None
    return result


def run_stage(stage: str, run_id: str, landing: Path, master: str, driver_memory: str,
              extra: list[str] | None = None, conf: dict | None = None) -> dict:
    args = ["--run-id", run_id] + (extra or [])
    if stage == "ingest":
        args += ["--interactions", str(landing / "user_interactions"), "--metadata", str(landing / "user_metadata")]
    result = spark_submit(str(ROOT / "spark_jobs" / f"{stage}.py"), f"{stage} {run_id}", args, master, driver_memory, conf)
    result.pop("stdout")
    result["job_run"] = job_run_row(run_id, stage)
    return result


def run_pipeline_once(tag: str, landing: Path, master: str, driver_memory: str, gates: bool = False,
                      apps: str = "one") -> dict:
    """Every stage once, from empty tables. ``apps="one"``: one spark-submit of
    spark_jobs/pipeline.py, per-stage figures from its jobs' ``pipeline.stage``
    tag. ``apps="per-stage"``: a spark-submit per stage, as the DAG runs them.
    With ``gates``, each stage writes the run's branch and its quality gate
    audits and publishes it (in the same application, or its own spark-submit)."""
    reset_catalog()
    branch = "wap_" + tag.replace("-", "_")
    if apps == "one":
        return _run_one_app(tag, landing, master, driver_memory, branch if gates else None)
    stages = {}
    for stage in STAGES:
        extra = ["--branch", branch] if gates else []
        stages[stage] = run_stage(stage, tag, landing, master, driver_memory, extra=extra)
        if gates:
            stages[stage]["gate"] = spark_submit(str(ROOT / "spark_jobs" / "quality_gate.py"), f"gate_{stage}",
                                                 ["--stage", stage, "--run-id", tag, "--branch", branch],
                                                 master, driver_memory)
        _print_stage(stage, stages[stage])
    return {"apps": apps, "stages": stages, "wall_s": round(sum(r["wall_s"] for r in stages.values()), 3),
            "startup_s": round(sum(r.get("startup_s") or 0 for r in stages.values()), 3),
            "load_avg": max(r["load_avg"] for r in stages.values())}


def _run_one_app(tag: str, landing: Path, master: str, driver_memory: str, branch: str | None) -> dict:
    args = ["--run-id", tag, "--interactions", str(landing / "user_interactions"),
            "--metadata", str(landing / "user_metadata")] + (["--branch", branch] if branch else [])
    app = spark_submit(str(ROOT / "spark_jobs" / "pipeline.py"), f"pipeline {tag}", args, master, driver_memory)
    # "[pipeline] stage engagement 61.234s" / "[pipeline] gate engagement 20.1s", printed by the job
    walls = {(kind, name): float(sec) for kind, name, sec in
             re.findall(r"^\[pipeline\] (stage|gate) (\w+) ([0-9.]+)s$", app.pop("stdout"), re.M)}
    summary = eventlog.summarize(Path(app["event_log"])) if app.get("event_log") else None
    stages = {}
    for stage in STAGES:
        r = {"wall_s": walls.get(("stage", stage)), "load_avg": app["load_avg"]}
        if summary:
            r.update(summary.totals(stage))
        r["job_run"] = job_run_row(tag, stage)
        if branch:
            r["gate"] = {"wall_s": walls.get(("gate", stage))}
        stages[stage] = r
        _print_stage(stage, r)
    return {"apps": "one", "stages": stages, **{k: app.get(k) for k in ("wall_s", "startup_s", "first_job_s",
                                                                      "load_avg", "event_log")}}


def _print_stage(stage: str, r: dict) -> None:
    gate = f", gate {r['gate']['wall_s']:.1f}s" if r.get("gate") else ""
    print(f"    {stage} {r['wall_s']:.1f}s{gate}", flush=True)


def run_duckdb_once(landing: Path, threads: int) -> dict:
    timings: dict = {}
    con = duckdb_metrics.connect(threads=threads)
    started = time.perf_counter()
    duckdb_metrics.compute_all(landing, con=con, timings=timings)
    timings["total"] = time.perf_counter() - started
    con.close()
    return {k: round(v, 3) for k, v in timings.items()}


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize_stage(runs: list[dict], events: int) -> dict:
    def m(key):
        return median([r.get(key) for r in runs])

    widest = [r.get("widest_stage") or {} for r in runs]
    heap = [max((r.get("peak_jvm_heap_bytes") or {}).values(), default=None) for r in runs]
    rows_in = [((r.get("job_run") or {}).get("rows_in")) for r in runs]
    wall = m("wall_s")
    rows = median(rows_in) or events
    return {
        "wall_s": wall, "wall_s_runs": [r.get("wall_s") for r in runs], "load_avg_runs": [r.get("load_avg") for r in runs],
        "rows_in": rows, "rows_per_s": round(rows / wall) if wall else None,
        "startup_s": m("startup_s"), "startup_share": round(m("startup_s") / wall, 3) if wall and m("startup_s") else None,
        "peak_jvm_heap_bytes": median(heap), "peak_execution_memory_bytes": m("peak_execution_memory_bytes"),
        "shuffle_write_bytes": m("shuffle_write_bytes"), "spill_bytes": median(
            [(r.get("spill_memory_bytes") or 0) + (r.get("spill_disk_bytes") or 0) for r in runs]),
        "gc_share": m("gc_share"), "task_run_s": m("task_run_s"),
        "widest_stage_tasks": median([w.get("tasks") for w in widest]),
        "widest_stage_task_ms_max": median([w.get("task_ms_max") for w in widest]),
        "widest_stage_task_ms_median": median([w.get("task_ms_median") for w in widest]),
        "widest_stage_max_median": median([w.get("max_median_ratio") for w in widest]),
        "event_logs": [r.get("event_log") for r in runs],
        "gate_wall_s": median([(r.get("gate") or {}).get("wall_s") for r in runs]),
    }


def fmt_bytes(n) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def fmt(v, spec=".2f"):
    return "-" if v is None else format(v, spec)


def markdown(report: dict) -> str:
    ev = report["events"]
    lines = [f"## Pipeline benchmark, {ev:,} realistic events ({report['finished_at']})", "",
             f"Machine: {report['machine']['cpus']} CPUs ({report['machine']['cpu_model']}), "
             f"{report['machine']['memory_gb']} GB; master `{report['master']}`, driver memory {report['driver_memory']}; "
             + ("every stage in one application (`spark_jobs/pipeline.py`); " if report.get("apps", "per-stage") == "one"
                else "one spark-submit per stage, as the DAG runs them; ") +
             f"medians of {report['repeats']} runs; load average during the runs: "
             f"{min(report['load_avg_all'])}-{max(report['load_avg_all'])} (a loaded machine inflates every figure).", "",
             "| stage | Spark wall s | rows/s | start-up s (share) | peak heap | peak task exec mem | shuffle written | spill | GC share | widest stage: tasks, max/median ms (ratio) | DuckDB s | Spark/DuckDB |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for stage in STAGES + ["total"]:
        s = report["spark"].get(stage) or {}
        d = (report.get("duckdb") or {}).get(stage)
        ratio = s.get("wall_s") / d if d and s.get("wall_s") else None
        if stage == "total":
            lines.append(f"| **pipeline** | **{fmt(s.get('wall_s'), '.1f')}** | {fmt(s.get('rows_per_s'), ',.0f')} | "
                         f"{fmt(s.get('startup_s'), '.1f')} ({fmt(s.get('startup_share'), '.0%')}) | | | | | | | "
                         f"**{fmt(d, '.2f')}** | **{fmt(ratio, '.1f')}** |")
            continue
        lines.append(
            f"| {stage} | {fmt(s.get('wall_s'), '.1f')} | {fmt(s.get('rows_per_s'), ',.0f')} | "
            f"{fmt(s.get('startup_s'), '.1f')} ({fmt(s.get('startup_share'), '.0%')}) | {fmt_bytes(s.get('peak_jvm_heap_bytes'))} | "
            f"{fmt_bytes(s.get('peak_execution_memory_bytes'))} | {fmt_bytes(s.get('shuffle_write_bytes'))} | "
            f"{fmt_bytes(s.get('spill_bytes'))} | {fmt(s.get('gc_share'), '.1%')} | "
            f"{fmt(s.get('widest_stage_tasks'), '.0f')}, {fmt(s.get('widest_stage_task_ms_max'), '.0f')}/"
            f"{fmt(s.get('widest_stage_task_ms_median'), '.0f')} ({fmt(s.get('widest_stage_max_median'), '.1f')}) | "
            f"{fmt(d, '.2f')} | {fmt(ratio, '.1f')} |")
    if any((report["spark"].get(s) or {}).get("gate_wall_s") for s in STAGES):
        where = ("in the same application, right after its stage" if report.get("apps", "per-stage") == "one"
                 else "one spark-submit each, after its stage, as the DAG runs them")
        lines += ["", f"Quality gates ({where}):", "",
                  "| stage | stage wall s | gate wall s | gate / stage |", "|---|---|---|---|"]
        for stage in STAGES:
            s = report["spark"][stage]
            lines.append(f"| {stage} | {fmt(s['wall_s'], '.1f')} | {fmt(s['gate_wall_s'], '.1f')} | "
                         f"{fmt(s['gate_wall_s'] / s['wall_s'], '.0%')} |")
    extras = report.get("extras") or {}
    if extras:
        lines += ["", "| extra measurement | value |", "|---|---|"]
        for k, v in extras.items():
            lines.append(f"| {k} | {v} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--users", type=int, help="realistic users (default: the generator's 100,000)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--master", default=os.environ.get("SPARK_MASTER", "local[*]"))
    ap.add_argument("--driver-memory", default=os.environ.get("SPARK_DRIVER_MEMORY", "4g"))
    ap.add_argument("--duckdb-threads", type=int, default=os.cpu_count())
    ap.add_argument("--no-duckdb", action="store_true")
    ap.add_argument("--no-spark", action="store_true")
    ap.add_argument("--extras", action="store_true",
                    help="also: ingest CSV->plain Parquet baseline, and a 1,000-event pipeline run")
    ap.add_argument("--extras-only", action="store_true",
                    help="only the extras, with ingest re-run next to each CSV->Parquet run (same load)")
    ap.add_argument("--gates", action="store_true",
                    help="run each stage on a branch and its quality gate after it; report gate / stage time")
    ap.add_argument("--apps", choices=["one", "per-stage"], default="one",
                    help="one: every stage in one application (spark_jobs/pipeline.py); "
                         "per-stage: a spark-submit per stage, as the DAG runs them")
    ap.add_argument("--tag", default="", help="suffix of the result files")
    args = ap.parse_args(argv)

    prepare_platform()
    landing = dataset(args.events, args.seed, args.days, args.users)
    print(f"bench: {args.events:,} events in {landing}; catalog {os.environ['ICEBERG_CATALOG_DB']}; load {load_average()}",
          flush=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    report: dict = {"events": args.events, "days": args.days, "users": args.users, "seed": args.seed,
                    "landing": str(landing), "master": args.master, "driver_memory": args.driver_memory,
                    "repeats": args.repeats, "apps": args.apps, "machine": machine(), "started_at": stamp, "spark": {}, "runs": []}
    loads = []
    if args.extras_only:
        args.no_spark = args.no_duckdb = True
        report["extras"] = extras(args, landing, stamp, None)
        args.tag = args.tag or "extras"
    if not args.no_spark:
        for i in range(args.repeats):
            run = run_pipeline_once(f"bench-{args.events}-{stamp}-{i}", landing, args.master, args.driver_memory,
                                    gates=args.gates, apps=args.apps)
            report["runs"].append(run)
            loads.append(run["load_avg"])
            print(f"  spark run {i + 1}/{args.repeats}: {run['wall_s']:.1f}s (load {loads[-1]})", flush=True)
        for stage in STAGES:
            report["spark"][stage] = summarize_stage([r["stages"][stage] for r in report["runs"]], args.events)
        totals = [r["wall_s"] for r in report["runs"]]
        startups = [r["startup_s"] or 0 for r in report["runs"]]
        total = median(totals)
        report["spark"]["total"] = {"wall_s": total, "wall_s_runs": totals, "rows_per_s": round(args.events / total),
                                    "startup_s": median(startups), "startup_share": round(median(startups) / total, 3)}
    if not args.no_duckdb:
        duck_runs = []
        for i in range(args.repeats):
            loads.append(load_average())
            duck_runs.append(run_duckdb_once(landing, args.duckdb_threads))
            print(f"  duckdb run {i + 1}/{args.repeats}: {duck_runs[-1]}", flush=True)
        report["duckdb_runs"] = duck_runs
        report["duckdb"] = {k: median([r[k] for r in duck_runs]) for k in duck_runs[0]}
    if args.extras and not args.no_spark and not args.extras_only:
        report["extras"] = extras(args, landing, stamp, report)
    report["load_avg_all"] = loads or [load_average()]
    report["finished_at"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"bench-{args.events}{('-' + args.tag) if args.tag else ''}"
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=1, default=str))
    md = markdown(report)
    (RESULTS / f"{name}.md").write_text(md)
    print(md)
    return 0


def extras(args, landing: Path, stamp: str, report: dict) -> dict:
    """CSV->Iceberg (the ingest job) vs CSV->plain Parquet, and a 1k-event run vs this run.
    Both ingest sides are spark-submits of their own, run next to each other so they see
    the same load (a stage inside a one-application run would skip the JVM start-up)."""
    out: dict = {}
    plain, ingests = [], []
    for i in range(args.repeats):
        reset_catalog()
        ingests.append(run_stage("ingest", f"bench-ingest-{stamp}-{i}", landing, args.master,
                                 args.driver_memory)["wall_s"])
        target = ROOT / ".local" / "bench-parquet"
        shutil.rmtree(target, ignore_errors=True)
        tag = f"bench-plain-{stamp}-{i}"
        r = spark_submit(str(ROOT / "bench" / "csv_to_parquet.py"), f"csv_to_parquet {tag}",
                         ["--interactions", str(landing / "user_interactions"), "--metadata", str(landing / "user_metadata"),
                          "--out", str(target), "--run-id", tag], args.master, args.driver_memory)
        plain.append(r["wall_s"])
    ingest = median(ingests)
    out["ingest CSV->Iceberg wall s (median)"] = ingest
    out["ingest CSV->plain Parquet wall s (median, same parse)"] = median(plain)
    out["Iceberg / plain Parquet"] = round(ingest / median(plain), 2)
    tiny = dataset(1000, args.seed, min(args.days, 7), 100)
    tiny_totals = []
    for i in range(args.repeats):
        tiny_totals.append(run_pipeline_once(f"bench-1k-{stamp}-{i}", tiny, args.master, args.driver_memory,
                                             apps=args.apps)["wall_s"])
    out["1k-event pipeline wall s (median)"] = median(tiny_totals)
    if report is not None:
        total = report["spark"]["total"]["wall_s"]
        out[f"1k-event run / {args.events:,}-event run"] = round(median(tiny_totals) / total, 3)
        out["start-up share of this run"] = report["spark"]["total"]["startup_share"]
    return out


if __name__ == "__main__":
    sys.exit(main())
