"""The admin user and the dashboards-as-code of the project's Superset.

Run by infra/superset.sh with Superset's own venv (.venv-superset) and
SUPERSET_CONFIG_PATH set; settings come from the environment (platform.env,
exported by infra/lib.sh; in docker-compose, the container's, through
infra/superset/compose.sh):

  provision.py admin    create the `admin` user, or reset its password to
                        SUPERSET_ADMIN_PASSWORD
  provision.py import   import infra/superset/assets (databases, datasets,
                        charts, dashboards; Superset's YAML export format),
                        overwriting what exists with the same uuid
  provision.py export   write every database, dataset, chart and dashboard
                        the instance holds back to infra/superset/assets

The bundle in the repository holds no secret and nothing machine-specific:
the database file says ``${TRINO_PORT}`` and ``${TRINO_CA_CERT}`` where this
machine's values go, and its password (TRINO_BI_PASSWORD) is passed to the
import separately, never written into a file. Export puts the placeholders
back and drops what changes on every export (timestamps, ids in file names),
so a re-export after a UI edit shows only the edit in `git diff`.

The bundle's connection names Trino's host as ``localhost``. TRINO_HOST, when
set (docker-compose: ``trino``), replaces it at import; export puts
``localhost`` back.
"""
from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path
from string import Template

import yaml

ASSETS_DIR = Path(os.environ.get("SUPERSET_ASSETS_DIR") or Path(__file__).resolve().parent / "assets")
ADMIN = "admin"
# What the import fills in from this machine's settings; export puts them back.
PLACEHOLDERS = ("TRINO_PORT", "TRINO_CA_CERT")
PASSWORD_VARIABLE = "TRINO_BI_PASSWORD"
BUNDLE_TRINO_HOST = "localhost"
METADATA = "metadata.yaml"


def placeholder_values() -> dict[str, str]:
    missing = [k for k in (*PLACEHOLDERS, PASSWORD_VARIABLE) if not os.environ.get(k)]
    if missing:
        raise SystemExit(f"provision: {missing} not set (run through infra/superset.sh)")
    return {k: os.environ[k] for k in PLACEHOLDERS}


def trino_host() -> str:
    return os.environ.get("TRINO_HOST") or BUNDLE_TRINO_HOST


def with_trino_host(text: str, old: str, new: str) -> str:
    """A database file whose Trino URI names host ``old``, naming ``new`` instead."""
    return re.sub(rf"(sqlalchemy_uri: trino://[^@\s]*@){re.escape(old)}:", lambda m: f"{m.group(1)}{new}:", text)


def read_bundle(root: Path, values: dict[str, str]) -> dict[str, str]:
    """{path relative to the bundle root: YAML text}, placeholders filled in."""
    contents = {}
    for path in sorted(root.rglob("*.yaml")):
        name = path.relative_to(root).as_posix()
        text = path.read_text()
        if name.startswith("databases/"):
            text = with_trino_host(Template(text).substitute(values), BUNDLE_TRINO_HOST, trino_host())
        contents[name] = text
    if METADATA not in contents:
        raise SystemExit(f"provision: {root / METADATA} missing")
    return contents


def database_passwords(contents: dict[str, str]) -> dict[str, str]:
    """Every database of the bundle is the Trino connection as bi."""
    return {name: os.environ[PASSWORD_VARIABLE] for name in contents if name.startswith("databases/")}


def app_context():
    from superset.app import create_app

    app = create_app()
    return app.app_context()


def ensure_admin() -> None:
    from superset import db, security_manager

    password = os.environ.get("SUPERSET_ADMIN_PASSWORD")
    if not password:
        raise SystemExit("provision: SUPERSET_ADMIN_PASSWORD not set")
    user = security_manager.find_user(username=ADMIN)
    if user is None:
        role = security_manager.find_role("Admin")
        if security_manager.add_user(ADMIN, "Platform", "Admin", "admin@localhost", role, password=password) is None:
            raise SystemExit("provision: could not create the admin user")
        print("provision: admin user created")
    else:
        security_manager.reset_password(user.id, password)
    db.session.commit()


def import_assets(root: Path = ASSETS_DIR) -> None:
    from superset import security_manager
    from superset.commands.importers.v1.assets import ImportAssetsCommand
    from superset.utils.core import override_user

    contents = read_bundle(root, placeholder_values())
    with override_user(security_manager.find_user(username=ADMIN)):
        ImportAssetsCommand(contents, passwords=database_passwords(contents)).run()
    kinds = {}
    for name in contents:
        kinds[name.split("/")[0]] = kinds.get(name.split("/")[0], 0) + 1
    print(f"provision: imported {root}: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()) if k != METADATA))


def normalized_name(name: str) -> str:
    """charts/DAU_12.yaml -> charts/DAU.yaml (datasets, dashboards alike): the id suffix
    differs between instances; the uuid inside the file is what imports match on."""
    if name.startswith(("charts/", "dashboards/", "datasets/")):
        return re.sub(r"_\d+\.yaml$", ".yaml", name)
    return name


def with_placeholders(text: str, values: dict[str, str]) -> str:
    """A database file as exported, with this machine's CA path and Trino port
    (only where the URI has it: a uuid may hold the same digits) as placeholders."""
    text = text.replace(values["TRINO_CA_CERT"], "${TRINO_CA_CERT}")
    return re.sub(rf"(sqlalchemy_uri: trino://[^@\s]*@[^:/\s]+:){re.escape(values['TRINO_PORT'])}/",
                  r"\g<1>${TRINO_PORT}/", text)


def export_assets(root: Path = ASSETS_DIR) -> None:
    from superset import security_manager
    from superset.commands.export.assets import ExportAssetsCommand
    from superset.utils.core import override_user

    values = placeholder_values()
    files: dict[str, str] = {}
    with override_user(security_manager.find_user(username=ADMIN)):
        for name, content in ExportAssetsCommand().run():
            text = content() if callable(content) else content
            name = normalized_name(name)
            if name == METADATA:
                meta = yaml.safe_load(text)
                meta.pop("timestamp", None)
                text = yaml.safe_dump(meta, sort_keys=False)
            elif name.startswith("databases/"):
                text = with_trino_host(with_placeholders(text, values), trino_host(), BUNDLE_TRINO_HOST)
            if name in files:
                raise SystemExit(f"provision: two exported files named {name}; rename one in the UI")
            files[name] = text
    # Replace the bundle as a whole, so a chart deleted in the UI disappears here too.
    staging = root.with_name(root.name + ".export")
    shutil.rmtree(staging, ignore_errors=True)
    for name, text in files.items():
        path = staging / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    shutil.rmtree(root, ignore_errors=True)
    staging.rename(root)
    print(f"provision: exported {len(files)} files into {root}; review with `git diff {root}`")


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ("admin", "import", "export"):
        print(__doc__, file=sys.stderr)
        return 2
    with app_context():
        {"admin": ensure_admin, "import": import_assets, "export": export_assets}[argv[0]]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
