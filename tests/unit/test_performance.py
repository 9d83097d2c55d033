"""Unit tests for spark_jobs.transforms.performance: small hand-built
interactions, whole results compared against hand-computed rows."""
from __future__ import annotations

import datetime as dt
import numpy as np
import pytest
from pyspark.sql import DataFrame
from pyspark.sql.types import DateType, LongType, StringType, StructField, StructType, TimestampType
from scipy import stats

from spark_jobs.transforms.performance import (
    app_version_latency,
    app_version_latency_overall,
    device_latency,
    device_latency_association,
    latency_cells,
    page_loads,
    usage_anomalies,
    version_days,
)

ENRICHED_SCHEMA = StructType(
    [
        StructField("user_id", StringType()),
        StructField("event_ts", TimestampType()),
        StructField("event_date", DateType()),
        StructField("action_type", StringType()),
        StructField("page_id", StringType()),
        StructField("duration_ms", LongType()),
        StructField("app_version", StringType()),
        StructField("join_date", DateType()),
        StructField("country", StringType()),
        StructField("device_type", StringType()),
        StructField("subscription_type", StringType()),
    ]
)

DAY0 = dt.date(2024, 1, 1)


def day(offset: int) -> dt.date:
    return DAY0 + dt.timedelta(days=offset)


def event(
    duration_ms: int,
    *,
    date: dt.date = DAY0,
    action: str = "page_view",
    version: str = "1.0.0",
    device: str | None = "iPad",
    user: str = "u1",
    second: int = 0,
) -> tuple:
    """One enriched row; device=None stands for a user without metadata."""
    ts = dt.datetime.combine(date, dt.time(12, 0)) + dt.timedelta(seconds=second)
    metadata = (dt.date(2023, 1, 1), "US", device, "free") if device is not None else (None, None, None, None)
    return (user, ts, date, action, "p1", duration_ms, version, *metadata)


def enriched_frame(spark, rows: list[tuple]) -> DataFrame:
    return spark.createDataFrame(rows, ENRICHED_SCHEMA)


def _sort_key(row: tuple) -> tuple:
    # NULLs first, and comparable with any other type.
    return tuple((value is not None, value if value is not None else 0) for value in row)


def assert_rows(actual: DataFrame, columns: list[str], expected: list[tuple]) -> None:
    """Whole-result comparison: same columns in order, same rows (any order),
    floats equal to 1e-9 relative."""
    assert actual.columns == columns
    actual_rows = sorted((tuple(row) for row in actual.collect()), key=_sort_key)
    expected_rows = sorted(expected, key=_sort_key)
    assert len(actual_rows) == len(expected_rows), f"{actual_rows} != {expected_rows}"
    for got, want in zip(actual_rows, expected_rows):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            if isinstance(w, float):
                assert g == pytest.approx(w, rel=1e-9), f"{got} != {want}"
            else:
                assert g == w, f"{got} != {want}"


LATENCY_COLUMNS = ["p50_ms", "p95_ms", "p99_ms"]


@pytest.fixture(scope="module")
def latency_events(spark) -> DataFrame:
    return enriched_frame(
        spark,
        [
            # 1.0.0 on day 0: [100, 200, 400, 1000]; the edit must not count.
            event(400, version="1.0.0"),
            event(100, version="1.0.0", device=None, user="u9"),
            event(1000, version="1.0.0", device="iPhone"),
            event(200, version="1.0.0"),
            event(5000, version="1.0.0", action="edit"),
            # 1.0.0 on day 1: one value.
            event(700, version="1.0.0", date=day(1), device=None, user="u9"),
            # 2.0.0 on day 0: [10, 20, 30, 40, 50].
            *[event(ms, version="2.0.0", device="iPhone") for ms in (50, 10, 40, 20)],
            event(30, version="2.0.0", device=None, user="u9"),
            event(99999, version="2.0.0", action="share", device=None, user="u9"),
        ],
    )


def test_page_loads_keeps_only_latency_actions(spark):
    rows = [event(1, action="page_view"), event(2, action="edit"), event(3, action="share"), event(4, action="page_view")]
    enriched = enriched_frame(spark, rows)

    assert_rows(page_loads(enriched), ENRICHED_SCHEMA.names, [rows[0], rows[3]])
    assert_rows(page_loads(enriched, ("edit", "share")), ENRICHED_SCHEMA.names, [rows[1], rows[2]])


def test_app_version_latency_interpolates_between_order_statistics(latency_events):
    # Position (n-1)*q, linear between neighbours. [100,200,400,1000]: p50 at 1.5 ->
    # 200+0.5*200; p95 at 2.85 -> 400+0.85*600; p99 at 2.97 -> 400+0.97*600.
    # [10..50]: p50 at 2 -> 30; p95 at 3.8 -> 40+0.8*10; p99 at 3.96 -> 40+0.96*10.
    assert_rows(
        app_version_latency(version_days(latency_events)),
        ["event_date", "app_version", "events", *LATENCY_COLUMNS],
        [
            (day(0), "1.0.0", 4, 300.0, 910.0, 982.0),
            (day(1), "1.0.0", 1, 700.0, 700.0, 700.0),
            (day(0), "2.0.0", 5, 30.0, 48.0, 49.6),
        ],
    )


def test_version_days_count_every_event_and_the_page_loads_apart(spark, latency_events):
    # all_events counts the edit and the share too; a (date, version) with events
    # but no page load keeps its count, with 0 page loads and no percentiles, and
    # app_version_latency leaves it out.
    only_edits = enriched_frame(spark, [event(5, version="3.0.0", action="edit", second=s) for s in range(3)])
    assert_rows(
        version_days(latency_events.unionByName(only_edits)),
        ["event_date", "app_version", "all_events", "events", *LATENCY_COLUMNS],
        [
            (day(0), "1.0.0", 5, 4, 300.0, 910.0, 982.0),
            (day(1), "1.0.0", 1, 1, 700.0, 700.0, 700.0),
            (day(0), "2.0.0", 6, 5, 30.0, 48.0, 49.6),
            (day(0), "3.0.0", 3, 0, None, None, None),
        ],
    )
    assert app_version_latency(version_days(only_edits)).count() == 0
    # Another latency action: the edit's 5000 ms is the only page load of 1.0.0 on day 0.
    edits = version_days(latency_events, ("edit",)).where("app_version = '1.0.0' AND event_date = '2024-01-01'")
    assert [tuple(r) for r in edits.select("all_events", "events", *LATENCY_COLUMNS).collect()] == [
        (5, 1, 5000.0, 5000.0, 5000.0)]


def test_app_version_latency_overall_spans_dates(latency_events):
    # 1.0.0 over both days: [100,200,400,700,1000]; p95 at 3.8 -> 700+0.8*300.
    assert_rows(
        app_version_latency_overall(latency_cells(latency_events, ("page_view",))),
        ["app_version", "events", *LATENCY_COLUMNS],
        [
            ("1.0.0", 5, 400.0, 940.0, 988.0),
            ("2.0.0", 5, 30.0, 48.0, 49.6),
        ],
    )


def test_latency_actions_are_configurable(latency_events):
    # Counting edits and shares as page loads too changes the populations.
    assert_rows(
        app_version_latency_overall(latency_cells(latency_events, ("page_view", "edit", "share"))),
        ["app_version", "events", *LATENCY_COLUMNS],
        [
            # [100,200,400,700,1000,5000]: p50 at 2.5 -> 550; p95 at 4.75 -> 1000+0.75*4000;
            # p99 at 4.95 -> 1000+0.95*4000.
            ("1.0.0", 6, 550.0, 4000.0, 4800.0),
            # [10,20,30,40,50,99999]: p50 at 2.5 -> 35; p95 at 4.75 -> 50+0.75*99949.
            ("2.0.0", 6, 35.0, 50 + 0.75 * 99949, 50 + 0.95 * 99949),
        ],
    )


def test_device_latency_keeps_users_without_metadata_as_null_group(latency_events):
    # iPad [200,400]; iPhone [10,20,40,50,1000]; NULL [30,100,700].
    assert_rows(
        device_latency(latency_cells(latency_events, ("page_view",))),
        ["device_type", "events", "mean_ms", *LATENCY_COLUMNS],
        [
            ("iPad", 2, 300.0, 300.0, 390.0, 398.0),
            # p95 at 3.8 -> 50+0.8*950; p99 at 3.96 -> 50+0.96*950.
            ("iPhone", 5, 224.0, 40.0, 810.0, 962.0),
            # p50 at 1 -> 100; p95 at 1.9 -> 100+0.9*600; p99 at 1.98 -> 100+0.98*600.
            (None, 3, 830 / 3, 100.0, 640.0, 688.0),
        ],
    )


def test_latency_tables_weigh_each_cell_by_its_page_loads(spark):
    # iPad 100 ms three times (twice on 1.0.0, once on 2.0.0 on another day) and 400 ms once:
    # the cells hold n = 2, 1 and 1; the tables must see [100, 100, 100, 400], not [100, 400].
    rows = [
        event(100, version="1.0.0", second=1),
        event(100, version="1.0.0", second=2),
        event(100, version="2.0.0", date=day(1)),
        event(400, version="1.0.0", second=3),
    ]
    cells = latency_cells(enriched_frame(spark, rows))
    assert sorted(tuple(r) for r in cells.collect()) == [("1.0.0", "iPad", 100, 2), ("1.0.0", "iPad", 400, 1),
                                                         ("2.0.0", "iPad", 100, 1)]
    # Four page loads: p95 at 2.85 -> 100+0.85*300; p99 at 2.97 -> 100+0.97*300.
    assert_rows(
        device_latency(cells),
        ["device_type", "events", "mean_ms", *LATENCY_COLUMNS],
        [("iPad", 4, 175.0, 100.0, 355.0, 391.0)],
    )
    # 1.0.0: [100, 100, 400]; p50 at 1 -> 100; p95 at 1.9 -> 100+0.9*300; p99 at 1.98 -> 100+0.98*300.
    assert_rows(
        app_version_latency_overall(cells),
        ["app_version", "events", *LATENCY_COLUMNS],
        [("1.0.0", 3, 100.0, 370.0, 394.0), ("2.0.0", 1, 100.0, 100.0, 100.0)],
    )


def eta_squared(groups: list[list[int]]) -> float:
    values = np.concatenate([np.asarray(g, dtype=float) for g in groups])
    grand_mean = values.mean()
    between = sum(len(g) * (np.mean(g) - grand_mean) ** 2 for g in groups)
    return float(between / ((values - grand_mean) ** 2).sum())


def association_events(groups: dict[str | None, list[int]]) -> list[tuple]:
    return [
        event(ms, device=device, user=f"u-{device}", second=i)
        for device, durations in groups.items()
        for i, ms in enumerate(durations)
    ]


ASSOCIATION_COLUMNS = ["events", "eta_squared", "kruskal_h", "kruskal_p_value"]


def test_device_latency_association_matches_scipy(spark):
    groups = {"iPad": [100, 200, 300, 300], "iPhone": [300, 400, 500], "Android": [100, 100, 600, 700, 800]}
    rows = association_events(groups) + [
        event(5, device=None, user="nometa"),  # NULL device is not a group
        event(1, device="iPad", action="edit"),  # not a page load
    ]
    reference = stats.kruskal(*groups.values())

    assert_rows(
        device_latency_association(latency_cells(enriched_frame(spark, rows))),
        ASSOCIATION_COLUMNS,
        [(12, eta_squared(list(groups.values())), float(reference.statistic), float(reference.pvalue))],
    )


def test_device_latency_association_tie_heavy(spark):
    groups = {"A": [1, 1, 1, 2, 2, 2, 2], "B": [1, 2, 2, 3, 3, 3], "C": [3, 3, 3, 3, 1, 3, 3, 3], "D": [2, 2]}
    reference = stats.kruskal(*groups.values())
    # Hand check of eta^2: grand mean 51/23; group means 11/7, 14/6, 22/8, 2.
    grand = 51 / 23
    assert eta_squared(list(groups.values())) == pytest.approx(
        (7 * (11 / 7 - grand) ** 2 + 6 * (14 / 6 - grand) ** 2 + 8 * (22 / 8 - grand) ** 2 + 2 * (2 - grand) ** 2)
        / sum((x - grand) ** 2 for g in groups.values() for x in g),
        rel=1e-12,
    )

    assert_rows(
        device_latency_association(latency_cells(enriched_frame(spark, association_events(groups)))),
        ASSOCIATION_COLUMNS,
        [(23, eta_squared(list(groups.values())), float(reference.statistic), float(reference.pvalue))],
    )


@pytest.mark.parametrize(
    ("groups", "events"),
    [
        pytest.param({"iPad": [1, 5, 9]}, 3, id="one-group"),
        pytest.param({"iPad": [7, 7], "iPhone": [7, 7, 7]}, 5, id="zero-variance"),
        pytest.param({None: [1, 2, 3]}, 0, id="no-device-at-all"),
    ],
)
def test_device_latency_association_undefined_statistics_are_null(spark, groups, events):
    assert_rows(
        device_latency_association(latency_cells(enriched_frame(spark, association_events(groups)))),
        ASSOCIATION_COLUMNS,
        [(events, None, None, None)],
    )


ANOMALY_COLUMNS = [
    "event_date",
    "dimension",
    "dimension_value",
    "metric",
    "value",
    "baseline_mean",
    "baseline_std",
    "z_score",
    "severity",
]

# Seven daily values with mean 10 and sample std 4 (six deviations of +-4 over n-1 = 6).
BASELINE = [6, 14, 6, 14, 6, 14, 10]


def daily_events(counts_by_day: dict[int, int], version: str, action: str = "edit", duration_ms: int = 1) -> list[tuple]:
    """counts_by_day[d] events of one user on day d (one user keeps DAU constant)."""
    return [
        event(duration_ms, date=day(d), version=version, action=action, second=i)
        for d, count in counts_by_day.items()
        for i in range(count)
    ]


def anomalies(enriched: DataFrame, **params) -> DataFrame:
    return usage_anomalies(enriched, version_days(enriched), **params)


def test_usage_anomalies_severity_bands(spark):
    # Per version: baseline days 1-7, tested on day 8.
    versions = {
        "1.0.0": (BASELINE, 23),  # z = 13/4 = 3.25 medium
        "2.0.0": (BASELINE, 25),  # z = 3.75 high
        "3.0.0": (BASELINE, 27),  # z = 4.25 critical (spike)
        "4.0.0": ([v + 20 for v in BASELINE], 13),  # mean 30, z = -17/4 = -4.25 critical (drop)
        "5.0.0": (BASELINE, 21),  # z = 2.75, below the threshold
    }
    rows = []
    for version, (baseline, tested) in versions.items():
        rows += daily_events({d + 1: count for d, count in enumerate(baseline)} | {8: tested}, version)
    # Overall events: baseline [50,90,50,90,50,90,70] (mean 70, std 20), day 8 = 109
    # -> z = 1.95: no row. DAU is 1 every day: zero std, no row.

    assert_rows(
        anomalies(enriched_frame(spark, rows)),
        ANOMALY_COLUMNS,
        [
            (day(8), "app_version", "1.0.0", "events", 23.0, 10.0, 4.0, 3.25, "medium"),
            (day(8), "app_version", "2.0.0", "events", 25.0, 10.0, 4.0, 3.75, "high"),
            (day(8), "app_version", "3.0.0", "events", 27.0, 10.0, 4.0, 4.25, "critical"),
            (day(8), "app_version", "4.0.0", "events", 13.0, 30.0, 4.0, -4.25, "critical"),
        ],
    )


def test_usage_anomalies_missing_days_are_absent_not_zero(spark):
    # Values only on odd days 1..13; the spike on day 15 sees those 7 values (as
    # zeros the 7 empty days would give mean 5). Day -1 lies outside [15-14, 15-1].
    counts = {-1: 200} | {2 * i + 1: count for i, count in enumerate(BASELINE)} | {15: 27}
    rows = daily_events(counts, "1.0.0")

    assert_rows(
        anomalies(enriched_frame(spark, rows)),
        ANOMALY_COLUMNS,
        [
            (day(15), "overall", "all", "events", 27.0, 10.0, 4.0, 4.25, "critical"),
            (day(15), "app_version", "1.0.0", "events", 27.0, 10.0, 4.0, 4.25, "critical"),
        ],
    )


def test_usage_anomalies_need_seven_baseline_points(spark):
    # Six baseline days, then a huge spike: not enough history to judge.
    rows = daily_events({d + 1: count for d, count in enumerate(BASELINE[:6])} | {7: 500}, "1.0.0")
    assert_rows(anomalies(enriched_frame(spark, rows)), ANOMALY_COLUMNS, [])


def test_usage_anomalies_constant_baseline_yields_nothing(spark):
    rows = daily_events({d: 5 for d in range(1, 8)} | {8: 50}, "1.0.0")
    assert_rows(anomalies(enriched_frame(spark, rows)), ANOMALY_COLUMNS, [])


def test_usage_anomalies_p95_needs_min_events_per_day(spark):
    # 4 page loads a day, all of the same duration, so a day's p95 is that duration.
    rows = []
    for d, duration in enumerate(BASELINE, start=1):
        rows += daily_events({d: 4}, "1.0.0", action="page_view", duration_ms=duration)
        rows += daily_events({d: 4}, "2.0.0", action="page_view", duration_ms=duration)
    rows += daily_events({8: 4}, "1.0.0", action="page_view", duration_ms=27)
    # 2.0.0 has only 3 page loads on day 8: no p95 point, however slow they are.
    rows += daily_events({8: 3}, "2.0.0", action="page_view", duration_ms=100_000)
    # Event counts are constant in the baseline (4 per version, 8 overall): no rows.

    assert_rows(
        anomalies(enriched_frame(spark, rows), min_events=4),
        ANOMALY_COLUMNS,
        [(day(8), "app_version", "1.0.0", "p95_ms", 27.0, 10.0, 4.0, 4.25, "critical")],
    )
    # With the default of 20 page loads per day there is no p95 series at all.
    assert_rows(anomalies(enriched_frame(spark, rows)), ANOMALY_COLUMNS, [])


def test_usage_anomalies_dau_series(spark):
    # DAU baseline of distinct users per day, then a day with 27 users each doing one event;
    # events per user vary in the baseline so the overall events series stays unremarkable.
    # u0's extra events are on a second version: u0 is still one user of the day.
    rows = []
    for d, users in enumerate(BASELINE, start=1):
        for u in range(users):
            rows.append(event(1, date=day(d), action="edit", user=f"u{u}"))
        rows += [event(1, date=day(d), action="edit", user="u0", version="2.0.0", second=s)
                 for s in range(1, 31 - users)]
    rows += [event(1, date=day(8), action="edit", user=f"u{u}") for u in range(27)]
    # events: 30 every baseline day (constant, no row); day 8 = 27.
    # 1.0.0's events: one per user, so its series is the DAU's; 2.0.0 has no day 8.

    assert_rows(
        anomalies(enriched_frame(spark, rows)),
        ANOMALY_COLUMNS,
        [(day(8), "app_version", "1.0.0", "events", 27.0, 10.0, 4.0, 4.25, "critical"),
         (day(8), "overall", "all", "dau", 27.0, 10.0, 4.0, 4.25, "critical")],
    )


@pytest.mark.parametrize("argv, message", [
    (["--latency-actions", " , "], "--latency-actions: expected at least one value, got none"),
    (["--anomaly-min-events", "0"], "--anomaly-min-events: expected at least 1, got 0"),
])
def test_the_job_refuses_bad_parameters_before_starting_spark(argv, message, capsys):
    from spark_jobs import performance as job

    with pytest.raises(SystemExit) as exited:
        job.main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
