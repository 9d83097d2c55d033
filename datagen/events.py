"""Interaction events. challenge mode: the public generator's uniform draws.
realistic mode: sessions (bursts of events with gaps, including gaps of exactly
1800 s and 1801 s) of Zipf-weighted users on days and hours of the world's
calendar, app versions adopted after their release, page-load latency by device
and version, with the planted latency spike."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datagen.anomalies import LATENCY_SPIKE_FACTOR
from datagen.config import Config
from datagen.domains import (
    ACTION_MEDIAN_MS, ACTION_MIX, ACTION_TYPES, CHALLENGE_APP_MAJORS, CHALLENGE_DURATION_MS, CHALLENGE_PAGE_IDS,
    DEVICE_MEDIAN_LATENCY_MS, GAP_EQUAL_TS_SHARE, GAP_EXACT_1800_SHARE, GAP_EXACT_1801_SHARE, HOURLY_RHYTHM,
    INTERACTION_COLUMNS, LONG_DURATION_SHARE, MEAN_INTRA_SESSION_GAP_S, MEAN_SESSION_EVENTS, SECONDS_PER_DAY,
)
from datagen.rows import Calendar, Rows, choose, prefixed_ids
from datagen.users import World


# =============================================================================
# challenge mode: the public generator's distributions, vectorised
# =============================================================================
def challenge_interactions(cfg: Config, cal: Calendar, rng: np.random.Generator, n: int) -> Rows:
    seconds = rng.integers(0, (cfg.days - 1) * SECONDS_PER_DAY, n, endpoint=True)
    majors = rng.integers(CHALLENGE_APP_MAJORS[0], CHALLENGE_APP_MAJORS[1], n, endpoint=True)
    minor, patch = rng.integers(0, 9, n, endpoint=True), rng.integers(0, 9, n, endpoint=True)
    versions = pc.binary_join_element_wise(*(pc.cast(pa.array(x), pa.string()) for x in (majors, minor, patch)), ".")
    fields = {
        "user_id": prefixed_ids("u", rng.integers(1, cfg.users, n, endpoint=True)),
        "timestamp": cal.timestamp(seconds),
        "action_type": choose(rng, ACTION_TYPES, n),
        "page_id": prefixed_ids("p", rng.integers(1, CHALLENGE_PAGE_IDS, n, endpoint=True)),
        "duration_ms": pc.cast(pa.array(rng.integers(*CHALLENGE_DURATION_MS, n, endpoint=True)), pa.string()),
        "app_version": versions,
    }
    return Rows(INTERACTION_COLUMNS, fields, seconds // SECONDS_PER_DAY, np.zeros(n, np.int8))


# =============================================================================
# realistic mode: sessions drawn from the world, per chunk
# =============================================================================
def sample_cdf(rng: np.random.Generator, cdf: np.ndarray, n: int) -> np.ndarray:
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(cdf) - 1)


def session_lengths(rng: np.random.Generator, n_events: int) -> np.ndarray:
    """Geometric session sizes whose sum is exactly n_events (the last one is cut)."""
    lengths = rng.geometric(1 / MEAN_SESSION_EVENTS, int(n_events / MEAN_SESSION_EVENTS * 1.3) + 16)
    while lengths.sum() < n_events:
        lengths = np.concatenate([lengths, rng.geometric(1 / MEAN_SESSION_EVENTS, len(lengths))])
    ends = np.cumsum(lengths)
    last = int(np.searchsorted(ends, n_events))
    lengths = lengths[: last + 1].copy()
    lengths[-1] -= ends[last] - n_events
    return lengths


def intra_session_gaps(rng: np.random.Generator, n: int) -> np.ndarray:
    gaps = np.minimum(np.ceil(rng.exponential(MEAN_INTRA_SESSION_GAP_S, n)), 1799).astype(np.int64)
    special = rng.random(n)
    gaps[special < GAP_EQUAL_TS_SHARE] = 0
    edge = special >= 1 - GAP_EXACT_1800_SHARE - GAP_EXACT_1801_SHARE
    gaps[edge] = np.where(special[edge] >= 1 - GAP_EXACT_1801_SHARE, 1801, 1800)
    return gaps


def realistic_interactions(cfg: Config, world: World, cal: Calendar, rng: np.random.Generator, n: int) -> Rows:
    lengths = session_lengths(rng, n)
    s = len(lengths)
    user = sample_cdf(rng, world.user_cdf, s)
    day = sample_cdf(rng, world.day_cdf, s)
    # nobody acts before joining: such sessions move to a day after the join date
    join = np.maximum(world.join_day[user], 0)
    early = day < join
    day[early] = join[early] + (rng.random(early.sum()) * (cfg.days - join[early])).astype(np.int64)
    second_of_day = sample_cdf(rng, world.hour_cdf, s) * 3600 + rng.integers(0, 3600, s)

    session_of = np.repeat(np.arange(s), lengths)
    first_event = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    gaps = intra_session_gaps(rng, n)
    gaps[first_event] = 0
    elapsed = np.cumsum(gaps)
    offset = elapsed - elapsed[first_event][session_of]
    span = offset[first_event + lengths - 1]
    window_end = cfg.days * SECONDS_PER_DAY - 1
    start = np.minimum(day * SECONDS_PER_DAY + second_of_day, window_end - span)   # stay inside the window
    seconds = start[session_of] + offset

    # app version: users adopt a release some days after it ships; a few lag far behind
    lag = np.where(rng.random(s) < 0.05, rng.exponential(60, s), rng.exponential(7, s))
    version = np.clip(np.searchsorted(world.release_day, start / SECONDS_PER_DAY - lag, side="right") - 1, 0, None)
    version = version[session_of]

    action = rng.choice(len(ACTION_TYPES), n, p=ACTION_MIX)
    action[first_event] = 0                       # a session opens a page
    session_page = np.exp(rng.uniform(0, np.log(CHALLENGE_PAGE_IDS), s)).astype(np.int64)
    page = np.where(rng.random(n) < 0.75, session_page[session_of],
                    np.exp(rng.uniform(0, np.log(CHALLENGE_PAGE_IDS), n)).astype(np.int64))

    event_user = user[session_of]
    hour = (seconds % SECONDS_PER_DAY) // 3600
    load = 1 + 0.1 * (HOURLY_RHYTHM[hour] - 1)    # busier hours load a little slower
    latency = (DEVICE_MEDIAN_LATENCY_MS[world.device[event_user]] * world.version_latency_factor[version]
               * load * rng.lognormal(0, 0.45, n))
    spike = (seconds // SECONDS_PER_DAY == world.spike_day) & (version == world.spike_version)
    latency[spike] *= LATENCY_SPIKE_FACTOR
    other = ACTION_MEDIAN_MS[action] * rng.lognormal(0, 0.8, n)
    duration = np.where(action == 0, latency, other)
    long_edit = (action == 1) & (rng.random(n) < LONG_DURATION_SHARE)
    duration[long_edit] = rng.uniform(8 * 3600_000, 30 * 3600_000, long_edit.sum())
    duration = np.maximum(duration.astype(np.int64), 1)

    # within a chunk, rows come in time order like an append-only log
    order = np.argsort(seconds, kind="stable")
    seconds, event_user, action, page, duration, version = (
        x[order] for x in (seconds, event_user, action, page, duration, version))
    fields = {
        "user_id": world.user_ids.take(pa.array(event_user)),
        "timestamp": cal.timestamp(seconds),
        "action_type": pa.array(ACTION_TYPES).take(pa.array(action)),
        "page_id": prefixed_ids("p", page),
        "duration_ms": pc.cast(pa.array(duration), pa.string()),
        "app_version": pa.array(world.versions).take(pa.array(version)),
    }
    return Rows(INTERACTION_COLUMNS, fields, seconds // SECONDS_PER_DAY, np.zeros(n, np.int8))
