"""The lastfm_sessions pipeline on generated plays, in a catalog of its own, run
as users run it (its jobs in their own Spark applications): its tables equal an
independent DuckDB implementation's (bench/duckdb_lastfm.py), its input report
equals counts taken from the file in plain Python, and a second run of the same
input changes nothing."""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from bench.duckdb_lastfm import lastfm_tables, published_tables
from tests.databases import drop_database, fresh_database

ROOT = Path(__file__).resolve().parents[2]
TABLES = ("bronze.lastfm_plays", "bronze.rejected_rows", "gold.lastfm_top_sessions", "gold.lastfm_top_songs")


class LastfmCatalog:
    def __init__(self, name: str, tmp: Path, plays: Path):
        fresh_database(name)
        self.name, self.plays, self.data_docs = name, plays, tmp / "data_docs"
        self.env = {**os.environ, "ICEBERG_CATALOG_DB": name, "ICEBERG_WAREHOUSE": str(tmp / "warehouse"),
                    "DATA_DOCS_DIR": str(self.data_docs), "GX_RESULTS_DIR": str(tmp / "gx"),
                    "SPARK_MASTER": "local[2]", "SPARK_SHUFFLE_PARTITIONS": "4", "SPARK_DRIVER_MEMORY": "1g",
                    "PYTHONPATH": str(ROOT)}

    def run(self, module: str, run_id: str, *args: str) -> None:
        proc = subprocess.run([sys.executable, "-m", module, "--run-id", run_id, *args], cwd=ROOT, env=self.env,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]

    def table(self, name: str) -> list[dict]:
        from pyiceberg.catalog import load_catalog

        from iceberg_catalog import config

        settings = {**config.settings(), **{k: self.env[k] for k in ("ICEBERG_CATALOG_DB", "ICEBERG_WAREHOUSE")}}
        catalog = load_catalog(config.CATALOG_NAME, **config.pyiceberg_properties(settings))
        return catalog.load_table(name).scan().to_arrow().to_pylist()

    def state(self) -> dict[str, Counter]:
        """Every table's rows, as a multiset; the run id of rejected rows left out."""
        return {t: Counter(tuple(str(v) for k, v in r.items() if k != "run_id") for r in self.table(t)) for t in TABLES}


@pytest.fixture(scope="module")
def lastfm(tmp_path_factory, platform):
    tmp = tmp_path_factory.mktemp("lastfm")
    plays = tmp / "userid-timestamp-artid-artname-traid-traname.tsv"
    subprocess.run([sys.executable, "-m", "datagen.lastfm", "--out", str(plays), "--plays", "60000", "--users", "40",
                    "--seed", "11", "--malformed-share", "0.01", "--start-date", "2009-01-01", "--end-date",
                    "2009-04-30"], cwd=ROOT, check=True, capture_output=True)
    catalog = LastfmCatalog("iceberg_test_lastfm", tmp, plays)
    catalog.run("spark_jobs.pipeline", "lastfm_1", "--pipeline", "lastfm_sessions", "--plays", str(plays))
    yield catalog
    drop_database(catalog.name)


def test_the_gold_tables_equal_duckdbs(lastfm):
    duck = lastfm_tables(str(lastfm.plays))
    published = published_tables(lastfm.table)
    assert (len(published["top_sessions"]), len(published["top_songs"])) == (50, 10)
    assert published == {"top_sessions": duck["top_sessions"], "top_songs": duck["top_songs"]}
    rejected = Counter(r["reason"] for r in lastfm.table("bronze.rejected_rows") if r["dataset"] == "lastfm_plays")
    assert rejected == Counter(duck["rejected_by_reason"]) and len(rejected) >= 4
    assert len(lastfm.table("bronze.lastfm_plays")) == duck["accepted"]


TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def file_report(path: Path) -> dict:
    """The input report's figures, counted from the file with the contract's rules."""
    lines, accepted = 0, []
    for line in path.read_text(encoding="utf-8").split("\n")[:-1]:
        lines += 1
        f = line.split("\t")
        if len(f) != 6 or not f[0] or not f[5] or not TIMESTAMP.fullmatch(f[1]) or f[1].startswith("0000"):
            continue
        try:
            dt.datetime.strptime(f[1], "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            continue
        accepted.append((f[0], f[1], f[3], f[5]))
    return {"lines read": lines, "accepted": len(accepted), "rejected": lines - len(accepted),
            "duplicate plays (same user, time and song; kept)": len(accepted) - len(set(accepted)),
            "users": len({a[0] for a in accepted}), "songs (artist, track)": len({(a[2], a[3]) for a in accepted})}


def test_the_input_report_is_in_ops_and_in_data_docs(lastfm):
    expected = file_report(lastfm.plays)
    assert expected["duplicate plays (same user, time and song; kept)"] > 0
    [job] = [r for r in lastfm.table("ops.job_runs") if r["run_id"] == "lastfm_1" and r["job"] == "lastfm_ingest"]
    report = json.loads(job["metrics_json"])["input_report"]
    assert {k: v for k, v in report.items() if not k.startswith("rejected: ")} == expected
    page = (lastfm.data_docs / "gates" / "wap_lastfm_1" / "lastfm_ingest.html").read_text()
    for name, value in expected.items():
        assert f"<td>{name}</td><td class='n'>{value:,}</td>" in page.replace("&#x27;", "'"), name


def test_a_second_run_of_the_same_input_changes_nothing(lastfm):
    before = lastfm.state()
    # As the DAG runs it: one application per stage.
    lastfm.run("spark_jobs.lastfm_ingest", "lastfm_2", "--plays", str(lastfm.plays))
    lastfm.run("spark_jobs.lastfm_sessions", "lastfm_2")
    assert lastfm.state() == before
    runs = Counter((r["run_id"], r["job"], r["status"]) for r in lastfm.table("ops.job_runs")
                   if r["run_id"] in ("lastfm_1", "lastfm_2"))
    assert runs == Counter({(run, job, "succeeded"): 1 for run in ("lastfm_1", "lastfm_2")
                            for job in ("lastfm_ingest", "lastfm_sessions")})


def test_other_options_give_what_duckdb_gives_with_them(lastfm):
    try:
        lastfm.run("spark_jobs.pipeline", "lastfm_options", "--pipeline", "lastfm_sessions", "--stages",
                   "lastfm_sessions", "--session-gap-seconds", "600", "--top-sessions", "7", "--top-songs", "4")
        duck = lastfm_tables(str(lastfm.plays), session_gap_seconds=600, top_sessions=7, top_songs=4)
        assert published_tables(lastfm.table) == {"top_sessions": duck["top_sessions"], "top_songs": duck["top_songs"]}
    finally:  # the default options' tables back, which the other tests read
        lastfm.run("spark_jobs.lastfm_sessions", "lastfm_defaults")
