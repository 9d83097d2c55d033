-- Cohort retention matrix: one row per weekly join cohort, one column per
-- week since joining (week_0 is measured, not assumed to be 1). Empty cells are
-- weeks that have not happened yet for that cohort.
SELECT
    cohort_week,
    max(cohort_size) AS cohort_size,
    max(CASE WHEN week_offset = 0 THEN retention_rate END) AS week_0,
    max(CASE WHEN week_offset = 1 THEN retention_rate END) AS week_1,
    max(CASE WHEN week_offset = 2 THEN retention_rate END) AS week_2,
    max(CASE WHEN week_offset = 3 THEN retention_rate END) AS week_3,
    max(CASE WHEN week_offset = 4 THEN retention_rate END) AS week_4,
    max(CASE WHEN week_offset = 5 THEN retention_rate END) AS week_5,
    max(CASE WHEN week_offset = 6 THEN retention_rate END) AS week_6,
    max(CASE WHEN week_offset = 7 THEN retention_rate END) AS week_7,
    max(CASE WHEN week_offset = 8 THEN retention_rate END) AS week_8,
    max(CASE WHEN week_offset = 9 THEN retention_rate END) AS week_9,
    max(CASE WHEN week_offset = 10 THEN retention_rate END) AS week_10,
    max(CASE WHEN week_offset = 11 THEN retention_rate END) AS week_11,
    max(CASE WHEN week_offset = 12 THEN retention_rate END) AS week_12,
    max(CASE WHEN week_offset = 13 THEN retention_rate END) AS week_13,
    max(CASE WHEN week_offset = 14 THEN retention_rate END) AS week_14,
    max(CASE WHEN week_offset = 15 THEN retention_rate END) AS week_15,
    max(CASE WHEN week_offset = 16 THEN retention_rate END) AS week_16,
    max(CASE WHEN week_offset = 17 THEN retention_rate END) AS week_17,
    max(CASE WHEN week_offset = 18 THEN retention_rate END) AS week_18,
    max(CASE WHEN week_offset = 19 THEN retention_rate END) AS week_19,
    max(CASE WHEN week_offset = 20 THEN retention_rate END) AS week_20,
    max(CASE WHEN week_offset = 21 THEN retention_rate END) AS week_21,
    max(CASE WHEN week_offset = 22 THEN retention_rate END) AS week_22,
    max(CASE WHEN week_offset = 23 THEN retention_rate END) AS week_23,
    max(CASE WHEN week_offset = 24 THEN retention_rate END) AS week_24,
    max(CASE WHEN week_offset = 25 THEN retention_rate END) AS week_25
FROM iceberg.gold.cohort_retention
GROUP BY cohort_week
ORDER BY cohort_week;
