"""The one place that says where the Iceberg catalog and warehouse are.

Spark, PyIceberg and Trino all read the same Iceberg JDBC catalog (a database
on the project's PostgreSQL) under the catalog name ``iceberg``, so a table is
``iceberg.<namespace>.<table>`` everywhere. Settings come from the environment;
when a variable is missing, the generated ``.local/platform.env`` fills it in
(made by ``infra/lib.sh`` with fresh passwords, never committed).
"""
from __future__ import annotations

import os
from pathlib import Path

from dotenv import dotenv_values

CATALOG_NAME = "iceberg"


def _project_root() -> Path:
    """The checkout: PLATFORM_HOME, else this file's grandparent, unless we are
    imported from spark-submit's --py-files zip, where the working directory
    (the checkout, for the DAG and the README's commands) stands in."""
    if os.environ.get("PLATFORM_HOME"):
        return Path(os.environ["PLATFORM_HOME"])
    here = Path(__file__).resolve().parent.parent
    return here if here.is_dir() else Path.cwd()


PROJECT_ROOT = _project_root()
PLATFORM_STATE = Path(os.environ.get("PLATFORM_STATE", PROJECT_ROOT / ".local"))
PLATFORM_ENV_FILE = PLATFORM_STATE / "platform.env"
SPARK_DRIVER_CLASS_ARCHIVE = PLATFORM_STATE / "jvm" / "spark-driver.jsa"

ICEBERG_VERSION = "1.10.1"
SPARK_SCALA_SUFFIX = "4.0_2.13"
POSTGRES_JDBC_VERSION = "42.7.8"
BARE_LOCAL_FS_VERSION = "0.1.0"


class PlatformNotConfigured(RuntimeError):
    pass


def platform_env() -> dict[str, str]:
    """Every platform setting: the environment over the generated platform.env
    file, for the keys the file has and those of the catalog and Trino (which a
    container's environment gives without a file)."""
    values = {k: v or "" for k, v in dotenv_values(PLATFORM_ENV_FILE).items()} if PLATFORM_ENV_FILE.exists() else {}
    values.update({k: v for k, v in os.environ.items() if k in values or k.startswith(("PG_", "ICEBERG_", "TRINO_"))})
    return values


def settings() -> dict[str, str]:
    """``platform_env()``, refused without what the catalog needs."""
    values = platform_env()
    required = ("PG_HOST", "PG_PORT", "PG_CATALOG_USER", "PG_CATALOG_PASSWORD", "ICEBERG_CATALOG_DB", "ICEBERG_WAREHOUSE")
    missing = [k for k in required if k not in values]
    if missing:
        raise PlatformNotConfigured(
            f"missing settings {missing}: run `make bootstrap` (writes {PLATFORM_ENV_FILE}) or export them"
        )
    return values


def kafka_bootstrap() -> str:
    """The broker infra/kafka.sh runs: KAFKA_BOOTSTRAP if set, else localhost and KAFKA_PORT."""
    env = platform_env()
    return os.environ.get("KAFKA_BOOTSTRAP") or env.get("KAFKA_BOOTSTRAP") or f"127.0.0.1:{env.get('KAFKA_PORT', '9092')}"


def jdbc_url(s: dict[str, str] | None = None) -> str:
    s = s or settings()
    return f"jdbc:postgresql://{s['PG_HOST']}:{s['PG_PORT']}/{s['ICEBERG_CATALOG_DB']}"


def warehouse_uri(s: dict[str, str] | None = None) -> str:
    s = s or settings()
    wh = s["ICEBERG_WAREHOUSE"]
    return wh if "://" in wh else Path(wh).resolve().as_uri()


def spark_jars() -> list[str]:
    cache = Path(os.environ.get("PLATFORM_CACHE", PROJECT_ROOT / ".cache")) / "maven"
    jars = [
        cache / f"iceberg-spark-runtime-{SPARK_SCALA_SUFFIX}-{ICEBERG_VERSION}.jar",
        cache / f"postgresql-{POSTGRES_JDBC_VERSION}.jar",
    ]
    absent = [str(j) for j in jars if not j.exists()]
    if absent:
        raise PlatformNotConfigured(f"jars not downloaded: {absent}; run `make bootstrap`")
    return [str(j) for j in jars]


def bare_local_fs_jar() -> Path:
    return (Path(os.environ.get("PLATFORM_CACHE", PROJECT_ROOT / ".cache")) / "maven"
            / f"hadoop-bare-naked-local-fs-{BARE_LOCAL_FS_VERSION}.jar")


def spark_kafka_jars() -> list[str]:
    """Spark's Kafka source and its dependencies (infra/kafka.sh install), for the speed layer."""
    import pyspark

    lib = Path(os.environ.get("PLATFORM_CACHE", PROJECT_ROOT / ".cache")) / "spark-kafka" / pyspark.__version__ / "lib"
    jars = sorted(str(j) for j in lib.glob("*.jar"))
    if not jars:
        raise PlatformNotConfigured(f"no jars in {lib}; run `make bootstrap` (infra/kafka.sh install)")
    return jars


# JDK 17's defaults: 15 levels deep, methods of up to 325 bytecodes, callees of up to 2,500 bytes compiled.
OPTIMISING_COMPILER_INLINING = ["-XX:MaxInlineLevel=6", "-XX:FreqInlineSize=100", "-XX:InlineSmallCode=1000"]


def spark_driver_memory() -> str:
    """The heap of a local-mode driver, which runs every task of its application:
    SPARK_DRIVER_MEMORY, else 4g (a 10M-event stage peaks at 0.6-2.0 GiB)."""
    return os.environ.get("SPARK_DRIVER_MEMORY", "4g")


def spark_driver_conf(on_yarn: bool = False, client_compiler: bool = False,
                      long_running: bool = False) -> dict[str, str]:
    """spark-submit settings of a driver JVM started on this machine. Only on
    the command line (or before a session's JVM starts) do they count.

    * The parallel collector: in local mode the driver runs every task, and on
      2 cores G1's concurrent threads and write barriers cost more than its
      shorter pauses save (10M events: 231-241 s of task time against G1's
      249-291 s, docs/performance.md).
    * The class archive ``infra/spark_class_archive.sh`` wrote at bootstrap, if
      any. It is valid for spark-submit's own class path: a SPARK_CONF_DIR
      (YARN's spark-defaults.conf) puts a non-empty directory first on it, which
      JDK 17 can neither archive nor map, so such drivers load from the jars;
      the DAG's tasks give YARN's settings as a properties file instead.
    * The client JIT compiler only, on YARN and where ``client_compiler`` asks
      for it (a stage whose time goes to planning, committing and auditing
      many small tables, ``Stage.client_compiler``): such a driver's code never
      runs long enough for the optimising compiler to repay its work, which
      keeps one of two cores busy for most of a short application (the demo's
      engagement stage on YARN: 62-69 s of driver CPU with both compilers,
      39-41 s with the client one; docs/performance.md).
    * Shallower inlining for the optimising compiler (``OPTIMISING_COMPILER_INLINING``).
      Every driver compiles the same cold code of Iceberg, Parquet and Spark's
      planner anew, and on 2 cores that work competes with the stage's: a
      smaller inlining budget compiles faster, and the code it yields is fast
      enough for the stages (10M events, alternated: the DAG's layout 201.4,
      186.1 s with the JDK's defaults, 179.6, 177.6 s with these; one
      application 139.3, 132.8 -> 120.7, 118.8 s; docs/performance.md). Not
      for a ``long_running`` driver (the speed layer's), which repays the
      JDK's inlining many times over.
    * The bare local file system for ``file:`` paths (the warehouse, landing
      files). Hadoop's own sets the permissions of every file it writes, and of
      its checksum file, by starting a ``chmod`` process: without Hadoop's native
      library, which no package here provides, that is its only way. The bare one
      does it through Java: 1,500 one-day files of a table in 3.9 s instead of
      9.0 s. Hadoop looks the class up before spark.jars are loaded, so its jar
      is on the class path of the driver and of YARN's executors (this machine's)."""
    options = ["-XX:+UseParallelGC"]
    if on_yarn or client_compiler:
        options.append("-XX:TieredStopAtLevel=1")
    elif not long_running:
        options += OPTIMISING_COMPILER_INLINING
    if not os.environ.get("SPARK_CONF_DIR") and SPARK_DRIVER_CLASS_ARCHIVE.exists():
        options.append(f"-XX:SharedArchiveFile={SPARK_DRIVER_CLASS_ARCHIVE}")
    local_fs = bare_local_fs_jar()
    if not local_fs.exists():
        raise PlatformNotConfigured(f"jar not downloaded: {local_fs}; run `make bootstrap`")
    return {"spark.driver.extraJavaOptions": " ".join(options),
            "spark.driver.extraClassPath": str(local_fs), "spark.executor.extraClassPath": str(local_fs),
            "spark.hadoop.fs.file.impl": "com.globalmentor.apache.hadoop.fs.BareLocalFileSystem"}


def spark_conf(s: dict[str, str] | None = None) -> dict[str, str]:
    """Spark settings that make ``iceberg`` the Iceberg JDBC catalog."""
    s = s or settings()
    prefix = f"spark.sql.catalog.{CATALOG_NAME}"
    return {
        "spark.jars": ",".join(spark_jars()),
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        prefix: "org.apache.iceberg.spark.SparkCatalog",
        f"{prefix}.catalog-impl": "org.apache.iceberg.jdbc.JdbcCatalog",
        f"{prefix}.uri": jdbc_url(s),
        f"{prefix}.jdbc.user": s["PG_CATALOG_USER"],
        f"{prefix}.jdbc.password": s["PG_CATALOG_PASSWORD"],
        # V1 is the schema PyIceberg and Trino also read; it adds view support.
        f"{prefix}.jdbc.schema-version": "V1",
        f"{prefix}.warehouse": warehouse_uri(s),
        # Other processes publish to the same tables: a cached table would hide
        # their commits (and base a new branch on a stale main) for 30 s.
        f"{prefix}.cache-enabled": "false",
        # A restarted PostgreSQL ends pooled connections with 57P01
        # (admin_shutdown); Iceberg reconnects and retries only on the states listed
        # here and its 08xxx defaults, so without them a long-lived session fails.
        f"{prefix}.retryable_status_codes": "57P01,57P02,57P03",
        "spark.sql.defaultCatalog": CATALOG_NAME,
        "spark.sql.session.timeZone": "UTC",
    }


def pyiceberg_properties(s: dict[str, str] | None = None) -> dict[str, str]:
    s = s or settings()
    return {
        "type": "sql",
        "uri": f"postgresql+psycopg2://{s['PG_CATALOG_USER']}:{s['PG_CATALOG_PASSWORD']}@{s['PG_HOST']}:{s['PG_PORT']}/{s['ICEBERG_CATALOG_DB']}",
        "warehouse": warehouse_uri(s),
        # A pooled connection may have died with a PostgreSQL restart.
        "pool_pre_ping": "true",
    }


def load_pyiceberg_catalog():
    from pyiceberg.catalog import load_catalog

    return load_catalog(CATALOG_NAME, **pyiceberg_properties())


def trino_catalog_properties(s: dict[str, str] | None = None) -> dict[str, str]:
    """Contents of Trino's etc/catalog/iceberg.properties (Trino 476 property names)."""
    s = s or settings()
    props = {
        "connector.name": "iceberg",
        "iceberg.catalog.type": "jdbc",
        "iceberg.jdbc-catalog.catalog-name": CATALOG_NAME,
        "iceberg.jdbc-catalog.driver-class": "org.postgresql.Driver",
        "iceberg.jdbc-catalog.connection-url": jdbc_url(s),
        # Trino's own role: reads the catalog, updates table pointers (maintenance).
        "iceberg.jdbc-catalog.connection-user": s["PG_TRINO_USER"],
        "iceberg.jdbc-catalog.connection-password": s["PG_TRINO_PASSWORD"],
        "iceberg.jdbc-catalog.default-warehouse-dir": warehouse_uri(s),
        # Same catalog table layout Spark and PyIceberg use (see spark_conf).
        "iceberg.jdbc-catalog.schema-version": "V1",
    }
    if warehouse_uri(s).startswith("file:"):
        # Trino's native local file system serves both `local:` and the `file:`
        # locations Spark writes; paths resolve from the root. (The Hadoop file
        # system, fs.hadoop.enabled, needs HDFS jars the trino-iceberg plugin
        # artifact does not ship.)
        props["fs.native-local.enabled"] = "true"
        props["local.location"] = "/"
    else:  # HDFS (docker-compose): the trino image ships the Hadoop file system
        props["fs.hadoop.enabled"] = "true"
    return props
