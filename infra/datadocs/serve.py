"""Serves the Data Docs folder on 127.0.0.1, and the npm packages of
infra/datadocs/package.json at /_assets/ (spark_jobs/quality/offline_assets.py
points the pages there), so the pages load nothing from the internet.

    python3 infra/datadocs/serve.py --port 8765 --directory .local/data_docs \
        --assets-dir .local/datadocs-assets/node_modules

Standard library only: it runs on the system's python3, like http.server.
"""
from __future__ import annotations

import argparse
import functools
import posixpath
import urllib.parse
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

ASSETS_URL_PATH = "/_assets"  # spark_jobs.quality.offline_assets.ASSETS_URL_PATH


class Handler(SimpleHTTPRequestHandler):
    assets_dir = ""

    def translate_path(self, path: str) -> str:
        url_path = posixpath.normpath(urllib.parse.unquote(urllib.parse.urlsplit(path).path))
        if url_path == ASSETS_URL_PATH or url_path.startswith(ASSETS_URL_PATH + "/"):
            # The parent's translation (which drops '..' and absolute parts) under the assets folder.
            self.directory = self.assets_dir
            return super().translate_path(urllib.parse.quote(url_path[len(ASSETS_URL_PATH):]) or "/")
        return super().translate_path(path)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--directory", required=True)
    p.add_argument("--assets-dir", required=True)
    p.add_argument("--bind", default="127.0.0.1")
    a = p.parse_args(argv)
    handler = functools.partial(type("DocsHandler", (Handler,), {"assets_dir": a.assets_dir}), directory=a.directory)
    with ThreadingHTTPServer((a.bind, a.port), handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
