"""Planted anomalies: what a monitor or a quality gate downstream must find.

In realistic data: a usage burst (one day with USAGE_BURST_FACTOR times the
sessions) and a latency spike (page loads of one app version on one day
LATENCY_SPIKE_FACTOR times slower); users.py plants them in the world, events.py
in the rows, and the manifest names them. With --bad-batch, in either mode: a
batch a quality gate must stop (BAD_BATCH_KINDS)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from datagen.config import Config
from datagen.rows import Rows, choose, pick_rows, prefixed_ids

USAGE_BURST_FACTOR = 3.0
LATENCY_SPIKE_FACTOR = 5.0

BAD_BATCH_KINDS = {
    "out_of_set": "5% of action_type, device_type and subscription_type values outside their sets",
    "broken_join": "every metadata user_id is outside the event id space, so no event user has metadata",
    "null_user": "20% of interaction rows have an empty user_id",
}
OUT_OF_SET_SHARE = 0.05
NULL_USER_SHARE = 0.20
OUT_OF_SET_VALUES = {
    "action_type": ["scroll", "export", "unknown_action"],
    "device_type": ["Kindle", "Linux", "Smart TV"],
    "subscription_type": ["trial", "lifetime"],
}


def anomaly_days(rng: np.random.Generator, days: int) -> tuple[int, int]:
    """Latency-spike day and usage-burst day: late enough for a 14-day baseline
    (docs/tables.md needs >= 7 earlier values) when the window allows, and distinct."""
    low = min(21, days - 1)
    spike = int(rng.integers(max(low, days // 2), days)) if days > 1 else 0
    choices = [d for d in range(low, days) if d != spike] or [0]
    burst = int(choices[rng.integers(0, len(choices))])
    return spike, burst


def spike_version(release_day: np.ndarray, spike_day: int) -> int:
    # the spike hits the version most users run that day: the newest one out >= 10 days
    return max(0, int(np.searchsorted(release_day, spike_day - 10, side="right")) - 1)


def inject_out_of_set(rows: Rows, rng: np.random.Generator, columns: list[str]) -> dict[str, int]:
    counts = {}
    for column in columns:
        target = pick_rows(rng, len(rows), OUT_OF_SET_SHARE)
        rows.replace(column, target, choose(rng, OUT_OF_SET_VALUES[column], len(target)))
        counts[column] = int(len(target))
    return counts


def inject_null_users(rows: Rows, rng: np.random.Generator) -> int:
    target = pick_rows(rng, len(rows), NULL_USER_SHARE)
    rows.replace("user_id", target, pa.array([""] * len(target)))
    return int(len(target))


def break_join(rows: Rows, rng: np.random.Generator, cfg: Config, chunk: int) -> None:
    # ids beyond the event id space: valid format, never an event user
    rows.fields["user_id"] = prefixed_ids("u", cfg.id_space + 1 + rng.permutation(len(rows)) + chunk * 2 * cfg.chunk_rows)
