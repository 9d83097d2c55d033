"""Performance metrics: page-load latency percentiles, the device/latency
association and z-score anomalies on daily usage series (docs/tables.md, "Performance").

Every function is ``DataFrame -> DataFrame`` over ``silver.interactions_enriched``
and does no I/O; parameters come in as keyword arguments so jobs can chain them
with ``enriched.transform(version_days, latency_actions=...)``.

Percentiles are Spark SQL's exact ``percentile`` (linear interpolation between
order statistics at position (n-1)*q), the same definition as DuckDB's
``quantile_cont``; there is deliberately no approximate mode here.
"""
from __future__ import annotations

from typing import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

DEFAULT_LATENCY_ACTIONS: tuple[str, ...] = ("page_view",)
LATENCY_QUANTILES = (0.5, 0.95, 0.99)

# Anomaly severity bands on |z| (the lower bound of "medium" is z_threshold).
CRITICAL_Z = 4.0
HIGH_Z = 3.5


def page_loads(enriched: DataFrame, latency_actions: Sequence[str] = DEFAULT_LATENCY_ACTIONS) -> DataFrame:
    """The events whose duration counts as a page-load time (all enriched columns)."""
    return enriched.where(F.col("action_type").isin(list(latency_actions)))


def latency_percentiles(values: Column, frequency: Column | None = None) -> Column:
    """The p50, p95 and p99 of ``values`` as one array: a single value->count map
    per group instead of three, with the same result as three scalar calls. With
    ``frequency``, each row counts that many times (latency_cells)."""
    quantiles = F.array(*[F.lit(q) for q in LATENCY_QUANTILES])
    args = (values, quantiles) if frequency is None else (values, quantiles, frequency)
    return F.percentile(*args).alias("_quantiles")


def percentile_columns() -> list[Column]:
    return [
        F.col("_quantiles")[0].alias("p50_ms"),
        F.col("_quantiles")[1].alias("p95_ms"),
        F.col("_quantiles")[2].alias("p99_ms"),
    ]


def version_days(enriched: DataFrame, latency_actions: Sequence[str] = DEFAULT_LATENCY_ACTIONS) -> DataFrame:
    """(event_date, app_version, all_events, events, p50_ms, p95_ms, p99_ms): per
    date and version, every event counted, and the count and percentiles of its
    page loads (NULL percentiles where it has none).

    One aggregation for app_version_latency and the anomalies' version series:
    a percentile skips NULLs, so the page loads are picked inside it instead of
    by a filter in front of it that would need a scan of its own."""
    load_ms = F.when(F.col("action_type").isin(list(latency_actions)), F.col("duration_ms"))
    return (
        enriched.groupBy("event_date", "app_version")
        .agg(F.count(F.lit(1)).alias("all_events"), F.count(load_ms).alias("events"),
             latency_percentiles(load_ms))
        .select("event_date", "app_version", "all_events", "events", *percentile_columns())
    )


def app_version_latency(version_days: DataFrame) -> DataFrame:
    """(event_date, app_version, events, p50_ms, p95_ms, p99_ms) over page loads, from version_days."""
    return version_days.where(F.col("events") > 0).select(
        "event_date", "app_version", "events", "p50_ms", "p95_ms", "p99_ms")


def latency_cells(enriched: DataFrame, latency_actions: Sequence[str] = DEFAULT_LATENCY_ACTIONS) -> DataFrame:
    """(app_version, device_type, duration_ms, n): page loads counted per version,
    device and duration, everything the all-dates latency tables need.

    Durations are whole milliseconds, so the cells are bounded by versions x
    devices x the duration range, however many events there are: the three
    tables aggregate these instead of each scanning the events."""
    return page_loads(enriched, latency_actions).groupBy("app_version", "device_type", "duration_ms").agg(
        F.count(F.lit(1)).alias("n")
    )


def app_version_latency_overall(cells: DataFrame) -> DataFrame:
    """(app_version, events, p50_ms, p95_ms, p99_ms) over page loads of all dates, from latency_cells."""
    return (
        cells.groupBy("app_version")
        .agg(F.sum("n").alias("events"), latency_percentiles(F.col("duration_ms"), F.col("n")))
        .select("app_version", "events", *percentile_columns())
    )


def device_latency(cells: DataFrame) -> DataFrame:
    """(device_type, events, mean_ms, p50_ms, p95_ms, p99_ms) from latency_cells;
    users without metadata form the device_type = NULL group (groupBy keeps NULL as a key)."""
    return (
        cells.groupBy("device_type")
        # Exact long sum, then one division: the correctly rounded mean.
        .agg(F.sum("n").alias("events"), latency_percentiles(F.col("duration_ms"), F.col("n")),
             F.sum(F.col("n") * F.col("duration_ms")).alias("_sum_ms"))
        .select(
            "device_type",
            "events",
            (F.col("_sum_ms").cast("double") / F.col("events")).alias("mean_ms"),
            *percentile_columns(),
        )
    )


def _chi2_survival(statistic: Column, dof: Column) -> Column:
    """P(X >= statistic) for X ~ chi2(dof), NULL when either is NULL or dof < 1.

    chi2.sf(x, k) = Q(k/2, x/2), the regularized upper incomplete gamma function.
    Spark SQL has no gamma functions, so this calls commons-math3's static
    Gamma.regularizedGammaQ through ``reflect``: commons-math3 is a dependency of
    spark-core, so it is on every driver and executor, and no Python worker (or
    scipy on the workers) is needed. It agrees with scipy.stats.chi2.sf to ~1e-14
    relative, tiny p-values included. ``reflect`` returns Java's round-trip
    decimal string of the double, so the cast back is exact.
    """
    regularized_gamma_q = F.reflect(
        F.lit("org.apache.commons.math3.special.Gamma"),
        F.lit("regularizedGammaQ"),
        dof.cast("double") / 2,
        statistic.cast("double") / 2,
    ).cast("double")
    # CASE WHEN keeps NULLs away from the primitive double parameters.
    return F.when(statistic.isNotNull() & (dof >= 1), regularized_gamma_q)


def _nonzero(column: Column) -> Column:
    """The column, or NULL where it is 0, so a division yields NULL instead of
    raising DIVIDE_BY_ZERO under ANSI mode."""
    return F.when(column != 0, column)


def device_latency_association(cells: DataFrame) -> DataFrame:
    """One row (events, eta_squared, kruskal_h, kruskal_p_value) for page-load
    time grouped by device_type, NULL device excluded, from latency_cells.

    Scaling: events are never collected or sorted globally. latency_cells are
    summed to counts per (device_type, duration_ms). Average ranks come
    from a running count over the *distinct* durations (a window without
    partitionBy, which runs in one task, but over distinct millisecond values:
    bounded by the duration range, a few hundred thousand at most even for
    billions of events) joined back to the cells. Everything after that is one
    linear chain over cells and then over device groups, so the plan reads the
    cells once (the counting exchange is reused by the ranking branch) and no
    optimizer pruning can fork it into separate rescans.

    Undefined cases give the row with NULL statistics instead of raising:
    fewer than two device groups (nothing to compare; scipy refuses these too)
    -> eta_squared, kruskal_h and kruskal_p_value are NULL; all durations
    equal (total sum of squares 0, tie correction 0) -> the same. ``events``
    is always the number of page loads with a device (0 when none).
    """
    # duration_ms is never NULL in silver; stating it makes both uses of the
    # cell counts plan-identical (the optimizer infers it for the join side
    # only), so Spark reuses one exchange instead of reading the cells twice.
    with_device = cells.where(F.col("device_type").isNotNull() & F.col("duration_ms").isNotNull())
    cell_counts = with_device.groupBy("device_type", "duration_ms").agg(F.sum("n").alias("n"))

    # Average rank of a value = (#events below it) + (ties + 1) / 2; doubled so
    # it stays an exact long.
    below = Window.orderBy("duration_ms").rowsBetween(Window.unboundedPreceding, -1)
    ranked_values = (
        cell_counts.groupBy("duration_ms")
        .agg(F.sum("n").alias("ties"))
        .select(
            "duration_ms",
            "ties",
            (2 * F.coalesce(F.sum("ties").over(below), F.lit(0)) + F.col("ties") + 1).alias("twice_avg_rank"),
        )
    )
    per_device = Window.partitionBy("device_type")
    cells = cell_counts.join(ranked_values, "duration_ms").withColumn(
        "group_mean", F.sum(F.col("n") * F.col("duration_ms")).over(per_device) / F.sum("n").over(per_device)
    )
    groups = cells.groupBy("device_type").agg(
        F.sum("n").alias("n"),
        F.sum(F.col("n") * F.col("duration_ms")).alias("sum_ms"),
        F.sum(F.col("n") * F.col("twice_avg_rank")).alias("twice_rank_sum"),
        # Two-pass within-group sum of squares (stable, unlike sum(x^2) - n*mean^2).
        F.sum(F.col("n") * (F.col("duration_ms") - F.col("group_mean")) ** 2).alias("ss_within"),
        # sum over values of t^3 - t, spread over the cells of each value:
        # sum_cells n * (t^2 - 1). A double: t^3 overflows a long from ~2 million ties.
        F.sum(F.col("n") * (F.col("ties").cast("double") ** 2 - 1)).alias("tie_sum"),
    )
    # One row per device type, so a window over all of them is tiny.
    all_groups = Window.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    events_all = F.sum("n").over(all_groups)
    summary = groups.select(
        "*",
        events_all.alias("events"),
        (F.sum("sum_ms").over(all_groups) / events_all).alias("grand_mean"),
    ).agg(
        F.coalesce(F.max("events"), F.lit(0)).cast("long").alias("events"),
        F.count(F.lit(1)).alias("n_groups"),
        F.sum(F.col("n") * (F.col("sum_ms") / F.col("n") - F.col("grand_mean")) ** 2).alias("ss_between"),
        F.sum("ss_within").alias("ss_within"),
        F.sum(F.col("n") * (F.col("twice_rank_sum") / (2 * F.col("n")) - (F.col("events") + 1) / 2) ** 2).alias(
            "rank_ss_between"
        ),
        F.sum("tie_sum").alias("tie_sum"),
    )

    n = F.col("events").cast("double")
    defined = F.col("n_groups") >= 2
    ss_total = F.col("ss_between") + F.col("ss_within")
    tie_correction = 1 - F.col("tie_sum") / _nonzero(n**3 - n)
    # H = 12 / (N(N+1)) * sum_g n_g (mean_rank_g - (N+1)/2)^2, the centred form of
    # 12/(N(N+1)) * sum R_g^2/n_g - 3(N+1) that avoids cancelling two large terms.
    uncorrected_h = 12 / (n * (n + 1)) * F.col("rank_ss_between")
    return summary.select(
        "events",
        F.when(defined, F.col("ss_between") / _nonzero(ss_total)).alias("eta_squared"),
        F.when(defined, uncorrected_h / _nonzero(tie_correction)).alias("kruskal_h"),
        "n_groups",
    ).select(
        "events",
        "eta_squared",
        "kruskal_h",
        _chi2_survival(F.col("kruskal_h"), F.col("n_groups") - 1).alias("kruskal_p_value"),
    )


def _daily_usage_series(enriched: DataFrame, version_days: DataFrame, min_events: int) -> DataFrame:
    """(event_date, dimension, dimension_value, metric, value) for the four
    series; a series has a point only on days where it is defined."""
    # A day's events are the sum over its versions; its users need the events themselves.
    day_events = version_days.groupBy("event_date").agg(F.sum("all_events").cast("double").alias("events"))
    day_users = enriched.groupBy("event_date").agg(F.countDistinct("user_id").cast("double").alias("dau"))
    overall_points = day_events.join(day_users, "event_date").select(
        "event_date",
        F.lit("overall").alias("dimension"),
        F.lit("all").alias("dimension_value"),
        F.explode(
            F.array(
                F.struct(F.lit("events").alias("metric"), F.col("events").alias("value")),
                F.struct(F.lit("dau").alias("metric"), F.col("dau").alias("value")),
            )
        ).alias("point"),
    ).select("event_date", "dimension", "dimension_value", "point.metric", "point.value")

    version_events = version_days.select("event_date", "app_version", F.col("all_events").alias("value"))
    # version_days' events are the day's page loads of the version. Too few make
    # a p95 too noisy to be a point of the series at all.
    version_p95 = version_days.where(F.col("events") >= min_events).select(
        "event_date", "app_version", F.col("p95_ms").alias("value"))

    def version_series(points: DataFrame, metric: str) -> DataFrame:
        return points.select(
            "event_date",
            F.lit("app_version").alias("dimension"),
            F.col("app_version").alias("dimension_value"),
            F.lit(metric).alias("metric"),
            F.col("value").cast("double").alias("value"),
        )

    return overall_points.unionByName(version_series(version_events, "events")).unionByName(
        version_series(version_p95, "p95_ms")
    )


def usage_anomalies(
    enriched: DataFrame,
    version_days: DataFrame,
    min_events: int = 20,
    baseline_days: int = 14,
    min_baseline_points: int = 7,
    z_threshold: float = 3.0,
) -> DataFrame:
    """(event_date, dimension, dimension_value, metric, value, baseline_mean,
    baseline_std, z_score, severity) for points whose |z| against the same
    series' previous ``baseline_days`` calendar days reaches ``z_threshold``.

    ``version_days`` is version_days of the same events: its event counts and
    p95 are the version series, so the job aggregates them once for both this
    and app_version_latency."""
    series = _daily_usage_series(enriched, version_days, min_events).withColumn(
        "day_number", F.unix_date("event_date")
    )
    # A range frame over the day number counts calendar days, so missing days
    # are simply absent from the baseline rather than zeros.
    baseline = (
        Window.partitionBy("dimension", "dimension_value", "metric")
        .orderBy("day_number")
        .rangeBetween(-baseline_days, -1)
    )
    scored = (
        series.select(
            "*",
            F.count("value").over(baseline).alias("baseline_points"),
            F.avg("value").over(baseline).alias("baseline_mean"),
            F.stddev_samp("value").over(baseline).alias("baseline_std"),
        )
        .where((F.col("baseline_points") >= min_baseline_points) & (F.col("baseline_std") > 0))
        .withColumn("z_score", (F.col("value") - F.col("baseline_mean")) / F.col("baseline_std"))
        .where(F.abs("z_score") >= z_threshold)
    )
    magnitude = F.abs("z_score")
    severity = (
        F.when(magnitude >= CRITICAL_Z, "critical").when(magnitude >= HIGH_Z, "high").otherwise("medium")
    )
    return scored.select(
        "event_date",
        "dimension",
        "dimension_value",
        "metric",
        "value",
        "baseline_mean",
        "baseline_std",
        "z_score",
        severity.alias("severity"),
    )
