"""The expectation suites and the gate's pure helpers (no Spark needed)."""
from __future__ import annotations

import json
import re

import pytest

from spark_jobs.pipeline import BY_NAME, TABLES
from spark_jobs.quality import data_docs
from spark_jobs.quality.suites import SuiteError, load_suite, parse_suite, suite_path
from spark_jobs.quality.validation import fill_parameters, gx_expectation, observed_value

PUBLISHED = sorted({t for stage in BY_NAME.values() for t in stage.tables})


def table_columns(table: str) -> set[str]:
    return {c.strip().split(" ")[0] for c in TABLES[table].columns.split(",")}


@pytest.mark.parametrize("table", PUBLISHED)
def test_every_published_table_has_a_suite_named_after_it(table):
    suite = load_suite(table)
    assert suite_path(table).name == f"{table}.json"
    assert suite.name == suite.table == table
    assert suite.expectations, f"{table}: empty suite"
    assert {e.severity for e in suite.expectations} <= {"error", "warning"}


@pytest.mark.parametrize("table", PUBLISHED)
def test_suites_name_only_columns_the_table_has(table):
    suite = load_suite(table)
    columns = table_columns(table)
    for e in suite.expectations:
        named = [e.kwargs[k] for k in ("column", "column_A", "column_B") if k in e.kwargs]
        named += e.kwargs.get("column_list", [])
        assert set(named) <= columns, f"{table}: {e.type} names {named}, table has {sorted(columns)}"
        if e.type == "expect_table_columns_to_match_set":
            assert set(e.kwargs["column_set"]) == columns


@pytest.mark.parametrize("table", PUBLISHED)
def test_gx_accepts_every_expectation(table):
    for spec in load_suite(table).expectations:
        expectation = gx_expectation(spec)
        assert expectation.meta["severity"] == spec.severity
        assert expectation.severity.value == {"error": "critical", "warning": "warning"}[spec.severity]


def test_a_suite_without_severity_is_refused_with_file_and_expectation():
    doc = {"name": "gold.x", "table": "gold.x",
           "expectations": [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}, "meta": {}}]}
    with pytest.raises(SuiteError, match=r"x\.json: expectation #0 \(expect_column_values_to_not_be_null\) has severity None"):
        parse_suite(doc, "x.json")


def test_a_suite_must_be_named_after_its_table():
    with pytest.raises(SuiteError, match="named after its table"):
        parse_suite({"name": "a", "table": "gold.b", "expectations": []}, "a.json")


def test_parameters_are_filled_into_kwargs():
    kwargs = {"column": "actions", "min_value": {"$PARAMETER": "n"}, "max_value": {"$PARAMETER": "n"}}
    assert fill_parameters(kwargs, {"n": 42}) == {"column": "actions", "min_value": 42, "max_value": 42}


def test_observed_value_is_the_value_or_the_unexpected_summary():
    assert observed_value({"observed_value": 7}) == "7"
    summary = json.loads(observed_value({"element_count": 10, "unexpected_count": 2, "unexpected_percent": 20.0,
                                         "partial_unexpected_list": ["x", "y"], "other": 1}))
    assert summary == {"element_count": 10, "unexpected_count": 2, "unexpected_percent": 20.0,
                       "partial_unexpected_list": ["x", "y"]}
    assert json.loads(observed_value({}, {"raised_exception": True, "exception_message": "boom"})) == {"exception": "boom"}


def test_gate_page_escapes_values_and_links_gx_pages():
    page = data_docs.render_gate_page("run<1>", "ingest", "wap_run_1", "FAILED", [
        {"table": "bronze.interactions", "owns": "`event_date` in the run's dates", "snapshot_id": 5, "passed": False, "page": "validations/a.html",
         "failures": ["in_set observed ['<b>']"], "published": ""}])
    assert "run&lt;1&gt;" in page and "[&#x27;&lt;b&gt;&#x27;]" in page and "['<b>']" not in page
    assert 'href="../../validations/a.html"' in page and "FAILED" in page
    assert re.search(r"gates/wap_run_1/ingest\.html$", data_docs.url(data_docs.gate_page_path("wap_run_1", "ingest"), 1))
