"""Pipeline benchmark: the five stages with spark-submit, local mode, in both layouts
users run them, each against DuckDB computing the same tables (bench.duckdb_metrics)
on the same input.

    python -m bench.run --events 1000000 --repeats 3          # what `make bench` runs
    python -m bench.run --events 1000000 --extras             # + CSV->Parquet baseline, 1k-event run
    python -m bench.run --events 3000000 --repeats 1 --layouts one --no-duckdb

Layouts (``--layouts``, default both):

* ``per-stage``: one spark-submit per stage (``spark_jobs/<stage>.py``), as the
  DAG's tasks run them: each starts once the stages it reads have published, so
  the gold stages run side by side. A stage's wall time is its spark-submit's
  launch to exit, the pipeline's the first launch to the last exit.
* ``one``: every stage in one spark-submit of ``spark_jobs/pipeline.py``; a
  stage's wall time is the ``[pipeline] stage`` time the job prints, and its
  event-log figures are those of the jobs tagged with its ``pipeline.stage``.

Every stage run writes its run's Iceberg branch, audits it with its Great
Expectations suites and publishes it, in its one application, so each stage's
time includes its gate; the gate's own seconds (ops.job_runs metrics_json
"gate", else the job's ``gate took`` line) are reported with their share of
the stage. Each repeat runs every layout, then DuckDB, so the layouts being
compared see the same load rather than one getting the quiet minutes.

Per stage and layout it reports the median over the repeats of: wall time,
gate time and share, rows/s, start-up time (launch to SparkContext up), peak
JVM heap (local mode: the driver is the only executor), peak task execution
memory, shuffle bytes written, spill, GC share of task time and max/median
task time of the widest stage, all read from the run's Spark event log in
.local/spark-events (the History Server shows the same logs). Results:
bench/results/bench-<events>[-<tag>].json and .md. The load average range of
each layout's runs is recorded with it, since a loaded machine inflates every
figure.

Benchmarks use their own catalog database and warehouse (iceberg_bench,
.local/bench-warehouse) and cache generated data per size+seed in .local/bench-data.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("ICEBERG_CATALOG_DB", "iceberg_bench")
os.environ.setdefault("ICEBERG_WAREHOUSE", str(ROOT / ".local" / "bench-warehouse"))

from bench import duckdb_metrics, eventlog  # noqa: E402
from bench.machine import load_average, machine  # noqa: E402
from iceberg_catalog.config import spark_driver_conf, spark_driver_memory, spark_jars  # noqa: E402
from spark_jobs.pipeline import BY_NAME as STAGE_BY_NAME  # noqa: E402
from spark_jobs.pipeline import STAGES as PIPELINE_STAGES  # noqa: E402
from spark_jobs.stage import GATE_BLOCKED_EXIT  # noqa: E402

STAGES = [s.name for s in PIPELINE_STAGES]

RESULTS = ROOT / "bench" / "results"
DATA_CACHE = ROOT / ".local" / "bench-data"
PY = sys.executable


def dataset(events: int, seed: int, days: int, users: int | None, mode: str = "realistic",
            hot: tuple[int, float] | None = None) -> Path:
    """Generated landing data, cached per (mode, events, users, days, seed, hot users)."""
    name = f"{mode}-{events}-u{users or 'default'}-d{days}-s{seed}" + (f"-hot{hot[0]}x{hot[1]}" if hot else "")
    out = DATA_CACHE / name
    if not (out / "_manifest.json").exists():
        args = [PY, "-m", "datagen", "--mode", mode, "--out", str(out), "--events", str(events),
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
    """Runs one spark-submit and returns wall time, its stdout and the figures of its event log."""
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
        # A blocked gate is no fault of the benchmark's machinery: the generated data
        # failed an audit, and the stages after it would read unpublished tables.
        why = ("a quality gate blocked the run" if proc.returncode == GATE_BLOCKED_EXIT
               else f"exit code {proc.returncode}")
        important = [l for l in (proc.stdout + proc.stderr).splitlines()
                     if not l.lstrip().startswith("at ") and any(w in l for w in ("Error", "Exception", "Traceback", "File \"",
                                                                                 "error failed", "blocked"))]
        raise RuntimeError(f"{' '.join(cmd)} failed, {why} (full output in {failure_log}):\n" + "\n".join(important[-40:]))
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


def gate_figures(job_run: dict, printed_s: float | None) -> dict:
    """A stage's gate as its ops.job_runs row records it (metrics_json["gate"]); the
    seconds the job printed stand in when the row could not be read."""
    gate = (job_run.get("metrics") or {}).get("gate") or {}
    return {"seconds": gate.get("seconds", printed_s), "phase_seconds": gate.get("phase_seconds"),
            "passed": gate.get("passed")}


def run_stage(stage: str, run_id: str, landing: Path, master: str, driver_memory: str,
              conf: dict | None = None) -> dict:
    """One stage in its own spark-submit (write, audit, publish), as a DAG task runs it."""
    args = ["--run-id", run_id]
    if stage == "ingest":
        args += ["--interactions", str(landing / "user_interactions"), "--metadata", str(landing / "user_metadata")]
    # The driver's settings as the DAG's task gives them for this stage.
    driver = spark_driver_conf(client_compiler=STAGE_BY_NAME[stage].client_compiler)
    result = spark_submit(str(ROOT / "spark_jobs" / f"{stage}.py"), f"{stage} {run_id}", args, master, driver_memory,
                          {**driver, **(conf or {})})
    # "  gate took 20.7s: suite parameters 0.1s, ...", printed by the stage
    printed = re.search(r"^\s*gate took ([0-9.]+)s", result.pop("stdout"), re.M)
    result["job_run"] = job_run_row(run_id, stage)
    result["gate"] = gate_figures(result["job_run"], float(printed.group(1)) if printed else None)
    return result


def run_pipeline_once(run_id: str, landing: Path, master: str, driver_memory: str, layout: str) -> dict:
    """Every stage once, from empty tables, in one layout (see the module's docstring);
    the stage times include their gates."""
    reset_catalog()
    run = (_run_one_app if layout == "one" else _run_per_stage)(run_id, landing, master, driver_memory)
    run["load_avgs"].append(load_average())
    run["gate_s"] = round(sum(r["gate"]["seconds"] or 0 for r in run["stages"].values()), 3)
    # The gates' share of their stages' seconds: the pipeline's wall time would
    # understate what the gates cost where stages ran side by side.
    run["stage_s"] = round(sum(r["wall_s"] or 0 for r in run["stages"].values()), 3)
    return {"layout": layout, "run_id": run_id, **run}


def _run_per_stage(run_id: str, landing: Path, master: str, driver_memory: str) -> dict:
    """The DAG's task graph: a stage's spark-submit starts once the stages it reads
    (``Stage.after``) have published, beside every other stage that is ready, as
    Airflow's LocalExecutor runs the tasks (the gold stages side by side). The
    pipeline's wall time is the first launch to the last exit."""
    stages: dict[str, dict] = {}
    running: dict[str, Future] = {}
    launched = time.time()
    with ThreadPoolExecutor(max_workers=len(STAGES)) as pool:
        while len(stages) < len(STAGES):
            for stage in PIPELINE_STAGES:
                if stage.name not in stages and stage.name not in running and set(stage.after) <= stages.keys():
                    running[stage.name] = pool.submit(run_stage, stage.name, run_id, landing, master, driver_memory)
            wait(running.values(), return_when=FIRST_COMPLETED)
            for name in [name for name, future in running.items() if future.done()]:
                stages[name] = running.pop(name).result()
                _print_stage(name, stages[name])
    stages = {name: stages[name] for name in STAGES}
    return {"stages": stages, "wall_s": round(time.time() - launched, 3),
            "startup_s": round(sum(r.get("startup_s") or 0 for r in stages.values()), 3),
            "load_avgs": [r["load_avg"] for r in stages.values()]}


def _run_one_app(run_id: str, landing: Path, master: str, driver_memory: str) -> dict:
    args = ["--run-id", run_id, "--interactions", str(landing / "user_interactions"),
            "--metadata", str(landing / "user_metadata")]
    app = spark_submit(str(ROOT / "spark_jobs" / "pipeline.py"), f"pipeline {run_id}", args, master, driver_memory)
    # "[pipeline] stage engagement 61.234s (gate 20.725s)", printed by the job
    printed = {name: (float(wall), float(gate)) for name, wall, gate in
               re.findall(r"^\[pipeline\] stage (\w+) ([0-9.]+)s \(gate ([0-9.]+)s\)$", app.pop("stdout"), re.M)}
    summary = eventlog.summarize(Path(app["event_log"])) if app.get("event_log") else None
    stages = {}
    for stage in STAGES:
        wall, gate = printed.get(stage, (None, None))
        r = {"wall_s": wall, "load_avg": app["load_avg"]}
        if summary:
            r.update(summary.totals(stage))
        r["job_run"] = job_run_row(run_id, stage)
        r["gate"] = gate_figures(r["job_run"], gate)
        stages[stage] = r
        _print_stage(stage, r)
    return {"stages": stages, "load_avgs": [app["load_avg"]],
            **{k: app.get(k) for k in ("wall_s", "startup_s", "first_job_s", "event_log")}}


def _print_stage(stage: str, r: dict) -> None:
    gate = r["gate"]["seconds"]
    print(f"    {stage} {fmt(r['wall_s'], '.1f')}s, gate {fmt(gate, '.1f')}s", flush=True)


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


def share(part, whole):
    return round(part / whole, 3) if part is not None and whole else None


def summarize_stage(runs: list[dict], events: int) -> dict:
    def m(key):
        return median([r.get(key) for r in runs])

    widest = [r.get("widest_stage") or {} for r in runs]
    heap = [max((r.get("peak_jvm_heap_bytes") or {}).values(), default=None) for r in runs]
    rows_in = [((r.get("job_run") or {}).get("rows_in")) for r in runs]
    wall = m("wall_s")
    gate = median([r["gate"]["seconds"] for r in runs])
    rows = median(rows_in) or events
    return {
        "wall_s": wall, "wall_s_runs": [r.get("wall_s") for r in runs], "load_avg_runs": [r.get("load_avg") for r in runs],
        "gate_s": gate, "gate_s_runs": [r["gate"]["seconds"] for r in runs], "gate_share": share(gate, wall),
        "gate_phase_s_runs": [r["gate"]["phase_seconds"] for r in runs],
        "rows_in": rows, "rows_per_s": round(rows / wall) if wall else None,
        "startup_s": m("startup_s"), "startup_share": share(m("startup_s"), wall),
        "peak_jvm_heap_bytes": median(heap), "peak_execution_memory_bytes": m("peak_execution_memory_bytes"),
        "shuffle_write_bytes": m("shuffle_write_bytes"), "spill_bytes": median(
            [(r.get("spill_memory_bytes") or 0) + (r.get("spill_disk_bytes") or 0) for r in runs]),
        "gc_share": m("gc_share"), "task_run_s": m("task_run_s"),
        "widest_stage_tasks": median([w.get("tasks") for w in widest]),
        "widest_stage_task_ms_max": median([w.get("task_ms_max") for w in widest]),
        "widest_stage_task_ms_median": median([w.get("task_ms_median") for w in widest]),
        "widest_stage_max_median": median([w.get("max_median_ratio") for w in widest]),
        "event_logs": [r.get("event_log") for r in runs],
    }


def summarize_layout(layout: str, runs: list[dict], events: int) -> dict:
    """One layout's medians: per stage, and the whole pipeline (``total``)."""
    stages = {stage: summarize_stage([r["stages"][stage] for r in runs], events) for stage in STAGES}
    totals = [r["wall_s"] for r in runs]
    total, gate, startup = median(totals), median([r["gate_s"] for r in runs]), median([r["startup_s"] for r in runs])
    loads = [load for r in runs for load in r["load_avgs"]]
    return {"layout": layout, "repeats": len(runs), "load_avg_range": [min(loads), max(loads)], "stages": stages,
            "total": {"wall_s": total, "wall_s_runs": totals, "rows_per_s": round(events / total) if total else None,
                      "gate_s": gate, "gate_share": share(gate, median([r.get("stage_s") for r in runs])),
                      "startup_s": startup, "startup_share": share(startup, total)},
            "runs": runs}


def compare_layouts(layouts: dict) -> dict | None:
    """What the DAG's layout costs over one application, and each gate's share of its stage in both."""
    if not {"one", "per-stage"} <= set(layouts):
        return None
    dag, one = layouts["per-stage"], layouts["one"]
    return {"per_stage_over_one": share(dag["total"]["wall_s"], one["total"]["wall_s"]),
            "stages": {stage: {"per_stage_over_one": share(dag["stages"][stage]["wall_s"], one["stages"][stage]["wall_s"]),
                               "gate_share": {name: layouts[name]["stages"][stage]["gate_share"] for name in LAYOUTS}}
                       for stage in STAGES}}


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


def with_share(seconds, of_stage) -> str:
    """"12.3 (45%)"; "-" where there is no figure (a stage's start-up inside one application)."""
    return "-" if seconds is None else f"{seconds:.1f} ({fmt(of_stage, '.0%')})"


def n_runs(n: int) -> str:
    return f"{n} run" + ("" if n == 1 else "s")


# What each layout's table says it measured (title, how its times are taken); the
# DAG's layout leads, as the path users run.
LAYOUTS = {
    "per-stage": ("The DAG's layout: one spark-submit per stage",
                  "Each stage is its own spark-submit of `spark_jobs/<stage>.py`, as a DAG task runs it, started "
                  "once the stages it reads have published: the gold stages run side by side, as the DAG's tasks "
                  "do. A stage's wall time is its spark-submit's launch to exit, the pipeline's the first launch "
                  "to the last exit."),
    "one": ("One application: `spark_jobs/pipeline.py`",
            "Every stage in one spark-submit; a stage's wall time is its `[pipeline] stage` time inside the "
            "application (start-up excluded), the pipeline's the spark-submit's launch to exit."),
}


def layout_table(report: dict, layout: str) -> list[str]:
    lay = report["layouts"][layout]
    duck = report.get("duckdb") or {}
    low, high = lay["load_avg_range"]
    title, how = LAYOUTS[layout]
    lines = [f"### {title}", "",
             f"{how} Every stage writes its branch, audits it and publishes it: the gate's seconds are part of "
             f"its stage's. Medians of {n_runs(lay['repeats'])}; load average during them: {low}-{high}.", "",
             "| stage | Spark wall s | gate s (share) | rows/s | start-up s (share) | peak heap | peak task exec mem | "
             "shuffle written | spill | GC share | widest stage: tasks, max/median ms (ratio) | DuckDB s | Spark/DuckDB |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for stage in STAGES:
        s, d = lay["stages"][stage], duck.get(stage)
        lines.append(
            f"| {stage} | {fmt(s['wall_s'], '.1f')} | {with_share(s['gate_s'], s['gate_share'])} | "
            f"{fmt(s['rows_per_s'], ',.0f')} | {with_share(s['startup_s'], s['startup_share'])} | "
            f"{fmt_bytes(s['peak_jvm_heap_bytes'])} | {fmt_bytes(s['peak_execution_memory_bytes'])} | "
            f"{fmt_bytes(s['shuffle_write_bytes'])} | {fmt_bytes(s['spill_bytes'])} | {fmt(s['gc_share'], '.1%')} | "
            f"{fmt(s['widest_stage_tasks'], '.0f')}, {fmt(s['widest_stage_task_ms_max'], '.0f')}/"
            f"{fmt(s['widest_stage_task_ms_median'], '.0f')} ({fmt(s['widest_stage_max_median'], '.1f')}) | "
            f"{fmt(d, '.2f')} | {fmt(share(s['wall_s'], d), '.1f')} |")
    t, d = lay["total"], duck.get("total")
    lines.append(f"| **pipeline** | **{fmt(t['wall_s'], '.1f')}** | {with_share(t['gate_s'], t['gate_share'])} | "
                 f"{fmt(t['rows_per_s'], ',.0f')} | {with_share(t['startup_s'], t['startup_share'])} "
                 f"| | | | | | | **{fmt(d, '.2f')}** | **{fmt(share(t['wall_s'], d), '.1f')}** |")
    return lines


def comparison_block(report: dict) -> list[str]:
    c, lay = report["comparison"], report["layouts"]
    lines = ["### The two layouts", "",
             f"The DAG's layout takes **{fmt(c['per_stage_over_one'], '.2f')}x** the one application's time "
             f"({fmt(lay['per-stage']['total']['wall_s'], '.1f')} s / {fmt(lay['one']['total']['wall_s'], '.1f')} s). "
             "In the DAG's layout the stages that run side by side share the cores: their own times add up to "
             "more than the pipeline's.", "",
             "| stage | per-stage s | one app s | per-stage / one app | gate share, per-stage | gate share, one app |",
             "|---|---|---|---|---|---|"]
    for stage in STAGES:
        c_s = c["stages"][stage]
        lines.append(f"| {stage} | {fmt(lay['per-stage']['stages'][stage]['wall_s'], '.1f')} | "
                     f"{fmt(lay['one']['stages'][stage]['wall_s'], '.1f')} | {fmt(c_s['per_stage_over_one'], '.2f')} | "
                     f"{fmt(c_s['gate_share']['per-stage'], '.0%')} | {fmt(c_s['gate_share']['one'], '.0%')} |")
    lines.append(f"| **pipeline** | {fmt(lay['per-stage']['total']['wall_s'], '.1f')} | "
                 f"{fmt(lay['one']['total']['wall_s'], '.1f')} | {fmt(c['per_stage_over_one'], '.2f')} | "
                 f"{fmt(lay['per-stage']['total']['gate_share'], '.0%')} | {fmt(lay['one']['total']['gate_share'], '.0%')} |")
    return lines


def markdown(report: dict) -> str:
    ev, mach = report["events"], report["machine"]
    lines = [f"## Pipeline benchmark, {ev:,} realistic events ({report['finished_at']})", "",
             f"Machine: {mach['cpus']} CPUs ({mach['cpu_model']}), {mach['memory_gb']} GB; master `{report['master']}`, "
             f"driver memory {report['driver_memory']}. A loaded machine inflates every figure."]
    if report.get("duckdb"):
        low, high = report["duckdb_load_avg_range"]
        lines[-1] += (f" DuckDB ({report['duckdb_threads']} threads, same input): medians of "
                      f"{n_runs(len(report['duckdb_runs']))}, load average {low}-{high}.")
    for layout in [name for name in LAYOUTS if name in report["layouts"]]:
        lines += [""] + layout_table(report, layout)
    if not report["layouts"] and report.get("duckdb"):
        lines += ["", "| stage | DuckDB s |", "|---|---|"]
        lines += [f"| {stage} | {fmt(report['duckdb'].get(stage), '.2f')} |" for stage in [*STAGES, "total"]]
    if report.get("comparison"):
        lines += [""] + comparison_block(report)
    extras = report.get("extras") or {}
    if extras:
        lines += ["", "| extra measurement | value |", "|---|---|"]
        for k, v in extras.items():
            lines.append(f"| {k} | {v} |")
    return "\n".join(lines) + "\n"


def parse_layouts(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in LAYOUTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"expected layouts among {list(LAYOUTS)}, got {text!r}")
    return list(dict.fromkeys(names))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--users", type=int, help="realistic users (default: the generator's 100,000)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--master", default=os.environ.get("SPARK_MASTER", "local[*]"))
    ap.add_argument("--driver-memory", default=spark_driver_memory())
    ap.add_argument("--layouts", type=parse_layouts, default=["one", "per-stage"],
                    help="comma-separated, run alternately in each repeat: one (every stage in one application, "
                         "spark_jobs/pipeline.py), per-stage (a spark-submit per stage, as the DAG runs them); "
                         "default: one,per-stage")
    ap.add_argument("--duckdb-threads", type=int, default=os.cpu_count())
    ap.add_argument("--no-duckdb", action="store_true")
    ap.add_argument("--no-spark", action="store_true")
    ap.add_argument("--extras", action="store_true",
                    help="also: ingest CSV->plain Parquet baseline, and a 1,000-event run in one application")
    ap.add_argument("--extras-only", action="store_true",
                    help="only the extras, with ingest re-run next to each CSV->Parquet run (same load)")
    ap.add_argument("--tag", default="", help="suffix of the result files")
    args = ap.parse_args(argv)

    prepare_platform()
    landing = dataset(args.events, args.seed, args.days, args.users)
    print(f"bench: {args.events:,} events in {landing}; catalog {os.environ['ICEBERG_CATALOG_DB']}; load {load_average()}",
          flush=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    report: dict = {"events": args.events, "days": args.days, "users": args.users, "seed": args.seed,
                    "landing": str(landing), "master": args.master, "driver_memory": args.driver_memory,
                    "duckdb_threads": args.duckdb_threads, "repeats": args.repeats, "machine": machine(),
                    "started_at": stamp, "layouts": {}}
    if args.extras_only:
        args.no_spark = args.no_duckdb = True
        report["extras"] = extras(args, landing, stamp, None)
        args.tag = args.tag or "extras"
    layouts = [] if args.no_spark else args.layouts
    runs: dict[str, list[dict]] = {layout: [] for layout in layouts}
    duck_runs, duck_loads = [], []
    for i in range(args.repeats):
        for layout in layouts:
            run = run_pipeline_once(f"bench-{args.events}-{stamp}-{layout}-{i}", landing, args.master,
                                    args.driver_memory, layout)
            runs[layout].append(run)
            print(f"  spark run {i + 1}/{args.repeats}, {layout}: {run['wall_s']:.1f}s, gates {run['gate_s']:.1f}s "
                  f"(load {min(run['load_avgs'])}-{max(run['load_avgs'])})", flush=True)
        if not args.no_duckdb:
            duck_loads.append(load_average())
            duck_runs.append(run_duckdb_once(landing, args.duckdb_threads))
            duck_loads.append(load_average())
            print(f"  duckdb run {i + 1}/{args.repeats}: {duck_runs[-1]}", flush=True)
    report["layouts"] = {layout: summarize_layout(layout, runs[layout], args.events) for layout in layouts}
    report["comparison"] = compare_layouts(report["layouts"])
    if duck_runs:
        report["duckdb_runs"] = duck_runs
        report["duckdb_load_avg_range"] = [min(duck_loads), max(duck_loads)]
        report["duckdb"] = {k: median([r[k] for r in duck_runs]) for k in duck_runs[0]}
    if args.extras and not args.no_spark and not args.extras_only:
        report["extras"] = extras(args, landing, stamp, report)
    report["finished_at"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"bench-{args.events}{('-' + args.tag) if args.tag else ''}"
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=1, default=str))
    md = markdown(report)
    (RESULTS / f"{name}.md").write_text(md)
    print(md)
    return 0


def extras(args, landing: Path, stamp: str, report: dict | None) -> dict:
    """CSV->Iceberg (the ingest job) vs CSV->plain Parquet, and a 1k-event run in one
    application vs this run's. Both ingest sides are spark-submits of their own, run next
    to each other so they see the same load (a stage inside a one-application run would
    skip the JVM start-up). Ingest audits and publishes what it wrote; the plain Parquet
    job has nothing of the kind, so the ratio sets ingest without its gate against it."""
    out: dict = {}
    plain, ingests, gates = [], [], []
    for i in range(args.repeats):
        reset_catalog()
        ingest = run_stage("ingest", f"bench-ingest-{stamp}-{i}", landing, args.master, args.driver_memory)
        ingests.append(ingest["wall_s"])
        gates.append(ingest["gate"]["seconds"])
        target = ROOT / ".local" / "bench-parquet"
        shutil.rmtree(target, ignore_errors=True)
        tag = f"bench-plain-{stamp}-{i}"
        r = spark_submit(str(ROOT / "bench" / "csv_to_parquet.py"), f"csv_to_parquet {tag}",
                         ["--interactions", str(landing / "user_interactions"), "--metadata", str(landing / "user_metadata"),
                          "--out", str(target), "--run-id", tag], args.master, args.driver_memory)
        plain.append(r["wall_s"])
    ingest_s, gate_s = median(ingests), median(gates)
    out["ingest CSV->Iceberg wall s (median, gate included)"] = ingest_s
    out["ingest gate s (median)"] = gate_s
    out["ingest CSV->plain Parquet wall s (median, same parse)"] = median(plain)
    out["Iceberg without the gate / plain Parquet"] = share(ingest_s - (gate_s or 0), median(plain))
    tiny = dataset(1000, args.seed, min(args.days, 7), 100)
    tiny_totals = [run_pipeline_once(f"bench-1k-{stamp}-{i}", tiny, args.master, args.driver_memory, "one")["wall_s"]
                   for i in range(args.repeats)]
    out["1k-event run wall s, one application (median)"] = median(tiny_totals)
    one = (report or {}).get("layouts", {}).get("one")
    if one:
        out[f"1k-event run / {args.events:,}-event run, one application"] = share(median(tiny_totals), one["total"]["wall_s"])
        out["start-up share of the one-application run"] = one["total"]["startup_share"]
    return out


if __name__ == "__main__":
    sys.exit(main())
