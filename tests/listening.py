"""The listening sockets of this checkout's processes, read from the kernel's
socket table: every service the platform starts must listen on loopback only."""
from __future__ import annotations

import ipaddress
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def platform_listeners() -> list[tuple[str, int, str]]:
    """(address, port, command line) of every listening TCP socket whose
    process runs from this checkout: its command line or working directory
    names it (PostgreSQL's data directory, the venvs, Trino's and YARN's state)."""
    found = []
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status != psutil.CONN_LISTEN or conn.pid is None:
            continue
        try:
            process = psutil.Process(conn.pid)
            command = " ".join(process.cmdline())
            mine = str(ROOT) in command or process.cwd().startswith(str(ROOT))
        except psutil.Error:  # ended meanwhile
            continue
        if mine:
            found.append((conn.laddr.ip, conn.laddr.port, command[:300]))
    return found


def assert_only_loopback(expected_ports: set[int] = frozenset()) -> None:
    """Fails on any listener of the platform outside 127.0.0.0/8 and ::1, and
    when a port the caller knows is running is not in the table at all (the
    scan would otherwise pass by seeing nothing)."""
    listeners = platform_listeners()
    exposed = [entry for entry in listeners if not is_loopback(entry[0])]
    assert not exposed, "listening beyond loopback:\n" + "\n".join(f"{a}:{p}  {c}" for a, p, c in exposed)
    missing = set(expected_ports) - {port for _, port, _ in listeners}
    assert not missing, f"ports {sorted(missing)} not found among the platform's listeners {listeners}"
