import datetime as dt

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


def test_cohort_retention_week_boundaries(spark):
    # Latest event 2023-07-19 (Wed): W = 2023-07-17; cohorts 2023-01-23 .. 2023-07-17.
    df = enriched(spark, [
        ("p", D(2023, 6, 28), 1, D(2023, 7, 3), "US", "iPad", "free"),   # before its cohort week: ignored
        ("p", D(2023, 7, 3), 1, D(2023, 7, 3), "US", "iPad", "free"),    # Monday: offset 0
        ("p", D(2023, 7, 16), 1, D(2023, 7, 3), "US", "iPad", "free"),   # Sunday of week 07-10: offset 1
        ("q", D(2023, 7, 19), 1, D(2023, 7, 9), "US", "iPad", "free"),   # joined Sunday: cohort 07-03, offset 2
        ("r", D(2023, 7, 11), 1, D(2023, 7, 10), "US", "iPad", "free"),
        ("s", D(2023, 7, 12), 1, None, None, None, None),                 # no metadata: no cohort
        ("t", D(2023, 7, 12), 1, D(2023, 1, 22), "US", "iPad", "free"),  # week 2023-01-16 = W-26: out
        ("u", D(2023, 7, 18), 1, D(2023, 1, 23), "US", "iPad", "free"),  # week W-25: in
    ])
    expected = [(D(2023, 1, 23), k, 1, int(k == 25), float(k == 25)) for k in range(26)]
    expected += [(D(2023, 7, 3), 0, 2, 1, 0.5), (D(2023, 7, 3), 1, 2, 1, 0.5), (D(2023, 7, 3), 2, 2, 1, 0.5)]
    expected += [(D(2023, 7, 10), 0, 1, 1, 1.0), (D(2023, 7, 10), 1, 1, 0, 0.0)]
    assert_rows(T.cohort_retention(T.user_days(df)), ["cohort_week", "week_offset", "cohort_size", "active_users", "retention_rate"], expected)
