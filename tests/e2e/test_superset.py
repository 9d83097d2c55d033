"""Superset over Trino, and Data Docs without the internet.

Superset is the project's own (infra/superset.sh), started the way a clean
checkout starts it (empty metadata database, no state folder) as an isolated
test instance whose one database is the test Trino (tests/e2e/trino_service.py)
as the read-only user ``bi``. The gold and ops tables are the ones the
session's pipeline run (``pipeline_run``) published in the test catalog.

A real browser (Debian's Chromium through Playwright) logs in, opens every
dashboard, waits for every chart and saves a screenshot of each under the
test's tmp folder; a chart in an error state fails the test.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from trino.exceptions import TrinoUserError

from bench.dashboards import browser, log_in, open_dashboard, screenshot
from iceberg_catalog.config import settings
from tests.e2e.superset_service import start_superset, stop_superset
from tests.e2e.trino_service import ROOT, free_port, start_trino, stop_trino
from tests.listening import assert_only_loopback

ASSETS = ROOT / "infra" / "superset" / "assets"


def repo_assets(kind: str) -> list[dict]:
    return [yaml.safe_load(p.read_text()) for p in sorted((ASSETS / kind).rglob("*.yaml"))]


@pytest.fixture(scope="module")
def trino_server(platform, pipeline_run):
    service = start_trino()
    yield service
    stop_trino(service)


@pytest.fixture(scope="module")
def superset(trino_server):
    service = start_superset(trino_server)
    yield service
    stop_superset(service)


@pytest.fixture(scope="module")
def api(superset):
    return superset.client()


@pytest.fixture(scope="module")
def dashboards(api):
    return {d["dashboard_title"]: d for d in api.list("dashboard", ["id", "dashboard_title", "slug"])}


@pytest.fixture(scope="module")
def charts(api):
    return {c["slice_name"]: c for c in api.list("chart", ["id", "slice_name", "viz_type", "uuid"])}


def test_superset_serves_the_dashboards_and_charts_of_the_repository(api, dashboards, charts):
    assert set(dashboards) == {"Executive overview", "Engagement", "App performance", "Sessions", "Data quality"}
    assert set(dashboards) == {d["dashboard_title"] for d in repo_assets("dashboards")}
    assert set(charts) == {c["slice_name"] for c in repo_assets("charts")}
    placed = set()
    for d in repo_assets("dashboards"):
        in_yaml = {item["meta"]["sliceName"] for item in d["position"].values()
                   if isinstance(item, dict) and item.get("type") == "CHART"}
        served = {c["slice_name"] for c in api.get(f"/api/v1/dashboard/{dashboards[d['dashboard_title']]['id']}/charts")["result"]}
        assert served == in_yaml, d["dashboard_title"]
        placed |= served
    assert placed == set(charts), "every chart is on a dashboard"


def test_the_one_database_is_trino_over_https_as_bi_trusting_the_generated_ca(api, trino_server):
    databases = api.list("database", ["id", "database_name", "backend"])
    assert [d["backend"] for d in databases] == ["trino"]
    db = api.get(f"/api/v1/database/{databases[0]['id']}/connection")["result"]
    assert db["sqlalchemy_uri"] == f"trino://bi:XXXXXXXXXX@localhost:{trino_server.https_port}/iceberg"
    connect_args = json.loads(db["extra"])["engine_params"]["connect_args"]
    assert connect_args == {"http_scheme": "https", "verify": str(trino_server.ca_cert)}
    # The repository's bundle holds placeholders and the password mask, never a secret.
    bundle = "".join(p.read_text() for p in ASSETS.rglob("*.yaml"))
    for secret in ("TRINO_BI_PASSWORD", "SUPERSET_SECRET_KEY", "PG_PASSWORD"):
        assert settings()[secret] not in bundle


def test_every_chart_query_runs_through_superset_on_trino_and_returns_rows(api, charts):
    problems = {}
    for name, chart in sorted(charts.items()):
        response = api.chart_data(chart["id"])
        if response.status_code != 200:
            problems[name] = f"HTTP {response.status_code}: {response.text[:300]}"
            continue
        results = response.json()["result"]
        if not all(r.get("rowcount", len(r.get("data", []))) > 0 for r in results):
            problems[name] = f"no rows: {[r.get('query', '')[:300] for r in results]}"
        elif not all("iceberg." in r.get("query", "") or "FROM gold." in r.get("query", "")
                     or "FROM ops." in r.get("query", "") for r in results):
            problems[name] = f"not a query on the Iceberg tables: {results[0].get('query', '')[:300]}"
    assert not problems, json.dumps(problems, indent=1)


def test_the_retention_heatmap_shows_each_cohorts_share_of_active_users(api, charts, spark):
    """Superset's figures are the table's, unrounded: a metric in Trino's decimal
    arithmetic (``SUM(x) * 1.0 / ...``) would round every share to one decimal."""
    [result] = api.chart_data(charts["Cohort retention (weekly cohorts x weeks after joining)"]["id"]).json()["result"]
    shown = {(r["cohort"], int(r["week"])): r["retention"] for r in result["data"]}
    rows = spark.table("iceberg.gold.cohort_retention").collect()
    expected = {(str(r.cohort_week), r.week_offset): r.active_users / r.cohort_size for r in rows}
    assert shown.keys() == expected.keys()
    assert {k: round(v, 12) for k, v in shown.items()} == {k: round(v, 12) for k, v in expected.items()}
    assert len({round(v, 3) for v in expected.values()}) > 2, "the test data needs shares that differ"


def bi_query(trino_server, sql: str):
    conn = trino_server.connect("bi", password=settings()["TRINO_BI_PASSWORD"])
    try:
        cur = conn.cursor()
        cur.execute(sql)
        return cur.fetchall()
    finally:
        conn.close()


def test_bi_reads_gold_and_ops(trino_server):
    assert bi_query(trino_server, "SELECT count(*) FROM iceberg.gold.daily_engagement")[0][0] > 0
    assert bi_query(trino_server, "SELECT count(*) FROM iceberg.ops.job_runs")[0][0] > 0
    schemas = {r[0] for r in bi_query(trino_server, "SHOW SCHEMAS FROM iceberg")}
    assert schemas == {"gold", "ops"}


@pytest.mark.parametrize("statement", [
    "SELECT count(*) FROM iceberg.bronze.interactions",
    "SELECT count(*) FROM iceberg.bronze.rejected_rows",
    "SELECT count(*) FROM iceberg.silver.interactions_enriched",
    "SELECT count(*) FROM iceberg.silver.user_dim",
    "SELECT count(*) FROM iceberg_maintenance.gold.daily_engagement",
    "DELETE FROM iceberg.gold.daily_engagement",
])
def test_bi_cannot_read_bronze_silver_or_change_anything(trino_server, statement):
    with pytest.raises(TrinoUserError) as excinfo:
        bi_query(trino_server, statement)
    assert excinfo.value.error_name == "PERMISSION_DENIED", excinfo.value


def test_every_dashboard_renders_every_chart_in_a_browser(superset, dashboards, tmp_path, record_property):
    seconds = {}
    outside = []  # Superset runs without the internet: nothing it serves may need it
    client = superset.client()
    with browser() as b:
        page = b.new_context(viewport={"width": 1600, "height": 1000}).new_page()
        page.route(lambda url: urlsplit(url).hostname not in ("localhost", "127.0.0.1"),
                   lambda route: (outside.append(route.request.url), route.abort()))
        log_in(page, superset.url, superset.admin_password)
        for title, d in sorted(dashboards.items()):
            seconds[title], states = open_dashboard(page, superset.url, d["slug"])
            shot = tmp_path / f"dashboard-{d['slug']}.png"
            screenshot(page, shot)
            not_rendered = [s for s in states if s["state"] != "rendered"]
            assert not not_rendered, f"{title}: {not_rendered} (screenshot {shot})"
            assert len(states) == len(client.get(f"/api/v1/dashboard/{d['id']}/charts")["result"]), title
    assert outside == [], outside
    record_property("dashboard_render_seconds", seconds)
    print(f"dashboards rendered in {seconds} s; screenshots in {tmp_path}")


# ---- Data Docs without the internet ---------------------------------------------------------------

def test_every_cdn_file_of_the_gx_templates_is_installed_by_the_project():
    """A GX upgrade that loads another file from a CDN fails here, not in a browser without internet."""
    import great_expectations

    from spark_jobs.quality import offline_assets

    templates = Path(great_expectations.__file__).parent / "render" / "view" / "templates"
    fetched = {url for t in templates.glob("*.j2") for url in offline_assets.external_fetches(t.read_text())}
    assert fetched and fetched <= set(offline_assets.CDN_FILES), sorted(fetched - set(offline_assets.CDN_FILES))
    for t in templates.glob("*.j2"):
        assert offline_assets.external_fetches(offline_assets.rewrite_cdn_links(t.read_text(), "../_assets")) == []
    subprocess.run(["bash", str(ROOT / "infra" / "datadocs.sh"), "install"], check=True)
    node_modules = ROOT / ".local" / "datadocs-assets" / "node_modules"
    missing = [f for f in offline_assets.CDN_FILES.values() if not (node_modules / f).is_file()]
    assert not missing, missing


@pytest.fixture(scope="module")
def data_docs_site(spark, tmp_path_factory):
    """One validation of a tiny DataFrame with the project's GX code (one expectation
    passes, one fails), its site rewritten to the project's copies of the CDN files
    (again, if the Validator already did)."""
    from spark_jobs.quality import offline_assets
    from spark_jobs.quality.suites import parse_suite
    from spark_jobs.quality.validation import Validator

    root = tmp_path_factory.mktemp("datadocs")
    suite = parse_suite({"name": "gold.docs_probe", "table": "gold.docs_probe", "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "k"}, "meta": {"severity": "error"}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "v", "min_value": 0, "max_value": 5},
         "meta": {"severity": "warning"}},
    ]})
    df = spark.createDataFrame([("a", 1), ("b", 2), ("c", 9)], "k string, v int")
    validator = Validator(root / "data_docs", root / "results")
    validation = validator.validate(suite, df, {}, run_name="superset-e2e", batch_label="gold.docs_probe@superset_e2e")
    if hasattr(validator, "build_data_docs"):  # the pages are built once per gate run, after its validations
        validator.build_data_docs()
    assert [o.success for o in validation.outcomes] == [True, False]
    offline_assets.rewrite_site(root / "data_docs")  # what the gate does after building the pages
    return root / "data_docs", validation.data_docs_page


@pytest.fixture(scope="module")
def data_docs_server(data_docs_site):
    """infra/datadocs.sh serving the test's site on its own port, beside any demo server."""
    site, _ = data_docs_site
    port = free_port()
    env = {**os.environ, "DATA_DOCS_DIR": str(site), "DATA_DOCS_PORT": str(port),
           "DATA_DOCS_PID_FILE": str(site.parent / "datadocs.pid"), "DATA_DOCS_LOG_FILE": str(site.parent / "log")}
    script = ["bash", str(ROOT / "infra" / "datadocs.sh")]
    subprocess.run([*script, "start"], env=env, check=True, capture_output=True, text=True)
    yield f"http://localhost:{port}"
    subprocess.run([*script, "stop"], env=env, check=False, capture_output=True)


def test_rewritten_data_docs_fetch_nothing_outside_the_site(data_docs_site):
    from spark_jobs.quality import offline_assets

    site, _ = data_docs_site
    for page in site.rglob("*.html"):
        assert offline_assets.external_fetches(page.read_text()) == [], page
    assert offline_assets.rewrite_site(site) == [], "a second rewrite changes nothing"


def test_data_docs_page_loads_every_asset_with_the_network_blocked(data_docs_site, data_docs_server, tmp_path):
    site, page_path = data_docs_site
    blocked, failed, loaded = [], [], []
    with browser() as b:
        page = b.new_context(viewport={"width": 1400, "height": 1000}).new_page()

        def route(r):
            if urlsplit(r.request.url).hostname in ("localhost", "127.0.0.1"):
                r.continue_()
            else:
                blocked.append(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.on("requestfailed", lambda req: failed.append(f"{req.url} {req.failure}"))
        page.on("requestfinished", lambda req: loaded.append(req.url))
        response = page.goto(f"{data_docs_server}/{page_path}", wait_until="networkidle")
        assert response.status == 200
        page.screenshot(path=str(tmp_path / "data-docs.png"), full_page=True)
        scripts = page.evaluate("""() => ({
            jquery: typeof window.jQuery, vega: typeof window.vega, vegaLite: typeof window.vegaLite,
            vegaEmbed: typeof window.vegaEmbed, popper: typeof window.Popper,
            bootstrap: typeof (window.jQuery && jQuery.fn.modal),
            bootstrapTable: typeof (window.jQuery && jQuery.fn.bootstrapTable),
            datepicker: typeof (window.jQuery && jQuery.fn.datepicker)})""")
        sheets = page.evaluate("""() => [...document.querySelectorAll('link[rel=stylesheet]')].map(l =>
            ({href: l.href, rules: l.sheet ? l.sheet.cssRules.length : -1}))""")
        results_rows = page.locator("table tr").count()
        text = page.inner_text("body")
    assert blocked == [] and failed == [], f"blocked: {blocked}\nfailed: {failed}"
    assert all(v in ("function", "object") for v in scripts.values()), scripts
    assert sheets and all(s["rules"] > 0 for s in sheets), sheets
    assert any("/_assets/@fortawesome/" in u for u in loaded)
    assert results_rows >= 2 and "values must never be null" in text and "Failed" in text, text[:2000]


def test_superset_and_the_data_docs_server_listen_on_loopback_only(superset, data_docs_server):
    assert_only_loopback({superset.port, urlsplit(data_docs_server).port})
