"""Data Docs that load without the internet.

Great Expectations' Data Docs pages load Bootstrap, jQuery, popper.js,
bootstrap-table, bootstrap-datepicker, Font Awesome and Vega from public CDNs
(the templates in great_expectations/render/view/templates), and GX's logo
from its S3 bucket. The project installs the same files, at the same versions,
from the npm packages of ``infra/datadocs/package.json`` (``make bootstrap``,
into ``.local/datadocs-assets``); ``infra/datadocs.sh`` serves them at
``/_assets/`` of the Data Docs URL. After GX has built its pages,
``rewrite_site`` points every page at those copies:

    from spark_jobs.quality import offline_assets
    offline_assets.rewrite_site(data_docs_dir)   # after the last validation of a run

The links are relative to each page, so the site works at any URL path.
popper.js and bootstrap.js keep their ``integrity`` hashes: the npm files are
byte for byte the CDN's, and the browser checks it. Links a person clicks
(GX's documentation, its newsletter) are left as they are.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

# The URL path, under the Data Docs root, where infra/datadocs.sh serves the packages.
ASSETS_URL_PATH = "_assets"

# Every CDN URL the pages of great-expectations 1.x load -> its file in the npm
# packages (node_modules layout). vega@5, vega-lite@5 and vega-embed@6 resolve to
# the package's "jsdelivr" file; package.json pins the newest 5.x / 5.x / 6.x.
CDN_FILES: dict[str, str] = {
    "https://cdn.jsdelivr.net/npm/vega@5": "vega/build/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite/build/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed/build/vega-embed.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css":
        "@fortawesome/fontawesome-free/css/all.min.css",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/dist/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper.js/dist/umd/popper.min.js",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap/dist/js/bootstrap.min.js",
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap/dist/css/bootstrap.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "bootstrap-table/dist/bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css":
        "bootstrap-table/dist/bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
    # GX mixes two bootstrap-table releases; 1.19.0 is installed under an npm alias.
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        "bootstrap-table-1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        "bootstrap-table-1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "bootstrap-datepicker/dist/js/bootstrap-datepicker.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "bootstrap-datepicker/dist/css/bootstrap-datepicker.min.css",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        "@forevolve/bootstrap-dark/dist/css/bootstrap-prefers-dark.css",
}
# GX's logos from its bucket (the navbar image, with a ?d=<timestamp> query, and the
# dark theme's background) -> the copy GX writes into every site, static/images/.
GX_IMAGE = re.compile(r"https://great-expectations-web-assets\.s3\.us-east-2\.amazonaws\.com/"
                      r"(logo-long\.png|full_logo_dark\.png)(\?[^\"'()\s<>]*)?")
SITE_IMAGE = "logo-long.png"
# Longest first: no URL of the table is a prefix of a longer one that must win.
_CDN = re.compile("|".join(re.escape(u) for u in sorted(CDN_FILES, key=len, reverse=True)) + r"(?![\w@./-])")
# What a page fetches by itself: a script, a stylesheet or an image, or a CSS url().
_FETCHED = re.compile(r"""<(?:script|img)\b[^>]*\bsrc\s*=\s*["'](https?://[^"']+)["']"""
                      r"""|<link\b[^>]*\bhref\s*=\s*["'](https?://[^"']+)["']"""
                      r"""|url\(\s*["']?(https?://[^"')\s]+)""", re.IGNORECASE)


def rewrite_cdn_links(html: str, assets_url_prefix: str, site_url_prefix: str | None = None) -> str:
    """``html`` with every CDN URL of ``CDN_FILES`` replaced by
    ``{assets_url_prefix}/{file}``, and GX's S3 logos by
    ``{site_url_prefix}/static/images/logo-long.png`` (when ``site_url_prefix``
    is given). Pure and idempotent: a rewritten page has nothing left to rewrite."""
    prefix = assets_url_prefix.rstrip("/")
    html = _CDN.sub(lambda m: f"{prefix}/{CDN_FILES[m.group(0)]}", html)
    if site_url_prefix is not None:
        html = GX_IMAGE.sub(f"{site_url_prefix.rstrip('/')}/static/images/{SITE_IMAGE}", html)
    return html


def external_fetches(html: str) -> list[str]:
    """The URLs outside the site that ``html`` would make a browser fetch on load
    (scripts, stylesheets, images, CSS url()); links people click are not fetched."""
    return [next(g for g in m.groups() if g) for m in _FETCHED.finditer(html)]


def page_prefixes(page: Path, data_docs_dir: Path) -> tuple[str, str]:
    """(assets prefix, site root) as URLs relative to ``page``'s folder. The site
    root is the nearest folder above the page, up to the Data Docs root, that
    holds GX's ``static`` folder: each month's site has its own."""
    data_docs_dir = Path(data_docs_dir)
    folders = [page.parent, *page.parent.parents]
    up_to_root = folders[:folders.index(data_docs_dir) + 1] if data_docs_dir in folders else folders[:1]
    site = next((d for d in up_to_root if (d / "static").is_dir()), data_docs_dir)
    root = Path(os.path.relpath(data_docs_dir, page.parent)).as_posix()
    return f"{root}/{ASSETS_URL_PATH}", Path(os.path.relpath(site, page.parent)).as_posix()


def rewrite_site(data_docs_dir: Path, pages: list[Path] | None = None) -> list[Path]:
    """Rewrites the HTML pages under ``data_docs_dir`` (or only ``pages``) in
    place; returns the pages that changed. GX rebuilds ``index.html`` on every
    validation, so call this after the last validation of a run."""
    data_docs_dir = Path(data_docs_dir)
    changed = []
    for page in pages if pages is not None else sorted(data_docs_dir.rglob("*.html")):
        page = Path(page)
        text = page.read_text(encoding="utf-8")
        assets, site = page_prefixes(page, data_docs_dir)
        new = rewrite_cdn_links(text, assets, site)
        if new != text:
            tmp = page.with_name(page.name + ".tmp")
            tmp.write_text(new, encoding="utf-8")
            tmp.replace(page)
            changed.append(page)
    return changed
