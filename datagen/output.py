"""Output formats: rows as CSV lines (with their wrong column counts and line
faults), the Sink that writes CSV or Parquet (the same fields, as strings: see
cli.py's description) to one file or to Hive-style folders, and the manifest
that says what was written and planted."""
from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from datagen.anomalies import BAD_BATCH_KINDS, LATENCY_SPIKE_FACTOR, USAGE_BURST_FACTOR
from datagen.config import Config
from datagen.malformed import with_line_faults
from datagen.rows import Rows, replace_rows
from datagen.users import World


def csv_lines(rows: Rows, line_ending: str) -> pa.Array:
    """Each row as one CSV line including its line ending. No field contains a
    comma, quote or newline, so no quoting is needed (csv.writer writes the same)."""
    columns = [rows.fields[c] for c in rows.columns]
    lines = pc.binary_join_element_wise(*columns, ",")
    short = np.flatnonzero(rows.column_count < 0)
    if len(short):   # the last field is missing
        idx = pa.array(short)
        lines = replace_rows(lines, short, pc.binary_join_element_wise(*[c.take(idx) for c in columns[:-1]], ","))
    long = np.flatnonzero(rows.column_count > 0)
    if len(long):    # one field too many
        lines = replace_rows(lines, long, pc.binary_join_element_wise(lines.take(pa.array(long)), "extra", ","))
    lines = pc.binary_join_element_wise(lines, pa.scalar(""), line_ending)
    return with_line_faults(lines, rows.line_fault, line_ending.encode())


def string_buffer(lines: pa.Array) -> tuple[memoryview, np.ndarray]:
    """The bytes of a StringArray (or BinaryArray) and each row's start offset into
    them (n + 1 entries), without copying: row i is bytes[offsets[i]:offsets[i + 1]]."""
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    offsets = np.frombuffer(lines.buffers()[1], np.int32, len(lines) + 1, lines.offset * 4)
    return memoryview(lines.buffers()[2]), offsets.astype(np.int64)


# =============================================================================
# Sinks: one file, or one file per route value (date= / country= folders)
# =============================================================================
class Sink:
    """Writes Rows to `directory`, either to one file or split by route value into
    Hive-style folders. Files are opened lazily and kept open until close()."""

    def __init__(self, directory: Path, base_name: str, columns: list[str], cfg: Config,
                 folder_of_route=None, partition_column: str | None = None):
        self.directory, self.base_name, self.cfg = directory, base_name, cfg
        self.folder_of_route = folder_of_route
        # Hive-style folders carry the partition column in the path, not in the file
        # (as Spark's partitionBy writes them).
        self.columns = [c for c in columns if c != partition_column]
        self.open: dict[object, object] = {}

    def _path(self, key) -> Path:
        ext = "csv" if self.cfg.file_format == "csv" else "parquet"
        if self.folder_of_route is None:
            return self.directory / f"{self.base_name}.{ext}"
        return self.directory / self.folder_of_route(key) / f"part-00000.{ext}"

    def _writer(self, key):
        if key not in self.open:
            path = self._path(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            if self.cfg.file_format == "csv":
                handle = open(path, "wb")
                handle.write((",".join(self.columns) + self.cfg.line_ending).encode())
                self.open[key] = handle
            else:
                schema = pa.schema([(c, pa.string()) for c in self.columns])
                self.open[key] = pq.ParquetWriter(path, schema, compression="snappy")
        return self.open[key]

    def write(self, rows: Rows) -> None:
        if not len(rows):
            return
        rows = Rows(self.columns, {c: rows.fields[c] for c in self.columns}, rows.route, rows.column_count,
                    rows.line_fault)
        if self.folder_of_route is None:
            parts = [(None, 0, len(rows))]
        else:
            # realistic chunks come time-ordered already; challenge chunks need the sort
            if np.any(rows.route[1:] < rows.route[:-1]):
                rows = rows.take(np.argsort(rows.route, kind="stable"))
            keys, starts = np.unique(rows.route, return_index=True)
            parts = list(zip(keys.tolist(), starts.tolist(), [*starts[1:].tolist(), len(rows)]))
        # encode the whole chunk once; each folder gets a zero-copy slice of it
        if self.cfg.file_format == "csv":
            lines = csv_lines(rows, self.cfg.line_ending)
            data, offsets = string_buffer(lines)
            for key, start, end in parts:
                self._writer(key).write(data[offsets[start]:offsets[end]])
        else:
            table = pa.table(rows.fields)
            for key, start, end in parts:
                self._writer(key).write_table(table.slice(start, end - start))

    def close(self) -> list[str]:
        # an empty dataset is still a dataset: a header-only file, or an empty folder
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.folder_of_route is None:
            self._writer(None)
        for writer in self.open.values():
            writer.close()
        paths = sorted(str(self._path(k).relative_to(self.directory.parent)) for k in self.open)
        self.open.clear()
        return paths


# =============================================================================
# The manifest: arguments, counts, malformed rows by kind, planted anomalies
# =============================================================================
def build_manifest(cfg: Config, world: World | None, interactions: dict, metadata: dict,
                   interaction_files: list[str], metadata_files: list[str]) -> dict:
    def expected_rejects(stats: dict) -> int:
        return sum(stats.get("malformed", {}).values())

    manifest = {
        "generator": "datagen",
        "args": {k: (str(v) if isinstance(v, (Path, dt.date)) else v)
                 for k, v in dataclasses.asdict(cfg).items() if k != "out"},
        "line_ending": "CRLF" if cfg.line_ending == "\r\n" else "LF",
        "user_interactions": interactions | {"files": interaction_files,
                                             "expected_rejected": expected_rejects(interactions)},
        "user_metadata": metadata | {"files": metadata_files, "expected_rejected": expected_rejects(metadata)},
        "bad_batch": None if cfg.bad_batch is None else
        {"kind": cfg.bad_batch, "description": BAD_BATCH_KINDS[cfg.bad_batch]},
    }
    if world is not None:
        manifest["realistic"] = {
            "hot_users": world.user_ids[:cfg.hot_user_count].to_pylist(),
            "hot_user_expected_event_share": cfg.hot_user_share,
            "versions": [{"app_version": v, "release_day": float(r)}
                         for v, r in zip(world.versions, world.release_day)],
        }
        manifest["anomalies"] = [
            {"kind": "latency_spike", "date": world_date(cfg, world.spike_day),
             "app_version": world.versions[world.spike_version], "action_type": "page_view",
             "duration_factor": LATENCY_SPIKE_FACTOR},
            {"kind": "usage_burst", "date": world_date(cfg, world.burst_day), "session_factor": USAGE_BURST_FACTOR},
        ]
    return manifest


def world_date(cfg: Config, day: int) -> str:
    return (cfg.start_date + dt.timedelta(days=int(day))).isoformat()
