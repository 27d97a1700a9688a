"""The command line against a real database: migrate, repos, queues."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import ROOT, process_env

pytestmark = pytest.mark.integration


def flakeguard(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flakeguard", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_migrate_and_track_repositories_on_the_embedded_database(tmp_path: Path) -> None:
    env = process_env({"FLAKEGUARD_DATA_DIR": str(tmp_path)})
    migrated = flakeguard(env, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert (tmp_path / "flakeguard.db").exists()
    assert flakeguard(env, "repos", "add", "acme/project", "--installation-id", "67890").returncode == 0
    listed = json.loads(flakeguard(env, "repos", "list", "--json").stdout)
    assert listed == [
        {"repository": "acme/project", "installationId": 67890, "defaultBranch": None, "active": True}
    ]
    assert flakeguard(env, "repos", "remove", "acme/project").returncode == 0
    assert json.loads(flakeguard(env, "repos", "list", "--json").stdout)[0]["active"] is False
    unknown = flakeguard(env, "repos", "remove", "acme/nothing")
    assert unknown.returncode == 1 and "not tracked" in unknown.stderr
    bad = flakeguard(env, "repos", "add", "not-a-repo")
    assert bad.returncode == 2 and "OWNER/NAME" in bad.stderr


def test_enqueue_and_inspect_queues(redis_prefix: str, tmp_path: Path) -> None:
    env = process_env(
        {
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "REDIS_PREFIX": redis_prefix,
            "FLAKEGUARD_DATA_DIR": str(tmp_path),
        }
    )
    enqueued = flakeguard(
        env, "enqueue", "ingest", "--repo", "acme/project", "--run-id", "42", "--priority", "high"
    )
    assert enqueued.returncode == 0, enqueued.stderr
    assert json.loads(enqueued.stdout) == {"queue": "runs:ingest", "id": "ingest-acme-project-42"}
    counts = json.loads(flakeguard(env, "queues", "list", "--json").stdout)
    assert counts["runs:ingest"]["prioritized"] == 1
    assert flakeguard(env, "queues", "pause", "runs:ingest").returncode == 0
    assert flakeguard(env, "queues", "resume", "runs:ingest").returncode == 0
    retried = flakeguard(env, "queues", "retry-failed", "runs:ingest")
    assert retried.returncode == 0 and "retried 0" in retried.stdout
    unknown = flakeguard(env, "queues", "pause", "runs:nothing")
    assert unknown.returncode == 2 and "unknown queue" in unknown.stderr
