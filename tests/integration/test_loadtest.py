"""`flakeguard loadtest` runs a generated repository through the real pipeline and cleans up after it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from flakeguard.config import Settings
from flakeguard.loadtest import run_loadtest
from flakeguard.services import Services
from flakeguard.store.models import Repository, TestExecution

from .helpers import ROOT, process_env

pytestmark = pytest.mark.integration


async def test_every_run_is_ingested_and_analysed_and_nothing_is_left_behind(
    settings: Settings, services: Services
) -> None:
    # More runs than REMOVE_ON_COMPLETE keeps: completion must still be seen for every one.
    few_kept = settings.model_copy(update={"remove_on_complete": 3})
    result = await run_loadtest(few_kept, runs=8, tests_per_run=30, concurrency=3, timeout_s=120)
    assert (result.runs, result.failed_jobs, len(result.latencies_s)) == (8, 0, 8)
    assert result.executions == 8 * 30
    assert result.runs_per_s > 0 and 0 < result.percentile(0.5) <= result.percentile(0.95)
    async with services.sessions() as session:
        assert (await session.execute(select(func.count(Repository.id)))).scalar_one() == 0
        assert (await session.execute(select(func.count(TestExecution.id)))).scalar_one() == 0


def test_the_command_prints_json_figures(tmp_path: Path) -> None:
    env = process_env({"FLAKEGUARD_DATA_DIR": str(tmp_path)})  # embedded SQLite and Redis
    # The original README's flags, as written there (`--jobs=1000 --concurrency=10`), scaled down.
    args = ["loadtest", "--jobs=3", "--concurrency=10", "--tests-per-run", "10", "--json"]
    out = subprocess.run(
        [sys.executable, "-m", "flakeguard", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    figures = json.loads(out.stdout)
    assert figures["runs"] == 3 and figures["executions"] == 30 and figures["failedJobs"] == 0
    assert figures["concurrency"] == 10
    assert set(figures["latencySeconds"]) == {"p50", "p95", "max", "mean"}
