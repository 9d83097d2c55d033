"""datagen/lastfm.py, the LastFM-1K dump generator: a small file read back with
plain Python (bytes, str.split) against the dump's format and the planted shapes.
No Spark, no DuckDB."""
from __future__ import annotations

import collections
import datetime as dt
import json
import re
from pathlib import Path

import pytest

from datagen.lastfm import COMMON_TITLES, MALFORMED_KINDS, main

PLAYS, SHARE = 20_000, 0.005
ARGS = ["--plays", str(PLAYS), "--seed", "11", "--malformed-share", str(SHARE)]
TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z", re.ASCII)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", re.ASCII)


def generate(path: Path, *args: str) -> dict:
    main(["--out", str(path), *args])
    return json.loads(Path(str(path) + ".manifest.json").read_text(encoding="utf-8"))


def parse_ts(text: str) -> dt.datetime | None:
    if not TIMESTAMP.fullmatch(text):
        return None
    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return None


def kind_of(f: list[str]) -> str | None:
    """The malformed kind of a line's fields (None: well formed), by the contract's checks."""
    if len(f) != 6:
        return f"columns_{len(f)}"
    if not f[0]:
        return "empty_user_id"
    if parse_ts(f[1]) is None:
        return "bad_timestamp"
    if not f[5]:
        return "empty_track_name"
    return None


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    path = tmp_path_factory.mktemp("lastfm") / "userid-timestamp-artid-artname-traid-traname.tsv"
    manifest = generate(path, *ARGS)
    data = path.read_bytes()
    lines = data.decode("utf-8").split("\n")
    assert lines[-1] == ""                      # every line ends with \n
    fields = [line.split("\t") for line in lines[:-1]]
    return path, manifest, data, fields


def test_same_arguments_give_the_same_bytes(generated, tmp_path, capsys):
    path, manifest, data, _ = generated
    again = generate(tmp_path / "again.tsv", *ARGS)
    assert (tmp_path / "again.tsv").read_bytes() == data
    drop = {"seconds", "file"}
    assert {k: v for k, v in again.items() if k not in drop} == {k: v for k, v in manifest.items() if k not in drop}
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed == again                     # the printed one-line summary is the manifest
    other = generate(tmp_path / "other.tsv", *ARGS[:2], "--seed", "12", *ARGS[4:])
    assert (tmp_path / "other.tsv").read_bytes() != data and other["lines"] == PLAYS


def test_format_of_the_dump(generated):
    _, manifest, data, fields = generated
    assert b"\r" not in data and b"\x00" not in data and not data.startswith(b"\xef\xbb\xbf")
    assert manifest["lines"] == len(fields) == PLAYS and manifest["bytes"] == len(data)
    assert not fields[0][0].startswith("user_id")          # no header
    good = [f for f in fields if kind_of(f) is None]
    assert len(good) == PLAYS - manifest["malformed_total"]
    users = {f"user_{i:06d}" for i in range(1, 993)}
    first, last = dt.datetime(2005, 2, 14), dt.datetime(2009, 6, 19, 23, 59, 59)
    for f in good:
        assert f[0] in users
        assert first <= parse_ts(f[1]) <= last
        assert f[2] == "" or UUID.fullmatch(f[2]), f
        assert f[4] == "" or UUID.fullmatch(f[4]), f
        assert f[3] and not any(c in f[3] + f[5] for c in "\t\r\n")
    assert fields[0][0] == "user_000001"
    # non-ASCII and the characters a CSV reader would interpret are there, literally
    names = "".join(f[3] + f[5] for f in good)
    for text in ['"', "'", ",", "\\"]:
        assert text in names, text
    for lo, hi in [(0xC0, 0x17F), (0x3040, 0x9FFF), (0x1F000, 0x1FAFF)]:   # accented Latin, CJK, emoji
        assert any(lo <= ord(c) <= hi for c in names), hex(lo)
    # ~10% of lines without a track_id, some without an artist_id
    empty_track_id = sum(f[4] == "" for f in good) / len(good)
    assert 0.03 < empty_track_id < 0.2 and any(f[2] == "" for f in good)
    assert manifest["empty_track_id_lines"] == sum(f[4] == "" for f in good)


def test_lines_grouped_by_user_and_newest_first(generated):
    _, _, _, fields = generated
    good = [(f[0], parse_ts(f[1])) for f in fields if kind_of(f) is None]
    order = [u for u, _ in good]
    assert order == sorted(order)               # users in order, each in one block
    for (u1, t1), (u2, t2) in zip(good, good[1:]):
        if u1 == u2:
            assert t1 >= t2
    per_user = collections.Counter(order)
    counts = sorted(per_user.values())
    assert 900 <= len(per_user) <= 992
    assert counts[-1] > 5 * counts[len(counts) // 2]    # very uneven activity


def test_malformed_lines_share_and_kinds(generated):
    _, manifest, _, fields = generated
    kinds = collections.Counter(k for f in fields if (k := kind_of(f)) is not None)
    assert sum(kinds.values()) == manifest["malformed_total"] == round(SHARE * PLAYS)
    assert dict(kinds) == {k: v for k, v in manifest["malformed"].items() if v}
    assert set(kinds) == set(MALFORMED_KINDS)             # every kind present
    assert min(kinds.values()) >= 15
    bad = {f[1] for f in fields if kind_of(f) == "bad_timestamp"}
    assert "2009-13-45T99:00:00Z" in bad and "yesterday" in bad
    assert any(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", b) for b in bad)
    # the malformed lines are the plays' lines with one fault: the user is still in order
    assert all(f[0].startswith("user_") for f in fields if kind_of(f) != "empty_user_id")


def test_planted_gaps_duplicates_and_shared_titles(generated):
    _, manifest, _, fields = generated
    good = [f for f in fields if kind_of(f) is None]
    gaps = collections.Counter()
    duplicates = equal_other_song = 0
    for a, b in zip(good, good[1:]):
        if a[0] != b[0]:
            continue
        gaps[int((parse_ts(a[1]) - parse_ts(b[1])).total_seconds())] += 1
        duplicates += a == b
        equal_other_song += a[1] == b[1] and (a[3], a[5]) != (b[3], b[5])
    assert gaps[1200] >= 3 and gaps[1201] >= 3
    assert duplicates >= 3 and equal_other_song >= 3
    # plays in sessions: most gaps are a track length; sessions are hours to days apart
    within = sum(v for g, v in gaps.items() if g <= 1200)
    assert 0.85 < within / sum(gaps.values()) < 0.97
    assert sum(v for g, v in gaps.items() if 120 <= g <= 420) / within > 0.8
    assert any(g > 7 * 86400 for g in gaps)
    # the same title by several artists
    artists_of = collections.defaultdict(set)
    for f in good:
        artists_of[f[5]].add(f[3])
    assert any(len(artists_of[title]) >= 2 for title in COMMON_TITLES)
    # a few songs are very popular, most are rare
    plays = sorted(collections.Counter((f[3], f[5]) for f in good).values(), reverse=True)
    assert plays[0] > 10 * plays[len(plays) // 2]


def test_arguments_are_checked(tmp_path):
    for bad in (["--plays", "-1"], ["--malformed-share", "1"], ["--users", "0"],
                ["--start-date", "2009-01-02", "--end-date", "2009-01-01"]):
        with pytest.raises(SystemExit):
            main(["--out", str(tmp_path / "x.tsv"), *bad])


def test_small_and_odd_shapes(tmp_path):
    manifest = generate(tmp_path / "one.tsv", "--plays", "3000", "--users", "1", "--malformed-share", "0",
                        "--start-date", "2009-06-01", "--end-date", "2009-06-02")
    lines = (tmp_path / "one.tsv").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3000 and manifest["malformed_total"] == 0
    stamps = [parse_ts(line.split("\t")[1]) for line in lines]
    assert all(dt.datetime(2009, 6, 1) <= s <= dt.datetime(2009, 6, 2, 23, 59, 59) for s in stamps)
    assert stamps == sorted(stamps, reverse=True)
    generate(tmp_path / "empty.tsv", "--plays", "0")
    assert (tmp_path / "empty.tsv").read_bytes() == b""
