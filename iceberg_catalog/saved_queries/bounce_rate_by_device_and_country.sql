-- Bounce rate (sessions with a single action / sessions) for each device type
-- and country pair over all dates; users without metadata count as 'unknown'.
SELECT
    coalesce(device_type, 'unknown') AS device_type,
    coalesce(country, 'unknown') AS country,
    count(*) AS sessions,
    count_if(is_bounce) AS bounced_sessions,
    CAST(count_if(is_bounce) AS double) / count(*) AS bounce_rate
FROM iceberg.gold.sessions
GROUP BY 1, 2
ORDER BY sessions DESC, device_type, country;
