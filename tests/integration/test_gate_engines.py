"""Where a gate's Great Expectations metrics are computed: small rows are read
into the driver and validated by GX's pandas engine, larger ones (and suites
that name Spark's column types) by its Spark engine; the verdicts are the same
(``test_suites_catch_defects`` runs every suite's defects on both)."""
from __future__ import annotations

import datetime as dt

import pytest

from spark_jobs.quality.suites import load_suite
from spark_jobs.quality.validation import Validator


@pytest.fixture
def validator(tmp_path):
    return Validator(tmp_path / "docs", tmp_path / "results")


def sessions(spark, *ends: dt.datetime):
    """Sessions of two events from 2023-07-01 10:00 to each end. From VALUES, so
    Spark knows their size, as it knows a table's (a DataFrame of Python rows
    has no size estimate and would go to Spark)."""
    start = dt.datetime(2023, 7, 1, 10, 0)
    rows = ", ".join(f"('s{i}', 2L, TIMESTAMP'{start}', TIMESTAMP'{end}', {int((end - start).total_seconds() * 1000)}L)"
                     for i, end in enumerate(ends))
    return spark.sql(f"SELECT * FROM VALUES {rows} "
                     "AS t(session_id, actions, session_start, session_end, session_duration_ms)")


def test_small_rows_are_validated_in_the_driver_unless_the_suite_names_spark_types(spark, validator, tmp_path):
    df = sessions(spark, dt.datetime(2023, 7, 1, 10, 5), dt.datetime(2023, 7, 1, 11, 0))
    params = {"events_in_owned_sessions": 4}
    in_driver = validator.validate(load_suite("gold.sessions"), df, params, "engines", "small")
    assert (in_driver.engine, in_driver.passed) == ("pandas", True)
    on_spark = Validator(tmp_path / "docs", tmp_path / "results", driver_max_bytes=0).validate(
        load_suite("gold.sessions"), df, params, "engines", "over-the-limit")
    assert (on_spark.engine, on_spark.passed) == ("spark", True)
    # bronze.user_metadata's suite checks Spark column types: Spark, however few its rows.
    metadata = spark.sql("SELECT * FROM VALUES ('u1', DATE'2023-01-02', 'US', 'iPad', 'free') "
                         "AS t(user_id, join_date, country, device_type, subscription_type)")
    assert validator.validate(load_suite("bronze.user_metadata"), metadata, {}, "engines", "typed").engine == "spark"


def test_rows_pandas_cannot_hold_are_validated_on_spark(spark, validator):
    """pandas keeps timestamps in nanoseconds (years 1678-2261); Spark's reach
    year 9999. Such rows are still validated, on Spark, and still caught."""
    far = sessions(spark, dt.datetime(9999, 12, 31, 23, 59, 59))
    validation = validator.validate(load_suite("gold.sessions"), far, {"events_in_owned_sessions": 2}, "engines", "far")
    assert (validation.engine, validation.passed) == ("spark", True)
    ends_before_start = sessions(spark, dt.datetime(9999, 12, 31), dt.datetime(2023, 7, 1, 9, 0))
    validation = validator.validate(load_suite("gold.sessions"), ends_before_start, {"events_in_owned_sessions": 4},
                                    "engines", "far-and-wrong")
    assert validation.engine == "spark"
    assert {o.expectation_type for o in validation.outcomes if not o.success} == {
        "expect_column_pair_values_a_to_be_greater_than_b", "expect_column_values_to_be_between"}
