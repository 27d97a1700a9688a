"""CLI start-up benchmark (not a test): CPU seconds of `flakeguard --help` and of each command's `--help`.

    .venv/bin/python bench/bench_cli_startup.py [--repeat 7] [--budget 0.5]

Each figure is the user + system CPU time of one child process, read from `getrusage(RUSAGE_CHILDREN)`
around it (CPU, not wall time: the machine's other load changes wall time much more); the table shows
the minimum and the median of `--repeat` runs. Side by side, as baselines:

* `python -c pass`: the interpreter alone;
* a two-command Typer app's `--help` and subcommand `--help`: the floor of Typer + rich help, which
  every `flakeguard` command pays;
* `flakeguard --help` with no cached bytecode (`-X pycache_prefix=<empty dir>` and
  PYTHONDONTWRITEBYTECODE=1): what every call cost before `make` compiled bytecode at install time.

A row is marked over budget when its median is above `--budget` seconds (issue 11: 0.5 s).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import machine

ROOT = Path(__file__).resolve().parents[1]
TYPER_FLOOR = """
import typer
app = typer.Typer()
@app.command()
def one(count: int = 1) -> None:
    "One."
@app.command()
def two() -> None:
    "Two."
app()
"""


def cpu_seconds(argv: list[str], env: dict[str, str], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr[-2000:]}")
        times.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return times


def command_paths() -> list[list[str]]:
    """Every command and group of the CLI, as argv paths (the root is [])."""
    import typer

    from flakeguard.cli import app

    paths: list[list[str]] = []

    def walk(command: object, path: list[str]) -> None:
        paths.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--budget", type=float, default=0.5)
    args = parser.parse_args()

    env = {**os.environ, "COLUMNS": "100"}
    python = sys.executable
    rows: list[tuple[str, list[float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        floor = Path(tmp) / "typer_floor.py"
        floor.write_text(TYPER_FLOOR)
        rows.append(("python -c pass", cpu_seconds([python, "-c", "pass"], env, args.repeat)))
        rows.append(("typer floor: --help", cpu_seconds([python, str(floor), "--help"], env, args.repeat)))
        rows.append(
            ("typer floor: one --help", cpu_seconds([python, str(floor), "one", "--help"], env, args.repeat))
        )
        cold_env = {**env, "PYTHONDONTWRITEBYTECODE": "1"}
        cold = [python, "-X", f"pycache_prefix={tmp}/no-bytecode", "-m", "flakeguard", "--help"]
        rows.append(("flakeguard --help, no bytecode cached", cpu_seconds(cold, cold_env, args.repeat)))
        for path in command_paths():
            label = " ".join(["flakeguard", *path, "--help"])
            rows.append((label, cpu_seconds([python, "-m", "flakeguard", *path, "--help"], env, args.repeat)))

    floor_median = statistics.median(rows[1][1])
    print(f"# CLI start-up, CPU seconds per process ({machine()}; {args.repeat} runs each)")
    print(f"{'command':52} {'min':>6} {'median':>7} {'x floor':>8}")
    over = 0
    for label, times in rows:
        median = statistics.median(times)
        flag = ""
        if label.startswith("flakeguard") and "no bytecode" not in label and median > args.budget:
            flag = f"  over {args.budget} s"
            over += 1
        print(f"{label:52} {min(times):6.3f} {median:7.3f} {median / floor_median:8.2f}{flag}")
    print(f"# {over} command(s) over the {args.budget} s budget; load average {os.getloadavg()[0]:.1f}")
    if over:
        sys.exit(1)


if __name__ == "__main__":
    main()
