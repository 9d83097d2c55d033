"""The speed layer's Kafka broker (infra/kafka.sh) and event producer (speed_layer.producer).

The ``kafka`` fixture (conftest.py) starts the project's broker; each test
uses a topic of its own.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = ROOT / "infra" / "kafka.sh"


def produce(landing: Path, topic: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "speed_layer.producer", "--landing", str(landing), "--topic", topic,
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def consume(bootstrap: str, topic: str, expected: int, timeout: float = 120) -> list:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    messages, deadline = [], time.monotonic() + timeout
    try:
        while len(messages) < expected and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is not None and msg.error() is None:
                messages.append(msg)
        # Nothing more than expected arrives.
        extra = consumer.poll(3.0)
        assert extra is None or extra.error() is not None, extra.value()
    finally:
        consumer.close()
    return messages


def test_the_broker_and_its_controller_listen_on_loopback_only(kafka):
    from iceberg_catalog import config
    from tests.listening import assert_only_loopback

    env = config.platform_env()
    assert_only_loopback({int(env["KAFKA_PORT"]), int(env["KAFKA_CONTROLLER_PORT"])})


def test_each_landing_line_but_the_header_becomes_one_message_keyed_by_its_user(kafka, tmp_path):
    landing = tmp_path / "interactions.csv"
    landing.write_bytes(
        b"user_id,timestamp,action_type,page_id,duration_ms,app_version\n"
        b"u000001,2023-07-01 14:30:15,page_view,p000456,12000,5.7.3\n"
        b"u000002,2023-07-01 14:30:16,edit,p000457,12x,5.7.3\n"
        b"u000001,2023-07-01 14:31:00,share,p000458,300,5.7.4\n"
        b"u000003,2023-07-01 14:32:00,create,p000459\n"
        b"\n"
        b"u000005,2023-07-01 14:34:00,edit,p\xff\xfe,5,5.7.3\n"
        b"\"u,000004\",2023-07-01 14:33:00,delete,p000460,5,5.7.3\r\n")
    topic = f"test-{uuid.uuid4().hex[:8]}"
    run = produce(landing, topic, "--partitions", "3", "--rate", "0")
    assert run.returncode == 0, run.stderr
    assert f"sent 7 events to {topic}" in run.stdout

    assert len(AdminClient({"bootstrap.servers": kafka}).list_topics(topic, timeout=30).topics[topic].partitions) == 3
    messages = consume(kafka, topic, 7)
    received = [(m.key(), m.value()) for m in sorted(messages, key=lambda m: (m.partition(), m.offset()))]
    assert sorted(received, key=repr) == sorted([
        (b"u000001", b'{"user_id":"u000001","timestamp":"2023-07-01 14:30:15","action_type":"page_view",'
                     b'"page_id":"p000456","duration_ms":12000,"app_version":"5.7.3"}'),
        (b"u000002", b'{"user_id":"u000002","timestamp":"2023-07-01 14:30:16","action_type":"edit",'
                     b'"page_id":"p000457","duration_ms":"12x","app_version":"5.7.3"}'),
        (b"u000001", b'{"user_id":"u000001","timestamp":"2023-07-01 14:31:00","action_type":"share",'
                     b'"page_id":"p000458","duration_ms":300,"app_version":"5.7.4"}'),
        (None, b"u000003,2023-07-01 14:32:00,create,p000459"),
        (None, b""),
        (None, b"u000005,2023-07-01 14:34:00,edit,p\xff\xfe,5,5.7.3"),
        (b"u,000004", b'{"user_id":"u,000004","timestamp":"2023-07-01 14:33:00","action_type":"delete",'
                      b'"page_id":"p000460","duration_ms":5,"app_version":"5.7.3"}'),
    ], key=repr)
    # One user's events share a partition, in the order of the file.
    u1 = [m for m in messages if m.key() == b"u000001"]
    assert len({m.partition() for m in u1}) == 1
    assert [json.loads(m.value())["timestamp"] for m in sorted(u1, key=lambda m: m.offset())] == [
        "2023-07-01 14:30:15", "2023-07-01 14:31:00"]


def test_generated_events_arrive_once_each_at_the_rate_asked(kafka, tmp_path):
    out = tmp_path / "landing"
    subprocess.run([sys.executable, "-m", "datagen", "--mode", "realistic", "--out", str(out), "--events", "6000",
                    "--users", "300", "--days", "2", "--start-date", "2023-07-01", "--seed", "5"],
                   cwd=ROOT, check=True, capture_output=True)
    # Every line but each file's header, blank ones included: the batch ingest rejects those too.
    lines = [line.removesuffix("\r") for f in sorted((out / "user_interactions").rglob("*.csv"))
             for line in f.read_text().removesuffix("\n").split("\n")[1:]]
    topic = f"test-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    run = produce(out / "user_interactions", topic, "--partitions", "4", "--rate", "2000")
    took = time.monotonic() - started
    assert run.returncode == 0, run.stderr
    assert took >= len(lines) / 2000 * 0.95  # held to the rate: never faster

    messages = consume(kafka, topic, len(lines))
    assert len(messages) == len(lines)
    users = {json.loads(m.value())["user_id"]: m.partition() for m in messages if m.key() is not None}
    assert {m.partition() for m in messages} == {0, 1, 2, 3}
    assert all(users[m.key().decode()] == m.partition() for m in messages if m.key() is not None)
    # Each line once: a six-field row as its fields, as the file has them; any other line as it is.
    def fields(value: bytes) -> tuple[str, ...]:
        try:
            return tuple(str(v) for v in json.loads(value).values())
        except (ValueError, AttributeError):  # not JSON, or not an object
            return (value.decode(),)
    expected = [tuple(line.split(",")) if len(line.split(",")) == 6 else (line,) for line in lines]
    assert sorted(fields(m.value()) for m in messages) == sorted(expected)
