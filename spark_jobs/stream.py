"""speed layer: a Kafka topic -> bronze.interactions_live, gold.live_app_version_latency,
gold.live_sessions, gold.live_daily_active_users and ops.stream_progress
(docs/speed_layer.md).

    python -m spark_jobs.stream [--topic interactions] ...   # spark-submit: docs/speed_layer.md
    python -m spark_jobs.stream --until-caught-up            # what the topic holds now, then stop

One application runs four streaming queries, each with its checkpoint in
``--checkpoint-dir``/<query>:

* ``bronze`` reads the topic: every message classified as the batch ingest
  classifies a landing line (one parse per message); accepted events to
  bronze.interactions_live, rejected ones to bronze.rejected_rows (dataset
  ``user_interactions_live``).
* The others read bronze.interactions_live's appends (Iceberg's streaming
  source: typed rows, no second parse), with the watermark:
  ``latency``: 1-minute event-time windows of page loads per app version, exact
  percentiles, written once the watermark passes the window's end;
  ``sessions``: each user's open sessions as state (session windows), a
  session written once the watermark passes its end plus the gap;
  ``dau``: distinct users per date so far, from the (date, user) pairs seen.

Exactly once: Spark's checkpoint replays a batch whose end it did not record,
with the same offsets; each Iceberg commit of a batch carries its query and
batch id in the snapshot summary, and a batch already committed to a table is
not committed again (``BatchCommits``). Events older than the watermark when
they arrive stay in bronze but are not folded into windows, sessions or DAU:
each query counts them in ops.stream_progress (``late_events``).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import queue
import signal
import sys
import threading
import time

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQueryListener

from iceberg_catalog import config
from iceberg_catalog.tables import TableSpec, create_tables
from spark_jobs import failpoints
from spark_jobs.common import conform, sql_str
from spark_jobs.ingest import INTERACTION_COLUMNS, REJECTED_ROWS
from spark_jobs.quality.publishing import SPEED_LAYER_PROPERTY as QUERY_PROPERTY
from spark_jobs.sessions import STAGE as SESSIONS_STAGE
from spark_jobs.transforms import live as L
from spark_jobs.transforms import performance as P
from spark_jobs.transforms import sessions as S

LIVE_INTERACTIONS = TableSpec(
    "bronze.interactions_live",
    f"{INTERACTION_COLUMNS}, source_file STRING, partition INT NOT NULL, offset BIGINT NOT NULL", "event_date",
    "Accepted events of the Kafka topic, typed as bronze.interactions, with their partition and offset")
LIVE_LATENCY = TableSpec(
    "gold.live_app_version_latency",
    "window_start TIMESTAMP NOT NULL, window_end TIMESTAMP NOT NULL, app_version STRING NOT NULL, events BIGINT, "
    "p50_ms DOUBLE, p95_ms DOUBLE, p99_ms DOUBLE", "days(window_start)",
    "Page-load time percentiles per app version and 1-minute event-time window")
LIVE_SESSIONS = TableSpec("gold.live_sessions", SESSIONS_STAGE.output("gold.sessions").table.columns, "session_date",
                          "Sessions of the live events, written once closed")
LIVE_DAU = TableSpec("gold.live_daily_active_users",
                     "event_date DATE NOT NULL, dau BIGINT NOT NULL, updated_at TIMESTAMP NOT NULL", "",
                     "Distinct users per date of the live events so far")
STREAM_PROGRESS = TableSpec(
    "ops.stream_progress",
    "query STRING NOT NULL, batch_id BIGINT NOT NULL, recorded_at TIMESTAMP NOT NULL, input_rows BIGINT, "
    "input_rows_per_second DOUBLE, processed_rows_per_second DOUBLE, batch_duration_ms BIGINT, "
    "watermark TIMESTAMP, late_events BIGINT, state_rows BIGINT, state_memory_bytes BIGINT, "
    "kafka_to_commit_p50_ms BIGINT, kafka_to_commit_p95_ms BIGINT, kafka_to_commit_max_ms BIGINT, "
    "driver_heap_used_bytes BIGINT, end_offsets STRING",
    "days(recorded_at)", "One row per micro-batch of each speed-layer query")
TABLES = (LIVE_INTERACTIONS, LIVE_LATENCY, LIVE_SESSIONS, LIVE_DAU, STREAM_PROGRESS, REJECTED_ROWS)

BATCH_PROPERTY = "speed-layer.batch-id"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spark_jobs/stream.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bootstrap", default=None, help="Kafka host:port (default: infra/kafka.sh's broker)")
    p.add_argument("--topic", default="interactions")
    p.add_argument("--checkpoint-dir", default=str(config.PLATFORM_STATE / "stream" / "checkpoints"),
                   help="one folder per query; delete it to start over from the topic's earliest offsets")
    p.add_argument("--trigger-seconds", type=float, default=5.0,
                   help="bronze.interactions_live: a micro-batch every this many seconds")
    p.add_argument("--state-trigger-seconds", type=float, default=30.0,
                   help="the stateful queries (latency, sessions, dau): a micro-batch every this many seconds")
    p.add_argument("--watermark-seconds", type=int, default=120,
                   help="the watermark trails the largest event time seen by this much")
    p.add_argument("--session-gap-seconds", type=int, default=S.DEFAULT_GAP_SECONDS)
    p.add_argument("--latency-actions", default=",".join(P.DEFAULT_LATENCY_ACTIONS),
                   help="action types whose duration is a page-load time (comma-separated)")
    p.add_argument("--max-offsets-per-trigger", type=int, default=None,
                   help="at most this many messages per micro-batch and query (default: all there are)")
    p.add_argument("--until-caught-up", action="store_true",
                   help="stop once every message the topic holds at the start is in every table it leads to "
                        "(micro-batches every second)")
    p.add_argument("--run-seconds", type=float, default=None, help="stop after this long (default: until SIGTERM)")
    return p


# --- exactly-once commits ------------------------------------------------------------


class BatchCommits:
    """Commits a micro-batch's rows to a table once, whatever the retries.

    A query's batches commit in order, so the last batch id a query committed
    to a table says whether a replayed batch is done there. A query is known by
    the id Spark keeps in its checkpoint (a new checkpoint is a new query, its
    batches numbered from 0 again). That last id is read from the table's
    snapshot summaries once per table and query, then kept."""

    def __init__(self, spark: SparkSession):
        self.spark = spark
        self.last: dict[tuple[str, str], int] = {}
        self.lock = threading.Lock()
        self.query_ids: dict[str, str] = {}
        self.known = threading.Condition()

    def _last_committed(self, spec: TableSpec, query_id: str) -> int:
        with self.lock:
            if (spec.name, query_id) not in self.last:
                row = self.spark.sql(
                    f"SELECT max(CAST(summary['{BATCH_PROPERTY}'] AS BIGINT)) FROM {spec.identifier}.snapshots "
                    f"WHERE summary['{QUERY_PROPERTY}'] = '{sql_str(query_id)}'").first()
                self.last[(spec.name, query_id)] = -1 if row[0] is None else row[0]
            return self.last[(spec.name, query_id)]

    def commit(self, spec: TableSpec, df: DataFrame, query: str, batch_id: int, overwrite=None) -> bool:
        """Appends ``df`` (or replaces the rows ``overwrite`` selects); False if the batch was committed before."""
        with self.known:  # a first batch can start before start() has returned the query's id
            self.known.wait_for(lambda: query in self.query_ids)
            query_id = self.query_ids[query]
        if batch_id <= self._last_committed(spec, query_id):
            return False
        writer = (conform(df, spec).writeTo(spec.identifier)
                  .option(f"snapshot-property.{QUERY_PROPERTY}", query_id)
                  .option(f"snapshot-property.{BATCH_PROPERTY}", str(batch_id)))
        writer.append() if overwrite is None else writer.overwrite(overwrite)
        with self.lock:
            self.last[(spec.name, query_id)] = batch_id
        failpoints.reached(f"stream_committed:{spec.name}")
        return True


# --- progress -------------------------------------------------------------------------


class ProgressRecorder(StreamingQueryListener):
    """Turns each query's progress events into ops.stream_progress rows; the bronze
    query writes them with its next batch (``drain``)."""

    def __init__(self, spark: SparkSession):
        self.rows: queue.Queue = queue.Queue()
        self.latencies: dict[int, tuple] = {}  # bronze batch id -> Kafka-to-commit p50, p95, max (ms)
        self.runtime = spark.sparkContext._jvm.java.lang.Runtime.getRuntime()

    def onQueryStarted(self, event) -> None:
        pass

    def onQueryIdle(self, event) -> None:
        pass

    def onQueryTerminated(self, event) -> None:
        pass

    def onQueryProgress(self, event) -> None:
        p = event.progress
        operators = p.stateOperators or []
        latency = self.latencies.pop(p.batchId, (None, None, None)) if p.name == "bronze" else (None, None, None)
        watermark = (p.eventTime or {}).get("watermark")
        if watermark and watermark.startswith("1970-01-01T00:00:00"):  # none yet: Spark reports the epoch
            watermark = None
        self.rows.put({
            "query": p.name, "batch_id": p.batchId, "recorded_at": p.timestamp,
            "input_rows": p.numInputRows, "input_rows_per_second": p.inputRowsPerSecond,
            "processed_rows_per_second": p.processedRowsPerSecond, "batch_duration_ms": p.batchDuration,
            "watermark": watermark, "late_events": sum(o.numRowsDroppedByWatermark for o in operators),
            "state_rows": sum(o.numRowsTotal for o in operators),
            "state_memory_bytes": sum(o.memoryUsedBytes for o in operators),
            "kafka_to_commit_p50_ms": latency[0], "kafka_to_commit_p95_ms": latency[1],
            "kafka_to_commit_max_ms": latency[2],
            "driver_heap_used_bytes": self.runtime.totalMemory() - self.runtime.freeMemory(),
            "end_offsets": json.dumps([json.loads(s.endOffset) for s in p.sources if s.endOffset]),
        })

    def drain(self, spark: SparkSession) -> None:
        rows = []
        while not self.rows.empty():
            rows.append(self.rows.get())
        if rows:
            df = spark.createDataFrame(rows, schema=_progress_input_schema())
            conform(df.withColumn("recorded_at", F.to_timestamp("recorded_at"))
                    .withColumn("watermark", F.to_timestamp("watermark")), STREAM_PROGRESS).writeTo(
                STREAM_PROGRESS.identifier).append()


def _progress_input_schema() -> str:
    columns = [c.strip().split(" ")[:2] for c in STREAM_PROGRESS.columns.split(",")]
    return ", ".join(f"{name} {'STRING' if name in ('recorded_at', 'watermark') else type_}" for name, type_ in columns)


# --- the queries ------------------------------------------------------------------------


class SpeedLayer:
    def __init__(self, spark: SparkSession, args: argparse.Namespace):
        self.spark, self.args = spark, args
        self.commits = BatchCommits(spark)
        self.progress = ProgressRecorder(spark)
        self.latency_actions = [a.strip() for a in args.latency_actions.split(",") if a.strip()]
        # Bronze is what must be fresh; the stateful queries write only what the watermark
        # closes, minutes behind anyway, and each of their batches costs a state commit.
        self.triggers = {"bronze": args.trigger_seconds, "state": args.state_trigger_seconds}
        if args.until_caught_up:
            self.triggers = {"bronze": 1.0, "state": 1.0}

    def source(self) -> DataFrame:
        reader = (self.spark.readStream.format("kafka")
                  .option("kafka.bootstrap.servers", self.args.bootstrap or config.kafka_bootstrap())
                  .option("subscribe", self.args.topic)
                  .option("startingOffsets", "earliest")
                  # A broker that is down for a while is waited for, not a reason to stop.
                  .option("fetchOffset.numRetries", "100000")
                  .option("fetchOffset.retryIntervalMs", "2000"))
        if self.args.max_offsets_per_trigger:
            reader = reader.option("maxOffsetsPerTrigger", str(self.args.max_offsets_per_trigger))
        return reader.load()

    def classified(self) -> DataFrame:
        return L.classify_messages(L.messages(self.source()), self.args.topic)

    def live_events(self) -> DataFrame:
        """bronze.interactions_live's new rows as a stream, with the watermark: the
        stateful queries' input. Iceberg's source reads each append once and skips
        the snapshots compaction makes (they add no rows)."""
        return (self.spark.readStream.format("iceberg").load(LIVE_INTERACTIONS.identifier)
                .withWatermark("event_ts", f"{self.args.watermark_seconds} seconds"))

    # bronze -----------------------------------------------------------------------------
    def write_bronze(self, batch: DataFrame, batch_id: int) -> None:
        self.progress.drain(self.spark)
        classified = batch.persist()
        try:
            counts = classified.agg(
                F.count(F.when(F.col("reject_reason").isNull(), 1)).alias("accepted"),
                F.count(F.when(F.col("reject_reason").isNotNull(), 1)).alias("rejected"),
                F.percentile(F.unix_millis("kafka_ts"), F.array(F.lit(0.5), F.lit(0.05))).alias("ts_quantiles"),
                F.min(F.unix_millis("kafka_ts")).alias("first_ts")).first()
            if counts["accepted"]:
                self.commits.commit(LIVE_INTERACTIONS, L.accepted_live(classified), "bronze", batch_id)
            if counts["rejected"]:
                self.commits.commit(REJECTED_ROWS, L.rejected_live(classified, f"stream:bronze:{batch_id}"),
                                    "bronze", batch_id)
            if counts["first_ts"] is not None:
                now_ms = int(time.time() * 1000)
                median_ts, p05_ts = counts["ts_quantiles"]
                latency = (int(now_ms - median_ts), int(now_ms - p05_ts), now_ms - counts["first_ts"])
                self.progress.latencies[batch_id] = latency
                print(f"bronze batch {batch_id}: {counts['accepted']} accepted, {counts['rejected']} rejected; "
                      f"Kafka to commit p50 {latency[0]} ms, max {latency[2]} ms", flush=True)
        finally:
            classified.unpersist()

    # latency ----------------------------------------------------------------------------
    def latency_windows(self) -> DataFrame:
        # Page loads are picked inside the aggregates, not by a filter: Spark would
        # push a filter below the watermark, which would then trail page loads only.
        load_ms = F.when(F.col("action_type").isin(self.latency_actions), F.col("duration_ms"))
        return (self.live_events().groupBy(F.window("event_ts", "1 minute").alias("window"), "app_version")
                .agg(F.count(load_ms).alias("events"), P.latency_percentiles(load_ms))
                .select(F.col("window.start").alias("window_start"), F.col("window.end").alias("window_end"),
                        "app_version", "events", *P.percentile_columns()))

    # The stateful queries' outputs are small (closed windows and sessions, dates):
    # each writer collects its batch once, since every action on it would run the
    # batch's stateful step again.
    def write_latency(self, batch: DataFrame, batch_id: int) -> None:
        rows = batch.where(F.col("events") > 0).collect()
        if rows:
            self.commits.commit(LIVE_LATENCY, self.spark.createDataFrame(rows, batch.schema), "latency", batch_id)

    # sessions ---------------------------------------------------------------------------
    def closed_sessions(self) -> DataFrame:
        return L.sessions_of_stream(self.live_events(), self.args.session_gap_seconds)

    def write_sessions(self, batch: DataFrame, batch_id: int) -> None:
        rows = batch.collect()
        if rows:
            sessions = self.spark.createDataFrame(rows, batch.schema).join(self.users(), "user_id", "left")
            self.commits.commit(LIVE_SESSIONS, S.session_rows(sessions), "sessions", batch_id)

    def users(self) -> DataFrame:
        """silver.user_dim's device and country, as the batch enrich joins them; none before the first batch run."""
        if self.spark.catalog.tableExists("iceberg.silver.user_dim"):
            return self.spark.table("iceberg.silver.user_dim").select("user_id", *S.SESSION_DIMENSIONS)
        return self.spark.createDataFrame([], "user_id STRING, device_type STRING, country STRING")

    # dau --------------------------------------------------------------------------------
    def user_days(self) -> DataFrame:
        # Inside a streaming query current_timestamp() is the batch's own time, kept in
        # the offset log (the same on a replay): a (date, user) pair whose first and
        # last batch times are equal was first seen in the batch that emits it.
        return (self.live_events().withColumn("seen_at", F.current_timestamp())
                .groupBy(F.window("event_ts", "1 day").alias("day"), "user_id")
                .agg(F.min("seen_at").alias("first_seen"), F.max("seen_at").alias("last_seen"))
                .select(F.to_date("day.start").alias("event_date"), "user_id", "first_seen", "last_seen"))

    def write_dau(self, batch: DataFrame, batch_id: int) -> None:
        new_users = {r["event_date"]: r["n"] for r in batch.where(F.col("first_seen") == F.col("last_seen"))
                     .groupBy("event_date").agg(F.count(F.lit(1)).alias("n")).collect()}
        if not new_users:
            return
        # A row per date: the table is rewritten whole, one small file, which compaction folds.
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        rows = {r["event_date"]: (r["event_date"], r["dau"], r["updated_at"])
                for r in self.spark.table(LIVE_DAU.identifier).collect()}
        for date, n in new_users.items():
            rows[date] = (date, (rows[date][1] if date in rows else 0) + n, now)
        self.commits.commit(LIVE_DAU, self.spark.createDataFrame(list(rows.values()), LIVE_DAU.columns.replace(
            " NOT NULL", "")), "dau", batch_id, overwrite=F.lit(True))

    # running ----------------------------------------------------------------------------
    def start(self) -> list:
        create_tables(self.spark, TABLES)
        self.spark.streams.addListener(self.progress)
        queries = [self._start("bronze", self.classified(), self.write_bronze, "append"),
                   self._start("latency", self.latency_windows(), self.write_latency, "append"),
                   self._start("sessions", self.closed_sessions(), self.write_sessions, "append"),
                   self._start("dau", self.user_days(), self.write_dau, "update")]
        return queries

    def _start(self, name: str, df: DataFrame, write, mode: str):
        # Bronze in a scheduler pool of its own (spark.scheduler.mode FAIR): its jobs
        # get half the cores while the stateful queries' batches run, not a place in line.
        pool = "bronze" if name == "bronze" else "state"

        def write_in_pool(batch: DataFrame, batch_id: int) -> None:
            self.spark.sparkContext.setLocalProperty("spark.scheduler.pool", pool)  # the callback's own thread
            write(batch, batch_id)

        writer = (df.writeStream.queryName(name).outputMode(mode).foreachBatch(write_in_pool)
                  .option("checkpointLocation", os.path.join(self.args.checkpoint_dir, name))
                  .trigger(processingTime=f"{self.triggers[pool]} seconds"))
        self.spark.sparkContext.setLocalProperty("spark.scheduler.pool", pool)  # the query's thread inherits it
        try:
            query = writer.start()
        finally:
            self.spark.sparkContext.setLocalProperty("spark.scheduler.pool", None)
        with self.commits.known:
            self.commits.query_ids[name] = query.id
            self.commits.known.notify_all()
        return query

    def stop(self, queries) -> None:
        for q in queries:
            q.stop()
        self.spark.streams.removeListener(self.progress)
        self.progress.drain(self.spark)


def topic_end_offsets(bootstrap: str, topic: str) -> dict[str, int]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "speed-layer-end-offsets"})
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        return {str(p): consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in partitions}
    finally:
        consumer.close()


def caught_up(queries: list, topic: str, end_offsets: dict[str, int]) -> bool:
    """Bronze has read up to ``end_offsets`` and no query has data or a batch running."""
    progress = queries[0].lastProgress
    read = json.loads(progress["sources"][0]["endOffset"]).get(topic, {}) if progress else {}
    if any(read.get(p, 0) < offset for p, offset in end_offsets.items() if offset > 0):
        return False
    return all(not q.status["isDataAvailable"] and not q.status["isTriggerActive"] for q in queries)


def run(spark: SparkSession, args: argparse.Namespace, stopping: threading.Event | None = None) -> None:
    """Runs the speed layer on ``spark`` until ``stopping`` is set, --run-seconds
    pass, or, with --until-caught-up, the topic's messages at the start are done;
    a query's failure stops the others and is raised."""
    stopping = stopping or threading.Event()
    end_offsets = topic_end_offsets(args.bootstrap or config.kafka_bootstrap(), args.topic) if args.until_caught_up else {}
    layer = SpeedLayer(spark, args)
    queries = layer.start()
    print(f"speed layer: {len(queries)} queries on topic {args.topic}; Spark UI {spark.sparkContext.uiWebUrl}",
          flush=True)
    deadline = None if args.run_seconds is None else time.monotonic() + args.run_seconds
    quiet_since = None
    try:
        while not stopping.is_set():
            failed = [q for q in queries if not q.isActive and q.exception() is not None]
            if failed:
                raise failed[0].exception()
            if args.until_caught_up:
                # Quiet for two trigger intervals: each query has looked for data after the
                # last commit upstream of it, and run the batch that applies the watermark.
                quiet_since = (quiet_since or time.monotonic()) if caught_up(queries, args.topic, end_offsets) else None
                if quiet_since is not None and time.monotonic() - quiet_since > 2 * max(layer.triggers.values()) + 1:
                    break
            if deadline is not None and time.monotonic() >= deadline:
                break
            stopping.wait(0.5)
    finally:
        layer.stop(queries)


def main(argv: list[str] | None = None) -> int:
    from spark_jobs.spark_session import build_spark_session

    args = parser().parse_args(argv)
    spark = build_spark_session(f"speed layer {args.topic}", {
        "spark.jars": ",".join(config.spark_jars() + config.spark_kafka_jars()),
        # One shuffle partition per core, each a state store of every stateful query
        # committed every micro-batch, and Spark's default stores (in memory, with
        # delta files): at 10,000 events/s the Kafka-to-commit median was 7 s with
        # 4 partitions of RocksDB stores, 5 s so (docs/performance.md).
        "spark.sql.shuffle.partitions": os.environ.get("STREAM_SHUFFLE_PARTITIONS", "2"),
        "spark.scheduler.mode": "FAIR",
    }, long_running=True)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    run(spark, args, stopping)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
