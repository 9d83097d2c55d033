"""Run a DAG through Airflow's REST API and wait.

    python infra/airflow/trigger.py --start-date 2023-07-01 --end-date 2023-07-03
        one goodnote_pipeline run over the range (params start_date/end_date)
    python infra/airflow/trigger.py --start-date 2023-07-01 --end-date 2023-07-03 --backfill
        an Airflow backfill: one run per date (the UI's "Backfill" does the same)
    python infra/airflow/trigger.py --dag lastfm_sessions --conf '{"top_sessions": 20}'
        one run of a DAG without dates

Prints every task's state per run; exits 0 only when every run succeeded.
Logs in as `operator` (FAB role User: trigger, clear and backfill, nothing more;
infra/airflow/users.py). Settings: AIRFLOW_PORT / AIRFLOW_OPERATOR_PASSWORD from
the environment, else from .local/platform.env (written by infra/lib.sh).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import date, datetime, timezone
from pathlib import Path

import tenacity

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from iceberg_catalog import config  # noqa: E402

FINISHED = {"success", "failed"}


class ServerError(RuntimeError):
    """The API server answered 5xx: it or its database is down for now."""


class AirflowApi:
    def __init__(self, base_url: str, user: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        # The FAB auth manager's token endpoint: JSON username/password -> JWT.
        token = self._call("POST", "/auth/token", {"username": user, "password": password}, auth=False)
        self.token = token["access_token"]

    def _call(self, method: str, path: str, body: dict | None = None, auth: bool = True) -> dict:
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base_url + path, method=method, headers=headers,
                                     data=json.dumps(body).encode() if body is not None else None)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as err:
            if err.code >= 500:
                raise ServerError(f"{method} {path} -> HTTP {err.code}: {err.read().decode()[:500]}") from err
            raise SystemExit(f"{method} {path} -> HTTP {err.code}: {err.read().decode()[:500]}") from err

    # A run outlives a restart of the API server or a blip of its database: reads are
    # retried for a while before the wait gives up.
    @tenacity.retry(retry=tenacity.retry_if_exception_type((ServerError, urllib.error.URLError)),
                    stop=tenacity.stop_after_delay(300), wait=tenacity.wait_fixed(5), reraise=True)
    def get(self, path: str) -> dict:
        return self._call("GET", path)

    def post(self, path: str, body: dict) -> dict:
        return self._call("POST", path, body)

    def patch(self, path: str, body: dict) -> dict:
        return self._call("PATCH", path, body)


def midnight(d: date) -> str:
    return datetime(d.year, d.month, d.day, tzinfo=timezone.utc).isoformat()


def run_path(dag_id: str, run_id: str) -> str:
    return f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}"


def trigger(api: AirflowApi, dag_id: str, conf: dict, note: str) -> list[str]:
    """One run of the DAG with ``conf`` as its params.

    No logical date: Airflow allows one run per logical date, and a range (or a
    second run of the same date) is not a scheduled interval.
    """
    run = api.post(f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf, "note": note})
    return [run["dag_run_id"]]


def runs_between(api: AirflowApi, dag_id: str, start: date, end: date) -> list[dict]:
    """The newest run of each logical date in [start, end]."""
    runs = api.get(f"/api/v2/dags/{dag_id}/dagRuns?limit=1000&order_by=run_after"
                   f"&logical_date_gte={urllib.parse.quote(midnight(start))}"
                   f"&logical_date_lte={urllib.parse.quote(midnight(end))}")["dag_runs"]
    return list({r["logical_date"]: r for r in runs}.values())


def backfill_range(api: AirflowApi, dag_id: str, start: date, end: date, conf: dict, timeout: float) -> list[str]:
    """An Airflow backfill (one run per date, oldest first); waits until it completes."""
    backfill = api.post("/api/v2/backfills", {
        "dag_id": dag_id, "from_date": midnight(start), "to_date": midnight(end),
        "dag_run_conf": conf, "reprocess_behavior": "completed", "max_active_runs": 1,
    })
    print(f"backfill {backfill['id']}: {start}..{end}", flush=True)
    deadline = time.monotonic() + timeout
    while not api.get(f"/api/v2/backfills/{backfill['id']}")["completed_at"]:
        if time.monotonic() > deadline:
            break
        runs = runs_between(api, dag_id, start, end)
        print("  " + ", ".join(f"{r['logical_date'][:10]}: {r['state']}" for r in runs), flush=True)
        time.sleep(10)
    return [r["dag_run_id"] for r in runs_between(api, dag_id, start, end)]


def wait_for(api: AirflowApi, dag_id: str, run_ids: list[str], timeout: float, poll: float = 10) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        states = {r: api.get(run_path(dag_id, r))["state"] for r in run_ids}
        if all(s in FINISHED for s in states.values()) or time.monotonic() > deadline:
            return states
        print("  " + ", ".join(f"{r}: {s}" for r, s in states.items()), flush=True)
        time.sleep(poll)


def print_tasks(api: AirflowApi, dag_id: str, run_id: str, state: str) -> None:
    run = api.get(run_path(dag_id, run_id))
    elapsed = ""
    if run.get("queued_at") and run.get("end_date"):
        seconds = (datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["queued_at"])).total_seconds()
        elapsed = f" in {seconds // 60:.0f} min {seconds % 60:.0f} s from trigger to end"
    tis = api.get(run_path(dag_id, run_id) + "/taskInstances?limit=100")["task_instances"]
    print(f"\nrun {run_id}: {state}{elapsed}")
    for ti in sorted(tis, key=lambda t: (t["start_date"] or "9", t["task_id"])):
        took = f"{ti['duration']:.0f} s" if ti.get("duration") else ""
        print(f"  {ti['task_id']:<18} {str(ti['state']):<14} try {ti['try_number']}  {took}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dag", default="goodnote_pipeline", help="the DAG to run (default: goodnote_pipeline)")
    parser.add_argument("--start-date", type=date.fromisoformat,
                        help="first event date to process (a DAG whose stages take dates)")
    parser.add_argument("--end-date", type=date.fromisoformat)
    parser.add_argument("--backfill", action="store_true", help="one run per date (Airflow backfill)")
    parser.add_argument("--conf", default="{}", help="JSON of DAG params, e.g. '{\"salt_buckets\": 8}'")
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args(argv)
    if args.backfill and args.start_date is None:
        parser.error("--backfill needs --start-date")
    end = args.end_date or args.start_date

    settings = config.platform_env()
    port = settings.get("AIRFLOW_PORT", "8080")
    if "AIRFLOW_OPERATOR_PASSWORD" not in settings:
        raise SystemExit("AIRFLOW_OPERATOR_PASSWORD is not set: `make airflow-start` adds it to .local/platform.env")
    api = AirflowApi(f"http://127.0.0.1:{port}", "operator", settings["AIRFLOW_OPERATOR_PASSWORD"])
    api.patch(f"/api/v2/dags/{args.dag}", {"is_paused": False})
    conf = json.loads(args.conf)
    if args.backfill:
        run_ids = backfill_range(api, args.dag, args.start_date, end, conf, args.timeout)
    elif args.start_date:
        run_ids = trigger(api, args.dag, {**conf, "start_date": args.start_date.isoformat(),
                                          "end_date": end.isoformat()}, f"event dates {args.start_date}..{end}")
    else:
        run_ids = trigger(api, args.dag, conf, "triggered by trigger.py")
    print(f"waiting for {', '.join(run_ids)} (UI: http://127.0.0.1:{port}/dags/{args.dag})", flush=True)
    states = wait_for(api, args.dag, run_ids, args.timeout)
    for run_id, state in states.items():
        print_tasks(api, args.dag, run_id, state)
    return 0 if all(s == "success" for s in states.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
