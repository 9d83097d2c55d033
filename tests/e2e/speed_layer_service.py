"""The speed layer (spark_jobs/stream.py) for tests: events sent to a topic of the
test's own by the project's producer, and the stream run in the test session's
Spark until it has done what the topic holds."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEADER = "user_id,timestamp,action_type,page_id,duration_ms,app_version\n"


def empty_live_tables(spark) -> None:
    """The speed layer's tables dropped, its rejects deleted from bronze.rejected_rows."""
    from spark_jobs import stream
    from spark_jobs.transforms.live import LIVE_DATASET

    for spec in stream.TABLES:
        if spec is stream.REJECTED_ROWS:
            if spark.catalog.tableExists(spec.identifier):
                spark.sql(f"DELETE FROM {spec.identifier} WHERE dataset = '{LIVE_DATASET}'")
        else:
            spark.sql(f"DROP TABLE IF EXISTS {spec.identifier} PURGE")


def produce(path: Path, topic: str, partitions: int = 2) -> int:
    """The landing file's lines sent to ``topic``; the number of messages."""
    run = subprocess.run([sys.executable, "-m", "speed_layer.producer", "--landing", str(path), "--topic", topic,
                          "--partitions", str(partitions), "--rate", "0"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    return int(run.stdout.split()[1])  # "sent N events to ..."


def run_until_caught_up(spark, live: dict, checkpoints: Path, *extra: str) -> None:
    """The speed layer in this test session's Spark, over what the topic holds."""
    from spark_jobs import stream

    stream.run(spark, stream.parser().parse_args([
        "--topic", live["topic"], "--bootstrap", live["bootstrap"], "--checkpoint-dir", str(checkpoints),
        "--until-caught-up", *extra]))
