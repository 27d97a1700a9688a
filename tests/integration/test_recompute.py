"""`tests:recompute`: idempotence, each scope, lookback, progress, the CLI (direct and enqueued)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from bullmq import Queue
from sqlalchemy import select, text
from typer.testing import CliRunner

from flakeguard.cli import app
from flakeguard.config import Settings
from flakeguard.jobs.connection import with_socket_timeout
from flakeguard.jobs.errors import PermanentError
from flakeguard.services import Services
from flakeguard.store.models import QuarantineEvent

from .history_helpers import T0, F, History, P, case_id, recompute_repo, results

pytestmark = pytest.mark.integration
HOUR = timedelta(hours=1)


async def suite(services: Services) -> tuple[History, Any]:
    """Two classes, five tests, 12 runs: flaky retries, a broken test, a fixed one, healthy ones."""
    h = await History(
        services,
        classnames={
            "test_login": "app.AuthTest",
            "test_logout": "app.AuthTest",
            "test_query": "db.QueryTest",
            "test_insert": "db.QueryTest",
            "test_render": "ui.ViewTest",
        },
    ).create()
    at = T0
    for i in range(12):
        at = T0 + i * 6 * HOUR
        await h.run(
            {
                "test_login": [F, P] if i in (3, 7, 10, 11) else P,
                "test_logout": P,
                "test_query": F if i >= 8 else P,
                "test_insert": F if i < 3 else P,
                "test_render": P,
            },
            at=at,
        )
    return h, at + HOUR


async def snapshot(services: Services) -> tuple[list[Any], list[Any], int]:
    async with services.sessions() as session:
        fr = (await session.execute(text("SELECT * FROM flakiness_results ORDER BY test_case_id"))).all()
        q = (await session.execute(text("SELECT * FROM quarantine ORDER BY test_case_id"))).all()
        events = len((await session.execute(select(QuarantineEvent.id))).all())
    return [tuple(r) for r in fr], [tuple(r) for r in q], events


async def test_running_it_twice_gives_the_same_result(services: Services) -> None:
    h, now = await suite(services)
    first = await recompute_repo(h, now, update_quarantine=True, batch_size=2)
    after_first = await snapshot(services)
    second = await recompute_repo(h, now, update_quarantine=True, batch_size=2)
    assert await snapshot(services) == after_first
    assert first.summary.as_dict() | {"quarantined": 0} == second.summary.as_dict()
    assert first.summary.quarantined == 1 and second.summary.quarantined == 0
    statuses = {name: row["status"] for name, row in (await results(h)).items()}
    assert statuses == {
        "test_login": "flaky",
        "test_logout": "healthy",
        "test_query": "broken",
        "test_insert": "healthy",
        "test_render": "healthy",
    }
    # the batch size does not change the result
    await recompute_repo(h, now, update_quarantine=True, batch_size=500)
    assert await snapshot(services) == after_first


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ({"type": "all"}, {"test_login", "test_logout", "test_query", "test_insert", "test_render"}),
        ({"type": "test_pattern", "patterns": ["test_log*"]}, {"test_login", "test_logout"}),
        (
            {"type": "test_pattern", "patterns": ["*QueryTest*insert*", "test_render"]},
            {"test_insert", "test_render"},
        ),
        ({"type": "class_pattern", "patterns": ["db.*"]}, {"test_query", "test_insert"}),
        (
            {"type": "class_pattern", "patterns": ["*Auth*", "ui.ViewTest"]},
            {"test_login", "test_logout", "test_render"},
        ),
        ({"type": "test_pattern", "patterns": ["nothing*"]}, set()),
    ],
)
async def test_scopes(services: Services, scope: dict[str, Any], expected: set[str]) -> None:
    h, now = await suite(services)
    result = await recompute_repo(h, now, scope=scope, batch_size=2)
    assert set(await results(h)) == expected
    assert result.selected == len(expected) == result.summary.tests


async def test_specific_tests_by_id_and_by_key(services: Services) -> None:
    h, now = await suite(services)
    refs = [str(await case_id(h, "test_query")), h.key("test_render"), "no-such-test"]
    result = await recompute_repo(h, now, scope={"type": "specific_tests", "testIds": refs})
    assert set(await results(h)) == {"test_query", "test_render"} and result.selected == 2


async def test_a_scope_without_patterns_or_ids_is_refused(services: Services) -> None:
    h, now = await suite(services)
    with pytest.raises(PermanentError):
        await recompute_repo(h, now, scope={"type": "class_pattern"})
    with pytest.raises(PermanentError):
        await recompute_repo(h, now, scope={"type": "specific_tests"})


async def test_lookback_days_bounds_the_history(services: Services) -> None:
    h, now = await suite(services)  # 12 runs over 2.75 days
    await recompute_repo(h, now, lookback_days=30)
    assert (await results(h))["test_logout"]["executions"] == 12
    await recompute_repo(h, now + timedelta(days=1), lookback_days=2)  # window: the last 4 runs (every 6 h)
    row = (await results(h))["test_logout"]
    assert row["executions"] == 4 and row["lookback_days"] == 2


async def test_progress_is_reported_per_batch(services: Services) -> None:
    from flakeguard.jobs.payloads import TestsRecomputeJob
    from flakeguard.pipeline.recompute import recompute

    h, now = await suite(services)
    seen: list[tuple[int, int]] = []

    async def progress(done: int, total: int) -> None:
        seen.append((done, total))

    job = TestsRecomputeJob.model_validate({"repository": {"owner": "acme", "repo": "app"}, "batchSize": 2})
    await recompute(services, job, progress=progress, now=now)
    assert seen == [(0, 5), (2, 5), (4, 5), (5, 5)]
    assert h.full_name == "acme/app"


def _cli_env(settings: Settings) -> dict[str, str]:
    return {
        "DATABASE_URL": str(settings.database_url),
        "REDIS_URL": str(settings.redis_url),
        "REDIS_PREFIX": settings.redis_prefix,
        "LOG_LEVEL": "warn",
        "FLAKEGUARD_ENV": "test",
    }


def test_cli_recompute_direct_and_enqueued(settings: Settings) -> None:
    async def setup() -> None:
        services = Services.create(settings)
        try:
            await suite(services)
        finally:
            await services.close()

    asyncio.run(setup())
    runner = CliRunner()
    env = _cli_env(settings)
    direct = runner.invoke(
        app,
        [
            "recompute",
            "--repo",
            "acme/app",
            "--scope",
            "class_pattern",
            "--pattern",
            "db.*",
            "--lookback-days",
            "3650",
            "--json",
        ],
        env=env,
    )
    assert direct.exit_code == 2  # lookback above 365 is refused
    direct = runner.invoke(
        app,
        [
            "recompute",
            "--repo",
            "acme/app",
            "--scope",
            "class_pattern",
            "--pattern",
            "db.*",
            "--lookback-days",
            "365",
            "--batch-size",
            "1",
            "--json",
        ],
        env=env,
    )
    assert direct.exit_code == 0, direct.output
    summary = json.loads(direct.stdout)
    assert summary["tests"] == 2 and summary["scope"] == "class_pattern"
    assert runner.invoke(app, ["recompute", "--repo", "acme/nope"], env=env).exit_code == 1

    queued = runner.invoke(
        app,
        [
            "enqueue",
            "recompute",
            "--repo",
            "acme/app",
            "--test",
            "12",
            "--test",
            "some key",
            "--lookback-days",
            "14",
            "--batch-size",
            "100",
            "--update-quarantine",
        ],
        env=env,
    )
    assert queued.exit_code == 0, queued.output
    info = json.loads(queued.stdout)
    assert info["queue"] == "tests:recompute" and info["id"]

    async def job_data() -> dict[str, Any]:
        queue = Queue(
            "tests:recompute",
            {"connection": with_socket_timeout(str(settings.redis_url)), "prefix": settings.redis_prefix},
        )
        try:
            job = await queue.getJob(info["id"])
            return dict(job.data)
        finally:
            await queue.close()

    data = asyncio.run(job_data())
    assert data["recomputeScope"] == {
        "type": "specific_tests",
        "patterns": [],
        "lookbackDays": 14,
        "testIds": ["12", "some key"],
    }
    assert data["options"] == {"batchSize": 100, "updateQuarantineStatus": True}
    assert data["repository"]["owner"] == "acme" and data["repository"]["repo"] == "app"
