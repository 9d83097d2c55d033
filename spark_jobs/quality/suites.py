"""Expectation suites: one JSON file per published table in ``expectations/``.

A suite file is GX's own expectation configuration (``type``, ``kwargs``,
``meta``) plus the ``table`` it guards. Which rows of the table a run's audit
validates is not the suite's to say: it is the rows the run owns, declared
with the table by its stage. Every expectation must say in ``meta.severity``
whether a failure blocks publishing (``error``) or is only recorded
(``warning``).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

SEVERITIES = ("error", "warning")
# Expectations whose arguments name an execution engine's types (Spark's
# ``TimestampType``, pandas' ``datetime64[ns]``): their suites run on Spark only.
ENGINE_TYPED = {"expect_column_values_to_be_of_type", "expect_column_values_to_be_in_type_list"}


def default_expectations_dir() -> Path:
    """$EXPECTATIONS_DIR, else the checkout's expectations/ (found from this file
    or, when spark_jobs is imported from pipeline.zip, from $PLATFORM_HOME or the
    working directory)."""
    candidates = [os.environ.get("EXPECTATIONS_DIR"), Path(__file__).resolve().parents[2] / "expectations",
                  os.environ.get("PLATFORM_HOME") and Path(os.environ["PLATFORM_HOME"]) / "expectations",
                  Path.cwd() / "expectations"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    raise SuiteError(f"expectations/ not found; looked in {[str(c) for c in candidates if c]}; set EXPECTATIONS_DIR")


class SuiteError(ValueError):
    pass


@dataclass(frozen=True)
class ExpectationSpec:
    type: str
    kwargs: dict
    meta: dict

    @property
    def severity(self) -> str:
        return self.meta["severity"]

    def parameters(self) -> set[str]:
        return {v["$PARAMETER"] for v in self.kwargs.values() if isinstance(v, dict) and "$PARAMETER" in v}


@dataclass(frozen=True)
class Suite:
    name: str
    table: str
    expectations: list[ExpectationSpec]
    source: str = ""

    def parameters(self) -> set[str]:
        return set().union(*(e.parameters() for e in self.expectations)) if self.expectations else set()

    @property
    def names_spark_types(self) -> bool:
        return any(e.type in ENGINE_TYPED for e in self.expectations)


def parse_suite(doc: dict, source: str = "<dict>") -> Suite:
    """Checks a suite document and returns it typed; errors name the file and the expectation."""
    for key in ("name", "table", "expectations"):
        if key not in doc:
            raise SuiteError(f"{source}: missing key {key!r}; found {sorted(doc)}")
    if doc["name"] != doc["table"]:
        raise SuiteError(f"{source}: a suite is named after its table, got name={doc['name']!r} table={doc['table']!r}")
    specs = []
    for i, raw in enumerate(doc["expectations"]):
        meta = raw.get("meta") or {}
        if meta.get("severity") not in SEVERITIES:
            raise SuiteError(f"{source}: expectation #{i} ({raw.get('type')}) has severity {meta.get('severity')!r}; "
                             f"expected one of {SEVERITIES} in meta.severity")
        specs.append(ExpectationSpec(raw["type"], dict(raw.get("kwargs") or {}), dict(meta)))
    unknown = set(doc) - {"name", "table", "expectations"}
    if unknown:
        raise SuiteError(f"{source}: unknown keys {sorted(unknown)}; a suite has name, table and expectations")
    return Suite(doc["name"], doc["table"], specs, source)


def suite_path(table: str, directory: Path | None = None) -> Path:
    return Path(directory or default_expectations_dir()) / f"{table}.json"


def load_suite(table: str, directory: Path | None = None) -> Suite:
    path = suite_path(table, directory)
    if not path.exists():
        raise SuiteError(f"no expectation suite for {table}: expected {path}")
    return parse_suite(json.loads(path.read_text()), str(path))


def load_suites(tables: list[str], directory: Path | None = None) -> list[Suite]:
    directory = directory or default_expectations_dir()
    return [load_suite(t, directory) for t in tables]
