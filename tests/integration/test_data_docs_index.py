"""The Data Docs site keeps every validation's page; its index lists the latest
validations only, so a gate's cost does not grow with the runs kept."""
from __future__ import annotations

import datetime as dt

from spark_jobs.quality.suites import load_suite
from spark_jobs.quality.validation import Validator


def test_the_index_lists_the_latest_validations_and_every_page_stays(spark, tmp_path):
    user_dim = spark.createDataFrame(
        [("u1", dt.date(2023, 1, 2), "US", "iPad", "free")],
        "user_id STRING, join_date DATE, country STRING, device_type STRING, subscription_type STRING")
    suite = load_suite("silver.user_dim")
    pages = []
    for run in ("run-first", "run-second", "run-third"):
        # A Validator per run, as each gate makes its own: the store and the site persist.
        validator = Validator(tmp_path / "docs", tmp_path / "results", index_validations=2)
        validation = validator.validate(suite, user_dim, {}, run_name=run, batch_label=f"silver.user_dim@{run}")
        assert validation.passed
        validator.build_data_docs()
        pages.append(tmp_path / "docs" / validation.data_docs_page)

    index = (tmp_path / "docs" / "index.html").read_text()
    assert "run-third" in index and "run-second" in index
    assert "run-first" not in index
    assert all(page.is_file() for page in pages)
    assert "run-first" in pages[0].read_text()
