-- Anomalies of the last 7 days that have data, most severe first.
SELECT
    event_date,
    dimension,
    dimension_value,
    metric,
    value,
    baseline_mean,
    baseline_std,
    z_score,
    severity
FROM iceberg.gold.usage_anomalies
WHERE event_date > (SELECT max(event_date) FROM iceberg.gold.usage_anomalies) - INTERVAL '7' DAY
ORDER BY event_date DESC, abs(z_score) DESC, dimension, dimension_value, metric;
