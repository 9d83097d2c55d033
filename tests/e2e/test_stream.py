"""The speed layer (spark_jobs/stream.py) on the project's Kafka broker and Iceberg catalog.

Hand-written events give the live tables' expected rows; generated events check
that a driver killed with ``kill -9`` between two commits of a micro-batch, a
broker stopped under a running stream and a compaction of its bronze table
lose and duplicate nothing: each message is in bronze.interactions_live or
bronze.rejected_rows exactly once, and the reconciliation with the batch
computation finds no difference.
"""
from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from tests.assertions import assert_rows
from tests.e2e.speed_layer_service import HEADER, ROOT, produce, run_until_caught_up

KAFKA_SH = ROOT / "infra" / "kafka.sh"


def reconcile(capsys) -> tuple[int, str]:
    from spark_jobs import live_reconcile

    capsys.readouterr()
    status = live_reconcile.main([])
    return status, capsys.readouterr().out


def t(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def test_live_tables_hold_the_contracts_rows_and_late_events_are_counted_not_folded_in(spark, live, tmp_path,
                                                                                        capsys):
    events = tmp_path / "events.csv"
    events.write_text(
        HEADER
        + "a,2023-07-01 10:00:10,page_view,p1,100,1.0.0\n"
        + "a,2023-07-01 10:00:50,page_view,p2,300,1.0.0\n"
        + "b,2023-07-01 10:00:20,page_view,p1,200,1.0.0\n"
        + "a,2023-07-01 10:00:30,edit,p1,999,1.0.0\n"  # earlier than a's last event: still in order
        + "a,2023-07-01 10:30:50,share,p3,40,1.0.0\n"  # exactly the gap after 10:00:50: same session
        + "b,2023-07-01 10:30:21,page_view,p2,500,1.1.0\n"  # 1801 s after 10:00:20: a new session
        + "b,2023-07-01 10:30:21,edit,p2,5,1.1.0\n"  # same time: edit sorts first, the page view is last
        + "c,2023-07-01 10:01:00,page_view,p1,12x,1.0.0\n"
        + "c,2023-07-01 10:01:00,page_view\n"
        + "\n"
        + "z,2023-07-01 12:00:00,page_view,p9,1,2.0.0\n")  # the watermark goes to 11:58
    assert produce(events, live["topic"]) == 11
    checkpoints = tmp_path / "checkpoints"
    run_until_caught_up(spark, live, checkpoints)

    bronze = spark.table("iceberg.bronze.interactions_live")
    assert bronze.count() == 8
    assert bronze.select("partition", "offset").distinct().count() == 8
    assert_rows(spark.table("iceberg.bronze.rejected_rows").where("dataset = 'user_interactions_live'")
                .select("reason", "raw", "event_date"),
                ["reason", "raw", "event_date"],
                [("bad_duration_ms", '{"user_id":"c","timestamp":"2023-07-01 10:01:00","action_type":"page_view",'
                                     '"page_id":"p1","duration_ms":"12x","app_version":"1.0.0"}', dt.date(2023, 7, 1)),
                 # Dated by its timestamp when it parses, as the batch ingest dates rejects.
                 ("wrong_column_count", "c,2023-07-01 10:01:00,page_view", dt.date(2023, 7, 1)),
                 ("blank_line", "", None)])
    # Percentiles interpolate between order statistics: 100, 200, 300 -> p95 at 1.9 -> 290.
    assert_rows(spark.table("iceberg.gold.live_app_version_latency"),
                ["window_start", "window_end", "app_version", "events", "p50_ms", "p95_ms", "p99_ms"],
                [(t("2023-07-01 10:00:00"), t("2023-07-01 10:01:00"), "1.0.0", 3, 200.0, 290.0, 298.0),
                 (t("2023-07-01 10:30:00"), t("2023-07-01 10:31:00"), "1.1.0", 1, 500.0, 500.0, 500.0)])
    sessions = spark.table("iceberg.gold.live_sessions").drop("session_id")
    assert_rows(sessions, ["user_id", "session_start", "session_end", "session_date", "actions",
                           "session_duration_ms", "is_bounce", "device_type", "country"],
                [("a", t("2023-07-01 10:00:10"), t("2023-07-01 10:30:50"), dt.date(2023, 7, 1), 4, 1_840_040, False,
                  None, None),
                 ("b", t("2023-07-01 10:00:20"), t("2023-07-01 10:00:20"), dt.date(2023, 7, 1), 1, 200, True,
                  None, None),
                 ("b", t("2023-07-01 10:30:21"), t("2023-07-01 10:30:21"), dt.date(2023, 7, 1), 2, 500, False,
                  None, None)])  # z's session (12:00) is open: the watermark is 11:58
    assert_rows(spark.table("iceberg.gold.live_daily_active_users").select("event_date", "dau"),
                ["event_date", "dau"], [(dt.date(2023, 7, 1), 3)])
    status, out = reconcile(capsys)
    assert status == 0, out

    late = tmp_path / "late.csv"
    late.write_text(HEADER + "a,2023-07-01 09:00:00,page_view,p1,100,1.0.0\n"  # before the watermark (11:58)
                    + "z,2023-07-01 12:40:00,page_view,p9,1,2.0.0\n")  # watermark 12:38: z's 12:00 session closes
    produce(late, live["topic"])
    run_until_caught_up(spark, live, checkpoints)
    assert spark.table("iceberg.bronze.interactions_live").count() == 10
    late_counts = {r["query"]: r["late"] for r in spark.table("iceberg.ops.stream_progress")
                   .groupBy("query").agg(F.sum("late_events").alias("late")).collect()}
    assert late_counts["sessions"] == 1 and late_counts["latency"] == 1, late_counts
    assert_rows(spark.table("iceberg.gold.live_sessions").where("user_id IN ('a', 'z')")
                .select("user_id", "session_start", "actions"), ["user_id", "session_start", "actions"],
                [("a", t("2023-07-01 10:00:10"), 4), ("z", t("2023-07-01 12:00:00"), 1)])
    status, out = reconcile(capsys)
    assert status == 1
    assert "gold.live_sessions: 4 rows live, 5 expected; 0 only live, 1 only expected" in out, out
    assert "'user_id': 'a', 'session_start': datetime.datetime(2023, 7, 1, 9, 0)" in out, out


def sorted_events(landing: Path, out: Path) -> Path:
    """The generated interactions in time order (malformed lines first): a replay with no late events."""
    lines = (landing / "user_interactions" / "user_interactions.csv").read_text().splitlines(keepends=True)
    body = sorted(lines[1:], key=lambda line: (line.split(",")[1] if line.count(",") >= 5 else ""))
    out.write_text(lines[0] + "".join(body))
    return out


def assert_each_message_once(spark, topic: str, messages: int) -> None:
    bronze = spark.table("iceberg.bronze.interactions_live").where(F.col("source_file") == f"kafka:{topic}")
    rejects = spark.table("iceberg.bronze.rejected_rows").where(F.col("source_file").startswith(f"kafka:{topic}/"))
    accepted, rejected = bronze.count(), rejects.count()
    assert bronze.select("partition", "offset").distinct().count() == accepted
    assert rejects.select("source_file").distinct().count() == rejected
    assert accepted + rejected == messages, (accepted, rejected, messages)
    assert rejected > 0  # the generator's malformed lines


# The generated events are a day's, a few a minute: a micro-batch spans hours,
# and its partitions end at times minutes apart. A watermark of an hour keeps
# every event in time, as the reconciliation needs.
SPARSE_EVENTS = ("--watermark-seconds", "3600")
# Events sent while the stream runs reach it partition by partition, one a
# few hours of events ahead of another: a day's watermark keeps them all in time.
DAY_WATERMARK = ("--watermark-seconds", "86400")


def start_stream(live, checkpoints: Path, log: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """The speed layer as its own application (a Python driver and its JVM, one process group)."""
    return subprocess.Popen(
        [sys.executable, "-m", "spark_jobs.stream", "--topic", live["topic"], "--bootstrap", live["bootstrap"],
         "--checkpoint-dir", str(checkpoints), "--trigger-seconds", "1", "--state-trigger-seconds", "1",
         *extra],
        cwd=ROOT, env={**os.environ, **(env or {})}, stdout=open(log, "w"), stderr=subprocess.STDOUT,
        start_new_session=True)


def wait_for_line(proc: subprocess.Popen, log: Path, text: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        assert proc.poll() is None, f"the stream exited {proc.returncode}:\n{log.read_text()[-3000:]}"
        time.sleep(0.5)
    raise AssertionError(f"no {text!r} in {log} after {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    from tests.conftest import generate_landing

    landing = generate_landing(tmp_path_factory.mktemp("stream_landing"), "--mode", "realistic", "--events", "3000",
                               "--users", "60", "--days", "1", "--start-date", "2023-07-01", "--seed", "11",
                               "--malformed-share", "0.02")
    return sorted_events(landing, landing / "sorted.csv")


def test_a_driver_killed_between_a_batchs_commits_resumes_with_every_message_once(spark, live, generated, tmp_path,
                                                                                  capsys):
    messages = produce(generated, live["topic"], partitions=3)
    checkpoints, log = tmp_path / "checkpoints", tmp_path / "stream.log"
    # Paused after a batch's bronze.interactions_live commit, before its rejects' commit
    # and before Spark records the batch done: the replay must skip the one, make the other.
    proc = start_stream(live, checkpoints, log, *SPARSE_EVENTS, "--max-offsets-per-trigger", "400",
                        env={"PIPELINE_FAILPOINT": "stream_committed:bronze.interactions_live"})
    try:
        wait_for_line(proc, log, "FAILPOINT stream_committed:bronze.interactions_live reached")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert 0 < spark.table("iceberg.bronze.interactions_live").count() < messages

    run_until_caught_up(spark, live, checkpoints, *SPARSE_EVENTS)
    assert_each_message_once(spark, live["topic"], messages)
    status, out = reconcile(capsys)
    assert status == 0, out


def test_a_stream_waits_out_a_stopped_broker_and_its_tables_compacted_under_it(spark, live, generated, tmp_path,
                                                                               capsys):
    lines = generated.read_text().splitlines(keepends=True)
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text("".join(lines[: len(lines) // 2]))
    second.write_text(lines[0] + "".join(lines[len(lines) // 2:]))
    messages = produce(first, live["topic"])
    checkpoints, log = tmp_path / "checkpoints", tmp_path / "stream.log"
    proc = start_stream(live, checkpoints, log, *DAY_WATERMARK)
    try:
        wait_for_line(proc, log, "bronze batch 0:")  # the first half committed, then the broker stops
        subprocess.run(["bash", str(KAFKA_SH), "stop"], check=True)
        time.sleep(15)
        assert proc.poll() is None, log.read_text()[-3000:]
        subprocess.run(["bash", str(KAFKA_SH), "start"], check=True)
        # What the maintenance DAG's optimize does, while the stream appends: the
        # queries reading bronze must skip the rewrite, not read its rows again.
        compacted = spark.sql("CALL iceberg.system.rewrite_data_files(table => 'bronze.interactions_live', "
                              "options => map('min-input-files', '1', 'rewrite-all', 'true'))").first()
        assert compacted.rewritten_data_files_count > 0
        messages += produce(second, live["topic"])
        deadline = time.monotonic() + 300
        bronze = spark.table("iceberg.bronze.interactions_live")
        rejects = spark.table("iceberg.bronze.rejected_rows").where("dataset = 'user_interactions_live'")
        while bronze.count() + rejects.count() < messages and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(2)
        os.kill(proc.pid, signal.SIGTERM)  # a clean stop: the queries end, the driver exits 0
        assert proc.wait(timeout=120) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert_each_message_once(spark, live["topic"], messages)
    closing = tmp_path / "closing.csv"  # two days on: the watermark passes every window and session of the day
    closing.write_text(HEADER + "z,2023-07-03 00:00:00,page_view,p9,1,2.0.0\n")
    produce(closing, live["topic"])
    run_until_caught_up(spark, live, checkpoints, *DAY_WATERMARK)
    assert spark.table("iceberg.gold.live_sessions").where("session_date = DATE'2023-07-01'").count() > 0
    status, out = reconcile(capsys)
    assert status == 0, out
