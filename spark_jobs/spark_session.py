"""Builds the SparkSession every job and test uses.

The master is whatever launched us: spark-submit's ``--master`` when submitted,
otherwise ``SPARK_MASTER`` (default ``local[*]``) for ``python -m`` and pytest.
Only configuration differs between laptop, YARN and tests; never the code.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from pyspark import SparkConf
from pyspark.sql import SparkSession

from iceberg_catalog import config

# Settings that hold on every master. Shuffle partitions follow the data via
# AQE coalescing, so the static number only caps the first shuffle.
BASE_CONF = {
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.adaptive.coalescePartitions.enabled": "true",
    "spark.sql.adaptive.skewJoin.enabled": "true",
    "spark.sql.shuffle.partitions": os.environ.get("SPARK_SHUFFLE_PARTITIONS", "64"),
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    "spark.ui.showConsoleProgress": "false",
    # Gates read small tables into the driver as pandas frames (quality/validation.py).
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}


def event_log_dir() -> str:
    return os.environ.get("SPARK_EVENT_LOG_DIR", (config.PLATFORM_STATE / "spark-events").resolve().as_uri())


def build_spark_session(app_name: str, extra_conf: dict[str, str] | None = None,
                        long_running: bool = False) -> SparkSession:
    # Python workers run the driver's interpreter (the project venv), not whatever python3 is on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    launched_by_spark_submit = "PYSPARK_GATEWAY_PORT" in os.environ
    if not launched_by_spark_submit:
        builder = builder.master(os.environ.get("SPARK_MASTER", "local[*]"))
        builder = builder.config("spark.driver.memory", config.spark_driver_memory())
        for key, value in config.spark_driver_conf(long_running=long_running).items():
            builder = builder.config(key, value)
    log_dir = event_log_dir()
    if log_dir.startswith("file:"):
        Path(log_dir.removeprefix("file:").removeprefix("//")).mkdir(parents=True, exist_ok=True)
    conf = {
        **BASE_CONF,
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": log_dir,
        **config.spark_conf(),
        **(extra_conf or {}),
    }
    # What spark-submit --conf (or spark-defaults.conf) set wins over our defaults.
    submitted = SparkConf()
    for key, value in conf.items():
        if key in config.spark_conf() or not submitted.contains(key):
            builder = builder.config(key, value)
    return builder.getOrCreate()
