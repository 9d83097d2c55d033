"""Runs a suite on a Spark DataFrame with great-expectations 1.x and returns
plain outcomes (no GX types leak out of this module).

Small rows (``DRIVER_VALIDATION_MAX_BYTES``) are read into the driver and
validated by GX's pandas engine. On larger ones GX computes its metrics as Spark
aggregate queries on the DataFrame, so a validation brings counts and at most
``partial_unexpected_list`` examples to the driver, never the table. The
context is ephemeral (nothing to deploy);
the validation results store and the Data Docs site are folders under
``.local/``, kept across runs, one of each per calendar month (UTC): every
validation's page stays where it was written, and each month's index lists its
latest ``INDEX_VALIDATIONS``.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import DataFrame

from spark_jobs.common import estimated_bytes
from spark_jobs.quality import data_docs, offline_assets
from spark_jobs.quality.suites import ExpectationSpec, Suite

# GX logs every metric at INFO and would otherwise phone home.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
logging.getLogger("great_expectations").setLevel(logging.WARNING)

GX_SEVERITY = {"error": "critical", "warning": "warning"}
DATA_DOCS_SITE = "local_site"
# BASIC: observed values and unexpected counts. GX computes the counts of a
# table's checks together, a few Spark jobs in all; each example value list is
# one more job per check, scanning every row when there is nothing to find (a
# bronze suite: 4 jobs instead of 12). So a table is validated without
# examples, and again with up to 10 per check only when a check failed.
# (SUMMARY adds a value-count groupBy per expectation: 7x slower on 1M rows.)
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0}
RESULT_FORMAT_WITH_EXAMPLES = {"result_format": "BASIC", "partial_unexpected_count": 10}
# GX builds the site's index, on every gate run, by reading each validation
# result it lists: listing all of them made every gate slower with each run kept
# (its Data Docs step 0.45 s at ~100 stored results, 1.1 s at 830). Older pages
# stay where they were written, linked from their gate page and from
# ops.quality_results.data_docs_page.
# Even unread, every stored result and page is listed, and its key parsed, on each
# build (1.3 of 1.65 s at 2,160 results): a site and a results store per month
# keep that to one month's runs.
INDEX_VALIDATIONS = 200
# Rows the run owns that Spark estimates at most this size (Parquet bytes after
# partition pruning) are read once into the driver and validated by GX's pandas
# engine: most gold tables have a few hundred rows, where each of GX's Spark jobs
# (about 10 per table) costs 0.1-0.3 s of scheduling and file opening, and more in
# a fresh JVM. Engagement's four tables: 2.4-3.4 s on Spark, 0.5-0.6 s in the
# driver. In pandas a table takes about 3 times its Parquet size (1M events: the
# 125k sessions, 14 MB, 40 MB). Larger tables stay on Spark, which reads only the
# columns each check needs.
DRIVER_VALIDATION_MAX_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation_type: str
    kwargs: dict  # as configured, with run-time parameters filled in
    severity: str
    success: bool
    observed_value: str | None
    why: str = ""

    @property
    def blocks(self) -> bool:
        return self.severity == "error" and not self.success

    def describe(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"{self.expectation_type}({args}) [{self.severity}] observed {self.observed_value}"


@dataclass
class TableValidation:
    table: str
    engine: str  # where GX computed its metrics: "spark" or "pandas" (rows read into the driver)
    outcomes: list[ExpectationOutcome] = field(default_factory=list)
    data_docs_page: str | None = None  # path relative to the Data Docs folder, where build_data_docs writes it

    @property
    def passed(self) -> bool:
        return not any(o.blocks for o in self.outcomes)


def observed_value(result: dict, exception: dict | None = None) -> str | None:
    """What GX saw, as a short JSON string: the observed value when the
    expectation has one, else the unexpected count, share and examples."""
    raised = raised_exception_message(exception)
    if raised:
        return json.dumps({"exception": raised[:1000]})
    if not result:
        return None
    if "observed_value" in result:
        return json.dumps(result["observed_value"], default=json_value)
    keys = ("element_count", "unexpected_count", "unexpected_percent", "missing_count", "partial_unexpected_list")
    summary = {k: result[k] for k in keys if k in result}
    if "partial_unexpected_list" in summary:
        summary["partial_unexpected_list"] = summary["partial_unexpected_list"][:10]
    return json.dumps(summary, default=json_value)


def json_value(value):
    """A numpy scalar (GX's pandas engine) as the Python number GX's Spark engine
    gives; anything else json cannot write, as its text."""
    if getattr(value, "shape", None) == () and callable(getattr(value, "item", None)):
        return value.item()
    return str(value)


def raised_exception_message(exception_info) -> str | None:
    """GX reports exceptions either flat or keyed by metric; find any that was raised."""
    if not isinstance(exception_info, dict):
        return None
    if exception_info.get("raised_exception"):
        return str(exception_info.get("exception_message"))
    for value in exception_info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return str(value.get("exception_message"))
    return None


def fill_parameters(kwargs: dict, parameters: dict) -> dict:
    return {k: parameters[v["$PARAMETER"]] if isinstance(v, dict) and "$PARAMETER" in v else v
            for k, v in kwargs.items()}


def build_context(data_docs_dir: Path, results_store_dir: Path, index_validations: int = INDEX_VALIDATIONS):
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig, InMemoryStoreBackendDefaults, ProgressBarsConfig)

    defaults = InMemoryStoreBackendDefaults(init_temp_docs_sites=False)
    stores = dict(defaults.stores)
    stores[defaults.validation_results_store_name] = {
        "class_name": "ValidationResultsStore",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(results_store_dir)},
    }
    config = DataContextConfig(
        store_backend_defaults=defaults,
        stores=stores,
        validation_results_store_name=defaults.validation_results_store_name,
        data_docs_sites={DATA_DOCS_SITE: {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(data_docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder",
                                   "validation_results_limit": index_validations},
        }},
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def gx_expectation(spec: ExpectationSpec):
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    return ExpectationConfiguration(type=spec.type, kwargs=dict(spec.kwargs), meta=dict(spec.meta),
                                    severity=GX_SEVERITY[spec.severity]).to_domain_obj()


_PARSING_LOCK = threading.Lock()


def _serialize_suite_parameter_parsing() -> None:
    """GX 1.24 evaluates a suite parameter (``{"$PARAMETER": ...}``) with one
    module-wide pyparsing parser and value stack, which tables validated side by
    side would share mid-parse (seen: ``push_first() missing 1 required positional
    argument``). Its evaluations take turns; the validations stay side by side."""
    from great_expectations.core import suite_parameters

    parse = suite_parameters.parse_suite_parameter
    if getattr(parse, "serialized", False):
        return

    def serialized(*args, **kwargs):
        with _PARSING_LOCK:
            return parse(*args, **kwargs)

    serialized.serialized = True
    suite_parameters.parse_suite_parameter = serialized


class Validator:
    """One GX context per stage run: ``validate`` each table, then ``build_data_docs`` once."""

    def __init__(self, data_docs_dir: Path, results_store_dir: Path, index_validations: int = INDEX_VALIDATIONS,
                 driver_max_bytes: int = DRIVER_VALIDATION_MAX_BYTES, month: str | None = None):
        import great_expectations as gx

        _serialize_suite_parameter_parsing()
        self._gx = gx
        self.data_docs_dir = Path(data_docs_dir)
        self.month = month or dt.datetime.now(dt.timezone.utc).strftime("%Y-%m")
        self.driver_max_bytes = driver_max_bytes
        self.context = build_context(self.data_docs_dir / self.month, Path(results_store_dir) / self.month,
                                     index_validations)
        # Not cached: GX's few jobs per table each read only the Parquet columns
        # they need, where caching first materializes every column of every row
        # (10M events: the gate took 9 s uncached, 28-33 s cached).
        self.datasources = {"spark": self.context.data_sources.add_spark(name="iceberg_branches", persist=False),
                            "pandas": self.context.data_sources.add_pandas(name="iceberg_branches_in_driver")}
        self._validated: list[tuple[object, TableValidation]] = []  # (GX result id, validation): their pages
        # Tables may be validated side by side (GX's validators keep their own batch on the
        # data source's shared engine): what each adds to the context is added one at a time.
        self._lock = threading.Lock()

    def validate(self, suite: Suite, df: DataFrame, parameters: dict, run_name: str, batch_label: str) -> TableValidation:
        engine, rows = self._rows(suite, df)
        validation = self._validate(suite, engine, rows, parameters, run_name, batch_label, RESULT_FORMAT)
        if not all(o.success for o in validation.outcomes):
            with self._lock:  # its Data Docs page is the one with examples
                self._validated = [(i, v) for i, v in self._validated if v is not validation]
            validation = self._validate(suite, engine, rows, parameters, run_name, f"{batch_label}+examples",
                                        RESULT_FORMAT_WITH_EXAMPLES)
        return validation

    def _rows(self, suite: Suite, df: DataFrame) -> tuple[str, object]:
        """The engine and the rows it validates: pandas and the rows read into the
        driver when they are small and the suite does not name Spark's types, else
        spark and the DataFrame."""
        from pyarrow import ArrowInvalid

        if suite.names_spark_types or estimated_bytes(df) > self.driver_max_bytes:
            return "spark", df
        try:
            return "pandas", df.toPandas()
        except ArrowInvalid as exc:  # a timestamp outside pandas' years 1678-2261
            print(f"[gate] {suite.table}: validated on Spark, its rows do not fit pandas: {exc}", flush=True)
            return "spark", df

    def build_data_docs(self) -> None:
        """The pages of this run's validations (each validation knows its page's
        path), the month's index, and the index of months."""
        if self._validated:
            self.context.build_data_docs(site_names=[DATA_DOCS_SITE],
                                         resource_identifiers=[identifier for identifier, _ in self._validated])
        # The pages load their scripts and styles from the project's copies, not from CDNs.
        built = [self.data_docs_dir / v.data_docs_page for _, v in self._validated if v.data_docs_page]
        month_index = self.data_docs_dir / self.month / "index.html"
        offline_assets.rewrite_site(self.data_docs_dir, [p for p in [*built, month_index] if p.exists()])
        data_docs.write_months_index(self.data_docs_dir)

    def _validate(self, suite: Suite, engine: str, rows, parameters: dict, run_name: str, batch_label: str,
                  result_format: dict) -> TableValidation:
        gx = self._gx
        with self._lock:
            if suite.name in {s.name for s in self.context.suites.all()}:
                self.context.suites.delete(suite.name)
            gx_suite = self.context.suites.add(gx.ExpectationSuite(
                name=suite.name, expectations=[gx_expectation(s) for s in suite.expectations],
                meta={"source": suite.source}))
            batch_definition = self.datasources[engine].add_dataframe_asset(
                name=batch_label).add_batch_definition_whole_dataframe(name=batch_label)
            definition = self.context.validation_definitions.add(
                gx.ValidationDefinition(name=f"{suite.name}:{batch_label}", data=batch_definition, suite=gx_suite))
            checkpoint = self.context.checkpoints.add(gx.Checkpoint(
                name=f"gate:{suite.name}:{batch_label}", validation_definitions=[definition], actions=[],
                result_format=result_format))
        run_id = gx.RunIdentifier(run_name=run_name, run_time=dt.datetime.now(dt.timezone.utc))
        result = checkpoint.run(batch_parameters={"dataframe": rows}, expectation_parameters=parameters, run_id=run_id)
        (identifier, suite_result), = result.run_results.items()
        # GX reorders results; its expectation ids tie each back to the suite's spec.
        spec_by_id = {gx_e.id: spec for gx_e, spec in zip(gx_suite.expectations, suite.expectations)}
        if None in spec_by_id or len(spec_by_id) != len(suite.expectations):
            raise RuntimeError(f"{suite.source}: GX did not give every expectation its own id")
        outcomes = {id(spec_by_id[r.expectation_config.id]): self._outcome(spec_by_id[r.expectation_config.id], r, parameters)
                    for r in suite_result.results}
        validation = TableValidation(suite.table, engine, [outcomes[id(spec)] for spec in suite.expectations],
                                     data_docs_page=self._page(identifier))
        with self._lock:
            self._validated.append((identifier, validation))
        return validation

    @staticmethod
    def _outcome(spec: ExpectationSpec, r, parameters: dict) -> ExpectationOutcome:
        if r.expectation_config.type != spec.type:
            raise RuntimeError(f"GX returned {r.expectation_config.type} where the suite has {spec.type}")
        return ExpectationOutcome(
            expectation_type=spec.type,
            kwargs=fill_parameters(spec.kwargs, parameters),
            severity=spec.severity,
            success=bool(r.success),
            observed_value=observed_value(r.result, r.exception_info),
            why=spec.meta.get("why", ""),
        )

    def _page(self, identifier) -> str | None:
        urls = self.context.get_docs_sites_urls(resource_identifier=identifier, site_name=DATA_DOCS_SITE,
                                                only_if_exists=False)
        url = urls[0].get("site_url") if urls else None
        if not url or not url.startswith("file://"):
            return None
        # GX returns a URL (an '@' in the batch name is %40); we keep the file's path.
        return os.path.relpath(urllib.parse.unquote(url.removeprefix("file://")), self.data_docs_dir)
