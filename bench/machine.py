"""The machine a benchmark ran on, and how loaded it was: every result records both."""
from __future__ import annotations

import os
import platform


def load_average() -> float:
    return round(os.getloadavg()[0], 1)


def machine() -> dict:
    mem_gb = None
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
    except OSError:
        cpu = platform.processor()
    return {"cpus": os.cpu_count(), "cpu_model": cpu, "memory_gb": mem_gb, "kernel": platform.release(),
            "python": platform.python_version()}
