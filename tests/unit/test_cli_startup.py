"""The CLI starts fast because `--help` and argument parsing import none of the heavy modules: those
are imported by the command that needs them, when it runs (bench/bench_cli_startup.py has the CPU
figures)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "sqlalchemy",
    "alembic",
    "pydantic_settings",
    "structlog",
    "bullmq",
    "redis",
    "fastapi",
    "uvicorn",
    "httpx",
    "lxml",
    "asyncio",
    "flakeguard.config",
    "flakeguard.services",
)

EVERY_HELP = """
import json, sys
import typer
from typer.testing import CliRunner
from flakeguard.cli import app

paths = []
def walk(command, path):
    paths.append(path)
    for name, sub in getattr(command, "commands", {}).items():
        walk(sub, [*path, name])
walk(typer.main.get_command(app), [])
codes = {" ".join(p): CliRunner().invoke(app, [*p, "--help"]).exit_code for p in paths}
heavy = sorted({m.split(".")[0] if not m.startswith("flakeguard") else m for m in sys.modules})
print(json.dumps({"codes": codes, "modules": heavy}))
"""


def test_help_of_every_command_imports_no_heavy_module() -> None:
    out = subprocess.run(
        [sys.executable, "-c", EVERY_HELP], capture_output=True, text=True, check=True, timeout=120
    )
    result = json.loads(out.stdout)
    assert len(result["codes"]) >= 25 and set(result["codes"].values()) == {0}, result["codes"]
    assert sorted(set(HEAVY) & set(result["modules"])) == []
