-- Power users (top share of capped usage time) per country; users without
-- metadata count as 'unknown'.
SELECT
    coalesce(country, 'unknown') AS country,
    count(*) AS power_users,
    sum(total_duration_ms) AS total_duration_ms,
    sum(events) AS events,
    CAST(sum(total_duration_ms) AS double) / count(*) AS avg_duration_ms_per_user
FROM iceberg.gold.power_users
GROUP BY 1
ORDER BY power_users DESC, country;
