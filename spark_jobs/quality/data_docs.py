"""Where Data Docs live and how people reach them.

GX's site builder writes one HTML page per validation under
``$PLATFORM_STATE/data_docs/<YYYY-MM>``, a site per month with its own index;
``index.html`` at the top lists the months. ``infra/datadocs.sh`` serves that
folder on ``DATA_DOCS_PORT``. On top, each gate run writes one summary page at a path
known from its branch and stage alone, ``gates/<branch>/<stage>.html``, which
links the GX page of every table: the Airflow task's "Data Docs" link points
there without asking the gate anything.
"""
from __future__ import annotations

import html
import os
import re
from pathlib import Path
from urllib.parse import quote

from iceberg_catalog import config

DEFAULT_PORT = 8765


def data_docs_dir() -> Path:
    return Path(os.environ.get("DATA_DOCS_DIR") or config.PLATFORM_STATE / "data_docs")


def results_store_dir() -> Path:
    return Path(os.environ.get("GX_RESULTS_DIR") or config.PLATFORM_STATE / "gx" / "validations")


def data_docs_port() -> int:
    """DATA_DOCS_PORT from the environment, else from the generated platform.env."""
    return int(os.environ.get("DATA_DOCS_PORT") or config.platform_env().get("DATA_DOCS_PORT") or DEFAULT_PORT)


def gate_page_path(branch: str, stage: str) -> str:
    return f"gates/{branch}/{stage}.html"


def url(relative_path: str, port: int | None = None) -> str:
    return f"http://localhost:{port or data_docs_port()}/{relative_path}"


def render_gate_page(run_id: str, stage: str, branch: str, verdict: str, tables: list[dict],
                     input_report: dict | None = None) -> str:
    """One page per gate run: the verdict, each table's failed expectations and its GX page.

    ``tables``: dicts with table, owns (the rows validated), snapshot_id, passed,
    page (relative to the Data Docs root or None), failures (list of strings), published (str).
    ``input_report``: figures about the input the stage read (name -> value), shown first.
    """
    e = html.escape
    rows = []
    for t in tables:
        link = f'<a href="../../{e(quote(t["page"]))}">GX validation</a>' if t.get("page") else "no page"
        failures = "".join(f"<li>{e(f)}</li>" for f in t["failures"]) or "<li>none</li>"
        status = "passed" if t["passed"] else "FAILED"
        rows.append(f"<tr><td>{e(t['table'])}</td><td>{e(t['owns'])}</td><td>{e(str(t['snapshot_id']))}</td><td class='{status}'>{status}</td>"
                    f"<td><ul>{failures}</ul></td><td>{e(t.get('published', ''))}</td><td>{link}</td></tr>")
    report = ""
    if input_report:
        cells = "".join(f"<tr><td>{e(str(k))}</td><td class='n'>{e(f'{v:,}' if isinstance(v, int) else str(v))}</td></tr>"
                        for k, v in input_report.items())
        report = f"<h2>Input</h2><table class='report'>{cells}</table><h2>Tables</h2>"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>gate {e(stage)} {e(run_id)}</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{border:1px solid #ccc;padding:4px;vertical-align:top}}
table{{border-collapse:collapse}} .n{{text-align:right}} .FAILED{{color:#b00;font-weight:bold}} .passed{{color:#070}}</style></head>
<body><h1>Quality gate <code>{e(stage)}</code>: {e(verdict)}</h1>
<p>run <code>{e(run_id)}</code>, branch <code>{e(branch)}</code>. <a href="../../index.html">All validations</a></p>
{report}<table><tr><th>table</th><th>rows validated</th><th>branch snapshot</th><th>result</th><th>failed expectations</th><th>publishing</th><th>details</th></tr>
{''.join(rows)}
</table></body></html>
"""


def write_months_index(root: Path) -> Path:
    """``index.html`` of the Data Docs root: a link to each month's site, newest
    first. Gates that run side by side may write it at once: each replaces it whole."""
    months = sorted((d.name for d in root.iterdir() if re.fullmatch(r"\d{4}-\d{2}", d.name)
                     and (d / "index.html").exists()), reverse=True)
    items = "".join(f'<li><a href="{m}/index.html">{m}</a></li>' for m in months) or "<li>none yet</li>"
    path = root / "index.html"
    tmp = path.with_name(f".index.html.{os.getpid()}")
    tmp.write_text(f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Data Docs</title>
<style>body{{font-family:sans-serif;margin:2em}}</style></head>
<body><h1>Data Docs</h1><p>Each month's validations, newest first; a gate's own page links its tables' pages.</p>
<ul>{items}</ul></body></html>
""")
    tmp.replace(path)
    return path


def write_gate_page(branch: str, stage: str, page_html: str) -> Path:
    path = data_docs_dir() / gate_page_path(branch, stage)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page_html)
    return path
