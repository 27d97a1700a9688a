"""Shared by the benchmarks (run as scripts: `python bench/bench_x.py`, so this module is importable)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def machine(*extras: str) -> str:
    """Cores, CPU model and Python version, then whatever versions the benchmark adds."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return ", ".join((f"{os.cpu_count()} cores ({cpu})", f"Python {platform.python_version()}", *extras))
