"""What the class archive tests share: a Spark application that loads Spark's and
Iceberg's classes, the driver options that log where each came from, and the check."""
from __future__ import annotations

from pathlib import Path

APP = ("from pyspark.sql import SparkSession\n"
       "spark = SparkSession.builder.getOrCreate()\n"
       "spark._jvm.java.lang.Thread.currentThread().getContextClassLoader()"
       ".loadClass('org.apache.iceberg.spark.SparkCatalog')\n"
       "print('master', spark.sparkContext.master, 'rows', spark.range(1000).repartition(4).count())\n")


def logging_options(java_options: str, class_log: Path) -> str:
    # -Xshare:on: the JVM refuses to start unless it can map the archive, where
    # by default it would warn and load every class from the jars.
    return f"{java_options} -Xshare:on -Xlog:class+load=info:file={class_log}"


def assert_loaded_from_the_archive(class_log: Path) -> None:
    sources = {}
    for line in class_log.read_text().splitlines():
        name, _, source = line.partition(" source: ")
        sources[name.rsplit(" ", 1)[-1]] = source
    for name in ("org.apache.spark.SparkContext", "org.apache.iceberg.spark.SparkCatalog"):
        assert sources[name].startswith("shared objects file"), f"{name} from {sources[name]}"
