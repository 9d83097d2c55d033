-- Page-load time percentiles per app version over all dates, newest version
-- first (versions compared numerically: 5.10.0 is newer than 5.9.3).
SELECT
    app_version,
    events,
    p50_ms,
    p95_ms,
    p99_ms
FROM iceberg.gold.app_version_latency_overall
ORDER BY
    CAST(split_part(app_version, '.', 1) AS integer) DESC,
    CAST(split_part(app_version, '.', 2) AS integer) DESC,
    CAST(split_part(app_version, '.', 3) AS integer) DESC;
