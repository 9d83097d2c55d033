"""Dashboard benchmark: how long each Superset dashboard takes to show, in a
real browser (Debian's Chromium through Playwright), against the running
platform's Superset and Trino (``make demo``'s data).

    python -m bench.dashboards            # make bench-dashboards
    python -m bench.dashboards --loads 5

A load is timed from opening the dashboard's URL until every chart holder
shows its drawing (a canvas, a table, a big number) or an error. Each
dashboard is loaded once to warm Trino, then ``--loads`` times; the median is
its figure. Superset's data cache is off (infra/superset/write_config.sh), so
every load queries Trino. A chart in an error state fails the run. Prints a
table with the load average before each dashboard and the rows behind the
figures; writes bench/results/dashboards.json and .md, and a screenshot of
each dashboard to .local/bench-dashboards.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import statistics
import time
from pathlib import Path

import yaml

from bench.machine import load_average, machine

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DASHBOARDS = ROOT / "infra" / "superset" / "assets" / "dashboards"

CHROMIUM = "/usr/bin/chromium"
# Chromium as root in a container: no sandbox; and nothing that phones home.
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_S = 120
# A chart holder is done when it shows its visualization (ECharts draws on a
# canvas, tables are tables, big numbers have a header line) or an error.
RENDER_STATE_JS = """
() => [...document.querySelectorAll('[data-test="dashboard-component-chart-holder"]')].map(h => {
  const name = (h.querySelector('[data-test="editable-title"]') || h).innerText.split('\\n')[0];
  const error = h.querySelector('.ant-alert-error, [data-test="error-message"]');
  if (error) return {name, state: 'error', text: error.innerText};
  if (h.querySelector('.loading, [data-test="loading-indicator"], [aria-label="Loading"]'))
    return {name, state: 'loading'};
  const slice = h.querySelector('[data-test="slice-container"]');
  const drawn = slice && slice.querySelector('canvas, table, .header-line');
  return {name, state: drawn ? 'rendered' : 'empty'};
})
"""


@contextlib.contextmanager
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def log_in(page, url: str, password: str) -> None:
    page.goto(f"{url}/login/")
    page.fill('[data-test="username-input"]', "admin")
    page.fill('[data-test="password-input"]', password)
    page.click('[data-test="login-button"]')
    page.wait_for_url(lambda u: "/login" not in u, timeout=60_000)


def open_dashboard(page, url: str, slug: str, timeout_s: float = TIMEOUT_S) -> tuple[float, list[dict]]:
    """Seconds from opening the dashboard until every chart is drawn or in error, and each chart's state."""
    started = time.monotonic()
    page.goto(f"{url}/superset/dashboard/{slug}/")
    while True:
        states = page.evaluate(RENDER_STATE_JS)
        if states and all(s["state"] in ("rendered", "error") for s in states):
            break
        if time.monotonic() - started > timeout_s:
            break
        page.wait_for_timeout(100)
    return round(time.monotonic() - started, 2), states


def screenshot(page, path: Path) -> None:
    page.wait_for_timeout(1500)  # drawn, but ECharts still animates bars and lines into place
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)


def main(argv: list[str] | None = None) -> int:
    from iceberg_catalog.config import settings

    ap = argparse.ArgumentParser(prog="python -m bench.dashboards", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loads", type=int, default=3, help="timed loads per dashboard, after one warm-up")
    ap.add_argument("--screenshots", type=Path, default=ROOT / ".local" / "bench-dashboards",
                    help="folder for a screenshot of each dashboard (default: .local/bench-dashboards)")
    args = ap.parse_args(argv)
    env = settings()
    url = f"http://localhost:{env['SUPERSET_PORT']}"
    dashboards = [yaml.safe_load(p.read_text()) for p in sorted(DASHBOARDS.glob("*.yaml"))]
    rows = dict(_demo_rows())
    figures = {}
    with browser() as b:
        page = b.new_context(viewport={"width": 1600, "height": 1000}).new_page()
        log_in(page, url, env["SUPERSET_ADMIN_PASSWORD"])
        for d in dashboards:
            load, loads = load_average(), []
            for n in range(args.loads + 1):  # the first load warms Trino and is not counted
                seconds, states = open_dashboard(page, url, d["slug"])
                not_drawn = [s for s in states if s["state"] != "rendered"]
                if not states or not_drawn:
                    raise SystemExit(f"{d['dashboard_title']}: charts not drawn: {not_drawn or 'none found'}")
                loads += [seconds] if n else []
            screenshot(page, args.screenshots / f"{d['slug']}.png")
            figures[d["dashboard_title"]] = {"charts": len(states), "seconds": loads,
                                             "median_s": statistics.median(loads), "load_avg": load}
    lines = ["# Dashboards: seconds until every chart is drawn (Chromium, warm Trino, no Superset cache)", "",
             f"Data: {', '.join(f'{t} {n:,} rows' for t, n in rows.items())}.", "",
             "| dashboard | charts | median s | loads s | load before |", "|---|---|---|---|---|"]
    lines += [f"| {t} | {f['charts']} | {f['median_s']:.1f} | {', '.join(f'{s:.1f}' for s in f['seconds'])} "
              f"| {f['load_avg']} |" for t, f in figures.items()]
    text = "\n".join(lines) + "\n"
    print(text)
    report = {"dashboards": figures, "rows": rows, "machine": machine(),
              "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "dashboards.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "dashboards.md").write_text(text)
    return 0


def _demo_rows() -> list[tuple[str, int]]:
    """The size of what the dashboards read (the tables' main snapshots)."""
    from iceberg_catalog.config import load_pyiceberg_catalog

    catalog = load_pyiceberg_catalog()
    return [(t, int(catalog.load_table(t).current_snapshot().summary["total-records"]))
            for t in ("silver.interactions_enriched", "gold.daily_engagement", "gold.sessions")]


if __name__ == "__main__":
    raise SystemExit(main())
