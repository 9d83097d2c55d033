"""Users: the fixed "world" realistic mode draws every chunk from (user ids, their
activity weights, join days, countries, devices and subscriptions, the app's
release train, when sessions start, and the days of the planted anomalies), and
the user_metadata rows of both modes."""
from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pyarrow as pa

from datagen.anomalies import USAGE_BURST_FACTOR, anomaly_days, spike_version
from datagen.config import Config
from datagen.domains import (
    CHALLENGE_APP_MAJORS, COUNTRIES, COUNTRY_MIX, DEVICE_MIX, DEVICE_TYPES, GROWTH_OVER_WINDOW, HOURLY_RHYTHM,
    JOIN_DAYS_BEFORE_START, JOIN_DAYS_BEFORE_START_REALISTIC, META_DUP_LATER_SHARE, META_DUP_TIED_SHARE,
    META_MISSING_SHARE, METADATA_COLUMNS, SUBSCRIPTION_MIX, SUBSCRIPTION_TYPES, WEEKEND_FACTOR, ZIPF_EXPONENT,
    ZIPF_RANK_OFFSET,
)
from datagen.rows import STREAM_WORLD, Calendar, Rows, choose, chunk_rng, prefixed_ids


# =============================================================================
# challenge mode: the public generator's distributions, vectorised
# =============================================================================
def challenge_metadata(cfg: Config, cal: Calendar, rng: np.random.Generator, n: int) -> Rows:
    country = rng.integers(0, len(COUNTRIES), n)
    fields = {
        "user_id": prefixed_ids("u", rng.integers(1, cfg.users, n, endpoint=True)),
        "join_date": cal.date(rng.integers(-JOIN_DAYS_BEFORE_START, cfg.days - 1, n, endpoint=True)),
        "country": pa.array(COUNTRIES).take(pa.array(country)),
        "device_type": choose(rng, DEVICE_TYPES, n),
        "subscription_type": choose(rng, SUBSCRIPTION_TYPES, n),
    }
    return Rows(METADATA_COLUMNS, fields, country, np.zeros(n, np.int8))


# =============================================================================
# realistic mode: a fixed "world" (users, versions, anomalies)
# =============================================================================
@dataclasses.dataclass
class World:
    user_ids: pa.Array            # index -> 'u%06d'
    user_cdf: np.ndarray          # cumulative activity weight
    join_day: np.ndarray          # earliest join day offset per user
    country: np.ndarray
    device: np.ndarray
    subscription: np.ndarray
    has_metadata: np.ndarray
    day_cdf: np.ndarray           # cumulative weight of session start day
    hour_cdf: np.ndarray
    versions: list[str]
    release_day: np.ndarray       # float day each version is released (sorted)
    version_latency_factor: np.ndarray
    spike_day: int
    spike_version: int
    burst_day: int


def release_versions(rng: np.random.Generator, count: int) -> list[str]:
    """A plausible release train in the challenge's domain (majors 5-7)."""
    major, minor, patch = 5, int(rng.integers(0, 5)), 0
    versions = []
    for _ in range(count):
        versions.append(f"{major}.{minor}.{patch}")
        if rng.random() < 0.3 and patch < 9:
            patch += 1
        elif minor < 9:
            minor, patch = minor + 1, 0
        elif major < CHALLENGE_APP_MAJORS[1]:
            major, minor, patch = major + 1, 0, 0
        else:
            patch = min(patch + 1, 9)
    return list(dict.fromkeys(versions))


def zipf_weights(users: int, hot: int, hot_share: float) -> np.ndarray:
    """``hot`` users share ``hot_share`` of the events; the rest follow Zipf."""
    # the offset keeps the busiest ordinary user well below a hot one
    tail = 1.0 / (np.arange(1, users - hot + 1) + ZIPF_RANK_OFFSET) ** ZIPF_EXPONENT
    tail *= (1 - hot_share) / tail.sum()
    return np.concatenate([np.full(hot, hot_share / hot), tail])


def day_weights(cfg: Config, burst_day: int) -> np.ndarray:
    day = np.arange(cfg.days)
    weekday = np.array([(cfg.start_date + dt.timedelta(days=int(d))).weekday() for d in day])
    weight = (1 + GROWTH_OVER_WINDOW * day / max(1, cfg.days - 1)) * np.where(weekday >= 5, WEEKEND_FACTOR, 1.0)
    weight[burst_day] *= USAGE_BURST_FACTOR
    return weight


def build_world(cfg: Config) -> World:
    rng = chunk_rng(cfg.seed, STREAM_WORLD, 0)
    u = cfg.users
    ids = rng.choice(cfg.id_space, u, replace=False) + 1
    weights = zipf_weights(u, cfg.hot_user_count, cfg.hot_user_share)
    hot = np.arange(u) < cfg.hot_user_count
    join_day = rng.integers(-JOIN_DAYS_BEFORE_START_REALISTIC, cfg.days, u)
    join_day[hot] = -JOIN_DAYS_BEFORE_START_REALISTIC // 2   # hot users are long-time users
    has_metadata = (rng.random(u) >= META_MISSING_SHARE) | hot

    versions = release_versions(rng, max(4, cfg.days // 21 + 3))
    # two versions exist before the window opens, the rest ship evenly through it
    release_day = np.concatenate([[-60.0, -20.0], np.linspace(0, cfg.days * 0.9, len(versions) - 1)[1:]])
    factor = np.linspace(1.25, 0.85, len(versions))     # newer releases load faster...
    factor[len(versions) // 2] *= 1.35                  # ...except one regression
    spike_day, burst_day = anomaly_days(rng, cfg.days)
    hour_weights = HOURLY_RHYTHM / HOURLY_RHYTHM.sum()
    return World(
        user_ids=prefixed_ids("u", ids), user_cdf=np.cumsum(weights) / weights.sum(), join_day=join_day,
        country=rng.choice(len(COUNTRIES), u, p=COUNTRY_MIX), device=rng.choice(len(DEVICE_TYPES), u, p=DEVICE_MIX),
        subscription=rng.choice(len(SUBSCRIPTION_TYPES), u, p=SUBSCRIPTION_MIX), has_metadata=has_metadata,
        day_cdf=np.cumsum(w := day_weights(cfg, burst_day)) / w.sum(), hour_cdf=np.cumsum(hour_weights),
        versions=versions, release_day=release_day, version_latency_factor=factor,
        spike_day=spike_day, spike_version=spike_version(release_day, spike_day), burst_day=burst_day)


def realistic_metadata(cfg: Config, world: World, cal: Calendar, rng: np.random.Generator,
                       users: np.ndarray) -> tuple[Rows, dict[str, int]]:
    """Rows for the users in `users` that have metadata, plus duplicate rows:
    some with a later join_date (re-registration), some with the same join_date
    and a different device (the tie docs/tables.md breaks by byte order)."""
    users = users[world.has_metadata[users]]
    pick = rng.random(len(users))
    later = users[pick < META_DUP_LATER_SHARE]
    tied = users[(pick >= META_DUP_LATER_SHARE) & (pick < META_DUP_LATER_SHARE + META_DUP_TIED_SHARE)]
    join = np.concatenate([
        world.join_day[users],
        np.minimum(world.join_day[later] + rng.integers(1, 400, len(later)), cfg.days - 1),
        world.join_day[tied]])
    device = np.concatenate([
        world.device[users], world.device[later],
        (world.device[tied] + rng.integers(1, len(DEVICE_TYPES), len(tied))) % len(DEVICE_TYPES)])
    subscription = np.concatenate([
        world.subscription[users],
        np.minimum(world.subscription[later] + rng.integers(0, 2, len(later)), len(SUBSCRIPTION_TYPES) - 1),
        world.subscription[tied]])
    who = np.concatenate([users, later, tied])
    order = rng.permutation(len(who))
    who, join, device, subscription = who[order], join[order], device[order], subscription[order]
    country = world.country[who]
    fields = {
        "user_id": world.user_ids.take(pa.array(who)),
        "join_date": cal.date(join),
        "country": pa.array(COUNTRIES).take(pa.array(country)),
        "device_type": pa.array(DEVICE_TYPES).take(pa.array(device)),
        "subscription_type": pa.array(SUBSCRIPTION_TYPES).take(pa.array(subscription)),
    }
    rows = Rows(METADATA_COLUMNS, fields, country, np.zeros(len(who), np.int8))
    return rows, {"duplicate_later_join_date": int(len(later)), "duplicate_tied_join_date": int(len(tied))}
