"""Writes Trino's etc/ directory for this checkout: server, catalogs, passwords.

Run by ``infra/trino.sh start`` before every start, so a changed password in
``.local/platform.env`` or a changed catalog setting in
``iceberg_catalog/config.py`` takes effect on the next start. Everything it
writes lives under ``.local/trino`` (ignored), never in the repo.

Two catalogs read the same Iceberg JDBC catalog:
- ``iceberg``: what analysts and BI tools query. Its connector security is
  ``read-only``, so no statement through it can change a table, whatever the
  system rules say.
- ``iceberg_maintenance``: the same tables with write-capable connector
  security, visible only to ``etl`` (see rules.json). Trino's file-based access
  control does not check ``ALTER TABLE ... EXECUTE``, so table procedures are
  confined by giving only ``etl`` a catalog where the connector allows them.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT_ROOT = HERE.parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from iceberg_catalog.config import settings, trino_catalog_properties  # noqa: E402

ANALYST_CATALOG = "iceberg"
MAINTENANCE_CATALOG = "iceberg_maintenance"
# bi: Superset's connection (infra/superset.sh); same reads as analyst (rules.json).
USERS_PASSWORD_VARIABLES = {"analyst": "TRINO_ANALYST_PASSWORD", "etl": "TRINO_ETL_PASSWORD",
                            "bi": "TRINO_BI_PASSWORD"}
BCRYPT_COST = 10  # Trino rejects bcrypt costs below 8


def server_properties(*, https_port: int, http_port: int, keystore: Path, shared_secret: str,
                      etc_dir: Path, plugin_dir: Path, heap_gb: int) -> dict[str, str]:
    """One coordinator that is also the worker, HTTPS + passwords for clients.

    The HTTP port stays open because the node talks to itself over it
    (discovery, task updates), authenticated by the shared secret; with
    ``allow-insecure-over-http=false`` Trino refuses any client credential on it.
    """
    return {
        "coordinator": "true",
        "node-scheduler.include-coordinator": "true",
        "http-server.http.port": str(http_port),
        "http-server.https.enabled": "true",
        "http-server.https.port": str(https_port),
        "http-server.https.keystore.path": str(keystore),
        "http-server.authentication.type": "PASSWORD",
        "http-server.authentication.allow-insecure-over-http": "false",
        "internal-communication.shared-secret": shared_secret,
        "discovery.uri": f"http://127.0.0.1:{http_port}",
        "plugin.dir": str(plugin_dir),
        "catalog.config-dir": str(etc_dir / "catalog"),
        "catalog.management": "static",
        # Memory for a 24 GB machine that also runs Spark: heap 4 GB by default,
        # a query may use half of it; the rest is headroom for the engine.
        "query.max-memory": query_memory(heap_gb),
        "query.max-memory-per-node": query_memory(heap_gb),
        "query.max-total-memory": query_memory(heap_gb),
        "query.max-execution-time": "10m",
        "query.max-run-time": "15m",
        "task.concurrency": "2",
        "web-ui.authentication.type": "form",
    }


def query_memory(heap_gb: int) -> str:
    """Half the heap: Trino keeps 30% of it as headroom and needs room to plan."""
    return f"{max(heap_gb * 1024 // 2, 256)}MB"


def parse_heap_gb(heap: str) -> int:
    if not heap.upper().endswith("G") or not heap[:-1].isdigit() or int(heap[:-1]) < 1:
        raise SystemExit(f"render_etc: heap {heap!r} must be whole gigabytes like 4G")
    return int(heap[:-1])


def jvm_config(template: str, heap_gb: int) -> str:
    return "".join(f"-Xmx{heap_gb}G\n" if line.startswith("-Xmx") else f"{line}\n"
                   for line in template.splitlines())


def node_properties(data_dir: Path, bind_host: str) -> dict[str, str]:
    return {
        "node.environment": "platform",
        "node.id": "trino-local-1",
        "node.data-dir": str(data_dir),
        "node.internal-address": "127.0.0.1",
        # Both HTTP ports listen here; airlift's default is every interface.
        "node.bind-ip": bind_host,
    }


def catalog_files(base: dict[str, str]) -> dict[str, dict[str, str]]:
    """The two views of the one Iceberg catalog (see module docstring)."""
    return {
        ANALYST_CATALOG: {**base, "iceberg.security": "read-only"},
        MAINTENANCE_CATALOG: {
            **base,
            "iceberg.security": "allow-all",
            # The maintenance job passes its own retention (default 7 days of
            # snapshots, 3 days for orphans); Trino's floor stays out of its way.
            "iceberg.expire-snapshots.min-retention": "0s",
            "iceberg.remove-orphan-files.min-retention": "0s",
        },
    }


def password_file_lines(passwords: dict[str, str], hash_password) -> list[str]:
    """``user:bcrypt`` lines; Trino wants the ``$2y$`` spelling of bcrypt."""
    lines = []
    for user, password in sorted(passwords.items()):
        digest = hash_password(password)
        lines.append(f"{user}:{digest.replace('$2b$', '$2y$', 1)}")
    return lines


def bcrypt_hash(password: str) -> str:
    import bcrypt

    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=BCRYPT_COST)).decode()


def properties_text(props: dict[str, str]) -> str:
    return "".join(f"{k}={v}\n" for k, v in props.items())


def write_private(path: Path, text: str) -> None:
    """Files holding secrets are readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    tmp.replace(path)


def render(etc_dir: Path, data_dir: Path, plugin_dir: Path, keystore: Path, shared_secret: str,
           https_port: int, http_port: int, heap_gb: int = 4) -> None:
    s = settings()
    missing = [v for v in USERS_PASSWORD_VARIABLES.values() if not s.get(v)]
    if missing:
        raise SystemExit(f"render_etc: {missing} missing from platform.env; delete it and run make bootstrap")
    write_private(etc_dir / "config.properties", properties_text(server_properties(
        https_port=https_port, http_port=http_port, keystore=keystore, shared_secret=shared_secret,
        etc_dir=etc_dir, plugin_dir=plugin_dir, heap_gb=heap_gb)))
    write_private(etc_dir / "node.properties", properties_text(node_properties(data_dir, s.get("TRINO_BIND_HOST", "127.0.0.1"))))
    write_private(etc_dir / "jvm.config", jvm_config((HERE / "jvm.config").read_text(), heap_gb))
    for name in ("log.properties", "rules.json"):
        write_private(etc_dir / name, (HERE / name).read_text())
    write_private(etc_dir / "access-control.properties", properties_text({
        "access-control.name": "file",
        "security.config-file": str(etc_dir / "rules.json"),
        "security.refresh-period": "30s",
    }))
    write_private(etc_dir / "password-authenticator.properties", properties_text({
        "password-authenticator.name": "file",
        "file.password-file": str(etc_dir / "password.db"),
    }))
    passwords = {user: s[var] for user, var in USERS_PASSWORD_VARIABLES.items()}
    write_private(etc_dir / "password.db", "\n".join(password_file_lines(passwords, bcrypt_hash)) + "\n")
    catalog_dir = etc_dir / "catalog"
    for stale in catalog_dir.glob("*.properties"):
        stale.unlink()
    for name, props in catalog_files(trino_catalog_properties(s)).items():
        write_private(catalog_dir / f"{name}.properties", properties_text(props))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--etc-dir", type=Path, required=True)
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--plugin-dir", type=Path, required=True)
    p.add_argument("--keystore", type=Path, required=True)
    p.add_argument("--shared-secret-file", type=Path, required=True)
    p.add_argument("--https-port", type=int, required=True)
    p.add_argument("--http-port", type=int, required=True)
    p.add_argument("--heap", default="4G", help="JVM heap in whole gigabytes, e.g. 4G")
    a = p.parse_args(argv)
    render(a.etc_dir, a.data_dir, a.plugin_dir, a.keystore, a.shared_secret_file.read_text().strip(),
           a.https_port, a.http_port, parse_heap_gb(a.heap))


if __name__ == "__main__":
    main()
