"""Replays landing interaction files into a Kafka topic, one JSON message per event.

    python -m speed_layer.producer [--landing .local/landing/user_interactions]
        [--topic interactions] [--partitions 3] [--rate 10000] [--max-events N] [--max-seconds S]
        [--live-timestamps]

Each CSV row becomes ``{"user_id": ..., "timestamp": ..., "action_type": ...,
"page_id": ..., "duration_ms": ..., "app_version": ...}`` keyed by ``user_id``,
in file order: the values as the file has them (``duration_ms`` a JSON number
when it is an integer). Any other line but the header (the generator's
malformed lines, blank or undecodable ones) is sent as it is, for the stream
to reject, as the batch ingest rejects it. The topic is
created with ``--partitions`` partitions if it does not exist. ``--rate`` holds
events per second (0: as fast as the broker takes them).
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from iceberg_catalog import config

TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
FIELDS = ("user_id", "timestamp", "action_type", "page_id", "duration_ms", "app_version")


def messages(lines: Iterator[bytes]) -> Iterator[tuple[str | None, bytes]]:
    """(key, value) per line of one interactions CSV, its header line skipped. Lines
    that are not a six-field UTF-8 row (blank ones included) go as they are: the
    stream rejects them with their reason, as the batch ingest does."""
    for number, raw in enumerate(lines):
        line = raw.removesuffix(b"\n").removesuffix(b"\r")
        try:
            row = next(csv.reader([line.decode("utf-8")]), [])
        except UnicodeDecodeError:
            row = []
        if number == 0 and tuple(row) == FIELDS:
            continue
        if len(row) != len(FIELDS):
            yield None, line
            continue
        event = dict(zip(FIELDS, row))
        duration = event["duration_ms"]
        if duration.lstrip("-").isdigit():
            event["duration_ms"] = int(duration)
        yield event["user_id"] or None, json.dumps(event, separators=(",", ":")).encode()


def landing_messages(path: Path) -> Iterator[tuple[str | None, bytes]]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*.csv") if p.is_file())
    if not files:
        raise SystemExit(f"no CSV files under {path}")
    for file in files:
        with open(file, "rb") as handle:
            yield from messages(handle)


def live_timestamps(source: Iterator[tuple[str | None, bytes]]) -> Iterator[tuple[str | None, bytes]]:
    """The events stamped with the time they are sent (UTC), as an app in use sends
    them: event time then keeps pace with the clock, whatever the file's dates.
    Other lines, and events whose timestamp is malformed, pass unchanged."""
    for key, value in source:
        if key is not None:
            event = json.loads(value)
            if TIMESTAMP.fullmatch(event["timestamp"]):
                event["timestamp"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
                value = json.dumps(event, separators=(",", ":")).encode()
        yield key, value


def ensure_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    if topic in admin.list_topics(timeout=30).topics:
        return
    # Each message's timestamp is the broker's append time: what the speed layer's
    # Kafka-to-commit latency counts from.
    new = NewTopic(topic, num_partitions=partitions, replication_factor=1,
                   config={"message.timestamp.type": "LogAppendTime"})
    future = admin.create_topics([new])[topic]
    try:
        future.result(timeout=30)
    except KafkaException as exc:
        if "TOPIC_ALREADY_EXISTS" not in str(exc):
            raise


def produce(source: Iterator[tuple[str | None, bytes]], bootstrap: str, topic: str, rate: float,
            max_events: int | None, max_seconds: float | None) -> int:
    """Sends the messages, paced to ``rate`` per second; returns how many the broker acknowledged."""
    failures: list[str] = []
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 20,
                         "compression.type": "lz4"})

    def delivered(err, _msg) -> None:
        if err is not None:
            failures.append(str(err))

    started = time.monotonic()
    sent = 0
    for key, value in source:
        if max_events is not None and sent >= max_events:
            break
        elapsed = time.monotonic() - started
        if max_seconds is not None and elapsed >= max_seconds:
            break
        if rate > 0 and sent > elapsed * rate:
            time.sleep(sent / rate - elapsed)
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=delivered)
                break
            except BufferError:  # the local queue is full: let the broker catch up
                producer.poll(0.1)
        producer.poll(0)
        sent += 1
    producer.flush()
    if failures:
        raise SystemExit(f"{len(failures)} of {sent} messages not delivered, e.g. {failures[0]}")
    return sent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--landing", type=Path, default=config.PLATFORM_STATE / "landing" / "user_interactions",
                        help="an interactions CSV file or a folder of them (default: make demo's)")
    parser.add_argument("--topic", default="interactions")
    parser.add_argument("--partitions", type=int, default=3, help="for a topic that does not exist yet")
    parser.add_argument("--rate", type=float, default=10_000, help="events per second; 0: as fast as possible")
    parser.add_argument("--max-events", type=int)
    parser.add_argument("--max-seconds", type=float)
    parser.add_argument("--live-timestamps", action="store_true",
                        help="stamp each event with the time it is sent instead of the file's")
    parser.add_argument("--bootstrap", default=None, help="host:port (default: infra/kafka.sh's broker)")
    args = parser.parse_args(argv)
    if args.rate < 0 or args.partitions < 1:
        parser.error("--rate must be >= 0 and --partitions >= 1")
    bootstrap = args.bootstrap or config.kafka_bootstrap()
    ensure_topic(bootstrap, args.topic, args.partitions)
    started = time.monotonic()
    source = landing_messages(args.landing)
    sent = produce(live_timestamps(source) if args.live_timestamps else source, bootstrap, args.topic, args.rate, args.max_events,
                   args.max_seconds)
    seconds = time.monotonic() - started
    print(f"sent {sent} events to {args.topic} on {bootstrap} in {seconds:.1f} s ({sent / max(seconds, 1e-9):.0f}/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
