"""datagen: formats of the public challenge, realistic shape, malformed rows,
layouts and bad batches. Files are read back with the csv module and pyarrow only."""
from __future__ import annotations

import collections
import csv
import datetime as dt
import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from datagen.anomalies import BAD_BATCH_KINDS
from datagen.cli import main, parse_args
from datagen.domains import (
    ACTION_TYPES, COUNTRIES, DEVICE_TYPES, INTERACTION_COLUMNS, METADATA_COLUMNS, SUBSCRIPTION_TYPES,
)
from datagen.generate import run
from datagen.malformed import INTERACTION_MALFORMED_KINDS, LINE_FAULT_KINDS, METADATA_MALFORMED_KINDS
from datagen.rows import prefixed_ids

SMALL = ["--events", "20000", "--days", "60", "--chunk-rows", "7000", "--seed", "7"]
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
VERSION = re.compile(r"^\d+\.\d+\.\d+$")


def generate(out: Path, *args: str) -> dict:
    run(parse_args(["--out", str(out), *args]))
    return json.loads((out / "_manifest.json").read_text())


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def csv_rows(directory: Path) -> tuple[list[str], list[list[str]]]:
    """Header and data rows of every CSV under directory; rows keep their raw field count."""
    header, rows = None, []
    for path in sorted(directory.rglob("*.csv")):
        with open(path, newline="") as f:
            reader = csv.reader(f)
            file_header = next(reader)
            assert header in (None, file_header), f"{path}: header {file_header} differs from {header}"
            header = file_header
            rows.extend(reader)
    return header, rows


def parquet_rows(directory: Path) -> tuple[list[str], list[list[str]]]:
    header, rows = None, []
    for path in sorted(directory.rglob("*.parquet")):
        table = pq.ParquetFile(path).read()   # the file alone, no partition columns from the path
        header = table.column_names
        rows.extend([list(r.values()) for r in table.to_pylist()])
    return header, rows


def is_timestamp(text: str) -> bool:
    if not TIMESTAMP.match(text):
        return False
    try:
        dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
        return True
    except ValueError:
        return False


def reject_reason(row: list[str]) -> str | None:
    """The reject rules of docs/tables.md, written independently of the generator."""
    if len(row) < 6:
        return "too_few_columns"
    if len(row) > 6:
        return "too_many_columns"
    user_id, timestamp, _, _, duration_ms, app_version = row
    if user_id == "":
        return "empty_user_id"
    if not is_timestamp(timestamp):
        return "bad_timestamp"
    if re.fullmatch(r"-\d+", duration_ms):
        return "negative_duration"
    if not re.fullmatch(r"\d+", duration_ms):
        return "non_integer_duration"
    if not VERSION.match(app_version):
        return "bad_app_version"
    return None


# --- determinism ----------------------------------------------------------------
@pytest.mark.parametrize("extra", [
    ["--mode", "realistic", "--users", "2000"],
    ["--mode", "realistic", "--users", "2000", "--format", "parquet", "--layout", "date-folders"],
    ["--mode", "challenge", "--users", "5000", "--metadata-layout", "country-folders"],
])
def test_same_arguments_and_seed_give_byte_identical_files(tmp_path, extra):
    generate(tmp_path / "a", *SMALL, *extra)
    generate(tmp_path / "b", *SMALL, *extra)
    first, second = files(tmp_path / "a"), files(tmp_path / "b")
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []


def test_a_different_seed_gives_different_rows(tmp_path):
    generate(tmp_path / "a", *SMALL, "--mode", "challenge")
    generate(tmp_path / "b", *SMALL, "--mode", "challenge", "--seed", "8")
    path = "user_interactions/user_interactions.csv"
    assert files(tmp_path / "a")[path] != files(tmp_path / "b")[path]


def test_a_second_run_replaces_the_previous_landing_data(tmp_path):
    generate(tmp_path, *SMALL, "--mode", "challenge", "--layout", "date-folders")
    generate(tmp_path, *SMALL, "--mode", "challenge")
    assert sorted(files(tmp_path)) == [
        "_manifest.json", "user_interactions/user_interactions.csv", "user_metadata/user_metadata.csv"]


# --- challenge mode: the public generator's formats ----------------------------------
def test_challenge_files_match_the_public_generator_format(tmp_path):
    generate(tmp_path, "--mode", "challenge", "--events", "20000", "--users", "3000", "--seed", "3")
    raw = (tmp_path / "user_interactions" / "user_interactions.csv").read_bytes()
    # csv.writer, as the challenge generator uses it, ends every line with CRLF
    assert raw.startswith(b"user_id,timestamp,action_type,page_id,duration_ms,app_version\r\n")
    assert raw.count(b"\r\n") == 20001 and raw.count(b"\n") == 20001

    header, rows = csv_rows(tmp_path / "user_interactions")
    assert header == INTERACTION_COLUMNS
    assert len(rows) == 20000
    assert all(len(r) == 6 for r in rows)
    assert all(re.fullmatch(r"u\d{6,7}", r[0]) and 1 <= int(r[0][1:]) <= 3000 for r in rows)
    assert all(is_timestamp(r[1]) and "2023-01-01 00:00:00" <= r[1] <= "2023-12-31 00:00:00" for r in rows)
    assert {r[2] for r in rows} == {"page_view", "edit", "create", "delete", "share"}
    assert all(re.fullmatch(r"p\d{6,7}", r[3]) and 1 <= int(r[3][1:]) <= 1_000_000 for r in rows)
    assert all(100 <= int(r[4]) <= 300_000 for r in rows)
    assert all(re.fullmatch(r"[5-7]\.\d\.\d", r[5]) for r in rows)
    assert {r[5][0] for r in rows} == {"5", "6", "7"}

    header, meta = csv_rows(tmp_path / "user_metadata")
    assert header == METADATA_COLUMNS
    assert len(meta) == 2000                                   # the challenge's 10:1 ratio
    assert all("2020-01-01" <= m[1] <= "2023-12-31" for m in meta)
    assert {m[2] for m in meta} == {"US", "UK", "CA", "AU", "DE", "FR", "JP", "IN", "BR", "MX"}
    assert {m[3] for m in meta} == {"iPhone", "iPad", "Android Phone", "Android Tablet", "Windows", "Mac"}
    assert {m[4] for m in meta} == {"free", "basic", "premium", "enterprise"}
    # ids are drawn with replacement: metadata repeats user ids, most events have none
    ids = collections.Counter(m[0] for m in meta)
    assert max(ids.values()) >= 2
    assert sum(r[0] in ids for r in rows) < 0.6 * len(rows)


def test_challenge_mode_has_no_malformed_or_duplicate_rows_by_default(tmp_path):
    manifest = generate(tmp_path, *SMALL, "--mode", "challenge")
    _, rows = csv_rows(tmp_path / "user_interactions")
    assert [r for r in rows if reject_reason(r)] == []
    assert manifest["user_interactions"]["expected_rejected"] == 0
    assert manifest["user_interactions"]["exact_duplicates"] == 0


def test_user_id_format_matches_python_format_at_the_top_of_the_id_space():
    assert prefixed_ids("u", [1, 123, 1_000_000]).to_pylist() == ["u000001", "u000123", "u1000000"]


# --- realistic mode ---------------------------------------------------------------
def test_malformed_rows_have_the_configured_share_and_every_reject_reason(tmp_path):
    manifest = generate(tmp_path, *SMALL, "--mode", "realistic", "--users", "2000", "--malformed-share", "0.02")
    _, rows = csv_rows(tmp_path / "user_interactions")
    reasons = collections.Counter(reject_reason(r) for r in rows)
    rejected = len(rows) - reasons.pop(None)
    assert len(rows) == 20000
    assert rejected == 400                                     # 2% of every chunk, exactly
    assert set(reasons) == set(INTERACTION_MALFORMED_KINDS)
    assert min(reasons.values()) >= 50
    assert dict(reasons) == manifest["user_interactions"]["malformed"]
    assert manifest["user_interactions"]["expected_rejected"] == 400

    _, meta = csv_rows(tmp_path / "user_metadata")
    meta_reasons = collections.Counter(
        "too_few_columns" if len(m) < 5 else "too_many_columns" if len(m) > 5 else
        "empty_user_id" if m[0] == "" else None for m in meta)
    meta_reasons.pop(None)
    assert dict(meta_reasons) == manifest["user_metadata"]["malformed"]
    assert set(meta_reasons) == set(METADATA_MALFORMED_KINDS)


@pytest.mark.parametrize("layout", ["file", "date-folders"])
def test_malformed_lines_add_blank_nul_only_and_invalid_utf8_lines(tmp_path, layout):
    args = [*SMALL, "--mode", "realistic", "--users", "2000", "--malformed-share", "0.02", "--layout", layout]
    manifest = generate(tmp_path / "a", *args, "--malformed-lines")
    kinds = collections.Counter()
    for path in sorted((tmp_path / "a" / "user_interactions").rglob("*.csv")):
        header, *lines = path.read_bytes().split(b"\n")[:-1]   # LF: realistic mode
        assert header.decode().split(",") == INTERACTION_COLUMNS
        for line in lines:
            try:
                text = line.decode()
            except UnicodeDecodeError:
                kinds["invalid_utf8"] += 1
                continue
            if text and set(text) == {"\x00"}:
                kinds["nul_only_line"] += 1
            elif all(c <= " " for c in text):
                kinds["blank_line"] += 1
            else:
                kinds[reject_reason(next(csv.reader([text])))] += 1
    assert sum(kinds.values()) == 20000
    assert 20000 - kinds.pop(None) == 400 == manifest["user_interactions"]["expected_rejected"]
    assert dict(kinds) == manifest["user_interactions"]["malformed"]
    assert set(kinds) == set(INTERACTION_MALFORMED_KINDS) | set(LINE_FAULT_KINDS)
    assert min(kinds.values()) >= 30
    assert set(manifest["user_metadata"]["malformed"]) == set(METADATA_MALFORMED_KINDS) | set(LINE_FAULT_KINDS)
    meta_lines = (tmp_path / "a" / "user_metadata" / "user_metadata.csv").read_bytes().split(b"\n")[1:-1]
    assert sum(not line.strip(b" \t\x00") for line in meta_lines) == (
        manifest["user_metadata"]["malformed"]["blank_line"] + manifest["user_metadata"]["malformed"]["nul_only_line"])
    # The same seed gives the same bytes; without the flag, the files of before.
    generate(tmp_path / "b", *args, "--malformed-lines")
    assert files(tmp_path / "a") == files(tmp_path / "b")
    generate(tmp_path / "c", *args)
    assert all(b"\x00" not in data for data in files(tmp_path / "c").values())
    _, rows = csv_rows(tmp_path / "c" / "user_interactions")
    assert set(collections.Counter(reject_reason(r) for r in rows)) - {None} == set(INTERACTION_MALFORMED_KINDS)


def test_malformed_lines_are_csv_only(tmp_path):
    manifest = generate(tmp_path, *SMALL, "--mode", "realistic", "--users", "2000", "--format", "parquet",
                        "--malformed-lines")
    assert not set(manifest["user_interactions"]["malformed"]) & set(LINE_FAULT_KINDS)


def test_realistic_rows_are_well_formed_in_the_challenge_domains(tmp_path):
    generate(tmp_path, *SMALL, "--mode", "realistic", "--users", "2000", "--malformed-share", "0")
    _, rows = csv_rows(tmp_path / "user_interactions")
    assert [r for r in rows if reject_reason(r)] == []
    assert {r[2] for r in rows} == set(ACTION_TYPES)
    assert all(re.fullmatch(r"u\d{6}", r[0]) and re.fullmatch(r"p\d{6,7}", r[3]) for r in rows)
    assert all("2023-01-01 00:00:00" <= r[1] <= "2023-03-01 23:59:59" for r in rows)   # 60 days
    assert all(r[5].split(".")[0] in {"5", "6", "7"} for r in rows)
    assert any(int(r[4]) > 28_800_000 for r in rows if r[2] == "edit")                # above the 8 h cap
    _, meta = csv_rows(tmp_path / "user_metadata")
    assert {m[2] for m in meta} <= set(COUNTRIES)
    assert {m[3] for m in meta} == set(DEVICE_TYPES)
    assert {m[4] for m in meta} == set(SUBSCRIPTION_TYPES)


def test_hot_users_hold_at_least_a_fifth_of_events(tmp_path):
    manifest = generate(tmp_path, *SMALL, "--mode", "realistic", "--users", "2000")
    _, rows = csv_rows(tmp_path / "user_interactions")
    per_user = collections.Counter(r[0] for r in rows)
    top = per_user.most_common(len(manifest["realistic"]["hot_users"]))
    assert {u for u, _ in top} == set(manifest["realistic"]["hot_users"])
    assert sum(c for _, c in top) / len(rows) >= 0.20


def test_hot_user_options_set_how_many_power_users_and_their_share(tmp_path):
    manifest = generate(tmp_path, *SMALL, "--mode", "realistic", "--users", "2000",
                        "--hot-users", "2", "--hot-user-share", "0.4")
    _, rows = csv_rows(tmp_path / "user_interactions")
    per_user = collections.Counter(r[0] for r in rows)
    hot = manifest["realistic"]["hot_users"]
    assert len(hot) == 2 and manifest["realistic"]["hot_user_expected_event_share"] == 0.4
    assert {u for u, _ in per_user.most_common(2)} == set(hot)
    assert 0.35 <= sum(per_user[u] for u in hot) / len(rows) <= 0.45


def test_events_form_sessions_with_gaps_at_the_1800_second_boundary(tmp_path):
    generate(tmp_path, *SMALL, "--mode", "realistic", "--users", "2000", "--malformed-share", "0")
    _, rows = csv_rows(tmp_path / "user_interactions")
    times = collections.defaultdict(list)
    for r in rows:
        times[r[0]].append(dt.datetime.strptime(r[1], "%Y-%m-%d %H:%M:%S"))
    gaps = collections.Counter()
    for ts in times.values():
        ts.sort()
        gaps.update(int((b - a).total_seconds()) for a, b in zip(ts, ts[1:]))
    new_sessions = sum(c for g, c in gaps.items() if g > 1800)
    assert gaps[1800] > 0 and gaps[1801] > 0 and gaps[0] > 0
    # bursts: most consecutive events of a user are within a session
    assert 2 <= len(rows) / (new_sessions + len(times)) <= 20


def test_manifest_records_anomalies_visible_in_the_data(tmp_path):
    manifest = generate(tmp_path, "--mode", "realistic", "--events", "60000", "--users", "3000",
                        "--days", "40", "--seed", "11", "--malformed-share", "0")
    spike, burst = manifest["anomalies"]
    assert spike["kind"] == "latency_spike" and burst["kind"] == "usage_burst"
    per_day = manifest["user_interactions"]["rows_per_date"]
    others = sorted(v for d, v in per_day.items() if d != burst["date"])
    assert per_day[burst["date"]] > 2 * others[len(others) // 2]

    _, rows = csv_rows(tmp_path / "user_interactions")
    version_loads = collections.defaultdict(list)
    for r in rows:
        if r[2] == "page_view" and r[5] == spike["app_version"]:
            version_loads[r[1][:10]].append(int(r[4]))
    medians = {d: sorted(v)[len(v) // 2] for d, v in version_loads.items() if len(v) >= 20}
    normal = sorted(m for d, m in medians.items() if d != spike["date"])
    assert medians[spike["date"]] > 3 * normal[len(normal) // 2]


def test_newer_app_versions_appear_later(tmp_path):
    manifest = generate(tmp_path, *SMALL, "--mode", "realistic", "--users", "2000", "--malformed-share", "0")
    _, rows = csv_rows(tmp_path / "user_interactions")
    first_seen = {}
    for r in rows:
        first_seen[r[5]] = min(first_seen.get(r[5], r[1]), r[1])
    released = [v["app_version"] for v in manifest["realistic"]["versions"]
                if v["release_day"] > 0 and v["app_version"] in first_seen]
    assert len(released) >= 3
    assert [first_seen[v] for v in released] == sorted(first_seen[v] for v in released)


def test_metadata_has_missing_users_and_duplicates_with_later_and_tied_join_dates(tmp_path):
    manifest = generate(tmp_path, *SMALL, "--mode", "realistic", "--users", "4000", "--malformed-share", "0")
    _, rows = csv_rows(tmp_path / "user_interactions")
    _, meta = csv_rows(tmp_path / "user_metadata")
    join_dates = collections.defaultdict(list)
    for m in meta:
        join_dates[m[0]].append(m[1])
    repeated = [d for d in join_dates.values() if len(d) > 1]
    assert any(len(set(d)) > 1 for d in repeated)               # a later join_date
    assert any(len(set(d)) == 1 for d in repeated)              # tied join_dates
    assert manifest["user_metadata"]["duplicate_tied_join_date"] == sum(len(set(d)) == 1 for d in repeated)
    event_users = collections.Counter(r[0] for r in rows)
    with_metadata = sum(c for u, c in event_users.items() if u in join_dates)
    assert 0.85 * len(rows) <= with_metadata < len(rows)      # most activity has metadata, not all
    assert any(u not in join_dates for u in event_users)


def test_realistic_mode_writes_exact_duplicate_rows(tmp_path):
    manifest = generate(tmp_path, *SMALL, "--mode", "realistic", "--users", "2000", "--duplicate-share", "0.01")
    _, rows = csv_rows(tmp_path / "user_interactions")
    repeats = sum(c - 1 for c in collections.Counter(map(tuple, rows)).values())
    assert manifest["user_interactions"]["exact_duplicates"] >= 190
    assert repeats >= manifest["user_interactions"]["exact_duplicates"]


# --- formats and layouts ------------------------------------------------------------
@pytest.mark.parametrize("mode, malformed", [("challenge", "0"), ("realistic", "0"), ("realistic", "0.01")])
def test_parquet_and_csv_hold_the_same_rows(tmp_path, mode, malformed):
    common = [*SMALL, "--mode", mode, "--users", "2000", "--malformed-share", malformed]
    generate(tmp_path / "csv", *common)
    generate(tmp_path / "pq", *common, "--format", "parquet")
    for name in ("user_interactions", "user_metadata"):
        csv_header, from_csv = csv_rows(tmp_path / "csv" / name)
        pq_header, from_pq = parquet_rows(tmp_path / "pq" / name)
        assert pq_header == csv_header
        if malformed == "0":
            assert from_pq == from_csv
        else:
            # column-count errors exist only in CSV; every other row is the same
            assert len(from_pq) == len(from_csv)
            assert all(len(r) == len(pq_header) for r in from_pq)
            assert sum(a != b for a, b in zip(from_csv, from_pq)) <= 0.02 * len(from_csv)


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_date_folders_hold_the_same_rows_as_one_file_partitioned_by_event_date(tmp_path, file_format):
    common = [*SMALL, "--mode", "realistic", "--users", "2000", "--format", file_format]
    one = generate(tmp_path / "one", *common)
    folders = generate(tmp_path / "folders", *common, "--layout", "date-folders")
    read = csv_rows if file_format == "csv" else parquet_rows
    _, single = read(tmp_path / "one" / "user_interactions")
    _, split = read(tmp_path / "folders" / "user_interactions")
    assert collections.Counter(map(tuple, split)) == collections.Counter(map(tuple, single))
    assert one["user_interactions"]["rows_per_date"] == folders["user_interactions"]["rows_per_date"]

    ext = "csv" if file_format == "csv" else "parquet"
    for folder in (tmp_path / "folders" / "user_interactions").iterdir():
        assert re.fullmatch(r"date=\d{4}-\d{2}-\d{2}", folder.name)
        assert [p.name for p in folder.iterdir()] == [f"part-00000.{ext}"]
        _, rows = read(folder)
        good = [r for r in rows if len(r) == 6 and is_timestamp(r[1])]
        assert good and all(r[1][:10] == folder.name[5:] for r in good)
        assert len(rows) == one["user_interactions"]["rows_per_date"][folder.name[5:]]


def test_country_folders_carry_the_country_in_the_path(tmp_path):
    generate(tmp_path / "one", *SMALL, "--mode", "challenge")
    generate(tmp_path / "folders", *SMALL, "--mode", "challenge", "--metadata-layout", "country-folders")
    _, single = csv_rows(tmp_path / "one" / "user_metadata")
    rebuilt = []
    for folder in sorted((tmp_path / "folders" / "user_metadata").iterdir()):
        header, rows = csv_rows(folder)
        assert header == ["user_id", "join_date", "device_type", "subscription_type"]
        country = folder.name.removeprefix("country=")
        rebuilt += [(r[0], r[1], country, r[2], r[3]) for r in rows]
    assert collections.Counter(rebuilt) == collections.Counter(map(tuple, single))


# --- bad batches for the quality gates ---------------------------------------------------
def test_bad_batch_out_of_set_puts_values_outside_their_sets(tmp_path):
    manifest = generate(tmp_path, *SMALL, "--mode", "challenge", "--bad-batch", "out_of_set")
    _, rows = csv_rows(tmp_path / "user_interactions")
    _, meta = csv_rows(tmp_path / "user_metadata")
    assert sum(r[2] not in ACTION_TYPES for r in rows) == 1000
    assert sum(m[3] not in DEVICE_TYPES for m in meta) == 100
    assert sum(m[4] not in SUBSCRIPTION_TYPES for m in meta) == 100
    assert manifest["bad_batch"]["kind"] == "out_of_set"
    assert manifest["user_interactions"]["out_of_set"] == {"action_type": 1000}


def test_bad_batch_broken_join_gives_metadata_no_event_user_matches(tmp_path):
    generate(tmp_path, *SMALL, "--mode", "realistic", "--users", "2000", "--bad-batch", "broken_join")
    _, rows = csv_rows(tmp_path / "user_interactions")
    _, meta = csv_rows(tmp_path / "user_metadata")
    meta_ids = {m[0] for m in meta if m[0]}
    assert len(meta_ids) > 1000
    assert all(re.fullmatch(r"u\d{6,}", u) for u in meta_ids)
    assert meta_ids.isdisjoint({r[0] for r in rows})


def test_bad_batch_null_user_empties_many_user_ids(tmp_path):
    manifest = generate(tmp_path, *SMALL, "--mode", "challenge", "--bad-batch", "null_user")
    _, rows = csv_rows(tmp_path / "user_interactions")
    assert sum(r[0] == "" for r in rows) == 4000 == manifest["user_interactions"]["null_user_rows"]


def test_help_documents_every_bad_batch_kind(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for kind in BAD_BATCH_KINDS:
        assert kind in text


def test_invalid_arguments_are_refused_with_the_value_found(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--mode", "realistic", "--out", "x", "--malformed-share", "1.5"])
    assert "--malformed-share must be in [0, 1), got 1.5" in capsys.readouterr().err


def test_zero_events_give_header_only_files(tmp_path):
    assert main(["--out", str(tmp_path), "--mode", "realistic", "--events", "0", "--users", "50"]) == 0
    manifest = json.loads((tmp_path / "_manifest.json").read_text())
    header, rows = csv_rows(tmp_path / "user_interactions")
    assert (header, rows) == (INTERACTION_COLUMNS, [])
    assert manifest["user_interactions"]["rows_per_date"] == {}
