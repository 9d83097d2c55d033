-- DAU and stickiness (DAU / 30-day MAU) per day, with a 7-day moving average
-- of stickiness to smooth the weekday cycle.
SELECT
    event_date,
    dau,
    mau_30d,
    stickiness,
    avg(stickiness) OVER (ORDER BY event_date ROWS BETWEEN 6 PRECEDING AND CURRENT ROW) AS stickiness_7d_avg
FROM iceberg.gold.daily_engagement
ORDER BY event_date;
