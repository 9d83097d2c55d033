"""Quality gates: Great Expectations suites validate the rows a stage run owns
on its Iceberg branch, and only a passing audit publishes it to main
(write-audit-publish), in the stage's own application (spark_jobs/stage.py).

gate        audit (validate, record) and publish one stage run
suites      loads expectations/<table>.json (pure)
validation  runs GX on a Spark DataFrame of the branch, returns plain outcomes
results     ops.quality_results (one row per expectation per table per run)
publishing  branch heads, fast-forward of main, dropping the branch
data_docs   where Data Docs live and the per-gate summary page
offline_assets  Data Docs pages load the project's copies of their scripts and styles
"""
