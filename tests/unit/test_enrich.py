import datetime as dt

from spark_jobs.transforms import enrich as T
from tests.assertions import assert_rows

META = "user_id string, join_date date, country string, device_type string, subscription_type string"
EVENTS = "user_id string, event_ts timestamp, event_date date, action_type string, page_id string, duration_ms bigint, app_version string"
D = dt.date


def test_user_dim_keeps_earliest_join_date_then_smallest_attributes(spark):
    metadata = spark.createDataFrame([
        ("u1", D(2022, 3, 1), "US", "iPad", "free"),
        ("u1", D(2022, 1, 1), "US", "iPhone", "premium"),
        ("u2", D(2022, 1, 1), "US", "iPad", "free"),       # tied join_date: smallest tuple wins
        ("u2", D(2022, 1, 1), "DE", "iPhone", "premium"),
        ("u2", D(2022, 1, 1), "DE", "iPad", "basic"),
        ("u3", D(2022, 1, 1), "DE", "iPad", "basic"),
        ("u3", D(2022, 1, 1), "DE", "iPad", "basic"),      # exact duplicate
        ("u4", D(2022, 1, 1), "Z", "a", "a"),              # byte order: 'Z' < 'a'
        ("u4", D(2022, 1, 1), "a", "a", "a"),
    ], META)
    assert_rows(T.user_dim(metadata), ["user_id", "join_date", "country", "device_type", "subscription_type"], [
        ("u1", D(2022, 1, 1), "US", "iPhone", "premium"),
        ("u2", D(2022, 1, 1), "DE", "iPad", "basic"),
        ("u3", D(2022, 1, 1), "DE", "iPad", "basic"),
        ("u4", D(2022, 1, 1), "Z", "a", "a"),
    ])


TS = dt.datetime(2023, 7, 1, 10, 0, 0)
EVENT_ROWS = ([("hot", TS + dt.timedelta(seconds=i), D(2023, 7, 1), "edit", f"p{i}", i, "1.0.0") for i in range(8)]
              + [("u1", TS, D(2023, 7, 1), "edit", "p1", 1, "1.0.0"), ("nometa", TS, D(2023, 7, 1), "edit", "p1", 2, "1.0.0")])


def _events(spark):
    return spark.createDataFrame(EVENT_ROWS, EVENTS)


def test_every_strategy_gives_the_same_left_join(spark):
    events = _events(spark)
    dim_rows = {"hot": (D(2022, 1, 1), "US", "iPad", "free"), "u1": (D(2022, 2, 1), "DE", "iPhone", "basic")}
    dim = spark.createDataFrame([(user, *attrs) for user, attrs in dim_rows.items()], META)
    hot = [r.user_id for r in T.hot_keys(events, 0.5, 10).collect()]
    assert hot == ["hot"]
    # Each event once, with its user's attributes; nulls for a user without metadata.
    expected = [event + dim_rows.get(event[0], (None, None, None, None)) for event in EVENT_ROWS]
    columns = events.columns + ["join_date", "country", "device_type", "subscription_type"]
    for strategy in ("broadcast", "shuffle", "salted"):
        out = T.enrich(events, dim, T.JoinPlan(strategy, "test", hot), salt_buckets=3)
        assert_rows(out, columns, expected)


def test_hot_keys_reports_share(spark):
    rows = T.hot_keys(_events(spark), 0.2, 10).collect()  # the others hold 0.1 each
    assert [(r.user_id, r.events, r.share) for r in rows] == [("hot", 8, 0.8)]


def test_join_plan_choice():
    p = T.SkewJoinParams(broadcast_max_bytes=100)
    assert T.choose_join_plan(100, ["h"], p).strategy == "broadcast"
    assert T.choose_join_plan(101, ["h"], p).strategy == "salted"
    assert T.choose_join_plan(101, [], p).strategy == "shuffle"
    forced = T.SkewJoinParams(broadcast_max_bytes=100, force_strategy="shuffle")
    assert T.choose_join_plan(1, ["h"], forced).strategy == "shuffle"
