"""Named points where a test stops a stage run to inject a real fault there
(``kill -9`` of the driver, a stopped catalog database, a concurrent writer).

``PIPELINE_FAILPOINT=<name>[@<seconds>]`` in the environment of a run makes it
print ``FAILPOINT <name> reached`` when it gets to that point, then wait
``seconds`` (default: an hour, i.e. until it is killed), or until the process
gets SIGUSR1, and go on. Unset, a failpoint costs one environment lookup.
``PIPELINE_FAILPOINT_HOLD_MB=<n>`` makes the paused process hold n MiB of
memory meanwhile: a task over its container's limit, for YARN to kill. The
points:

    written              every table of the stage written to its branch, before the audit
    audited              the audit passed, before the first table is published
    published:<table>    <table> published, before the next one
    in_write:<table>     inside the Spark tasks that write <table>, before its commit
    stream_committed:<table>  the speed layer committed a micro-batch to <table> (spark_jobs/stream.py)
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time

VARIABLE = "PIPELINE_FAILPOINT"
HOLD_VARIABLE = "PIPELINE_FAILPOINT_HOLD_MB"
_fired: set[str] = set()


def active(name: str) -> bool:
    spec = os.environ.get(VARIABLE, "")
    return spec == name or spec.startswith(name + "@")


def settings() -> dict[str, str]:
    """This process's failpoint variables, for code that runs where the
    environment lacks them (a Spark task on a YARN container)."""
    return {key: os.environ[key] for key in (VARIABLE, HOLD_VARIABLE) if key in os.environ}


def reached(name: str, env: dict[str, str] | None = None) -> None:
    """Pauses here when the failpoint ``name`` is armed (in ``env``, default
    this process's environment), the first time only (a run that starts over
    passes the same points again)."""
    env = os.environ if env is None else env
    point, _, seconds = env.get(VARIABLE, "").partition("@")
    if point != name or name in _fired:
        return
    _fired.add(name)
    wait = float(seconds) if seconds else 3600
    held = b"\1" * (int(env.get(HOLD_VARIABLE, "0")) << 20)  # written, so resident
    message = f"FAILPOINT {name} reached (pid {os.getpid()}, holding {len(held) >> 20} MiB)"
    if threading.current_thread() is not threading.main_thread():  # a Spark task's thread: no signal
        print(message, file=sys.stderr, flush=True)
        time.sleep(wait)
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    try:
        print(message, file=sys.stderr, flush=True)
        signal.sigtimedwait({signal.SIGUSR1}, wait)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
