"""Speed-layer benchmark: the stream (spark_jobs/stream.py, local mode, as
`make stream-start` runs it) fed by the producer at a held rate, events stamped
with the time they are sent, beside DuckDB computing the same tables from the
same events.

    python -m bench.stream                                # 10,000 events/s for 10 minutes
    python -m bench.stream --rates 10000,15000,20000 --seconds 120

For each rate, on a topic of its own: the rate the producer held; Kafka lag
(messages in the topic the bronze query has not committed) sampled every 5 s,
its mean over the first and the last third of the run after the warm-up
(flat = keeping up);
freshness, the time from a probe event's append to Kafka to its first sight in
bronze.interactions_live through Trino, polled every second (median, p95 of
the probes sent after --warmup-seconds);
state rows and the driver's used heap from ops.stream_progress, first and last
minute; and the load average. DuckDB then computes the live tables from a file
of the same events. Uses the bench catalog (iceberg_bench) and a Trino instance
of its own (.local/trino-bench). Results: bench/results/stream-<rates>.json and .md.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import threading
import time
import uuid
from pathlib import Path

from bench.run import DATA_CACHE, PY, RESULTS, ROOT, load_average, machine, prepare_platform  # noqa: I001 (sets the bench catalog)
from iceberg_catalog import config
from spark_jobs.stream import topic_end_offsets
from speed_layer import producer as P

DEMO_LANDING = ROOT / ".local" / "landing" / "user_interactions"


def landing() -> Path:
    """make demo's interactions, else 300,000 generated ones (cached)."""
    if DEMO_LANDING.exists():
        return DEMO_LANDING
    out = DATA_CACHE / "stream-landing"
    if not (out / "user_interactions").exists():
        subprocess.run([PY, "-m", "datagen", "--out", str(out), "--mode", "realistic", "--events", "300000",
                        "--days", "35", "--start-date", "2023-07-01"], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return out / "user_interactions"


def committed(checkpoint: Path, topic: str) -> int:
    """Messages the bronze query committed: the offsets of its last batch in the commit log."""
    last = max((int(p.name) for p in (checkpoint / "bronze" / "commits").glob("[0-9]*")), default=None)
    if last is None:
        return 0
    offsets = (checkpoint / "bronze" / "offsets" / str(last)).read_text().splitlines()[-1]
    return sum(json.loads(offsets).get(topic, {}).values())


def endless(path: Path):
    while True:
        yield from P.landing_messages(path)


def run_rate(rate: int, seconds: float, trigger: float, warmup: float, bootstrap: str, trino) -> dict:
    topic, run = f"bench-{rate}-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex[:6]
    checkpoint = ROOT / ".local" / "bench-stream" / topic
    P.ensure_topic(bootstrap, topic, 3)
    log = open(ROOT / ".local" / "logs" / f"{topic}.out", "w")
    stream = subprocess.Popen([PY, "-m", "spark_jobs.stream", "--topic", topic, "--bootstrap", bootstrap,
                               "--checkpoint-dir", str(checkpoint), "--trigger-seconds", str(trigger)],
                              cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                              env={**os.environ, "SPARK_MASTER": "local[2]", "SPARK_DRIVER_MEMORY": "2g"})
    while "speed layer:" not in Path(log.name).read_text(errors="replace"):
        assert stream.poll() is None, Path(log.name).read_text()[-2000:]
        time.sleep(1)
    started, done = time.time(), threading.Event()
    sent_probes: dict[str, float] = {}
    seen_probes: dict[str, float] = {}
    lag: list[tuple[float, int]] = []
    loads: list[float] = []

    def probes() -> None:
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": bootstrap})
        n = 0
        while not done.is_set():
            user = f"probe-{run}-{n}"
            event = {"user_id": user, "timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
                     "action_type": "page_view", "page_id": "probe", "duration_ms": 1, "app_version": "0.0.1"}
            producer.produce(topic, json.dumps(event).encode(), key=user,
                             on_delivery=lambda err, msg, u=user: sent_probes.setdefault(u, time.time()))
            producer.flush()
            n += 1
            done.wait(2)

    def poll() -> None:
        cursor = trino.connect("etl", schema="bronze").cursor()
        while not done.is_set() or len(seen_probes) < len(sent_probes):
            # Only files whose event times reach the oldest unseen probe: Trino skips the
            # rest by their column statistics, so the poll costs little whatever the table holds.
            unseen = [t for u, t in list(sent_probes.items()) if u not in seen_probes]
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(min(unseen, default=time.time()) - 60))
            cursor.execute(f"SELECT user_id FROM iceberg.bronze.interactions_live "
                           f"WHERE event_ts >= TIMESTAMP '{since}' AND user_id LIKE 'probe-{run}-%'")
            now = time.time()
            for (user,) in cursor.fetchall():
                seen_probes.setdefault(user, now)
            if done.is_set() and time.time() - stopped_at[0] > 120:
                break
            time.sleep(1)

    def sample() -> None:
        while not done.is_set():
            lag.append((time.time() - started, sum(topic_end_offsets(bootstrap, topic).values()) - committed(checkpoint, topic)))
            loads.append(load_average())
            done.wait(5)

    stopped_at = [0.0]
    threads = [threading.Thread(target=f, daemon=True) for f in (probes, poll, sample)]
    for t in threads:
        t.start()
    sent = P.produce(P.live_timestamps(endless(landing())), bootstrap, topic, rate, None, seconds)
    held = sent / (time.time() - started)
    stopped_at[0] = time.time()
    done.set()
    threads[1].join(timeout=150)
    stream.send_signal(signal.SIGTERM)
    stream.wait(timeout=300)
    steady = [(t, v) for t, v in lag if t >= warmup] or lag
    thirds = max(1, len(steady) // 3)
    # The first minutes are the JVM's warm-up: the stream catches up on what arrived meanwhile.
    fresh = sorted(seen_probes[u] - sent_probes[u] for u in seen_probes
                   if u in sent_probes and sent_probes[u] - started >= warmup)
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(started))
    state = trino.query(
        "SELECT query, recorded_at, state_rows, driver_heap_used_bytes FROM iceberg.ops.stream_progress "
        f"WHERE query IN ('latency', 'sessions', 'dau') AND recorded_at >= TIMESTAMP '{since}' ORDER BY recorded_at",
        "etl")
    first_minute = [r for r in state if (r[1] - state[0][1]).total_seconds() < 60] if state else []
    last_minute = [r for r in state if (state[-1][1] - r[1]).total_seconds() < 60] if state else []
    return {
        "rate": rate, "seconds": seconds, "events_sent": sent, "rate_held": round(held),
        "lag_first_third": round(statistics.mean(v for _, v in steady[:thirds])) if steady else None,
        "lag_last_third": round(statistics.mean(v for _, v in steady[-thirds:])) if steady else None,
        "lag_max": max((v for _, v in steady), default=None),
        "freshness_probes": len(fresh), "probes_unseen": len(set(sent_probes) - set(seen_probes)),
        "freshness_p50_s": round(fresh[len(fresh) // 2], 1) if fresh else None,
        "freshness_p95_s": round(fresh[int(len(fresh) * 0.95)], 1) if fresh else None,
        "state_rows_first_minute": max((r[2] for r in first_minute), default=None),
        "state_rows_last_minute": max((r[2] for r in last_minute), default=None),
        "driver_heap_mb_first_minute": max((r[3] >> 20 for r in first_minute), default=None),
        "driver_heap_mb_last_minute": max((r[3] >> 20 for r in last_minute), default=None),
        "load_avg_mean": round(statistics.mean(loads), 1) if loads else None,
    }


def duckdb_baseline(events: int, rate: int) -> dict:
    """DuckDB computing the live tables (1-minute latency windows, sessions, DAU)
    from the events the producer sent: the landing file read over as many times
    as it took, each event stamped as sent (start + its position / rate)."""
    import duckdb

    source = sorted(landing().rglob("*.csv"))[0]
    started = time.time()
    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.execute(f"""CREATE TABLE e AS SELECT * FROM read_csv('{source}', all_varchar=true, ignore_errors=true,
        header=true)""")
    con.execute(f"""CREATE TABLE ev AS SELECT user_id,
          TIMESTAMP '2026-01-01' + to_microseconds(CAST(n * 1000000 // {rate} AS BIGINT)) AS ts,
          action_type, page_id, CAST(duration_ms AS BIGINT) AS duration_ms, app_version
        FROM (SELECT e.*, row_number() OVER () + r.i * (SELECT count(*) FROM e) AS n
              FROM e, range(CAST(ceil({events} / (SELECT count(*) FROM e)) AS BIGINT)) r(i))
        WHERE n <= {events} AND TRY_CAST(timestamp AS TIMESTAMP) IS NOT NULL AND TRY_CAST(duration_ms AS BIGINT) >= 0
          AND regexp_full_match(app_version, '\\d+\\.\\d+\\.\\d+') AND user_id <> ''""")
    con.execute("""SELECT time_bucket(INTERVAL 1 MINUTE, ts) w, app_version, count(*),
        quantile_cont(duration_ms, [0.5, 0.95, 0.99]) FROM ev WHERE action_type = 'page_view' GROUP BY ALL""").fetchall()
    con.execute("""SELECT user_id, session, min(ts), max(ts), count(*), arg_max(duration_ms,
        (ts, action_type, page_id, duration_ms)) FROM (SELECT *, sum(new) OVER (PARTITION BY user_id ORDER BY ts,
        action_type, page_id, duration_ms) AS session FROM (SELECT *, coalesce(epoch(ts) - epoch(lag(ts) OVER
        (PARTITION BY user_id ORDER BY ts, action_type, page_id, duration_ms)) > 1800, true)::int AS new FROM ev))
        GROUP BY ALL""").fetchall()
    con.execute("SELECT CAST(ts AS DATE), count(DISTINCT user_id) FROM ev GROUP BY ALL").fetchall()
    seconds = time.time() - started
    return {"events": events, "seconds": round(seconds, 1), "events_per_s": round(events / seconds)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", default="10000", help="events per second, comma-separated; one run each")
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--trigger-seconds", type=float, default=5)
    ap.add_argument("--warmup-seconds", type=float, default=120,
                    help="freshness counts the probes sent after this (default 120)")
    args = ap.parse_args(argv)
    from tests.e2e.trino_service import start_trino, stop_trino

    prepare_platform()
    subprocess.run(["bash", str(ROOT / "infra" / "kafka.sh"), "start"], check=True, stdout=subprocess.DEVNULL)
    bootstrap = config.kafka_bootstrap()
    trino = start_trino(ROOT / ".local" / "trino-bench")
    results = {"machine": machine(), "load_avg_before": load_average(), "runs": []}
    try:
        for rate in (int(r) for r in args.rates.split(",")):
            result = run_rate(rate, args.seconds, args.trigger_seconds, args.warmup_seconds, bootstrap, trino)
            print(json.dumps(result), flush=True)
            results["runs"].append(result)
    finally:
        stop_trino(trino)
    first = results["runs"][0]
    results["duckdb"] = duckdb_baseline(first["events_sent"], first["rate"])
    name = f"stream-{args.rates.replace(',', '-')}-{int(args.seconds)}s"
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2, default=str))
    lines = ["| rate asked | held | Kafka lag, first third -> last third (max) | freshness p50 / p95 (probes) | "
             "state rows, first -> last minute | driver heap MB, first -> last minute | load |", "|---" * 7 + "|"]
    for r in results["runs"]:
        lines.append(f"| {r['rate']:,} | {r['rate_held']:,} | {r['lag_first_third']:,} -> {r['lag_last_third']:,} "
                     f"({r['lag_max']:,}) | {r['freshness_p50_s']} s / {r['freshness_p95_s']} s "
                     f"({r['freshness_probes']} probes, {r['probes_unseen']} unseen) | {r['state_rows_first_minute']} -> "
                     f"{r['state_rows_last_minute']} | {r['driver_heap_mb_first_minute']} -> "
                     f"{r['driver_heap_mb_last_minute']} | {r['load_avg_mean']} |")
    d = results["duckdb"]
    lines.append(f"\nDuckDB, the same tables from {d['events']:,} events in a file: {d['seconds']} s "
                 f"({d['events_per_s']:,} events/s).")
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
