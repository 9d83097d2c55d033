"""The Data Docs keep every validation's page; GX builds a site per month, whose
index lists that month's latest validations, so a gate's cost does not grow
with the months kept; the root's index links each month's."""
from __future__ import annotations

import datetime as dt
import re

from spark_jobs.quality.suites import load_suite
from spark_jobs.quality.validation import Validator


def test_each_month_has_its_site_and_every_page_stays(spark, tmp_path):
    user_dim = spark.createDataFrame(
        [("u1", dt.date(2023, 1, 2), "US", "iPad", "free")],
        "user_id STRING, join_date DATE, country STRING, device_type STRING, subscription_type STRING")
    suite = load_suite("silver.user_dim")
    pages, validators = [], []
    for month, run in (("2026-11", "run-first"), ("2026-12", "run-second"), ("2026-12", "run-third"),
                       ("2026-12", "run-fourth")):
        # A Validator per run, as each gate makes its own: the stores and the sites persist.
        validator = Validator(tmp_path / "docs", tmp_path / "results", index_validations=2, month=month)
        validation = validator.validate(suite, user_dim, {}, run_name=run, batch_label=f"silver.user_dim@{run}")
        assert validation.passed
        validator.build_data_docs()
        pages.append(tmp_path / "docs" / validation.data_docs_page)
        validators.append(validator)

    assert [p.relative_to(tmp_path / "docs").parts[0] for p in pages] == ["2026-11", "2026-12", "2026-12", "2026-12"]
    assert all(page.is_file() for page in pages)
    assert "run-first" in pages[0].read_text()

    november = (tmp_path / "docs" / "2026-11" / "index.html").read_text()
    december = (tmp_path / "docs" / "2026-12" / "index.html").read_text()
    assert "run-first" in november and "run-second" not in november
    assert "run-fourth" in december and "run-third" in december
    assert "run-second" not in december, "the index lists the month's latest 2"
    assert "run-first" not in december
    # December's gate lists December's results only, whatever earlier months hold.
    assert len(validators[-1].context.validation_results_store.list_keys()) == 3

    root_index = (tmp_path / "docs" / "index.html").read_text()
    assert re.findall(r'href="([^"]+)"', root_index) == ["2026-12/index.html", "2026-11/index.html"]
