import datetime as dt

from spark_jobs.transforms import sessions as T
from tests.assertions import assert_rows

ENRICHED = ("user_id string, event_ts timestamp, action_type string, page_id string, duration_ms bigint, "
            "device_type string, country string")
TS = dt.datetime
D = dt.date


def _events(spark):
    return spark.createDataFrame([
        ("A", TS(2023, 7, 1, 10, 0, 0), "page_view", "p1", 100, "iPad", "US"),
        ("A", TS(2023, 7, 1, 10, 30, 0), "edit", "p2", 200, "iPad", "US"),      # gap exactly 1800 s: same session
        ("A", TS(2023, 7, 1, 11, 0, 1), "edit", "p3", 300, "iPad", "US"),       # gap 1801 s: new session
        ("A", TS(2023, 7, 1, 11, 0, 1), "create", "p9", 999, "iPad", "US"),     # equal time: 'create' sorts first
        ("B", TS(2023, 7, 1, 23, 50, 0), "edit", "p1", 10, None, None),
        ("B", TS(2023, 7, 2, 0, 10, 0), "edit", "p1", 20, None, None),          # across midnight
        ("C", TS(2023, 7, 2, 8, 0, 0), "share", "p1", 5, "iPhone", "DE"),       # bounce
    ], ENRICHED)


def test_sessionize_gap_boundaries_ties_and_midnight(spark):
    sessions = T.sessionize(_events(spark)).drop("session_id")
    assert_rows(sessions, ["user_id", "session_start", "session_end", "session_date", "actions", "session_duration_ms",
                           "is_bounce", "device_type", "country"], [
        ("A", TS(2023, 7, 1, 10, 0, 0), TS(2023, 7, 1, 10, 30, 0), D(2023, 7, 1), 2, 1_800_000 + 200, False, "iPad", "US"),
        ("A", TS(2023, 7, 1, 11, 0, 1), TS(2023, 7, 1, 11, 0, 1), D(2023, 7, 1), 2, 300, False, "iPad", "US"),
        ("B", TS(2023, 7, 1, 23, 50, 0), TS(2023, 7, 2, 0, 10, 0), D(2023, 7, 1), 2, 1_200_000 + 20, False, None, None),
        ("C", TS(2023, 7, 2, 8, 0, 0), TS(2023, 7, 2, 8, 0, 0), D(2023, 7, 2), 1, 5, True, "iPhone", "DE"),
    ])


def test_session_id_is_deterministic_and_distinct(spark):
    ids = [r.session_id for r in T.sessionize(_events(spark)).orderBy("user_id", "session_start").collect()]
    again = [r.session_id for r in T.sessionize(_events(spark)).orderBy("user_id", "session_start").collect()]
    assert ids == again and len(set(ids)) == 4 and all(len(i) == 32 for i in ids)


def test_session_daily_dimensions_with_unknown(spark):
    daily = T.session_daily(T.sessionize(_events(spark)))
    a1, a2, b = 1_800_200, 300, 1_200_020
    d1, d2 = D(2023, 7, 1), D(2023, 7, 2)
    assert_rows(daily, ["session_date", "dimension", "dimension_value", "sessions", "users", "avg_actions",
                        "avg_duration_ms", "p50_duration_ms", "bounce_rate", "sessions_per_user"], [
        (d1, "all", "all", 3, 2, 2.0, (a1 + a2 + b) / 3, float(b), 0.0, 1.5),
        (d1, "device_type", "iPad", 2, 1, 2.0, (a1 + a2) / 2, (a1 + a2) / 2, 0.0, 2.0),
        (d1, "device_type", "unknown", 1, 1, 2.0, float(b), float(b), 0.0, 1.0),
        (d1, "country", "US", 2, 1, 2.0, (a1 + a2) / 2, (a1 + a2) / 2, 0.0, 2.0),
        (d1, "country", "unknown", 1, 1, 2.0, float(b), float(b), 0.0, 1.0),
        (d2, "all", "all", 1, 1, 1.0, 5.0, 5.0, 1.0, 1.0),
        (d2, "device_type", "iPhone", 1, 1, 1.0, 5.0, 5.0, 1.0, 1.0),
        (d2, "country", "DE", 1, 1, 1.0, 5.0, 5.0, 1.0, 1.0),
    ])


def test_first_affected_session_date_reaches_back_to_a_running_session(spark):
    sessions = T.sessionize(_events(spark))
    # B's session started 07-01 and is still going at midnight: a run for 07-02 must rewrite 07-01.
    assert T.first_affected_session_date(sessions, D(2023, 7, 2), 1800) == D(2023, 7, 1)


def test_sessions_are_the_same_with_and_without_generated_code(spark):
    from spark_jobs.common import CODEGEN_MIN_INPUT_BYTES, plan_for_input_size

    def computed():
        sessions = T.sessionize(_events(spark))
        daily = T.session_daily(sessions)
        rows = sorted(tuple(r) for r in sessions.collect()), sorted(tuple(r) for r in daily.collect())
        return rows, daily._jdf.queryExecution().executedPlan().toString()

    try:
        assert plan_for_input_size(spark, CODEGEN_MIN_INPUT_BYTES - 1) is False
        interpreted, plan = computed()
        assert "*(" not in plan  # no whole-stage generated code
        assert plan_for_input_size(spark, CODEGEN_MIN_INPUT_BYTES) is True
        generated, plan = computed()
        assert "*(" in plan
    finally:
        spark.conf.unset("spark.sql.codegen.wholeStage")
        spark.conf.unset("spark.sql.codegen.factoryMode")
    assert interpreted == generated and len(interpreted[0]) == 4
