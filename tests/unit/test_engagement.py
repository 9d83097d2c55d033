import datetime as dt

import pytest
from pyspark.testing import assertDataFrameEqual

from spark_jobs.transforms import engagement as T
from tests.assertions import assert_rows

ENRICHED = ("user_id string, event_date date, duration_ms bigint, join_date date, country string, "
            "device_type string, subscription_type string")
D = dt.date


def enriched(spark, rows):
    return spark.createDataFrame(rows, ENRICHED)


def test_daily_engagement_mau_window_is_30_days_inclusive(spark):
    df = enriched(spark, [
        ("x", D(2023, 7, 1), 10, None, None, None, None),
        ("x", D(2023, 7, 1), 20, None, None, None, None),
        ("y", D(2023, 7, 2), 5, None, None, None, None),
        ("x", D(2023, 7, 31), 7, None, None, None, None),   # d-30: 07-01 has left the window
        ("z", D(2023, 8, 1), 1, None, None, None, None),    # y (07-02) is 30 days back: out
    ])
    assert_rows(T.daily_engagement(T.user_days(df)), ["event_date", "dau", "mau_30d", "stickiness", "events", "total_duration_ms"], [
        (D(2023, 7, 1), 1, 1, 1.0, 2, 30),
        (D(2023, 7, 2), 1, 2, 0.5, 1, 5),
        (D(2023, 7, 31), 1, 2, 0.5, 1, 7),
        (D(2023, 8, 1), 1, 2, 0.5, 1, 1),
    ])
    assert_rows(T.monthly_active_users(T.user_days(df)), ["month", "mau"], [(D(2023, 7, 1), 2), (D(2023, 8, 1), 1)])


def test_power_users_cap_durations_and_keep_ties_at_the_threshold(spark):
    hour = 3_600_000
    df = enriched(spark, [
        ("a", D(2023, 7, 1), 10 * hour, None, "US", "iPad", "free"),   # capped at 8 h
        ("a", D(2023, 7, 2), hour, None, "US", "iPad", "free"),
        ("b", D(2023, 7, 1), 9 * hour // 2, None, "DE", "iPhone", "basic"),
        ("b", D(2023, 7, 1), 9 * hour // 2, None, "DE", "iPhone", "basic"),  # 9 h total, uncapped each: ties a
        ("c", D(2023, 7, 1), 1000, None, None, None, None),
        ("d", D(2023, 7, 1), 500, None, None, None, None),
    ])
    columns = ["user_id", "total_duration_ms", "events", "active_days", "country", "device_type", "subscription_type"]
    # N = 4, k = ceil(0.25 * 4) = 1: the threshold is the top total, shared by a and b.
    assert_rows(T.power_users(T.user_days(df), 0.25), columns, [
        ("a", 9 * hour, 2, 2, "US", "iPad", "free"),
        ("b", 9 * hour, 2, 1, "DE", "iPhone", "basic"),
    ])
    # k = ceil(0.5 * 4) = 2 is still a tie; k = 3 reaches c.
    assert {r.user_id for r in T.power_users(T.user_days(df), 0.75).collect()} == {"a", "b", "c"}


def test_power_user_count_is_exact_decimal():
    assert T.power_user_count(700, 0.01) == 7
    assert T.power_user_count(701, 0.01) == 8
    assert T.power_user_count(1, 0.01) == 1


# Cohorts: latest event 2023-07-19 (Wed), so W = 2023-07-17 and the cohort weeks
# are 2023-01-23 (W-25) .. 2023-07-17. Weeks start on Monday.
COHORT_USER_DIM = [
    ("p", D(2023, 7, 3), "US", "iPad", "free"),     # Monday: cohort 07-03
    ("q", D(2023, 7, 9), "US", "iPad", "free"),     # Sunday: still cohort 07-03
    ("n", D(2023, 7, 5), "DE", "iPhone", "free"),   # cohort 07-03, never any event: counted, lowers retention
    ("r", D(2023, 7, 10), "US", "iPad", "free"),    # Monday: cohort 07-10
    ("m", D(2023, 7, 12), "US", "iPad", "basic"),   # cohort 07-10, no event: week 0 is 1 of 2
    ("v", D(2023, 7, 17), "US", "iPad", "free"),    # cohort W, no event: week 0 is 0
    ("t", D(2023, 1, 22), "US", "iPad", "free"),    # Sunday of week 2023-01-16 = W-26: no cohort
    ("u", D(2023, 1, 23), "US", "iPad", "free"),    # Monday of week W-25: cohort 01-23
    ("f", D(2023, 7, 24), "US", "iPad", "free"),    # joins after W: no cohort
    ("x", None, None, None, None),                  # no join_date: no cohort
]
COHORT_EVENTS = [  # (user_id, event_date)
    ("p", D(2023, 6, 28)),   # before p's join week: not counted
    ("p", D(2023, 7, 3)),    # Monday: offset 0
    ("p", D(2023, 7, 4)),    # same week again: one active user
    ("p", D(2023, 7, 16)),   # Sunday of week 07-10: offset 1
    ("q", D(2023, 7, 19)),   # week 07-17: offset 2 (the latest event)
    ("r", D(2023, 7, 11)),   # offset 0
    ("t", D(2023, 7, 12)),
    ("u", D(2023, 7, 18)),   # offset 25
    ("x", D(2023, 7, 12)),
    ("s", D(2023, 7, 12)),   # events but no user_dim row: no cohort
]
COHORT_COLUMNS = "cohort_week date, week_offset int, cohort_size long, active_users long, retention_rate double"
COHORT_EXPECTED = [
    *[(D(2023, 1, 23), k, 1, 1 if k == 25 else 0, 1.0 if k == 25 else 0.0) for k in range(26)],   # u only
    (D(2023, 7, 3), 0, 3, 1, 1 / 3),    # p, q, n: p
    (D(2023, 7, 3), 1, 3, 1, 1 / 3),    # p on Sunday 07-16
    (D(2023, 7, 3), 2, 3, 1, 1 / 3),    # q
    (D(2023, 7, 10), 0, 2, 1, 0.5),     # r, m: r
    (D(2023, 7, 10), 1, 2, 0, 0.0),
    (D(2023, 7, 17), 0, 1, 0, 0.0),     # v
]


def cohort_inputs(spark):
    attributes = {u: (j, c, d, s) for u, j, c, d, s in COHORT_USER_DIM}
    events = enriched(spark, [(u, e, 1, *attributes.get(u, (None,) * 4)) for u, e in COHORT_EVENTS])
    user_dim = spark.createDataFrame(COHORT_USER_DIM, "user_id string, join_date date, country string, "
                                                      "device_type string, subscription_type string")
    return T.user_days(events), user_dim


def test_cohort_retention_counts_every_user_dim_user_of_the_week(spark):
    user_days, user_dim = cohort_inputs(spark)
    assertDataFrameEqual(T.cohort_retention(user_days, user_dim), spark.createDataFrame(COHORT_EXPECTED, COHORT_COLUMNS))


def test_cohort_retention_without_events_is_empty(spark):
    user_days, user_dim = cohort_inputs(spark)
    assertDataFrameEqual(T.cohort_retention(user_days.limit(0), user_dim), spark.createDataFrame([], COHORT_COLUMNS))


def test_duckdb_cohorts_also_count_users_without_events():
    """bench/duckdb_metrics.py, the parity side, on the same rows gives the same table."""
    from bench import duckdb_metrics   # here, so the Spark tests above do not depend on the bench module

    con = duckdb_metrics.connect()
    con.execute("CREATE TABLE silver_user_dim (user_id VARCHAR, join_date DATE, country VARCHAR, "
                "device_type VARCHAR, subscription_type VARCHAR)")
    con.executemany("INSERT INTO silver_user_dim VALUES (?, ?, ?, ?, ?)", COHORT_USER_DIM)
    con.execute("CREATE TABLE silver_interactions_enriched (user_id VARCHAR, event_date DATE, duration_ms BIGINT)")
    con.executemany("INSERT INTO silver_interactions_enriched VALUES (?, ?, 1)", COHORT_EVENTS)
    duckdb_metrics.stage_engagement(con, duckdb_metrics.Params())
    got = con.execute("SELECT * FROM gold_cohort_retention ORDER BY cohort_week, week_offset").fetchall()
    assert [r[:4] for r in got] == [r[:4] for r in COHORT_EXPECTED]
    assert [r[4] for r in got] == pytest.approx([r[4] for r in COHORT_EXPECTED])
