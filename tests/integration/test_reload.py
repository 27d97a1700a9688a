"""`flakeguard worker --reload` (docker-compose.dev.yml): a source change restarts the worker process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from flakeguard.config import Settings

from .helpers import ROOT, wait_for
from .test_end_to_end import worker_env

pytestmark = pytest.mark.integration


def started_pids(log: Path) -> list[int]:
    pids = []
    for raw in log.read_text().splitlines():
        if raw.startswith("{") and (line := json.loads(raw)).get("msg") == "worker_started":
            pids.append(int(line["pid"]))
    return pids


def test_a_source_change_restarts_the_worker(settings: Settings, tmp_path: Path) -> None:
    watched = tmp_path / "src"
    watched.mkdir()
    (watched / "module.py").write_text("VALUE = 1\n")
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flakeguard", "worker", "--reload", "--reload-dir", str(watched)],
            env=worker_env(settings, tmp_path),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        [first] = wait_for(lambda: started_pids(log), 60, "the worker to start")
        (watched / "module.py").write_text("VALUE = 2\n")
        pids = wait_for(lambda: (p := started_pids(log)) and len(p) == 2 and p, 60, "the restart")
        assert pids[0] == first and pids[1] != first and proc.pid not in pids
        assert '"msg": "reloading"' in log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    text = log.read_text()
    assert text.count('"msg": "flakeguard_stopped"') == 2  # each worker stopped in order
    assert code == 0, text[-2000:]
