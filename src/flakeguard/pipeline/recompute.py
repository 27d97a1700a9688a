"""`tests:recompute`: re-score a repository's tests (all, by glob, or by id) in batches.

Each batch is its own transaction, so a long recompute makes progress that a crash keeps, and
running it twice gives the same result (scores depend only on stored executions and `now`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from flakeguard.jobs.errors import PermanentError
from flakeguard.jobs.payloads import AnalysisConfigPayload, RecomputeScope, TestsRecomputeJob
from flakeguard.pipeline.scoring import ScoringSummary, analysis_config, score_tests
from flakeguard.services import Services
from flakeguard.store.models import Repository, TestCase
from flakeguard.store.repository import get_repository, key_hash

ProgressFn = Callable[[int, int], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Selection:
    """The scope as SQL where possible; glob patterns are matched in Python on each batch."""

    scope: RecomputeScope

    def where(self, repository_id: int) -> list[object]:
        clauses: list[object] = [TestCase.repository_id == repository_id]
        if self.scope.type == "specific_tests":
            ids = [int(t) for t in self.scope.test_ids if t.isdigit()]
            hashes = [key_hash(t) for t in self.scope.test_ids]
            clauses.append(or_(TestCase.id.in_(ids), TestCase.key_hash.in_(hashes)))
        return clauses

    def matches(self, test: TestCase) -> bool:
        if self.scope.type == "test_pattern":
            return any(
                fnmatch.fnmatchcase(test.name, p) or fnmatch.fnmatchcase(test.key, p) for p in self.scope.patterns
            )
        if self.scope.type == "class_pattern":
            return any(fnmatch.fnmatchcase(test.classname, p) for p in self.scope.patterns)
        return True


async def _batches(
    session: AsyncSession, repository: Repository, selection: Selection, batch_size: int
) -> AsyncIterator[tuple[list[int], int]]:
    """Batches of matching test ids, each with the number of test cases scanned for it."""
    last_id = 0
    while True:
        rows = (
            await session.execute(
                select(TestCase).where(*selection.where(repository.id), TestCase.id > last_id)  # type: ignore[arg-type]
                .order_by(TestCase.id).limit(batch_size)
            )
        ).scalars().all()
        if not rows:
            return
        last_id = rows[-1].id
        yield [t.id for t in rows if selection.matches(t)], len(rows)


async def recompute(
    services: Services, job: TestsRecomputeJob, *, progress: ProgressFn | None = None, now: datetime | None = None
) -> ScoringSummary:
    now = now or datetime.now(UTC)
    if job.recompute_scope.type in ("test_pattern", "class_pattern") and not job.recompute_scope.patterns:
        raise PermanentError(f"recomputeScope.type {job.recompute_scope.type} needs recomputeScope.patterns")
    if job.recompute_scope.type == "specific_tests" and not job.recompute_scope.test_ids:
        raise PermanentError("recomputeScope.type specific_tests needs recomputeScope.testIds")
    selection = Selection(job.recompute_scope)
    async with services.sessions() as session:
        repository = await get_repository(session, job.repository.owner, job.repository.repo)
        if repository is None:
            raise PermanentError(f"unknown repository {job.repository.full_name}")
        total = (
            await session.execute(select(func.count(TestCase.id)).where(*selection.where(repository.id)))  # type: ignore[arg-type]
        ).scalar_one()
    # The job's own lookbackDays wins over analysisConfig.lookbackDays.
    base = job.analysis_config or AnalysisConfigPayload()
    config = analysis_config(
        services.settings, repository, base.model_copy(update={"lookback_days": job.lookback_days})
    )
    summary = ScoringSummary()
    scanned = 0
    async with services.sessions() as reader:
        async for batch, rows_scanned in _batches(reader, repository, selection, job.batch_size):
            scanned += rows_scanned
            if not batch:
                continue
            async with services.sessions.begin() as session:
                repo = await session.get(Repository, repository.id)
                assert repo is not None
                summary.merge(
                    await score_tests(session, repo, batch, config, now,
                                      update_quarantine=job.update_quarantine_status)
                )
            if progress is not None:
                await progress(min(scanned, total), total)
    if progress is not None:
        await progress(total, total)
    return summary

