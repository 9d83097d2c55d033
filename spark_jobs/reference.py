"""docs/stages.md, written from the stage declarations (spark_jobs/pipeline.py PIPELINES).

    python -m spark_jobs.reference            # rewrites docs/stages.md
    python -m spark_jobs.reference --check    # exits 1 if docs/stages.md is not what the declarations say

The page lists each stage's options (job flag = trigger-form field, default,
bounds) and its tables (columns, partitioning, the rows a run rewrites and
its gate validates). A test keeps the committed page equal to this output.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spark_jobs.pipeline import PIPELINES
from spark_jobs.stage import Param, Stage

PAGE = Path(__file__).resolve().parent.parent / "docs" / "stages.md"


def _bounds(p: Param) -> str:
    parts = []
    if p.minimum is not None:
        parts.append(f">= {p.minimum:g}")
    if p.exclusive_minimum is not None:
        parts.append(f"> {p.exclusive_minimum:g}")
    if p.maximum is not None:
        parts.append(f"<= {p.maximum:g}")
    if p.choices:
        parts.append("one of " + ", ".join(f"`{c}`" for c in p.choices))
    if p.kind == "list":
        parts.append("at least one")
    return "; ".join(parts)


def _default(p: Param) -> str:
    if p.default is None:
        return "(none)"
    return f"`{p.argument(p.default)}`"


def render() -> str:
    lines = [
        "# Stages, their options and their tables",
        "",
        "Written by `python -m spark_jobs.reference` from the stage declarations",
        "(`spark_jobs/<stage>.py`); do not edit by hand.",
        "",
        "Each pipeline is a DAG of the same name. Every option is a flag of its stage's",
        "job (`spark_jobs/<stage>.py`), of the one-application `spark_jobs/pipeline.py",
        "--pipeline NAME`, and a field of the DAG's trigger form (same name with",
        "underscores), with the same default and bounds. Every stage also takes",
        "`--run-id` and `--branch`; a stage that processes dates, `--start-date` and",
        "`--end-date`.",
        "",
        "A run of a stage rewrites, in each of its tables, exactly the rows listed under",
        "*rows a run owns*; its quality gate validates exactly those rows before they",
        "are published.",
    ]
    for pipeline, stages in PIPELINES.items():
        lines += ["", f"# Pipeline `{pipeline}`"]
        for stage in stages:
            lines += _stage(stage)
    return "\n".join(lines) + "\n"


def _stage(stage: Stage) -> list[str]:
    lines = ["", f"## {stage.name}", "", stage.description.strip().splitlines()[0], ""]
    if stage.after:
        lines += [f"Runs after: {', '.join(stage.after)}.", ""]
    if stage.params:
        lines += ["| option | default | bounds | what it does |", "|---|---|---|---|"]
        lines += [f"| `{p.flag}` | {_default(p)} | {_bounds(p)} | {p.help} |" for p in stage.params]
        lines.append("")
    lines += ["| table | partitioned by | rows a run owns | columns |", "|---|---|---|---|"]
    for o in stage.outputs:
        columns = ", ".join(f"`{c.strip().split(' ')[0]}`" for c in o.table.columns.split(","))
        lines.append(f"| `{o.name}` | {o.table.partitioned_by or '(none)'} | {o.owns.describe} | {columns} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not PAGE.exists() or PAGE.read_text() != text:
            print(f"{PAGE} is out of date: run python -m spark_jobs.reference", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text)
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
