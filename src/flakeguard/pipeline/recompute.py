"""`tests:recompute`: re-score a repository's tests (all, by glob, or by id/key) in batches.

Each batch is its own transaction, so a long recompute keeps the progress a crash interrupts, and
running it twice gives the same result: scores depend only on the stored executions, `now` and the
previous verdict (hysteresis), and a second pass over its own output is a fixed point (a verdict held
by hysteresis is held again; quarantine changes are recorded only when the state changes).

Scopes:

* `all`: every test case of the repository;
* `test_pattern`: fnmatch globs (case-sensitive) matched against the test name and against its full key;
* `class_pattern`: fnmatch globs matched against the classname;
* `specific_tests`: `patterns` are exact test names or full keys (the original's interface);
  `testIds`, FlakeGuard's extra, are test case ids or full keys (a key is tried first: keys can be all
  digits). Entries that name no test are reported (`unknownTests`), not an error.

Options as the original: `recomputeScope.lookbackDays` (else `analysisConfig.lookbackDays`, else 30),
`options.batchSize` (tests per transaction), `options.updateQuarantineStatus`.

The run attempts of the lookback window and an exact memo of the analysis are shared by all batches
(see `flakeguard.pipeline.scoring`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flakeguard.analysis import AnalysisConfig
from flakeguard.config import Settings
from flakeguard.jobs.errors import PermanentError
from flakeguard.jobs.payloads import AnalysisConfigPayload, RecomputeScope, TestsRecomputeJob
from flakeguard.logging import get_logger
from flakeguard.pipeline.quarantine import resolve_tests
from flakeguard.pipeline.scoring import (
    AnalysisMemo,
    RunCache,
    ScoringSummary,
    TestHistory,
    analysis_config,
    load_histories,
    score_tests,
)
from flakeguard.store.models import Repository, TestCase
from flakeguard.store.repository import chunked, get_repository, key_hash

log = get_logger("flakeguard.recompute")
ProgressFn = Callable[[int, int], Awaitable[None]]
PAGE = 10_000


class Database(Protocol):
    """What a recompute needs: `flakeguard.services.Services` has it, and so does the CLI's database-only
    stand-in (a direct `flakeguard recompute` needs no Redis)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]: ...


def _compile(patterns: Sequence[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


@dataclass(frozen=True, slots=True)
class Selection:
    ids: list[int]
    unknown: list[str]  # entries of `patterns` / `testIds` that name no test of the repository


async def tests_by_key_or_name(
    session: AsyncSession, repository_id: int, refs: Sequence[str]
) -> dict[str, set[int]]:
    """For each reference that names tests, their ids: an exact test key, or an exact test name (a
    name may be shared by tests of several classes: all of them)."""
    found: dict[str, set[int]] = {}
    hashes = {key_hash(ref): ref for ref in refs}
    for part in chunked(sorted(hashes), 900):
        rows = await session.execute(
            select(TestCase.key_hash, TestCase.id).where(
                TestCase.repository_id == repository_id, TestCase.key_hash.in_(part)
            )
        )
        for digest, test_id in rows.all():
            found.setdefault(hashes[digest], set()).add(int(test_id))
    for part in chunked(sorted(set(refs)), 900):
        rows = await session.execute(
            select(TestCase.name, TestCase.id).where(
                TestCase.repository_id == repository_id, TestCase.name.in_(part)
            )
        )
        for name, test_id in rows.all():
            found.setdefault(str(name), set()).add(int(test_id))
    return found


async def specific_tests(session: AsyncSession, repository_id: int, scope: RecomputeScope) -> Selection:
    """`patterns` as exact test names or keys (the original), `testIds` as ids or keys (FlakeGuard's)."""
    by_id = await resolve_tests(session, repository_id, scope.test_ids)
    named = await tests_by_key_or_name(session, repository_id, scope.patterns)
    ids = set(by_id.ids).union(*named.values())
    unknown = [p for p in dict.fromkeys(scope.patterns) if p not in named] + by_id.unknown
    return Selection(sorted(ids), unknown)


async def select_scope(session: AsyncSession, repository_id: int, scope: RecomputeScope) -> Selection:
    if scope.type == "specific_tests":
        return await specific_tests(session, repository_id, scope)
    return Selection(await select_tests(session, repository_id, scope), [])


async def select_tests(session: AsyncSession, repository_id: int, scope: RecomputeScope) -> list[int]:
    """Ids of the repository's test cases in `scope`, ascending."""
    if scope.type == "specific_tests":
        return (await specific_tests(session, repository_id, scope)).ids
    if scope.type == "all":
        result = await session.execute(
            select(TestCase.id).where(TestCase.repository_id == repository_id).order_by(TestCase.id)
        )
        return [int(i) for i in result.scalars()]
    pattern = _compile(scope.patterns)
    ids: list[int] = []
    last_id = 0
    columns = (
        (TestCase.id, TestCase.classname)
        if scope.type == "class_pattern"
        else (TestCase.id, TestCase.name, TestCase.key)
    )
    while True:
        rows = (
            await session.execute(
                select(*columns)
                .where(TestCase.repository_id == repository_id, TestCase.id > last_id)
                .order_by(TestCase.id)
                .limit(PAGE)
            )
        ).all()
        if not rows:
            return ids
        last_id = int(rows[-1][0])
        ids.extend(int(row[0]) for row in rows if any(pattern.match(text) for text in row[1:]))


def recompute_config(services: Database, repository: Repository, job: TestsRecomputeJob) -> AnalysisConfig:
    """The analysis settings: `analysisConfig`, with `recomputeScope.lookbackDays` when the job sets it."""
    base = (job.analysis_config or AnalysisConfigPayload()).model_copy(
        update={"lookback_days": job.lookback_days}
    )
    return analysis_config(services.settings, repository, base)


def validate_scope(scope: RecomputeScope) -> None:
    if scope.type in ("test_pattern", "class_pattern") and not scope.patterns:
        raise PermanentError(f"recomputeScope.type {scope.type} needs recomputeScope.patterns")
    if scope.type == "specific_tests" and not (scope.patterns or scope.test_ids):
        raise PermanentError(
            "recomputeScope.type specific_tests needs recomputeScope.patterns (test names or keys) "
            "or recomputeScope.testIds"
        )


@dataclass(slots=True)
class RecomputeResult:
    summary: ScoringSummary
    selected: int
    analyses_computed: int
    analyses_reused: int
    unknown: list[str] = field(default_factory=list)


async def recompute_detailed(
    services: Database,
    job: TestsRecomputeJob,
    *,
    progress: ProgressFn | None = None,
    now: datetime | None = None,
) -> RecomputeResult:
    now = now or datetime.now(UTC)
    validate_scope(job.recompute_scope)
    async with services.sessions() as session:
        repository = await get_repository(session, job.repository.owner, job.repository.repo)
        if repository is None:
            raise PermanentError(f"unknown repository {job.repository.full_name}")
        selection = await select_scope(session, repository.id, job.recompute_scope)
    test_ids = selection.ids
    if selection.unknown:
        log.warn("recompute_unknown_tests", count=len(selection.unknown), first=selection.unknown[:5])
    config = recompute_config(services, repository, job)
    update_quarantine = job.update_quarantine_status
    memo = AnalysisMemo(config, now)
    runs = RunCache(repository.id, now - config.lookback)
    summary = ScoringSummary()
    total = len(test_ids)
    done = 0
    if progress is not None:
        await progress(0, total)
    batches = list(chunked(test_ids, job.batch_size))
    async with services.sessions() as reader:
        # Pipelined: the next batch's histories are fetched (PostgreSQL works on them on its own core)
        # while this batch is analysed and written in its own transaction.
        async def fetch(batch: list[int]) -> dict[int, TestHistory]:
            try:
                return await load_histories(reader, batch, runs.since)
            finally:
                await reader.rollback()  # no transaction left idle between batches

        def prefetch(index: int) -> asyncio.Task[dict[int, TestHistory]] | None:
            return asyncio.ensure_future(fetch(batches[index])) if index < len(batches) else None

        pending = prefetch(0)
        try:
            for index, batch in enumerate(batches):
                assert pending is not None
                histories = await pending
                pending = prefetch(index + 1)
                async with services.sessions.begin() as session:
                    summary.merge(
                        await score_tests(
                            session,
                            repository,
                            batch,
                            config,
                            now,
                            update_quarantine=update_quarantine,
                            memo=memo,
                            runs=runs,
                            histories=histories,
                        )
                    )
                done += len(batch)
                if progress is not None:
                    await progress(done, total)
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pending
    return RecomputeResult(summary, total, memo.misses, memo.hits, selection.unknown)


async def recompute(
    services: Database,
    job: TestsRecomputeJob,
    *,
    progress: ProgressFn | None = None,
    now: datetime | None = None,
) -> ScoringSummary:
    return (await recompute_detailed(services, job, progress=progress, now=now)).summary
