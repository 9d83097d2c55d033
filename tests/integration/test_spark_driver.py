"""Spark drivers map the class archive `make bootstrap` writes (infra/spark_class_archive.sh),
run the parallel collector and the optimising compiler's smaller inlining budget
(iceberg_catalog.config.spark_driver_conf)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from iceberg_catalog import config
from tests.class_archive import APP, assert_loaded_from_the_archive, logging_options

ROOT = Path(__file__).resolve().parents[2]


def test_a_submitted_driver_loads_spark_and_iceberg_classes_from_the_archive(tmp_path):
    conf = config.spark_driver_conf()
    assert "-XX:SharedArchiveFile=" in conf["spark.driver.extraJavaOptions"], (
        f"no class archive at {config.SPARK_DRIVER_CLASS_ARCHIVE} (`make bootstrap` writes it) or SPARK_CONF_DIR is set")
    app = tmp_path / "app.py"
    app.write_text(APP)
    class_log = tmp_path / "classes.log"
    java_options = logging_options(conf["spark.driver.extraJavaOptions"], class_log)
    settings = [f"{k}={v}" for k, v in {**conf, "spark.driver.extraJavaOptions": java_options}.items()]
    proc = subprocess.run(
        [str(ROOT / ".venv/bin/spark-submit"), "--master", "local[1]", "--jars", ",".join(config.spark_jars()),
         *[a for s in settings for a in ("--conf", s)], str(app)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "master local[1] rows 1000" in proc.stdout
    assert_loaded_from_the_archive(class_log)


def test_the_pytest_session_driver_was_started_with_the_archive(spark):
    arguments = list(spark._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    assert f"-XX:SharedArchiveFile={config.SPARK_DRIVER_CLASS_ARCHIVE}" in arguments
    assert "-XX:+UseParallelGC" in arguments
    # The optimising compiler's inlining budget the JVM runs with, not only the flags it was given.
    jvm = spark._jvm
    hotspot = jvm.java.lang.management.ManagementFactory.getPlatformMXBean(
        jvm.java.lang.Class.forName("com.sun.management.HotSpotDiagnosticMXBean"))
    assert {name: hotspot.getVMOption(name).getValue() for name in ("MaxInlineLevel", "FreqInlineSize", "InlineSmallCode")} \
        == {"MaxInlineLevel": "6", "FreqInlineSize": "100", "InlineSmallCode": "1000"}


def test_only_drivers_that_end_get_the_smaller_inlining_budget():
    assert "-XX:MaxInlineLevel=6" in config.spark_driver_conf()["spark.driver.extraJavaOptions"]
    for driver in ({"long_running": True}, {"client_compiler": True}, {"on_yarn": True}):
        assert "MaxInlineLevel" not in config.spark_driver_conf(**driver)["spark.driver.extraJavaOptions"], driver


def test_drivers_with_a_spark_conf_dir_do_without_the_archive(monkeypatch, tmp_path):
    # YARN's spark-defaults.conf directory would come first on the class path, which the archive cannot hold.
    monkeypatch.delenv("SPARK_CONF_DIR", raising=False)
    assert "-XX:SharedArchiveFile=" in config.spark_driver_conf()["spark.driver.extraJavaOptions"]
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))
    assert "-XX:SharedArchiveFile=" not in config.spark_driver_conf()["spark.driver.extraJavaOptions"]


def test_drivers_write_local_files_through_the_bare_local_file_system(spark, tmp_path):
    """Hadoop's own local file system starts a chmod process for each file it writes;
    the bare one sets the same permissions from Java."""
    jvm = spark._jvm
    conf = spark._jsc.hadoopConfiguration()
    fs = jvm.org.apache.hadoop.fs.FileSystem.get(jvm.java.net.URI("file:///"), conf)
    assert fs.getClass().getName() == "com.globalmentor.apache.hadoop.fs.BareLocalFileSystem"
    written = tmp_path / "part" / "data.parquet"
    out = fs.create(jvm.org.apache.hadoop.fs.Path(written.as_uri()))
    out.write(b"rows")
    out.close()
    umask = jvm.org.apache.hadoop.fs.permission.FsPermission.getUMask(conf).toShort()
    assert written.read_bytes() == b"rows"
    assert oct(written.stat().st_mode & 0o777) == oct(0o666 & ~umask)
    assert (tmp_path / "part" / ".data.parquet.crc").exists()  # still checksummed
