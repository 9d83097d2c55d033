"""Spark UI analysis from event logs: per job (a pipeline stage: its own Spark
application, or its share of a spark_jobs/pipeline.py application, told apart
by the ``pipeline.stage`` tag of its Spark jobs), its three largest bottlenecks
with their figures.

    python -m bench.spark_ui_report                       # newest bench run
    python -m bench.spark_ui_report --match bench-1000000 # apps whose name contains this
    python -m bench.spark_ui_report --logs .local/spark-events/eventlog_v2_local-...

The event logs are the files the History Server reads (.local/spark-events), so
every figure here can be checked on the History Server's Stages tab.

Candidate bottlenecks, each with an estimate of the task time it costs (the
ranking key, a heuristic stated here so it can be argued with):
  heaviest stage  the stage with the most task time; cost = its task time
  task-time skew  a stage whose slowest task is far above its median; cost =
                  (max - median) task time, i.e. how long the other cores idle
  shuffle         bytes written + read; cost = shuffle write time + fetch wait
  spill           bytes spilled to memory/disk; cost = disk bytes at 100 MB/s
  GC              JVM GC time of all tasks; cost = GC time
  scan            input bytes read from files; cost = task time of scan stages
  sort aggregate  stages of queries whose physical plan has a SortAggregate (an
                  aggregate whose buffer is not fixed-width, such as max over a
                  string or a struct, sorts its input where a hash aggregate
                  would not); cost = their task time, an upper bound
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench import eventlog
from bench.run import RESULTS, fmt_bytes

STAGES = ["ingest", "enrich", "engagement", "performance", "sessions"]
SPILL_BYTES_PER_S = 100 * 1024 * 1024


def short(name: str, n: int = 60) -> str:
    return name if len(name) <= n else name[: n - 1] + "…"


def label(app: eventlog.AppStats, stage: eventlog.StageStats) -> str:
    """Stage name, plus the call site of its Spark job when the stage name is generic
    (AQE query stages are all named after CompletableFuture)."""
    name = stage.name
    if "CompletableFuture" in name or not name:
        job = next((j for j in app.jobs.values() if stage.stage_id in j.get("stages", [])), {})
        name = f"{job.get('description') or name}"
    return short(name)


def bottlenecks(app: eventlog.AppStats, stages: list[eventlog.StageStats]) -> list[dict]:
    stages = [s for s in stages if s.task_run_ms]
    if not stages:
        return []
    total_ms = sum(sum(s.task_run_ms) for s in stages) or 1
    found = []
    heavy = max(stages, key=lambda s: sum(s.task_run_ms))
    hd = heavy.as_dict()
    found.append({"kind": "heaviest stage", "cost_s": sum(heavy.task_run_ms) / 1000,
                  "figures": f"stage {heavy.stage_id} '{label(app, heavy)}': {hd['run_ms_total'] / 1000:.1f} s task time "
                             f"({sum(heavy.task_run_ms) / total_ms:.0%} of the job), {hd['tasks']} tasks, "
                             f"input {fmt_bytes(hd['input_bytes'])}, shuffle read {fmt_bytes(hd['shuffle_read_bytes'])}, "
                             f"written {fmt_bytes(hd['shuffle_write_bytes'])}"})
    skewed = max(stages, key=lambda s: max(s.task_run_ms) - sorted(s.task_run_ms)[len(s.task_run_ms) // 2])
    sd = skewed.as_dict()
    if len(skewed.task_run_ms) > 1:
        found.append({"kind": "task-time skew", "cost_s": (sd["task_ms_max"] - sd["task_ms_median"]) / 1000,
                      "figures": f"stage {skewed.stage_id} '{label(app, skewed)}': max task {sd['task_ms_max']} ms vs "
                                 f"median {sd['task_ms_median']} ms (x{sd['max_median_ratio']}) over {sd['tasks']} tasks"})
    shuffle_w = sum(s.shuffle_write_bytes for s in stages)
    shuffle_r = sum(s.shuffle_read_bytes for s in stages)
    if shuffle_w or shuffle_r:
        top = max(stages, key=lambda s: s.shuffle_write_bytes)
        cost = sum(s.shuffle_write_time_ns for s in stages) / 1e9 + sum(s.shuffle_fetch_wait_ms for s in stages) / 1000
        found.append({"kind": "shuffle", "cost_s": cost,
                      "figures": f"{fmt_bytes(shuffle_w)} written / {fmt_bytes(shuffle_r)} read in "
                                 f"{sum(1 for s in stages if s.shuffle_write_bytes)} stages; largest: stage {top.stage_id} "
                                 f"'{label(app, top)}' writes {fmt_bytes(top.shuffle_write_bytes)}; "
                                 f"write time + fetch wait {cost:.1f} s"})
    spill_mem = sum(s.memory_spilled for s in stages)
    spill_disk = sum(s.disk_spilled for s in stages)
    if spill_mem or spill_disk:
        top = max(stages, key=lambda s: s.disk_spilled + s.memory_spilled)
        found.append({"kind": "spill", "cost_s": spill_disk / SPILL_BYTES_PER_S,
                      "figures": f"{fmt_bytes(spill_mem)} spilled from memory, {fmt_bytes(spill_disk)} to disk; most in "
                                 f"stage {top.stage_id} '{label(app, top)}'"})
    gc = sum(s.gc_ms for s in stages)
    if gc:
        top = max(stages, key=lambda s: s.gc_ms)
        found.append({"kind": "GC", "cost_s": gc / 1000,
                      "figures": f"{gc / 1000:.1f} s GC = {gc / total_ms:.1%} of task time; worst stage {top.stage_id} "
                                 f"'{label(app, top)}' {top.gc_ms / 1000:.1f} s"})
    scans = [s for s in stages if s.input_bytes]
    if scans:
        scan_ms = sum(sum(s.task_run_ms) for s in scans)
        found.append({"kind": "scan", "cost_s": scan_ms / 1000,
                      "figures": f"{fmt_bytes(sum(s.input_bytes for s in scans))} read "
                                 f"({sum(s.input_records for s in scans):,} records) by {len(scans)} stages taking "
                                 f"{scan_ms / 1000:.1f} s task time ({scan_ms / total_ms:.0%})"})
    sorting = [s for s in stages if _sql_ids(app, s) & app.sort_aggregate_sql]
    if sorting:
        sort_ms = sum(sum(s.task_run_ms) for s in sorting)
        top = max(sorting, key=lambda s: sum(s.task_run_ms))
        queries = set().union(*(_sql_ids(app, s) for s in sorting)) & app.sort_aggregate_sql
        found.append({"kind": "sort aggregate", "cost_s": sort_ms / 1000,
                      "figures": f"{len(queries)} {'query plans' if len(queries) == 1 else 'queries plan'} a SortAggregate; their {len(sorting)} stages take "
                                 f"{sort_ms / 1000:.1f} s task time; largest: stage {top.stage_id} '{label(app, top)}' "
                                 f"{sum(top.task_run_ms) / 1000:.1f} s"})
    return sorted(found, key=lambda b: b["cost_s"], reverse=True)


def _sql_ids(app: eventlog.AppStats, stage: eventlog.StageStats) -> set:
    return {str(j["sql_id"]) for j in app.jobs.values() if stage.stage_id in j.get("stages", []) and j.get("sql_id")}


def analyse(log: Path) -> list[dict]:
    """One result per pipeline stage the application ran (one, for a single-stage application)."""
    app = eventlog.summarize(log)
    tagged = [n for n in dict.fromkeys(j.get("pipeline_stage") for j in app.jobs.values()) if n]
    if not tagged:
        return [_analyse(app, log, app.name, None)]
    return [_analyse(app, log, f"{name} (in {app.name})", name) for name in tagged]


def _analyse(app: eventlog.AppStats, log: Path, name: str, pipeline_stage: str | None) -> dict:
    t = app.totals(pipeline_stage)
    stages = list(app.stages.values()) if pipeline_stage is None else app.pipeline_stage_stages(pipeline_stage)
    jobs = [(j, v) for j, v in app.jobs.items() if pipeline_stage is None or v.get("pipeline_stage") == pipeline_stage]
    jobs.sort(key=lambda kv: (kv[1].get("end") or 0) - (kv[1].get("start") or 0), reverse=True)
    duration = t["app_duration_s"] if pipeline_stage is None else app.pipeline_stage_span_s(pipeline_stage)
    return {"app_name": name, "app_id": app.app_id, "event_log": str(log),
            "app_duration_s": duration, "task_run_s": t["task_run_s"], "spark_jobs": len(jobs),
            "stages": len(stages), "tasks": t["tasks"],
            "slowest_spark_jobs": [{"job_id": j, "s": ((v.get("end") or 0) - (v.get("start") or 0)) / 1000,
                                    "description": short(v.get("description") or "", 80)} for j, v in jobs[:3]],
            "bottlenecks": bottlenecks(app, stages)[:3]}


def pick_logs(log_dir: Path, match: str | None) -> list[Path]:
    """The newest event log of each pipeline stage whose app name contains MATCH (default: 'bench-');
    the newest one-application run ("pipeline ...") when it is newer than all of them."""
    chosen: dict[str, tuple[float, Path]] = {}
    for p in log_dir.iterdir():
        name = eventlog.app_name(p) or ""
        stage = name.split(" ", 1)[0]
        if stage in [*STAGES, "pipeline"] and (match or "bench-") in name:
            mtime = p.stat().st_mtime
            if stage not in chosen or mtime > chosen[stage][0]:
                chosen[stage] = (mtime, p)
    if "pipeline" in chosen and all(chosen["pipeline"][0] > chosen[s][0] for s in STAGES if s in chosen):
        return [chosen["pipeline"][1]]
    return [chosen[s][1] for s in STAGES if s in chosen]


def markdown(results: list[dict]) -> str:
    lines = ["## Spark UI analysis: three largest bottlenecks per job", ""]
    for r in results:
        lines += [f"### {r['app_name']} ({r['app_id']}): {r['app_duration_s'] or 0:.1f} s, "
                  f"{r['task_run_s']:.1f} s task time, {r['spark_jobs']} Spark jobs, {r['stages']} stages, {r['tasks']} tasks", ""]
        for i, b in enumerate(r["bottlenecks"], 1):
            lines.append(f"{i}. **{b['kind']}** (~{b['cost_s']:.1f} s): {b['figures']}")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--logs", nargs="*", type=Path)
    ap.add_argument("--log-dir", type=Path, default=eventlog.default_log_dir())
    ap.add_argument("--match", help="only apps whose name contains this (default 'bench-')")
    ap.add_argument("--out", default="spark-ui", help="result file stem under bench/results")
    args = ap.parse_args(argv)
    logs = args.logs or pick_logs(args.log_dir, args.match)
    if not logs:
        print(f"no matching event logs in {args.log_dir}", file=sys.stderr)
        return 1
    results = [r for p in logs for r in analyse(p)]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(results, indent=1, default=str))
    md = markdown(results)
    (RESULTS / f"{args.out}.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
