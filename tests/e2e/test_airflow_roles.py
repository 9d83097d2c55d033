"""Airflow's users and roles, against the real api-server of a running Airflow.

Every request goes through the REST API with a JWT from the FAB auth manager's
token endpoint (POST /auth/token), as infra/airflow/trigger.py and any client do:

- viewer (role Viewer) reads DAGs and runs, and is refused (403) whatever would
  change something: trigger, clear, backfill, pause, set a variable; nor may it
  read connections;
- operator (role User) triggers, clears and backfills, and is refused users,
  roles, connections and variables;
- admin (role Admin) reads connections and the users;
- a wrong password, no token or a tampered token gets nothing;
- the metadata DB holds scrypt hashes, no file of AIRFLOW_HOME and no Airflow
  process holds a password, and a password changed in the settings replaces the
  old one at the next `infra/airflow.sh start`.

The Airflow is the one test_dag_run.py also uses (``running_airflow``,
conftest.py). Its DAG stays paused here, so the run this module triggers never
starts; the run, connection and variables it makes are removed afterwards.
"""
from __future__ import annotations

import base64
import json
import sys
import time
from pathlib import Path
from urllib.parse import quote

import psutil
import pytest
import requests
from werkzeug.security import check_password_hash

sys.path.insert(0, str(Path(__file__).resolve().parent))
from airflow_service import DAG_ID  # noqa: E402

from iceberg_catalog import config  # noqa: E402
from spark_jobs.pipeline import STAGES  # noqa: E402
from tests.databases import query  # noqa: E402
from tests.listening import assert_only_loopback  # noqa: E402

ROLES = {"admin": "Admin", "operator": "User", "viewer": "Viewer"}
PASSWORD_KEYS = {"admin": "AIRFLOW_ADMIN_PASSWORD", "operator": "AIRFLOW_OPERATOR_PASSWORD",
                 "viewer": "AIRFLOW_VIEWER_PASSWORD"}
TASKS = {stage.name for stage in STAGES}
PROBE_CONNECTION = "roles_e2e_probe"
PROBE_VARIABLE = "roles_e2e_probe"
DAG = f"/api/v2/dags/{DAG_ID}"


def passwords() -> dict[str, str]:
    settings = config.settings()
    return {user: settings[key] for user, key in PASSWORD_KEYS.items()}


def token_response(base_url: str, username: str, password: str) -> requests.Response:
    return requests.post(f"{base_url}/auth/token", json={"username": username, "password": password}, timeout=60)


class Api:
    """The REST API as one user: every call returns the response, whatever its status."""

    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def call(self, method: str, path: str, body: dict | None = None) -> requests.Response:
        return requests.request(method, self.base_url + path, json=body, headers=self.headers, timeout=60)

    def get(self, path: str) -> requests.Response:
        return self.call("GET", path)

    def post(self, path: str, body: dict) -> requests.Response:
        return self.call("POST", path, body)

    def ok(self, method: str, path: str, body: dict | None = None) -> dict:
        resp = self.call(method, path, body)
        assert resp.status_code in (200, 201, 204), f"{method} {path} -> {resp.status_code}: {resp.text[:500]}"
        return resp.json() if resp.content else {}


@pytest.fixture(scope="module")
def airflow(running_airflow):
    return running_airflow


@pytest.fixture(scope="module")
def tokens(airflow) -> dict[str, str]:
    out = {}
    for user, password in passwords().items():
        resp = token_response(airflow.base_url, user, password)
        assert resp.status_code == 201, f"token of {user}: {resp.status_code} {resp.text[:300]}"
        out[user] = resp.json()["access_token"]
    return out


@pytest.fixture(scope="module")
def api(airflow, tokens) -> dict[str, Api]:
    clients = {user: Api(airflow.base_url, token) for user, token in tokens.items()}
    # start returns when the services are healthy, which may be before the DAG file is parsed.
    deadline = time.monotonic() + 300
    while clients["admin"].get(DAG).status_code == 404:
        assert time.monotonic() < deadline, f"{DAG_ID} not parsed after 300 s"
        time.sleep(3)
    return clients


@pytest.fixture(scope="module")
def paused(api):
    """The DAG paused for this module, as it was found afterwards."""
    was_paused = api["admin"].ok("GET", DAG)["is_paused"]
    api["admin"].ok("PATCH", DAG, {"is_paused": True})
    yield
    api["admin"].ok("PATCH", DAG, {"is_paused": was_paused})


@pytest.fixture(scope="module")
def triggered_run(api, paused) -> dict:
    """A run the operator triggered; deleted afterwards, so the DAG's runs are as before."""
    run = api["operator"].ok("POST", f"{DAG}/dagRuns", {
        "logical_date": None, "conf": {"start_date": "2023-07-01", "end_date": "2023-07-01"},
        "note": "test_airflow_roles"})
    yield run
    run_path = f"{DAG}/dagRuns/{quote(run['dag_run_id'], safe='')}"
    api["operator"].ok("DELETE", run_path)
    assert api["admin"].get(run_path).status_code == 404


@pytest.fixture(scope="module")
def probe_connection(api) -> dict:
    body = {"connection_id": PROBE_CONNECTION, "conn_type": "http", "host": "127.0.0.1", "port": 9,
            "login": "probe", "description": "made by test_airflow_roles"}
    api["admin"].ok("POST", "/api/v2/connections", body)
    yield body
    api["admin"].ok("DELETE", f"/api/v2/connections/{PROBE_CONNECTION}")


def run_ids(client: Api) -> list[str]:
    return [r["dag_run_id"] for r in client.ok("GET", f"{DAG}/dagRuns?limit=100")["dag_runs"]]


def backfill_body(reprocess: str = "completed") -> dict:
    return {"dag_id": DAG_ID, "from_date": "2023-07-01T00:00:00Z", "to_date": "2023-07-02T00:00:00Z",
            "reprocess_behavior": reprocess, "max_active_runs": 1}


# --- logging in ---------------------------------------------------------------------------------------

def test_each_user_gets_a_token_that_the_api_accepts(airflow, tokens):
    for user, token in tokens.items():
        assert token.count(".") == 2, user  # a JWT: header.payload.signature
        resp = Api(airflow.base_url, token).get("/api/v2/dags?limit=100")
        assert resp.status_code == 200, f"{user}: {resp.status_code}"
        assert DAG_ID in [d["dag_id"] for d in resp.json()["dags"]], user


@pytest.mark.parametrize("username, password", [
    ("admin", "not-the-password"), ("viewer", "not-the-password"), ("nobody", "not-the-password")])
def test_a_wrong_password_or_an_unknown_user_gets_no_token(airflow, username, password):
    resp = token_response(airflow.base_url, username, password)
    assert resp.status_code == 401, resp.text[:300]
    assert "access_token" not in resp.text


def test_another_users_password_gets_no_token(airflow):
    resp = token_response(airflow.base_url, "admin", passwords()["viewer"])
    assert resp.status_code == 401


def test_without_a_token_the_api_answers_401(airflow, api):
    anonymous = Api(airflow.base_url, None)
    for path in (DAG, "/api/v2/connections", "/auth/fab/v1/users"):
        assert anonymous.get(path).status_code == 401, path
    assert anonymous.post(f"{DAG}/dagRuns", {"logical_date": None}).status_code == 401


def test_a_tampered_token_is_refused(airflow, tokens, api):
    """The viewer's token with the admin's subject written in: the signature no longer matches."""
    def claims(token: str) -> dict:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))

    header, _, signature = tokens["viewer"].split(".")
    forged_claims = {**claims(tokens["viewer"]), "sub": claims(tokens["admin"])["sub"]}
    assert forged_claims["sub"] != claims(tokens["viewer"])["sub"]
    payload = base64.urlsafe_b64encode(json.dumps(forged_claims).encode()).rstrip(b"=").decode()
    resp = Api(airflow.base_url, f"{header}.{payload}.{signature}").get("/api/v2/connections")
    assert resp.status_code == 403
    assert resp.json()["detail"] == "Invalid JWT token"


# --- viewer ---------------------------------------------------------------------------------------------

def test_viewer_reads_dags_and_runs(api, triggered_run):
    viewer = api["viewer"]
    assert viewer.ok("GET", DAG)["dag_id"] == DAG_ID
    assert triggered_run["dag_run_id"] in run_ids(viewer)
    run = viewer.ok("GET", f"{DAG}/dagRuns/{quote(triggered_run['dag_run_id'], safe='')}")
    assert run["conf"]["start_date"] == "2023-07-01"
    tis = viewer.ok("GET", f"{DAG}/dagRuns/{quote(triggered_run['dag_run_id'], safe='')}/taskInstances")
    assert {ti["task_id"] for ti in tis["task_instances"]} == TASKS


def test_viewer_may_change_nothing(api, triggered_run):
    viewer, admin = api["viewer"], api["admin"]
    runs_before = sorted(run_ids(admin))
    # The shared Airflow may already hold another module's backfill.
    backfills_before = admin.ok("GET", f"/api/v2/backfills?dag_id={DAG_ID}")["total_entries"]
    attempts = {
        "trigger a run": viewer.post(f"{DAG}/dagRuns", {"logical_date": None}),
        "clear task instances": viewer.post(f"{DAG}/clearTaskInstances", {
            "dry_run": False, "only_failed": False, "dag_run_id": triggered_run["dag_run_id"]}),
        "create a backfill": viewer.post("/api/v2/backfills", backfill_body()),
        "dry-run a backfill": viewer.post("/api/v2/backfills/dry_run", backfill_body()),
        "unpause the DAG": viewer.call("PATCH", DAG, {"is_paused": False}),
        "delete a run": viewer.call("DELETE", f"{DAG}/dagRuns/{quote(triggered_run['dag_run_id'], safe='')}"),
        "set a variable": viewer.post("/api/v2/variables", {"key": PROBE_VARIABLE, "value": "x"}),
        "read connections": viewer.get("/api/v2/connections"),
        "create a connection": viewer.post("/api/v2/connections", {"connection_id": "x", "conn_type": "http"}),
        "list users": viewer.get("/auth/fab/v1/users"),
    }
    assert {what: resp.status_code for what, resp in attempts.items()} == dict.fromkeys(attempts, 403)
    # ... and nothing happened.
    assert sorted(run_ids(admin)) == runs_before
    assert admin.ok("GET", DAG)["is_paused"] is True
    assert admin.ok("GET", f"/api/v2/backfills?dag_id={DAG_ID}")["total_entries"] == backfills_before
    assert admin.get(f"/api/v2/variables/{PROBE_VARIABLE}").status_code == 404
    assert admin.get("/api/v2/connections/x").status_code == 404


# --- operator --------------------------------------------------------------------------------------------

def test_operator_triggers_a_run(api, triggered_run):
    run = api["operator"].ok("GET", f"{DAG}/dagRuns/{quote(triggered_run['dag_run_id'], safe='')}")
    assert run["dag_id"] == DAG_ID
    assert run["conf"] == {"start_date": "2023-07-01", "end_date": "2023-07-01"}
    assert run["state"] == "queued"  # the DAG is paused: it waits
    assert triggered_run["dag_run_id"] in run_ids(api["admin"])


def test_operator_clears_the_runs_task_instances(api, triggered_run):
    resp = api["operator"].ok("POST", f"{DAG}/clearTaskInstances", {
        "dry_run": False, "only_failed": False, "dag_run_id": triggered_run["dag_run_id"]})
    assert {ti["task_id"] for ti in resp["task_instances"]} == TASKS
    assert {ti["dag_run_id"] for ti in resp["task_instances"]} == {triggered_run["dag_run_id"]}


def test_operator_may_backfill(api, paused):
    """Dry run: the same authorization as creating one, without runs the scheduler would start."""
    resp = api["operator"].ok("POST", "/api/v2/backfills/dry_run", backfill_body())
    assert [b["logical_date"][:10] for b in resp["backfills"]] == ["2023-07-01", "2023-07-02"]


def test_operator_may_not_manage_users_roles_connections_or_variables(api, probe_connection):
    operator, admin = api["operator"], api["admin"]
    attempts = {
        "create a user": operator.post("/auth/fab/v1/users", {
            "username": "intruder", "email": "intruder@localhost", "first_name": "in", "last_name": "truder",
            "roles": [{"name": "Admin"}], "password": "intruder-password"}),
        "make itself admin": operator.call("PATCH", "/auth/fab/v1/users/operator", {"roles": [{"name": "Admin"}]}),
        "create a role": operator.post("/auth/fab/v1/roles", {"name": "Intruder", "actions": []}),
        "list users": operator.get("/auth/fab/v1/users"),
        "create a connection": operator.post("/api/v2/connections", {
            "connection_id": "intruder", "conn_type": "http", "host": "127.0.0.1"}),
        "read connections": operator.get("/api/v2/connections"),
        "read a connection": operator.get(f"/api/v2/connections/{PROBE_CONNECTION}"),
        "set a variable": operator.post("/api/v2/variables", {"key": PROBE_VARIABLE, "value": "x"}),
    }
    assert {what: resp.status_code for what, resp in attempts.items()} == dict.fromkeys(attempts, 403)
    users = admin.ok("GET", "/auth/fab/v1/users?limit=100")["users"]
    assert {u["username"]: [r["name"] for r in u["roles"]] for u in users} == {
        user: [role] for user, role in ROLES.items()}
    assert "Intruder" not in [r["name"] for r in admin.ok("GET", "/auth/fab/v1/roles?limit=100")["roles"]]
    assert admin.get("/api/v2/connections/intruder").status_code == 404
    assert admin.get(f"/api/v2/variables/{PROBE_VARIABLE}").status_code == 404


# --- admin -----------------------------------------------------------------------------------------------

def test_admin_reads_connections(api, probe_connection):
    admin = api["admin"]
    conn = admin.ok("GET", f"/api/v2/connections/{PROBE_CONNECTION}")
    assert (conn["conn_type"], conn["host"], conn["port"], conn["login"]) == ("http", "127.0.0.1", 9, "probe")
    listed = admin.ok("GET", "/api/v2/connections?limit=100")["connections"]
    assert PROBE_CONNECTION in [c["connection_id"] for c in listed]


# --- where the passwords are -------------------------------------------------------------------------

def stored_hashes(airflow) -> dict[str, str]:
    return dict(query(airflow.airflow_db, "SELECT username, password FROM ab_user", role="PG_AIRFLOW"))


def test_the_metadata_db_holds_password_hashes_not_passwords(airflow, tokens):
    hashes = stored_hashes(airflow)
    assert set(hashes) == set(ROLES)
    for user, password in passwords().items():
        stored = hashes[user]
        assert stored != password and password not in stored, user
        assert stored.startswith("scrypt:"), f"{user}: {stored[:20]}"
        assert check_password_hash(stored, password), user  # the hash of exactly this password
    assert len(set(hashes.values())) == len(hashes)  # salted


def test_no_file_of_airflow_home_and_no_airflow_process_holds_a_password(airflow, tokens):
    secrets = {user: password.encode() for user, password in passwords().items()}
    assert not (airflow.home / "simple_auth_manager_passwords.json").exists()
    holding = [(str(path), user) for path in airflow.home.rglob("*") if path.is_file()
               for user, secret in secrets.items() if secret in path.read_bytes()]
    assert holding == []
    pids = [int((airflow.home / "run" / f"{svc}.pid").read_text()) for svc in ("api-server", "scheduler",
                                                                              "dag-processor")]
    processes = [p for pid in pids for p in (psutil.Process(pid), *psutil.Process(pid).children(recursive=True))]
    assert len(processes) >= 3
    for process in processes:
        environ = process.environ()
        assert not [k for k in PASSWORD_KEYS.values() if k in environ], process.cmdline()
        assert not [v for v in environ.values() for secret in secrets.values() if secret.decode() in v]


def test_a_password_changed_in_the_settings_replaces_the_old_one_at_start(airflow, tokens):
    old = passwords()["viewer"]
    new = "changed-" + old[::-1]
    before = stored_hashes(airflow)
    try:
        airflow.script("start", extra_env={"AIRFLOW_VIEWER_PASSWORD": new}, timeout=400)
        assert token_response(airflow.base_url, "viewer", new).status_code == 201
        assert token_response(airflow.base_url, "viewer", old).status_code == 401
        assert check_password_hash(stored_hashes(airflow)["viewer"], new)
    finally:
        airflow.script("start", timeout=400)  # back to the password of the settings
    assert token_response(airflow.base_url, "viewer", old).status_code == 201
    after = stored_hashes(airflow)
    assert after["viewer"] != before["viewer"] and check_password_hash(after["viewer"], old)  # newly salted
    # An unchanged password is left as it is, not hashed again.
    assert {u: after[u] for u in ("admin", "operator")} == {u: before[u] for u in ("admin", "operator")}


# --- where Airflow listens ------------------------------------------------------------------------------

def test_every_airflow_service_listens_on_loopback_only(airflow, tokens):
    """The api-server, the scheduler's health server, and no log server on every interface."""
    resp = requests.get(f"http://127.0.0.1:{airflow.health_port}/health", timeout=30)
    assert resp.status_code == 200
    assert_only_loopback({airflow.port, airflow.health_port})
