"""Reads Spark event logs (the files the History Server shows) into per-stage figures.

Parsing the JSON lines directly needs no running server and works for finished
and in-progress logs, plain or zstd/lz4-less compressed (Spark 4 writes zstd by
default; lz4/snappy logs are not supported here).
"""
from __future__ import annotations

import io
import json
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path


def event_files(app_path: Path) -> list[Path]:
    """The event files of one application: a v2 directory (events_N_... rolled files) or a single file."""
    if app_path.is_dir():
        files = [f for f in app_path.iterdir() if f.name.startswith("events_")]
        return sorted(files, key=lambda f: int(f.name.split("_")[1]))
    return [app_path]


def read_lines(path: Path):
    if path.suffix == ".zstd" or path.name.endswith(".zst"):
        import zstandard

        with open(path, "rb") as raw:
            reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
            text = io.TextIOWrapper(reader, encoding="utf-8", errors="replace")
            try:
                yield from text
            except zstandard.ZstdError:
                return      # an in-progress log ends mid-frame
    else:
        with open(path, encoding="utf-8", errors="replace") as fh:
            yield from fh


def read_events(app_path: Path):
    for f in event_files(app_path):
        for line in read_lines(f):
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                return      # the last line of an in-progress log may be cut


def app_name(app_path: Path) -> str | None:
    for event in read_events(app_path):
        if event.get("Event") == "SparkListenerApplicationStart":
            return event.get("App Name")
    return None


@dataclass
class StageStats:
    stage_id: int
    attempt: int
    name: str = ""
    num_tasks: int = 0
    task_run_ms: list[int] = field(default_factory=list)
    task_launch_ms: list[int] = field(default_factory=list)         # parallel to task_run_ms
    task_shuffle_records: list[int] = field(default_factory=list)   # shuffle records read, per task
    task_shuffle_read_bytes: list[int] = field(default_factory=list)  # shuffle bytes read, per task
    gc_ms: int = 0
    shuffle_read_bytes: int = 0
    shuffle_write_bytes: int = 0
    memory_spilled: int = 0
    disk_spilled: int = 0
    input_bytes: int = 0
    input_records: int = 0
    peak_execution_memory: int = 0
    shuffle_write_time_ns: int = 0
    shuffle_fetch_wait_ms: int = 0
    result_bytes: int = 0
    peak_jvm_heap: int = 0
    submitted_ms: int | None = None
    completed_ms: int | None = None

    def run_ms_after_first_wave(self, slots: int) -> list[int]:
        """Task run times without the first ``slots`` tasks launched: those pay the JIT
        compilation of the stage's generated code, a fixed cost unrelated to their data."""
        launched = sorted(range(len(self.task_run_ms)), key=lambda i: self.task_launch_ms[i])
        return [self.task_run_ms[i] for i in launched[slots:]] or list(self.task_run_ms)

    @property
    def max_median_ratio(self) -> float | None:
        if not self.task_run_ms:
            return None
        median = statistics.median(self.task_run_ms)
        return max(self.task_run_ms) / median if median > 0 else None

    def as_dict(self) -> dict:
        times = self.task_run_ms
        return {
            "stage_id": self.stage_id, "attempt": self.attempt, "name": self.name, "tasks": self.num_tasks,
            "task_ms_max": max(times) if times else None,
            "task_ms_median": statistics.median(times) if times else None,
            "max_median_ratio": round(self.max_median_ratio, 2) if self.max_median_ratio else None,
            "run_ms_total": sum(times), "gc_ms": self.gc_ms,
            "task_shuffle_records_max": max(self.task_shuffle_records, default=None),
            "task_shuffle_records_median": statistics.median(self.task_shuffle_records) if self.task_shuffle_records else None,
            "task_shuffle_read_bytes_median": statistics.median(self.task_shuffle_read_bytes) if self.task_shuffle_read_bytes else None,
            "shuffle_read_bytes": self.shuffle_read_bytes, "shuffle_write_bytes": self.shuffle_write_bytes,
            "memory_spilled_bytes": self.memory_spilled, "disk_spilled_bytes": self.disk_spilled,
            "input_bytes": self.input_bytes, "input_records": self.input_records,
            "peak_execution_memory": self.peak_execution_memory,
            "shuffle_write_time_ms": self.shuffle_write_time_ns // 1_000_000,
            "shuffle_fetch_wait_ms": self.shuffle_fetch_wait_ms,
            "duration_ms": (self.completed_ms - self.submitted_ms)
            if self.completed_ms and self.submitted_ms else None,
        }


@dataclass
class AppStats:
    app_id: str = ""
    name: str = ""
    start_ms: int | None = None
    end_ms: int | None = None
    first_job_ms: int | None = None
    stages: dict = field(default_factory=dict)              # (stage_id, attempt) -> StageStats
    jobs: dict = field(default_factory=dict)                # job_id -> {"stages": [...], "start": ms, "end": ms, "description"}
    peak_jvm_heap: dict = field(default_factory=dict)       # executor id -> bytes
    peak_jvm_offheap: dict = field(default_factory=dict)
    sort_aggregate_sql: set = field(default_factory=set)   # SQL execution ids whose plan has a SortAggregate

    def totals(self, pipeline_stage: str | None = None) -> dict:
        """Figures of the whole application, or of the jobs one pipeline stage ran
        (spark_jobs/pipeline.py tags them with the ``pipeline.stage`` property)."""
        st = list(self.stages.values()) if pipeline_stage is None else self.pipeline_stage_stages(pipeline_stage)
        run = sum(sum(s.task_run_ms) for s in st)
        gc = sum(s.gc_ms for s in st)
        widest = self.widest_stage(st)
        return {
            "app_id": self.app_id, "app_name": self.name,
            "app_duration_s": (self.end_ms - self.start_ms) / 1000 if self.end_ms and self.start_ms else None,
            "jobs": len(self.jobs), "stages": len(st), "tasks": sum(len(s.task_run_ms) for s in st),
            "task_run_s": run / 1000, "gc_s": gc / 1000, "gc_share": round(gc / run, 4) if run else None,
            "shuffle_write_bytes": sum(s.shuffle_write_bytes for s in st),
            "shuffle_read_bytes": sum(s.shuffle_read_bytes for s in st),
            "spill_memory_bytes": sum(s.memory_spilled for s in st),
            "spill_disk_bytes": sum(s.disk_spilled for s in st),
            "input_bytes": sum(s.input_bytes for s in st),
            "peak_execution_memory_bytes": max((s.peak_execution_memory for s in st), default=0),
            "peak_jvm_heap_bytes": dict(self.peak_jvm_heap) if pipeline_stage is None
            else {"driver": max(s.peak_jvm_heap for s in st)} if any(s.peak_jvm_heap for s in st) else {},
            "peak_jvm_offheap_bytes": dict(self.peak_jvm_offheap),
            "widest_stage": widest.as_dict() if widest else None,
        }

    def group_stages(self, group: str) -> list[StageStats]:
        """Stages (every attempt that ran tasks) of the jobs run under job group GROUP."""
        ids = {sid for j in self.jobs.values() if j.get("group") == group for sid in j.get("stages", [])}
        return [s for (sid, _), s in self.stages.items() if sid in ids and s.task_run_ms]

    def pipeline_stage_stages(self, name: str) -> list[StageStats]:
        ids = {sid for j in self.jobs.values() if j.get("pipeline_stage") == name for sid in j.get("stages", [])}
        return [s for (sid, _), s in self.stages.items() if sid in ids and s.task_run_ms]

    def pipeline_stage_span_s(self, name: str) -> float | None:
        """First job start to last job end of one pipeline stage's jobs."""
        jobs = [j for j in self.jobs.values() if j.get("pipeline_stage") == name and j.get("end")]
        return (max(j["end"] for j in jobs) - min(j["start"] for j in jobs)) / 1000 if jobs else None

    def widest_stage(self, stages: list[StageStats] | None = None) -> StageStats | None:
        st = [s for s in (self.stages.values() if stages is None else stages) if s.task_run_ms]
        return max(st, key=lambda s: (s.num_tasks, sum(s.task_run_ms))) if st else None


def _note_peaks(app: AppStats, executor: str, metrics: dict | None, stage: StageStats | None = None) -> None:
    if not metrics:
        return
    heap, off = metrics.get("JVMHeapMemory", 0), metrics.get("JVMOffHeapMemory", 0)
    if stage is not None:
        stage.peak_jvm_heap = max(stage.peak_jvm_heap, heap)
    app.peak_jvm_heap[executor] = max(app.peak_jvm_heap.get(executor, 0), heap)
    app.peak_jvm_offheap[executor] = max(app.peak_jvm_offheap.get(executor, 0), off)


def summarize(app_path: Path) -> AppStats:
    app = AppStats()
    for e in read_events(Path(app_path)):
        kind = e.get("Event")
        if kind == "SparkListenerApplicationStart":
            app.app_id, app.name, app.start_ms = e.get("App ID", ""), e.get("App Name", ""), e.get("Timestamp")
        elif kind == "SparkListenerApplicationEnd":
            app.end_ms = e.get("Timestamp")
        elif kind == "SparkListenerJobStart":
            if app.first_job_ms is None:
                app.first_job_ms = e.get("Submission Time")
            props = e.get("Properties") or {}
            app.jobs[e["Job ID"]] = {"stages": e.get("Stage IDs", []), "start": e.get("Submission Time"),
                                     "group": props.get("spark.jobGroup.id"),
                                     "pipeline_stage": props.get("pipeline.stage"),
                                     "sql_id": props.get("spark.sql.execution.id"),
                                     "description": props.get("spark.job.description") or props.get("callSite.short", "")}
        elif kind == "SparkListenerJobEnd":
            app.jobs.setdefault(e["Job ID"], {"stages": []})["end"] = e.get("Completion Time")
        elif kind and kind.endswith(("SparkListenerSQLExecutionStart", "SparkListenerSQLAdaptiveExecutionUpdate")):
            # Planned (or, under AQE, re-planned) with a sort-based aggregate.
            if "SortAggregate" in e.get("physicalPlanDescription", ""):
                app.sort_aggregate_sql.add(str(e.get("executionId")))
        elif kind == "SparkListenerStageSubmitted":
            info = e["Stage Info"]
            s = app.stages.setdefault((info["Stage ID"], info["Stage Attempt ID"]),
                                      StageStats(info["Stage ID"], info["Stage Attempt ID"]))
            s.name, s.num_tasks, s.submitted_ms = info.get("Stage Name", ""), info.get("Number of Tasks", 0), info.get("Submission Time")
        elif kind == "SparkListenerStageCompleted":
            info = e["Stage Info"]
            s = app.stages.setdefault((info["Stage ID"], info["Stage Attempt ID"]),
                                      StageStats(info["Stage ID"], info["Stage Attempt ID"]))
            s.name, s.num_tasks = info.get("Stage Name", s.name), info.get("Number of Tasks", s.num_tasks)
            s.submitted_ms = s.submitted_ms or info.get("Submission Time")
            s.completed_ms = info.get("Completion Time")
        elif kind == "SparkListenerTaskEnd":
            m = e.get("Task Metrics") or {}
            s = app.stages.setdefault((e["Stage ID"], e["Stage Attempt ID"]), StageStats(e["Stage ID"], e["Stage Attempt ID"]))
            s.task_run_ms.append(m.get("Executor Run Time", 0))
            s.task_launch_ms.append((e.get("Task Info") or {}).get("Launch Time", 0))
            s.gc_ms += m.get("JVM GC Time", 0)
            sr, sw, inp = m.get("Shuffle Read Metrics") or {}, m.get("Shuffle Write Metrics") or {}, m.get("Input Metrics") or {}
            s.task_shuffle_read_bytes.append(sr.get("Remote Bytes Read", 0) + sr.get("Local Bytes Read", 0))
            s.shuffle_read_bytes += s.task_shuffle_read_bytes[-1]
            s.task_shuffle_records.append(sr.get("Total Records Read", 0))
            s.shuffle_write_bytes += sw.get("Shuffle Bytes Written", 0)
            s.memory_spilled += m.get("Memory Bytes Spilled", 0)
            s.disk_spilled += m.get("Disk Bytes Spilled", 0)
            s.input_bytes += inp.get("Bytes Read", 0)
            s.input_records += inp.get("Records Read", 0)
            s.peak_execution_memory = max(s.peak_execution_memory, m.get("Peak Execution Memory", 0))
            s.shuffle_write_time_ns += sw.get("Shuffle Write Time", 0)
            s.shuffle_fetch_wait_ms += sr.get("Fetch Wait Time", 0)
            s.result_bytes += m.get("Result Size", 0)
            _note_peaks(app, (e.get("Task Info") or {}).get("Executor ID", "driver"), e.get("Task Executor Metrics"), s)
        elif kind == "SparkListenerStageExecutorMetrics":
            _note_peaks(app, e.get("Executor ID", "driver"), e.get("Executor Metrics"),
                        app.stages.get((e.get("Stage ID"), e.get("Stage Attempt ID"))))
    return app


def find_app(log_dir: Path, name_contains: str, newer_than: float = 0.0) -> Path | None:
    """The newest event log under LOG_DIR whose application name contains NAME_CONTAINS."""
    candidates = sorted((p for p in log_dir.iterdir() if p.stat().st_mtime >= newer_than),
                        key=lambda p: p.stat().st_mtime, reverse=True)
    for p in candidates:
        name = app_name(p)
        if name and name_contains in name:
            return p
    return None


def default_log_dir() -> Path:
    raw = os.environ.get("SPARK_EVENT_LOG_DIR", "")
    if raw:
        return Path(raw.removeprefix("file:").removeprefix("//"))
    return Path(__file__).resolve().parent.parent / ".local" / "spark-events"
