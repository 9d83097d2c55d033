"""The run: both datasets chunk by chunk (one random stream per chunk), each chunk's
rows finished (duplicates, malformed rows, bad batch) and streamed to its Sink,
published together, then the manifest."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np

from datagen.anomalies import break_join, inject_null_users, inject_out_of_set
from datagen.config import Config
from datagen.domains import (
    COUNTRIES, INTERACTION_COLUMNS, JOIN_DAYS_BEFORE_START, JOIN_DAYS_BEFORE_START_REALISTIC, METADATA_COLUMNS,
)
from datagen.events import challenge_interactions, realistic_interactions
from datagen.malformed import (
    INTERACTION_MALFORMED_KINDS, METADATA_MALFORMED_KINDS, inject_duplicates, inject_malformed, interaction_kinds,
)
from datagen.output import Sink, build_manifest
from datagen.rows import STREAM_INTERACTIONS, STREAM_METADATA, Calendar, Rows, chunk_rng, chunk_sizes
from datagen.users import World, build_world, challenge_metadata, realistic_metadata


def add_counts(total: dict, part: dict) -> None:
    for k, v in part.items():
        if isinstance(v, dict):
            add_counts(total.setdefault(k, {}), v)
        else:
            total[k] = total.get(k, 0) + v


def finish_rows(cfg: Config, rows: Rows, rng: np.random.Generator, kinds: list[str],
                out_of_set_columns: list[str], duplicate_share: float) -> tuple[Rows, dict]:
    """Duplicates, malformed rows and bad-batch corruption, in a fixed order."""
    stats: dict = {"rows": len(rows)}
    rows, stats["exact_duplicates"], copies = inject_duplicates(rows, rng, duplicate_share)
    stats["malformed"] = inject_malformed(rows, rng, cfg.malformed_share, interaction_kinds(cfg, kinds), copies)
    if cfg.bad_batch == "out_of_set" and out_of_set_columns:
        stats["out_of_set"] = inject_out_of_set(rows, rng, out_of_set_columns)
    return rows, stats


def generate_interactions(cfg: Config, cal: Calendar, world: World | None, sink: Sink) -> dict:
    stats: dict = {"rows": 0, "exact_duplicates": 0,
                   "malformed": dict.fromkeys(interaction_kinds(cfg, INTERACTION_MALFORMED_KINDS), 0)}
    per_day = np.zeros(cfg.days, np.int64)
    for chunk, n in enumerate(chunk_sizes(cfg.events, cfg.chunk_rows)):
        rng = chunk_rng(cfg.seed, STREAM_INTERACTIONS, chunk)
        rows = (challenge_interactions(cfg, cal, rng, n) if world is None
                else realistic_interactions(cfg, world, cal, rng, n))
        rows, chunk_stats = finish_rows(cfg, rows, rng, INTERACTION_MALFORMED_KINDS, ["action_type"],
                                        cfg.duplicate_share)
        if cfg.bad_batch == "null_user":
            chunk_stats["null_user_rows"] = inject_null_users(rows, rng)
        per_day += np.bincount(rows.route, minlength=cfg.days)[: cfg.days]
        add_counts(stats, chunk_stats)
        sink.write(rows)
    stats["rows_per_date"] = {cal.iso(d): int(c) for d, c in enumerate(per_day) if c}
    return stats


def generate_metadata(cfg: Config, cal: Calendar, world: World | None, sink: Sink) -> dict:
    stats: dict = {"rows": 0, "malformed": dict.fromkeys(interaction_kinds(cfg, METADATA_MALFORMED_KINDS), 0)}
    if world is None:
        batches = [(chunk, n) for chunk, n in enumerate(chunk_sizes(cfg.metadata_rows, cfg.chunk_rows))]
    else:
        batches = [(chunk, np.arange(start, min(start + cfg.chunk_rows, cfg.users)))
                   for chunk, start in enumerate(range(0, cfg.users, cfg.chunk_rows))]
    for chunk, what in batches:
        rng = chunk_rng(cfg.seed, STREAM_METADATA, chunk)
        if world is None:
            rows, extra = challenge_metadata(cfg, cal, rng, what), {}
        else:
            rows, extra = realistic_metadata(cfg, world, cal, rng, what)
        if cfg.bad_batch == "broken_join":
            break_join(rows, rng, cfg, chunk)
        rows, chunk_stats = finish_rows(cfg, rows, rng, METADATA_MALFORMED_KINDS,
                                        ["device_type", "subscription_type"], 0.0)
        chunk_stats.pop("exact_duplicates")
        add_counts(stats, chunk_stats | extra)
        sink.write(rows)
    if world is None:
        stats["note"] = "user_ids drawn uniformly with replacement, so some repeat"
    return stats


def run(cfg: Config) -> dict:
    cal = Calendar(cfg.start_date, -max(JOIN_DAYS_BEFORE_START, JOIN_DAYS_BEFORE_START_REALISTIC), cfg.days)
    world = build_world(cfg) if cfg.mode == "realistic" else None
    cfg.out.mkdir(parents=True, exist_ok=True)
    staging = cfg.out / ".datagen-staging"
    shutil.rmtree(staging, ignore_errors=True)

    date_folder = (lambda day: f"date={cal.iso(day)}") if cfg.layout == "date-folders" else None
    country_folder = (lambda c: f"country={COUNTRIES[c]}") if cfg.metadata_layout == "country-folders" else None
    interactions = Sink(staging / "user_interactions", "user_interactions", INTERACTION_COLUMNS, cfg, date_folder)
    metadata = Sink(staging / "user_metadata", "user_metadata", METADATA_COLUMNS, cfg, country_folder,
                    "country" if country_folder else None)
    try:
        interaction_stats = generate_interactions(cfg, cal, world, interactions)
    finally:
        interaction_files = interactions.close()
    try:
        metadata_stats = generate_metadata(cfg, cal, world, metadata)
    finally:
        metadata_files = metadata.close()

    # publish both datasets only when both are complete
    for name in ("user_interactions", "user_metadata"):
        shutil.rmtree(cfg.out / name, ignore_errors=True)
        os.replace(staging / name, cfg.out / name)
    staging.rmdir()
    manifest = build_manifest(cfg, world, interaction_stats, metadata_stats, interaction_files, metadata_files)
    (cfg.out / "_manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest
