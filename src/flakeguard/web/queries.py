"""Every read the dashboard makes, typed, in one place (to move behind the store/ boundary later).

Each function takes the caller's session and returns plain frozen dataclasses; nothing here renders.
The ranked test list itself is `flakeguard.pipeline.report.build_report` (the order of
`flakeguard report`), and quarantine history is `flakeguard.pipeline.quarantine.quarantine_history`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import operators

from flakeguard.analysis import Observation, Status
from flakeguard.pipeline.report import STATUS, ReportRow, report_order, report_row, report_select, status_rank
from flakeguard.pipeline.scoring import load_observations
from flakeguard.store.models import (
    CheckRunRecord,
    FlakinessResult,
    Quarantine,
    Repository,
    TestCase,
    TestExecution,
    WorkflowRun,
)

FAILED = ("failed", "error")


# ------------------------------------------------------------------------------------ overview


@dataclass(frozen=True, slots=True)
class StatusCounts:
    tests: int = 0
    flaky: int = 0
    broken: int = 0
    healthy: int = 0
    insufficient_data: int = 0
    quarantined: int = 0


@dataclass(frozen=True, slots=True)
class TimeLost:
    """CI time spent on run attempts that failed only because of flaky tests (see `time_lost`)."""

    last_7_days_s: float = 0.0
    last_30_days_s: float = 0.0
    runs_7_days: int = 0
    runs_30_days: int = 0


@dataclass(frozen=True, slots=True)
class RepositorySummary:
    id: int
    owner: str
    name: str
    default_branch: str | None
    counts: StatusCounts
    last_run_at: datetime | None

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


async def repositories(session: AsyncSession) -> list[Repository]:
    return list(
        (await session.execute(select(Repository).order_by(Repository.owner, Repository.name))).scalars()
    )


async def status_counts(session: AsyncSession, repository_ids: Sequence[int]) -> dict[int, StatusCounts]:
    """Tests per status (never analysed counts as insufficient data) and quarantined, per repository."""
    if not repository_ids:
        return {}
    status = func.coalesce(FlakinessResult.status, Status.INSUFFICIENT_DATA.value)
    rows = await session.execute(
        select(
            TestCase.repository_id,
            func.count(TestCase.id),
            *(func.sum(case((status == s.value, 1), else_=0)) for s in Status),
            func.sum(case((Quarantine.quarantined.is_(True), 1), else_=0)),
        )
        .outerjoin(FlakinessResult, FlakinessResult.test_case_id == TestCase.id)
        .outerjoin(Quarantine, Quarantine.test_case_id == TestCase.id)
        .where(TestCase.repository_id.in_(list(repository_ids)))
        .group_by(TestCase.repository_id)
    )
    counts: dict[int, StatusCounts] = {}
    for repository_id, total, *per_status, quarantined in rows.all():
        by_status = {s.value: int(n or 0) for s, n in zip(Status, per_status, strict=True)}
        counts[int(repository_id)] = StatusCounts(
            tests=int(total),
            flaky=by_status[Status.FLAKY.value],
            broken=by_status[Status.BROKEN.value],
            healthy=by_status[Status.HEALTHY.value],
            insufficient_data=by_status[Status.INSUFFICIENT_DATA.value],
            quarantined=int(quarantined or 0),
        )
    return counts


async def time_lost(
    session: AsyncSession, repository_ids: Sequence[int], now: datetime
) -> dict[int, TimeLost]:
    """CI time lost to flaky failures, per repository, over the last 7 and 30 days.

    A run attempt's time is lost when it had failing tests and every one of them is flaky now: the run
    went red for nothing and had to be run again. Its time is the sum of its executions' durations
    (the test time its reports record; set-up and queueing are not in the reports).
    """
    if not repository_ids:
        return {}
    since = now - timedelta(days=30)
    candidates = (
        select(WorkflowRun.id)
        .where(
            WorkflowRun.repository_id.in_(list(repository_ids)),
            WorkflowRun.started_at >= since,
            WorkflowRun.tests_failed > 0,
        )
        .scalar_subquery()
    )
    only_flaky = (
        select(TestExecution.workflow_run_id)
        .outerjoin(FlakinessResult, FlakinessResult.test_case_id == TestExecution.test_case_id)
        .where(TestExecution.workflow_run_id.in_(candidates), TestExecution.outcome.in_(FAILED))
        .group_by(TestExecution.workflow_run_id)
        .having(func.min(case((FlakinessResult.status == Status.FLAKY.value, 1), else_=0)) == 1)
        .scalar_subquery()
    )
    rows = await session.execute(
        select(
            WorkflowRun.repository_id,
            WorkflowRun.started_at,
            func.coalesce(func.sum(TestExecution.duration_s), 0.0),
        )
        .join(TestExecution, TestExecution.workflow_run_id == WorkflowRun.id)
        .where(WorkflowRun.id.in_(only_flaky))
        .group_by(WorkflowRun.id, WorkflowRun.repository_id, WorkflowRun.started_at)
    )
    totals: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0, 0, 0])
    week_ago = now - timedelta(days=7)
    for repository_id, started_at, seconds in rows.all():
        total = totals[int(repository_id)]
        total[1] += float(seconds)
        total[3] += 1
        if started_at >= week_ago:
            total[0] += float(seconds)
            total[2] += 1
    return {
        rid: TimeLost(last_7_days_s=t[0], last_30_days_s=t[1], runs_7_days=int(t[2]), runs_30_days=int(t[3]))
        for rid, t in totals.items()
    }


async def last_run_at(session: AsyncSession, repository_ids: Sequence[int]) -> dict[int, datetime]:
    rows = await session.execute(
        select(WorkflowRun.repository_id, func.max(WorkflowRun.started_at))
        .where(WorkflowRun.repository_id.in_(list(repository_ids)))
        .group_by(WorkflowRun.repository_id)
    )
    return {int(rid): at for rid, at in rows.all() if at is not None}


async def repository_summaries(session: AsyncSession, repos: Sequence[Repository]) -> list[RepositorySummary]:
    ids = [r.id for r in repos]
    counts = await status_counts(session, ids)
    latest = await last_run_at(session, ids)
    return [
        RepositorySummary(
            id=r.id,
            owner=r.owner,
            name=r.name,
            default_branch=r.default_branch,
            counts=counts.get(r.id, StatusCounts()),
            last_run_at=latest.get(r.id),
        )
        for r in repos
    ]


@dataclass(frozen=True, slots=True)
class AttentionTest:
    """A flaky or broken test worth a look, across repositories (overview)."""

    repository: str
    test_case_id: int
    classname: str
    name: str
    status: str
    impact: float
    confidence: float
    failures: int
    executions: int
    quarantined: bool
    last_failure_at: datetime | None


async def needs_attention(session: AsyncSession, limit: int = 10) -> list[AttentionTest]:
    """The flaky and broken tests that cost the most (impact), not quarantined first."""
    quarantined = func.coalesce(Quarantine.quarantined, False)
    rows = await session.execute(
        select(
            Repository.owner,
            Repository.name,
            TestCase.id,
            TestCase.classname,
            TestCase.name,
            FlakinessResult.status,
            FlakinessResult.impact,
            FlakinessResult.confidence,
            FlakinessResult.failures,
            FlakinessResult.executions,
            quarantined,
            FlakinessResult.last_failure_at,
        )
        .join(TestCase, TestCase.id == FlakinessResult.test_case_id)
        .join(Repository, Repository.id == TestCase.repository_id)
        .outerjoin(Quarantine, Quarantine.test_case_id == TestCase.id)
        .where(FlakinessResult.status.in_((Status.FLAKY.value, Status.BROKEN.value)))
        .order_by(quarantined, FlakinessResult.impact.desc(), FlakinessResult.confidence.desc(), TestCase.key)
        .limit(limit)
    )
    return [
        AttentionTest(
            repository=f"{r[0]}/{r[1]}",
            test_case_id=int(r[2]),
            classname=r[3],
            name=r[4],
            status=r[5],
            impact=float(r[6] or 0.0),
            confidence=float(r[7] or 0.0),
            failures=int(r[8] or 0),
            executions=int(r[9] or 0),
            quarantined=bool(r[10]),
            last_failure_at=r[11],
        )
        for r in rows.all()
    ]


async def failing_histories(
    session: AsyncSession, repository_id: int, since: datetime
) -> dict[int, list[Observation]]:
    """Observations since `since` of the tests that failed at least once since then (trend replay)."""
    ids = await session.execute(
        select(TestExecution.test_case_id)
        .join(WorkflowRun, WorkflowRun.id == TestExecution.workflow_run_id)
        .where(
            WorkflowRun.repository_id == repository_id,
            WorkflowRun.started_at >= since,
            WorkflowRun.tests_failed > 0,
            TestExecution.outcome.in_(FAILED),
        )
        .distinct()
    )
    test_ids = sorted(int(i) for i in ids.scalars())
    if not test_ids:
        return {}
    return await load_observations(session, repository_id, test_ids, since)


async def analysis_stamp(session: AsyncSession, repository_id: int) -> tuple[datetime | None, int]:
    """Changes whenever the repository's analysis does: newest computed_at and the result count."""
    row = (
        await session.execute(
            select(func.max(FlakinessResult.computed_at), func.count()).where(
                FlakinessResult.repository_id == repository_id
            )
        )
    ).one()
    return row[0], int(row[1])


# ---------------------------------------------------------------------------------- repository


@dataclass(frozen=True, slots=True)
class ReportPage:
    rows: list[ReportRow]
    total: int  # tests that match the filter


# Sortable columns besides the report's own order ("rank"); ties keep the report's order.
SORTABLE: dict[str, Callable[[], Any]] = {
    "name": lambda: func.lower(TestCase.classname + "." + TestCase.name),
    "status": status_rank,
    "score": lambda: func.coalesce(FlakinessResult.score, -1.0),
    "confidence": lambda: func.coalesce(FlakinessResult.confidence, 0.0),
    "failure_rate": lambda: func.coalesce(FlakinessResult.failure_rate, 0.0),
    "last_failure": lambda: FlakinessResult.last_failure_at,
}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def report_page(
    session: AsyncSession,
    repository_id: int,
    *,
    status: str | None,
    quarantined: bool | None,
    name: str,
    sort: str,
    descending: bool,
    offset: int,
    limit: int,
) -> ReportPage:
    """One page of the report (`flakeguard.pipeline.report`), filtered and sorted in the database:
    a page of a 5,000-test repository fetches its 50 rows, not 5,000."""
    query = report_select(repository_id, with_evidence=False)
    if status:
        query = query.where(STATUS.in_([status]))
    if quarantined is not None:
        flag = func.coalesce(Quarantine.quarantined, False)
        query = query.where(flag.is_(True) if quarantined else flag.is_(False))
    if name:
        pattern = f"%{_escape_like(name.lower())}%"
        query = query.where(
            or_(
                func.lower(TestCase.key).like(pattern, escape="\\"),
                func.lower(TestCase.classname + "." + TestCase.name).like(pattern, escape="\\"),
            )
        )
    total = int((await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one())
    order = list(report_order(session.bind.dialect.name))
    if sort in SORTABLE:
        column = SORTABLE[sort]()
        order.insert(0, column.desc().nulls_last() if descending else column.asc().nulls_first())
    elif descending:  # the report's order, reversed
        order = [_reversed(clause) for clause in order]
    result = await (await session.connection()).execute(query.order_by(*order).offset(offset).limit(limit))
    return ReportPage([report_row(r, with_evidence=False) for r in result], total)


def _reversed(clause: ColumnElement[Any]) -> ColumnElement[Any]:
    modifier = getattr(clause, "modifier", None)
    element = getattr(clause, "element", clause)
    if modifier is operators.desc_op:
        return element.asc()
    return clause.desc()


async def recent_outcomes(
    session: AsyncSession, test_case_ids: Sequence[int], per_test: int
) -> dict[int, list[str]]:
    """The newest `per_test` outcomes of each test, newest first (the rows' history strips)."""
    if not test_case_ids:
        return {}
    rank = (
        func.row_number()
        .over(
            partition_by=TestExecution.test_case_id,
            order_by=(
                WorkflowRun.started_at.desc(),
                WorkflowRun.run_attempt.desc(),
                TestExecution.ordinal.desc(),
            ),
        )
        .label("rank")
    )
    ranked = (
        select(TestExecution.test_case_id, TestExecution.outcome, rank)
        .join(WorkflowRun, WorkflowRun.id == TestExecution.workflow_run_id)
        .where(TestExecution.test_case_id.in_(list(test_case_ids)))
        .subquery()
    )
    rows = await session.execute(
        select(ranked.c.test_case_id, ranked.c.outcome)
        .where(ranked.c.rank <= per_test)
        .order_by(ranked.c.test_case_id, ranked.c.rank)
    )
    strips: dict[int, list[str]] = defaultdict(list)
    for test_id, outcome in rows.all():
        strips[int(test_id)].append(str(outcome))
    return strips


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One run attempt with what its failures were (repository page, run page)."""

    id: int
    run_id: int
    run_attempt: int
    head_sha: str
    branch: str | None
    event: str | None
    workflow_name: str | None
    conclusion: str | None
    started_at: datetime
    tests_total: int
    tests_failed: int
    failed_known_flaky: int


def _run_summary(run: WorkflowRun, known_flaky: int) -> RunSummary:
    return RunSummary(
        id=run.id,
        run_id=run.run_id,
        run_attempt=run.run_attempt,
        head_sha=run.head_sha,
        branch=run.branch,
        event=run.event,
        workflow_name=run.workflow_name,
        conclusion=run.conclusion,
        started_at=run.started_at,
        tests_total=run.tests_total,
        tests_failed=run.tests_failed,
        failed_known_flaky=known_flaky,
    )


async def recent_runs(session: AsyncSession, repository_id: int, limit: int) -> list[RunSummary]:
    runs = list(
        (
            await session.execute(
                select(WorkflowRun)
                .where(WorkflowRun.repository_id == repository_id)
                .order_by(WorkflowRun.started_at.desc(), WorkflowRun.run_attempt.desc())
                .limit(limit)
            )
        ).scalars()
    )
    flaky = await session.execute(
        select(TestExecution.workflow_run_id, func.count(func.distinct(TestExecution.test_case_id)))
        .join(
            FlakinessResult,
            and_(
                FlakinessResult.test_case_id == TestExecution.test_case_id,
                FlakinessResult.status == Status.FLAKY.value,
            ),
        )
        .where(TestExecution.workflow_run_id.in_([r.id for r in runs]), TestExecution.outcome.in_(FAILED))
        .group_by(TestExecution.workflow_run_id)
    )
    known = {int(run_row): int(n) for run_row, n in flaky.all()}
    return [_run_summary(run, known.get(run.id, 0)) for run in runs]


# ---------------------------------------------------------------------------------------- test


@dataclass(frozen=True, slots=True)
class QuarantineState:
    quarantined: bool
    automatic: bool
    since: datetime
    reason: str
    actor: str


@dataclass(frozen=True, slots=True)
class TestDetail:
    __test__ = False

    case: TestCase
    result: FlakinessResult | None
    quarantine: QuarantineState | None


async def test_detail(session: AsyncSession, repository_id: int, test_case_id: int) -> TestDetail | None:
    case_ = (
        await session.execute(
            select(TestCase).where(TestCase.id == test_case_id, TestCase.repository_id == repository_id)
        )
    ).scalar_one_or_none()
    if case_ is None:
        return None
    result = await session.get(FlakinessResult, test_case_id)
    q = await session.get(Quarantine, test_case_id)
    state = None
    if q is not None:
        state = QuarantineState(q.quarantined, q.automatic, q.since, q.reason, q.actor)
    return TestDetail(case=case_, result=result, quarantine=state)


@dataclass(frozen=True, slots=True)
class ExecutionRow:
    outcome: str
    ordinal: int
    duration_s: float | None
    message: str | None
    run_id: int
    run_attempt: int
    head_sha: str
    branch: str | None
    started_at: datetime


async def test_executions(session: AsyncSession, test_case_id: int, limit: int) -> list[ExecutionRow]:
    """The newest `limit` executions of a test, newest first (run start, attempt, then retry order)."""
    rows = await session.execute(
        select(
            TestExecution.outcome,
            TestExecution.ordinal,
            TestExecution.duration_s,
            TestExecution.message,
            WorkflowRun.run_id,
            WorkflowRun.run_attempt,
            WorkflowRun.head_sha,
            WorkflowRun.branch,
            WorkflowRun.started_at,
        )
        .join(WorkflowRun, WorkflowRun.id == TestExecution.workflow_run_id)
        .where(TestExecution.test_case_id == test_case_id)
        .order_by(
            WorkflowRun.started_at.desc(),
            WorkflowRun.run_attempt.desc(),
            TestExecution.ordinal.desc(),
            TestExecution.id.desc(),
        )
        .limit(limit)
    )
    return [
        ExecutionRow(
            outcome=str(outcome),
            ordinal=int(ordinal),
            duration_s=duration,
            message=message,
            run_id=int(run_id),
            run_attempt=int(attempt),
            head_sha=sha,
            branch=branch,
            started_at=started,
        )
        for outcome, ordinal, duration, message, run_id, attempt, sha, branch, started in rows.all()
    ]


async def execution_count(session: AsyncSession, test_case_id: int) -> int:
    return int(
        (
            await session.execute(
                select(func.count(TestExecution.id)).where(TestExecution.test_case_id == test_case_id)
            )
        ).scalar_one()
    )


# ----------------------------------------------------------------------------------------- run


@dataclass(frozen=True, slots=True)
class RunFailure:
    """A test that failed in a run attempt, and what FlakeGuard knows of it now."""

    test_case_id: int
    classname: str
    name: str
    file: str | None
    message: str | None
    status: str
    score: float | None
    confidence: float
    quarantined: bool
    passed_on_retry: bool

    @property
    def known_flaky(self) -> bool:
        return self.status == Status.FLAKY.value or self.quarantined


@dataclass(frozen=True, slots=True)
class RunDetail:
    run: RunSummary
    failures: list[RunFailure]
    attempts: list[int]
    check_run_id: int | None


async def run_detail(session: AsyncSession, repository_id: int, run: WorkflowRun) -> RunDetail:
    rows = await session.execute(
        select(
            TestExecution.test_case_id,
            TestExecution.outcome,
            TestExecution.message,
            TestCase.classname,
            TestCase.name,
            TestCase.file,
            FlakinessResult.status,
            FlakinessResult.score,
            FlakinessResult.confidence,
            func.coalesce(Quarantine.quarantined, False),
        )
        .join(TestCase, TestCase.id == TestExecution.test_case_id)
        .outerjoin(FlakinessResult, FlakinessResult.test_case_id == TestExecution.test_case_id)
        .outerjoin(Quarantine, Quarantine.test_case_id == TestExecution.test_case_id)
        .where(
            TestExecution.workflow_run_id == run.id,
            TestExecution.test_case_id.in_(
                select(TestExecution.test_case_id).where(
                    TestExecution.workflow_run_id == run.id, TestExecution.outcome.in_(FAILED)
                )
            ),
        )
        .order_by(TestCase.key, TestExecution.source, TestExecution.ordinal)
    )
    first: dict[int, RunFailure] = {}
    passed: set[int] = set()
    for (
        test_id,
        outcome,
        message,
        classname,
        name,
        file,
        status,
        score,
        confidence,
        quarantined,
    ) in rows.all():
        test_id = int(test_id)
        if outcome == "passed":
            passed.add(test_id)
        if outcome in FAILED and test_id not in first:
            first[test_id] = RunFailure(
                test_case_id=test_id,
                classname=classname,
                name=name,
                file=file,
                message=message,
                status=status or Status.INSUFFICIENT_DATA.value,
                score=score,
                confidence=float(confidence or 0.0),
                quarantined=bool(quarantined),
                passed_on_retry=False,
            )
    failures = [replace(f, passed_on_retry=f.test_case_id in passed) for f in first.values()]
    attempts = [
        int(a)
        for a in (
            await session.execute(
                select(WorkflowRun.run_attempt)
                .where(WorkflowRun.repository_id == repository_id, WorkflowRun.run_id == run.run_id)
                .order_by(WorkflowRun.run_attempt)
            )
        ).scalars()
    ]
    check_run_id = (
        await session.execute(
            select(CheckRunRecord.check_run_id).where(
                CheckRunRecord.repository_id == repository_id, CheckRunRecord.head_sha == run.head_sha
            )
        )
    ).scalar_one_or_none()
    known = sum(1 for f in failures if f.status == Status.FLAKY.value)
    return RunDetail(
        run=_run_summary(run, known),
        failures=failures,
        attempts=attempts,
        check_run_id=None if check_run_id is None else int(check_run_id),
    )
