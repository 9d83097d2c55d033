# Performance benchmarks. See docs/performance.md.
#   make bench                       1M realistic events, 3 runs of both layouts, alternating: the DAG's
#                                    (one spark-submit per stage) and one application (spark_jobs/pipeline.py),
#                                    every stage with its quality gate; each against DuckDB, per stage and in all
#   make bench BENCH_EVENTS=10000000 BENCH_ARGS=--extras     the run the targets are about
#   make bench BENCH_ARGS="--layouts per-stage"              the DAG's layout only
#   make bench-skew                  skew-join evidence (sort-merge / AQE / salted / broadcast), 16M events (~16 min)
#   make bench-ui                    the three largest bottlenecks per job, from the event logs
#   make bench-scaling               1M, 3M, 10M, 30M events, one run each, one application only (long)
#   make bench-lastfm                19,150,868 generated LastFM plays through the lastfm_sessions DAG's layout
#   make bench-stream                the speed layer at 10,000 events/s for 10 minutes: lag, freshness through
#                                    Trino, state and heap (BENCH_ARGS="--rates 12000,14000 --seconds 180")
#   make bench-dashboards            seconds until each Superset dashboard is drawn, on the running platform
#                                    (after `make demo`; it reads the demo's tables, not the bench catalog)
# Benchmarks use their own catalog database and warehouse, never the demo's or the tests'.
BENCH_EVENTS ?= 1000000
BENCH_REPEATS ?= 3
BENCH_ARGS ?=
BENCH_ENV = ICEBERG_CATALOG_DB=iceberg_bench ICEBERG_WAREHOUSE=$(CURDIR)/.local/bench-warehouse

.PHONY: bench bench-skew bench-ui bench-scaling bench-parity bench-lastfm bench-stream bench-dashboards

bench: package
	$(BENCH_ENV) bash infra/postgres.sh start
	$(BENCH_ENV) $(PY) -m bench.run --events $(BENCH_EVENTS) --repeats $(BENCH_REPEATS) $(BENCH_ARGS)

bench-skew: package
	$(BENCH_ENV) bash infra/postgres.sh start
	$(BENCH_ENV) $(PY) -m bench.skew_join $(BENCH_ARGS)

bench-ui:
	$(PY) -m bench.spark_ui_report $(BENCH_ARGS)

bench-scaling: package
	$(BENCH_ENV) bash infra/postgres.sh start
	for n in 1000000 3000000 10000000 30000000; do \
	  $(BENCH_ENV) $(PY) -m bench.run --events $$n --repeats 1 --layouts one --tag scaling || exit 1; done

bench-parity:
	$(PY) -m pytest tests/integration/test_duckdb_parity.py -v -p no:cacheprovider

bench-lastfm: package
	$(BENCH_ENV) bash infra/postgres.sh start
	$(BENCH_ENV) $(PY) -m bench.lastfm $(BENCH_ARGS)

bench-stream:
	$(BENCH_ENV) bash infra/postgres.sh start
	$(BENCH_ENV) $(PY) -m bench.stream $(BENCH_ARGS)

bench-dashboards:
	$(PY) -m bench.dashboards $(BENCH_ARGS)
