"""Build stored CI histories directly through the store's repository functions (no GitHub, no queues)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flakeguard.junit.identity import make_key
from flakeguard.model import Outcome
from flakeguard.model import TestExecution as Parsed
from flakeguard.services import Services
from flakeguard.store.repository import RunInfo, finish_run, record_run, store_executions, upsert_repository

T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
P, F, E, S = Outcome.PASSED, Outcome.FAILED, Outcome.ERROR, Outcome.SKIPPED


def key_of(name: str, classname: str = "tests.Suite") -> str:
    return make_key("suite", classname, name, None)


@dataclass
class History:
    """A repository whose runs the test writes one by one.

    `run(...)` takes outcomes per test name; a list of outcomes is one test executed several times in
    the same run attempt (in-run retries).
    """

    services: Services
    owner: str = "acme"
    name: str = "app"
    default_branch: str | None = "main"
    classnames: dict[str, str] = field(default_factory=dict)
    repository_id: int = 0
    _next_run: int = 1000

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    async def create(self) -> History:
        async with self.services.sessions.begin() as session:
            repo = await upsert_repository(session, self.owner, self.name, default_branch=self.default_branch)
            self.repository_id = repo.id
        return self

    def key(self, test: str) -> str:
        return key_of(test, self.classnames.get(test, "tests.Suite"))

    async def run(
        self,
        outcomes: Mapping[str, Outcome | Sequence[Outcome]],
        *,
        at: datetime,
        sha: str | None = None,
        branch: str | None = "main",
        run_id: int | None = None,
        attempt: int = 1,
    ) -> int:
        if run_id is None:
            self._next_run += 1
            run_id = self._next_run
        info = RunInfo(
            run_id=run_id,
            run_attempt=attempt,
            head_sha=sha or f"{run_id:040x}",
            branch=branch,
            event="push",
            conclusion="success",
            started_at=at,
            workflow_name="ci",
        )
        executions: list[tuple[str, Parsed]] = []
        for test, value in outcomes.items():
            seq = [value] if isinstance(value, Outcome) else list(value)
            classname = self.classnames.get(test, "tests.Suite")
            for ordinal, outcome in enumerate(seq):
                executions.append(
                    (
                        "junit.xml",
                        Parsed(
                            key=key_of(test, classname),
                            suite="suite",
                            classname=classname,
                            name=test,
                            file=f"tests/{classname.rsplit('.', 1)[-1].lower()}.py",
                            line=1,
                            outcome=outcome,
                            duration_s=0.01,
                            ordinal=ordinal,
                        ),
                    )
                )
        async with self.services.sessions.begin() as session:
            row_id = await record_run(session, self.repository_id, info)
            await store_executions(session, self.repository_id, row_id, executions)
            await finish_run(session, row_id, outcome="ingested", files_refused=0)
        return run_id

    async def series(
        self,
        test: str,
        outcomes: Sequence[Outcome],
        *,
        start: datetime = T0,
        step: timedelta = timedelta(hours=6),
        branch: str | None = "main",
        others: Sequence[str] = ("test_ok_1", "test_ok_2", "test_ok_3", "test_ok_4"),
        same_sha: bool = False,
    ) -> datetime:
        """One run per outcome (oldest first), each with passing `others` so no run looks like an outage.

        Returns the start time of the last run.
        """
        at = start
        for index, outcome in enumerate(outcomes):
            at = start + index * step
            sha = "a" * 40 if same_sha else None
            await self.run({test: outcome, **{o: P for o in others}}, at=at, sha=sha, branch=branch)
        return at


async def recompute_repo(
    history: History,
    now: datetime,
    *,
    scope: dict[str, object] | None = None,
    update_quarantine: bool = False,
    batch_size: int = 500,
    lookback_days: int = 30,
) -> Any:
    """Run `tests:recompute` in-process for the history's repository with a fixed `now`."""
    from flakeguard.jobs.payloads import TestsRecomputeJob
    from flakeguard.pipeline.recompute import recompute_detailed

    job = TestsRecomputeJob.model_validate(
        {
            "repository": {"owner": history.owner, "repo": history.name},
            "recomputeScope": {"type": "all", "lookbackDays": lookback_days, **(scope or {})},
            "options": {"batchSize": batch_size, "updateQuarantineStatus": update_quarantine},
        }
    )
    return await recompute_detailed(history.services, job, now=now)


async def results(history: History) -> dict[str, dict[str, Any]]:
    """flakiness_results rows by test name."""
    from sqlalchemy import select

    from flakeguard.store.models import FlakinessResult, TestCase

    async with history.services.sessions() as session:
        rows = await session.execute(
            select(TestCase.name, FlakinessResult)
            .join(FlakinessResult, FlakinessResult.test_case_id == TestCase.id)
            .where(TestCase.repository_id == history.repository_id)
        )
        return {
            name: {c.key: getattr(r, c.key) for c in FlakinessResult.__table__.columns}
            for name, r in rows.all()
        }


async def quarantine_state(history: History) -> dict[str, tuple[bool, bool]]:
    """(quarantined, automatic) by test name, for tests with a quarantine row."""
    from sqlalchemy import select

    from flakeguard.store.models import Quarantine, TestCase

    async with history.services.sessions() as session:
        rows = await session.execute(
            select(TestCase.name, Quarantine.quarantined, Quarantine.automatic)
            .join(Quarantine, Quarantine.test_case_id == TestCase.id)
            .where(TestCase.repository_id == history.repository_id)
        )
        return {name: (bool(q), bool(a)) for name, q, a in rows.all()}


async def case_id(history: History, name: str) -> int:
    from sqlalchemy import select

    from flakeguard.store.models import TestCase

    async with history.services.sessions() as session:
        value = await session.execute(
            select(TestCase.id).where(TestCase.repository_id == history.repository_id, TestCase.name == name)
        )
        return int(value.scalar_one())
