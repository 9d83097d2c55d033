"""Skew-join evidence: the enrich join of skewed realistic events to silver.user_dim,
four ways, with Spark's own size-based broadcast disabled (the enrich job does that).

    python -m bench.skew_join --repeats 3      # `make bench-skew`: 16M events, 2 power users with 30%

  sort-merge  --join-strategy shuffle; AQE skew handling effectively off
              (skew thresholds far above the data)
  aqe-skew    --join-strategy shuffle; AQE skew join with its thresholds lowered
              to this data's scale (the defaults only fire above 256 MB)
  salted      --join-strategy salted: hot users' events spread over salt buckets
  broadcast   --join-strategy broadcast: no shuffle of the events at all

Every variant uses the same static shuffle partitions (--partitions) and no
partition coalescing, so the tasks of the join stage are directly comparable.
(The job's session builder fixes spark.sql.adaptive.*.enabled; coalescing is
neutralised through its size settings instead: parallelismFirst=false with a
tiny advisory size.) For each variant: wall time, tasks and max/median task
time of the join stage (the widest stage of the job's "enrich-join" job
group, from the event log, cross-checked with ops.job_runs.metrics_json
join_stage), shuffle bytes and spill. Results: bench/results/skew-<events>.json/.md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
from pathlib import Path

from bench import eventlog
from bench.run import (RESULTS, dataset, fmt_bytes, load_average, median, prepare_platform, reset_catalog,
                       run_stage)

# Row groups, so map tasks, of 2 MB: 2-3 per day file at 4M events, more with more
# events. 1 MB gave 23 at 4M, which made every scan of bronze several times slower.
BRONZE_ROW_GROUP_BYTES = 2 << 20
NO_COALESCE = {
    "spark.sql.adaptive.coalescePartitions.parallelismFirst": "false",
    "spark.sql.adaptive.advisoryPartitionSizeInBytes": "1",
    # Partitions below this size are merged with neighbours whatever the advisory size.
    "spark.sql.adaptive.coalescePartitions.minPartitionSize": "1",
}
SKEW_OFF = {
    "spark.sql.adaptive.skewJoin.skewedPartitionFactor": "1000000",
    "spark.sql.adaptive.skewJoin.skewedPartitionThresholdInBytes": str(1 << 40),
}


SKEWED_PARTITION_FACTOR = 1.25


def aqe_skew_conf(median_partition_bytes: int) -> dict:
    """AQE skew join at this data's scale: a partition is skewed above 1.25 times the
    median partition, and split into pieces of about the median. With the factor at
    2, partitions of moderately heavy users, up to twice the median, were left whole
    and made the largest tasks (session 15). The advisory size also keeps AQE from
    coalescing the ordinary partitions."""
    return {
        "spark.sql.adaptive.coalescePartitions.parallelismFirst": "false",
        "spark.sql.adaptive.coalescePartitions.minPartitionSize": "1",
        "spark.sql.adaptive.advisoryPartitionSizeInBytes": str(max(median_partition_bytes, 1024)),
        "spark.sql.adaptive.skewJoin.skewedPartitionFactor": str(SKEWED_PARTITION_FACTOR),
        "spark.sql.adaptive.skewJoin.skewedPartitionThresholdInBytes":
            str(max(int(median_partition_bytes * SKEWED_PARTITION_FACTOR), 1024)),
    }


def join_stage_figures(event_log: str | None, run_id: str) -> dict:
    if not event_log:
        return {}
    app = eventlog.summarize(Path(event_log))
    stages = app.group_stages(f"enrich-join-{run_id}")
    if not stages:
        return {}
    # A shuffled join reads both sides' shuffle and writes the rows for Iceberg's write
    # distribution; it is the widest such stage (one task per shuffle partition, more
    # when AQE splits skewed ones). A broadcast join runs inside the scan, the widest stage.
    shuffled = [s for s in stages if s.shuffle_read_bytes and s.shuffle_write_bytes]
    join = max(shuffled or stages, key=lambda s: (len(s.task_run_ms), sum(s.task_run_ms)))
    d = join.as_dict()
    warm = join.run_ms_after_first_wave(os.cpu_count() or 1)
    return {
        "join_task_ms_max_warm": max(warm), "join_task_ms_median_warm": statistics.median(warm),
        "join_max_median_warm": round(max(warm) / statistics.median(warm), 2) if statistics.median(warm) else None,
        "join_stage_id": d["stage_id"], "join_stage_tasks": len(join.task_run_ms),
        "join_task_ms_max": d["task_ms_max"], "join_task_ms_median": d["task_ms_median"],
        "join_max_median": d["max_median_ratio"], "join_stage_duration_ms": d["duration_ms"],
        "group_shuffle_write_bytes": sum(s.shuffle_write_bytes for s in stages),
        "group_shuffle_read_bytes": sum(s.shuffle_read_bytes for s in stages),
        "group_spill_bytes": sum(s.memory_spilled + s.disk_spilled for s in stages),
        "join_task_read_bytes_median": d["task_shuffle_read_bytes_median"],
        # Rows per task: the skew itself, independent of how busy the machine was.
        "join_rows_max": d["task_shuffle_records_max"], "join_rows_median": d["task_shuffle_records_median"],
        "join_rows_max_median": round(d["task_shuffle_records_max"] / d["task_shuffle_records_median"], 2)
        if d["task_shuffle_records_median"] else None,
    }


def split_bronze_reads() -> None:
    """Gives bronze.interactions small row groups and reads each as its own split, in
    the bench catalog only and for every variant alike. AQE splits a skewed partition
    only between map outputs, so the map tasks bound how finely it can cut: with one
    split per day file, a power user's events of one day are a piece it cannot split.
    Takes effect for the files written after it (main re-runs ingest)."""
    from iceberg_catalog.config import load_pyiceberg_catalog

    table = load_pyiceberg_catalog().load_table("bronze.interactions")
    with table.transaction() as tx:
        tx.set_properties({"write.parquet.row-group-size-bytes": str(BRONZE_ROW_GROUP_BYTES),
                           "read.split.adaptive-size.enabled": "false",
                           "read.split.target-size": str(BRONZE_ROW_GROUP_BYTES)})


def run_variant(name: str, strategy: str, conf: dict, landing: Path, args, stamp: str, i: int) -> dict:
    run_id = f"skew-{name}-{stamp}-{i}"
    extra = ["--join-strategy", strategy, "--salt-buckets", str(args.salt_buckets),
             "--hot-key-min-share", str(args.hot_key_min_share)]
    r = run_stage("enrich", run_id, landing, args.master, args.driver_memory, extra, conf)
    metrics = (r.get("job_run") or {}).get("metrics") or {}
    return {"variant": name, "run_id": run_id, "wall_s": r["wall_s"], "load_avg": r["load_avg"],
            "app_shuffle_write_bytes": r.get("shuffle_write_bytes"),
            "app_spill_bytes": (r.get("spill_memory_bytes") or 0) + (r.get("spill_disk_bytes") or 0),
            "join_strategy_recorded": metrics.get("join_strategy"), "hot_keys": len(metrics.get("hot_keys") or []),
            "job_runs_join_stage": metrics.get("join_stage"), **join_stage_figures(r.get("event_log"), run_id),
            "event_log": r.get("event_log")}


def summarize(runs: list[dict]) -> dict:
    keys = ["wall_s", "join_stage_tasks", "join_task_ms_max", "join_task_ms_median", "join_max_median",
            "join_task_ms_max_warm", "join_task_ms_median_warm", "join_max_median_warm",
            "join_rows_max", "join_rows_median", "join_rows_max_median",
            "group_shuffle_write_bytes", "group_spill_bytes", "app_shuffle_write_bytes", "app_spill_bytes", "load_avg"]
    return {k: median([r.get(k) for r in runs]) for k in keys} | {"runs": len(runs)}


def markdown(report: dict) -> str:
    lines = [f"## Skew join, {report['events']:,} realistic events ({report['finished_at']})", "",
             (f"Data: {report['users']:,} users, {report['hot_users']} of them power users making "
              f"{report['hot_user_share']:.0%} of the events together. " if report.get("hot_users") else "") +
             f"{report['partitions']} shuffle partitions, no coalescing, Spark's auto-broadcast off; hot users "
             f"(>= {report['hot_key_min_share']:.2%} of events, salted with {report.get('salt_buckets', '?')} buckets): {report['hot_keys']}; medians of {report['repeats']} runs; "
             f"load average {report['load_min']}-{report['load_max']}.", "",
             "Task time max/median is given over all tasks of the join stage, and without the first wave "
             "(the first task per core, which compiles the stage's generated code).", "",
             "| variant | wall s | join stage tasks | task ms max / median | max/median | after the first wave: max / median (ratio) | rows per task max / median (ratio) | shuffle written (join jobs) | spill |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, s in report["variants"].items():
        lines.append(f"| {name} | {s['wall_s']:.1f} | {s['join_stage_tasks'] or '-'} | "
                     f"{s['join_task_ms_max'] or '-'} / {s['join_task_ms_median'] or '-'} | "
                     f"{s['join_max_median'] if s['join_max_median'] is not None else '-'} | "
                     f"{s.get('join_task_ms_max_warm') or '-'} / {s.get('join_task_ms_median_warm') or '-'} "
                     f"({s.get('join_max_median_warm') or '-'}) | "
                     f"{s['join_rows_max'] if s['join_rows_max'] is not None else '-'} / {s['join_rows_median'] if s['join_rows_median'] is not None else '-'} "
                     f"({s['join_rows_max_median'] if s['join_rows_max_median'] is not None else '-'}) | "
                     f"{fmt_bytes(s['group_shuffle_write_bytes'])} | {fmt_bytes(s['group_spill_bytes'])} |")
    return "\n".join(lines) + "\n"


def rebuild(path: Path) -> int:
    """Re-reads the event logs of a result file (e.g. after adding a figure) and rewrites it."""
    report = json.loads(path.read_text())
    for name, runs in report["runs"].items():
        for r in runs:
            r.update(join_stage_figures(r.get("event_log"), r["run_id"]))
        report["variants"][name] = summarize(runs)
    path.write_text(json.dumps(report, indent=1, default=str))
    md = markdown(report)
    path.with_suffix(".md").write_text(md)
    print(md)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # 16M events in 100 partitions: join tasks of ~100k rows, so that the JVM's warm-up
    # in the stage's first waves (100-150 ms a task) weighs less against the median
    # task (docs/performance.md, "Skew join", session 15).
    ap.add_argument("--events", type=int, default=16_000_000)
    ap.add_argument("--users", type=int, default=20_000)
    # One bronze file per day. AQE splits a skewed partition only between map outputs, so
    # more days cut it finer, but each join task then fetches more blocks: at 90 days that
    # fixed cost hides the naive join's time skew (docs/performance.md, "Skew join").
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--hot-users", type=int, default=2, help="power users of the generated data")
    ap.add_argument("--hot-user-share", type=float, default=0.3,
                    help="share of all events the power users make together (the realistic default is 0.25 over 5)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--partitions", type=int, default=100, help="static shuffle partitions of every variant")
    # Enough buckets that one hot user's slice is smaller than a typical partition:
    # at 16M events a power user's 2.4M events in 128 slices of ~19k, against ~100k per partition.
    ap.add_argument("--salt-buckets", type=int, default=128)
    # Default: a user with more events than a quarter of an average partition
    # (1 / (4 x partitions) of them) gets salted; two or three users just under
    # that still fit in one partition.
    ap.add_argument("--hot-key-min-share", type=float)
    ap.add_argument("--master", default=os.environ.get("SPARK_MASTER", "local[*]"))
    ap.add_argument("--driver-memory", default=os.environ.get("SPARK_DRIVER_MEMORY", "4g"))
    ap.add_argument("--variants", default="sort-merge,aqe-skew,salted,broadcast")
    ap.add_argument("--skip-ingest", action="store_true", help="reuse bronze from a previous run on the same data")
    ap.add_argument("--tag", default="", help="suffix of the result files")
    ap.add_argument("--report-from", type=Path, help="rebuild the report from the event logs of a previous result JSON")
    args = ap.parse_args(argv)
    if args.report_from:
        return rebuild(args.report_from)
    if args.hot_key_min_share is None:
        args.hot_key_min_share = 1 / (4 * args.partitions)

    os.environ["SPARK_SHUFFLE_PARTITIONS"] = str(args.partitions)
    prepare_platform()
    landing = dataset(args.events, args.seed, args.days, args.users, hot=(args.hot_users, args.hot_user_share))
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    if not args.skip_ingest:
        reset_catalog()
        run_stage("ingest", f"skew-ingest-{stamp}", landing, args.master, args.driver_memory)
        split_bronze_reads()
        run_stage("ingest", f"skew-ingest-{stamp}-split", landing, args.master, args.driver_memory)
    print(f"skew: {args.events:,} events ingested from {landing}; load {load_average()}", flush=True)

    wanted = args.variants.split(",")
    runs: dict[str, list[dict]] = {}
    # The naive join first: its median join task's shuffle read sizes AQE's thresholds.
    order = ["sort-merge"] + [v for v in wanted if v != "sort-merge"]
    for name in order:
        for i in range(args.repeats):
            if name == "sort-merge":
                r = run_variant(name, "shuffle", {**NO_COALESCE, **SKEW_OFF}, landing, args, stamp, i)
            elif name == "aqe-skew":
                median_partition = int(statistics.median(
                    [x.get("join_task_read_bytes_median") or 0 for x in runs["sort-merge"]]))
                conf = aqe_skew_conf(median_partition)
                r = run_variant(name, "shuffle", conf, landing, args, stamp, i) | {"aqe_conf": conf}
            elif name == "salted":
                r = run_variant(name, "salted", {**NO_COALESCE, **SKEW_OFF}, landing, args, stamp, i)
            elif name == "broadcast":
                r = run_variant(name, "broadcast", {**NO_COALESCE, **SKEW_OFF}, landing, args, stamp, i)
            else:
                raise SystemExit(f"unknown variant {name}")
            runs.setdefault(name, []).append(r)
            print(f"  {name} {i + 1}/{args.repeats}: wall {r['wall_s']:.1f}s, join stage max/median "
                  f"{r.get('join_task_ms_max')}/{r.get('join_task_ms_median')} = {r.get('join_max_median')} "
                  f"(tasks {r.get('join_stage_tasks')}), load {r['load_avg']}", flush=True)
    loads = [r["load_avg"] for rs in runs.values() for r in rs]
    report = {"events": args.events, "users": args.users, "days": args.days, "partitions": args.partitions,
              "hot_users": args.hot_users, "hot_user_share": args.hot_user_share,
              "salt_buckets": args.salt_buckets,
              "repeats": args.repeats, "hot_key_min_share": args.hot_key_min_share,
              "hot_keys": max((r["hot_keys"] for rs in runs.values() for r in rs), default=0),
              "landing": str(landing), "load_min": min(loads), "load_max": max(loads),
              "finished_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "variants": {n: summarize(runs[n]) for n in order if n in wanted}, "runs": runs}
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"skew-{args.events}{('-' + args.tag) if args.tag else ''}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1, default=str))
    md = markdown(report)
    stem.with_suffix(".md").write_text(md)
    print(md)
    naive = report["variants"].get("sort-merge", {}).get("join_max_median_warm") or 0
    if naive < 10:
        print(f"WARNING: the naive join's max/median is {naive} < 10: the data is not skewed enough "
              f"(raise --partitions or lower --users)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
