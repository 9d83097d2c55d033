"""Each suite blocks the defect it exists for. The test run's published rows
pass their suite; the same rows with one planted defect fail exactly the
expectations meant to catch it (validated by GX, as the gate validates), on
either engine a gate may validate them with: GX's Spark engine, and its
pandas engine on the rows read into the driver (small tables)."""
from __future__ import annotations

import datetime as dt
import itertools
import json

import pytest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from spark_jobs.pipeline import STAGES, TABLES
from spark_jobs.quality.suites import load_suite
from spark_jobs.quality.validation import Validator

UNIQUE_TYPES = {"expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"}
_labels = itertools.count()


@pytest.fixture(scope="module", params=["spark", "pandas"])
def validator(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("suites")
    # The test tables are all small: a limit of 0 bytes keeps every table on Spark.
    return Validator(tmp / "data_docs", tmp / "results", driver_max_bytes=0 if request.param == "spark" else 1 << 30)


@pytest.fixture(scope="module")
def published(spark, pipeline_run):
    def read(table: str) -> DataFrame:
        return spark.table(TABLES[table].identifier)
    return read


def failures(validator, table: str, df: DataFrame, parameters: dict | None = None) -> set[tuple]:
    suite = load_suite(table)
    validation = validator.validate(suite, df, parameters or {}, "test-suites", f"{table}-{next(_labels)}")
    # Suites naming Spark's types (bronze's column types) run on Spark whatever the rows' size.
    assert validation.engine == ("spark" if validator.driver_max_bytes == 0 or suite.names_spark_types else "pandas")
    return {(o.expectation_type, o.kwargs.get("column") or o.kwargs.get("column_A"), o.severity)
            for o in validation.outcomes if not o.success}


def first_row_set(df: DataFrame, column: str, value) -> DataFrame:
    """df with ``column`` replaced by ``value`` in one row (the smallest by every column)."""
    marked = df.withColumn("_first", F.row_number().over(Window.orderBy(*df.columns)) == 1)
    return marked.withColumn(column, F.when(F.col("_first"), F.lit(value)).otherwise(F.col(column))).drop("_first")


def test_bronze_rejects_an_app_version_that_is_not_semver(validator, published):
    df = published("bronze.interactions")
    assert failures(validator, "bronze.interactions", df) == set()
    assert failures(validator, "bronze.interactions", first_row_set(df, "app_version", "1.x")) == {
        ("expect_column_values_to_match_regex", "app_version", "error")}


def test_bronze_rejects_an_unknown_device(validator, published):
    df = published("bronze.user_metadata")
    assert failures(validator, "bronze.user_metadata", df) == set()
    assert failures(validator, "bronze.user_metadata", first_row_set(df, "device_type", "Toaster")) == {
        ("expect_column_values_to_be_in_set", "device_type", "error")}


def test_user_dim_rejects_a_second_row_of_a_user(validator, published):
    df = published("silver.user_dim")
    assert failures(validator, "silver.user_dim", df) == set()
    assert failures(validator, "silver.user_dim", df.unionByName(df.limit(1))) == {
        ("expect_column_values_to_be_unique", "user_id", "error")}


def test_enriched_must_keep_every_bronze_row_and_warns_then_blocks_on_missing_metadata(validator, published):
    df = published("silver.interactions_enriched")
    rows = df.count()
    share = df.where("country IS NOT NULL").count() / rows  # the generator leaves some users without metadata
    params = {"bronze_interactions_rows": rows, "min_metadata_match_share": share,
              "min_metadata_match_share_error": share / 2}
    assert failures(validator, "silver.interactions_enriched", df, params) == set()
    assert share < 1
    # The row left out has no metadata, so the match share only rises and no share expectation fires.
    one_row_lost = df.exceptAll(df.where("country IS NULL").limit(1))
    assert failures(validator, "silver.interactions_enriched", one_row_lost, params) == {
        ("expect_table_row_count_to_equal", None, "error")}
    no_country = df.withColumn("country", F.lit(None).cast("string"))
    assert failures(validator, "silver.interactions_enriched", no_country, params) == {
        ("expect_column_values_to_not_be_null", "country", "warning"),
        ("expect_column_values_to_not_be_null", "country", "error")}


def test_sessions_must_hold_every_event_once_and_end_after_they_start(validator, published):
    df = published("gold.sessions")
    params = {"events_in_owned_sessions": df.agg(F.sum("actions")).first()[0]}
    assert failures(validator, "gold.sessions", df, params) == set()
    one_more_action = first_row_set(df, "actions", df.orderBy(*df.columns).first().actions + 1)
    assert failures(validator, "gold.sessions", one_more_action, params) == {
        ("expect_column_sum_to_be_between", "actions", "error")}
    ends_before_start = first_row_set(df, "session_end", df.orderBy(*df.columns).first().session_start
                                      - dt.timedelta(seconds=1))
    assert failures(validator, "gold.sessions", ends_before_start, params) == {
        ("expect_column_pair_values_a_to_be_greater_than_b", "session_end", "error")}


# Not gold.usage_anomalies: four days give no anomaly (its rules are unit-tested);
# gold.device_latency_association is one row per run.
@pytest.mark.parametrize("table", [t for stage in STAGES for t in stage.tables if t.startswith("gold.") and t not in (
    "gold.sessions", "gold.usage_anomalies", "gold.device_latency_association")])
def test_every_gold_table_rejects_a_duplicated_row(validator, published, table):
    df = published(table)
    assert not df.isEmpty(), f"{table} is empty in the test run; the check needs a row to duplicate"
    found = failures(validator, table, df.unionByName(df.limit(1)))
    assert found and {(kind, severity) for kind, _, severity in found} <= {(t, "error") for t in UNIQUE_TYPES}, found


@pytest.fixture(scope="module")
def lastfm_published(spark, lastfm_run):
    return lambda table: spark.table(TABLES[table].identifier)


def test_lastfm_plays_must_be_every_accepted_line(validator, lastfm_published):
    df = lastfm_published("bronze.lastfm_plays")
    params = {"accepted_plays": df.count()}
    assert failures(validator, "bronze.lastfm_plays", df, params) == set()
    assert failures(validator, "bronze.lastfm_plays", df.exceptAll(df.limit(1)), params) == {
        ("expect_table_row_count_to_equal", None, "error")}
    assert failures(validator, "bronze.lastfm_plays", first_row_set(df, "track_name", ""), params) == {
        ("expect_column_value_lengths_to_be_between", "track_name", "error")}


def test_lastfm_top_songs_reject_a_song_twice_and_more_plays_than_the_sessions_hold(validator, lastfm_published):
    sessions, songs = lastfm_published("gold.lastfm_top_sessions"), lastfm_published("gold.lastfm_top_songs")
    assert (sessions.count(), songs.count()) == (50, 10)
    params = {"top_sessions": 50, "top_songs": 10,
              "tracks_of_top_sessions": sessions.agg(F.sum("tracks")).first()[0]}
    assert failures(validator, "gold.lastfm_top_sessions", sessions, params) == set()
    assert failures(validator, "gold.lastfm_top_songs", songs, params) == set()
    # A full table (10 songs, 50 sessions) with a row more is also too long.
    assert failures(validator, "gold.lastfm_top_songs", songs.unionByName(songs.limit(1)), params) == {
        ("expect_table_row_count_to_be_between", None, "error"),
        ("expect_column_values_to_be_unique", "rank", "error"),
        ("expect_compound_columns_to_be_unique", None, "error")}
    inflated = first_row_set(songs, "plays", params["tracks_of_top_sessions"] + 1)
    assert failures(validator, "gold.lastfm_top_songs", inflated, params) == {
        ("expect_column_sum_to_be_between", "plays", "error")}
    assert failures(validator, "gold.lastfm_top_sessions", sessions.unionByName(sessions.limit(1)), params) == {
        ("expect_table_row_count_to_be_between", None, "error"),
        ("expect_column_values_to_be_unique", "rank", "error"),
        ("expect_column_values_to_be_unique", "session_id", "error")}


def comparable(observed: str | None):
    """An observed value as its JSON, numbers by value (Spark's sums are doubles,
    pandas' integers). Over no rows Spark's aggregates count no unexpected values
    (null), pandas 0: the verdicts agree, that count is left out."""
    value = json.loads(observed) if observed else None
    if isinstance(value, dict) and value.get("element_count") == 0:
        value.pop("unexpected_count", None)
    return value


# Not silver.interactions_enriched: its parameters are a row count and shares
# (the test above validates it on both engines).
@pytest.mark.parametrize("table", [t for stage in STAGES for t in stage.tables
                                   if not load_suite(t).names_spark_types and t != "silver.interactions_enriched"])
def test_both_engines_see_the_same_outcomes(tmp_path, published, table):
    """What ops.quality_results keeps of a validation (verdicts, observed values)
    does not depend on the engine the gate chose for the rows' size."""
    df = published(table)
    # A duplicated row: unique keys fail, counts and sums move. The same row for
    # both engines (each evaluates the frame anew; a bare limit may pick another).
    defective = df.unionByName(df.orderBy(*df.columns).limit(1))
    parameters = {name: 10 ** 9 for name in load_suite(table).parameters()}
    seen = {}
    for engine, limit in (("spark", 0), ("pandas", 1 << 30)):
        validator = Validator(tmp_path / engine / "docs", tmp_path / engine / "results", driver_max_bytes=limit)
        seen[engine] = [[(o.expectation_type, o.success, comparable(o.observed_value)) for o in
                         validator.validate(load_suite(table), frame, parameters, "engines", f"{table}-{i}").outcomes]
                        for i, frame in enumerate((df, defective))]
    assert seen["spark"] == seen["pandas"]
