"""The gate task's operator: a pipeline spark-submit of spark_jobs/quality_gate.py
that carries a "Data Docs" extra link to the page of its own validation.

The link is computed from the run id and the stage alone (the gate writes its
page to ``gates/<wap branch>/<stage>.html`` under the served Data Docs
folder), so it exists even when the gate fails. Airflow 3 evaluates the link
on the worker when the task finishes and stores it in XCom; the UI reads it
from there, so no plugin registration is needed. No I/O at import time.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperatorLink
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from pipeline_tasks import PROJECT_ROOT, SparkJobOperator, wap_branch

DEFAULT_DATA_DOCS_PORT = 8765
# spark_jobs/quality_gate.py exits 1 when an error expectation failed: a verdict
# on the data, which retrying cannot change (other codes may be transient).
GATE_FAILED_EXIT = re.compile(r"Error code is: 1\.")


def data_docs_port(env_file: Path = PROJECT_ROOT / ".local" / "platform.env") -> int:
    """DATA_DOCS_PORT of the worker's environment, else of the generated platform.env."""
    if os.environ.get("DATA_DOCS_PORT"):
        return int(os.environ["DATA_DOCS_PORT"])
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            if line.startswith("DATA_DOCS_PORT="):
                return int(line.partition("=")[2])
    return DEFAULT_DATA_DOCS_PORT


def gate_page_url(run_id: str, stage: str, port: int) -> str:
    return f"http://localhost:{port}/gates/{wap_branch(run_id)}/{stage}.html"


class DataDocsLink(BaseOperatorLink):
    name = "Data Docs"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return gate_page_url(ti_key.run_id, operator.stage, data_docs_port())


class QualityGateOperator(SparkJobOperator):
    """``gate_<stage>``: audits the run's branch of the stage's tables, publishes it if it passes."""

    operator_extra_links = (DataDocsLink(),)

    def __init__(self, *, stage: str, **kwargs: Any) -> None:
        kwargs.setdefault("task_id", f"gate_{stage}")
        super().__init__(job="quality_gate", job_args=["--stage", stage], **kwargs)
        self.stage = stage

    def execute(self, context: Any) -> None:
        try:
            super().execute(context)
        except AirflowException as exc:
            if GATE_FAILED_EXIT.search(str(exc)):
                url = gate_page_url(context["run_id"], self.stage, data_docs_port())
                raise AirflowFailException(
                    f"quality gate {self.stage} blocked run {context['run_id']}: error expectations failed, main "
                    f"left untouched, branch kept. Data Docs: {url}") from exc
            raise
