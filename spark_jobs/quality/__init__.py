"""Quality gates: Great Expectations suites validate a stage's Iceberg branch,
and only a passing gate publishes it to main (write-audit-publish).

suites      loads expectations/<table>.json (pure)
parameters  the run-time values suites refer to with {"$PARAMETER": name}
validation  runs GX on a Spark DataFrame of the branch, returns plain outcomes
results     ops.quality_results (one row per expectation per table per run)
publishing  branch heads, fast-forward of main, dropping the branch
data_docs   where Data Docs live and the per-gate summary page
"""
