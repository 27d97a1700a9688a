"""The `FlakeGuard` check run of an analysed run, and the actions its buttons request.

After `runs:analyze` has scored a run attempt, `publish_run_check` renders what that attempt's
failing tests mean (known flaky with score and evidence, quarantined, or a new failure) with
`flakeguard.github.checks` and creates — or, on re-analysis, updates — the single `FlakeGuard`
check run on the run's head sha. Its id is kept in `check_runs` (one row per repository and head sha).

GitHub only ever *appends* annotations to a check run, so an update sends only the annotations of
tests that have none on that line yet; title, summary, conclusion and actions are replaced.

The check run's `external_id` is `owner/repo/run_id/attempt`, so a `check_run` `requested_action`
webhook knows which run to re-analyse (`Re-analyze`) or whose known flaky failures to quarantine
(`Quarantine flaky`, the `quarantine` job on `runs:analyze`, see `apply_quarantine_action`).
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from flakeguard.github.checks import (
    ANNOTATIONS_PER_REQUEST,
    CheckRunFailure,
    CheckRunReport,
    PublishedCheckRun,
    build_check_run,
    conclusion_for,
)
from flakeguard.github.client import GitHubClient
from flakeguard.github.errors import GitHubError, NotFound, RateLimited, TransientGitHubError
from flakeguard.jobs.errors import PermanentError
from flakeguard.jobs.names import Priority
from flakeguard.jobs.payloads import RepositoryRef, WireModel
from flakeguard.logging import get_logger
from flakeguard.model import Outcome
from flakeguard.services import Services
from flakeguard.store.models import (
    CheckRunRecord,
    FlakinessResult,
    Quarantine,
    Repository,
    TestCase,
    TestExecution,
    WorkflowRun,
    utcnow,
)
from flakeguard.store.repository import chunked, get_repository, upsert_rows

log = get_logger("flakeguard.checks")
T = TypeVar("T")

QUARANTINE_JOB_NAME = "quarantine"  # job name on runs:analyze for the `Quarantine flaky` button
_FAILED = (Outcome.FAILED.value, Outcome.ERROR.value)


# --------------------------------------------------------------------------------------------
# external id: which run a check run reports on


def external_id_for(owner: str, repo: str, run_id: int, attempt: int) -> str:
    return f"{owner}/{repo}/{run_id}/{attempt}"


@dataclass(frozen=True, slots=True)
class RunRef:
    owner: str
    repo: str
    run_id: int
    attempt: int


def parse_external_id(value: str | None) -> RunRef | None:
    """`owner/repo/run_id/attempt` (what `publish_run_check` sets); None for anything else."""
    parts = (value or "").split("/")
    if len(parts) != 4 or not all(parts):
        return None
    try:
        run_id, attempt = int(parts[2]), int(parts[3])
    except ValueError:
        return None
    if run_id <= 0 or attempt <= 0:
        return None
    return RunRef(parts[0], parts[1], run_id, attempt)


# --------------------------------------------------------------------------------------------
# the report, from the store


@dataclass(frozen=True, slots=True)
class RunReport:
    report: CheckRunReport
    flaky_unquarantined: list[int]  # test case ids the `Quarantine flaky` button would quarantine


def _test_name(case: TestCase) -> str:
    if case.classname and not case.name.startswith(case.classname):
        return f"{case.classname}.{case.name}"
    return case.name


def _evidence_text(result: FlakinessResult) -> str:
    reason = ""
    if isinstance(result.evidence, dict):
        reason = str(result.evidence.get("reason") or "")
    confidence = f"confidence {result.confidence:.0%}"
    history = f"failed {result.failures} of {result.executions} executions"
    return "; ".join(p for p in (reason, history, confidence) if p)


async def build_run_report(session: AsyncSession, repository: Repository, run: WorkflowRun) -> RunReport:
    """The check-run report of one stored run attempt: its failing tests (an execution failed or
    errored), each marked known flaky (status `flaky`, with score, confidence and the evidence
    reason), quarantined, or new; totals; every test quarantined in the repository."""
    outcomes: dict[int, set[str]] = defaultdict(set)
    first_failure: dict[int, tuple[int | None, str | None]] = {}
    rows = await session.execute(
        select(TestExecution.test_case_id, TestExecution.outcome, TestExecution.line, TestExecution.message)
        .where(TestExecution.workflow_run_id == run.id)
        .order_by(TestExecution.source, TestExecution.ordinal)
    )
    for test_id, outcome, line, message in rows.all():
        outcomes[int(test_id)].add(str(outcome))
        if outcome in _FAILED and int(test_id) not in first_failure:
            first_failure[int(test_id)] = (line, message)
    failing = sorted(first_failure)
    skipped = sum(1 for o in outcomes.values() if o == {Outcome.SKIPPED.value})

    cases: dict[int, TestCase] = {}
    results: dict[int, FlakinessResult] = {}
    quarantined: set[int] = set()
    for part in chunked(failing, 900):
        cases.update(
            {
                c.id: c
                for c in (await session.execute(select(TestCase).where(TestCase.id.in_(part)))).scalars()
            }
        )
        results.update(
            {
                r.test_case_id: r
                for r in (
                    await session.execute(
                        select(FlakinessResult).where(FlakinessResult.test_case_id.in_(part))
                    )
                ).scalars()
            }
        )
    quarantined_names: list[str] = []
    q_rows = await session.execute(
        select(Quarantine.test_case_id, TestCase.classname, TestCase.name)
        .join(TestCase, TestCase.id == Quarantine.test_case_id)
        .where(Quarantine.repository_id == repository.id, Quarantine.quarantined.is_(True))
        .order_by(TestCase.classname, TestCase.name)
    )
    for test_id, classname, name in q_rows.all():
        quarantined.add(int(test_id))
        quarantined_names.append(
            f"{classname}.{name}" if classname and not name.startswith(classname) else name
        )

    failures: list[CheckRunFailure] = []
    flaky_unquarantined: list[int] = []
    for test_id in failing:
        case = cases.get(test_id)
        if case is None:  # pragma: no cover - executions reference existing test cases
            continue
        result = results.get(test_id)
        known_flaky = result is not None and result.status == "flaky"
        line, message = first_failure[test_id]
        failures.append(
            CheckRunFailure(
                test_name=_test_name(case),
                file=case.file,
                line=line,
                message=message or "",
                known_flaky=known_flaky,
                score=result.score if result is not None else None,
                evidence_text=_evidence_text(result) if result is not None and known_flaky else "",
                quarantined=test_id in quarantined,
            )
        )
        if known_flaky and test_id not in quarantined:
            flaky_unquarantined.append(test_id)
    total = len(outcomes)
    report = CheckRunReport(
        failures=failures,
        total_tests=total,
        passed=total - len(failing) - skipped,
        skipped=skipped,
        quarantined_tests=quarantined_names,
        workflow_run_id=run.run_id,
        external_id=external_id_for(repository.owner, repository.name, run.run_id, run.run_attempt),
    )
    return RunReport(report, flaky_unquarantined)


# --------------------------------------------------------------------------------------------
# publishing


def _annotation_key(annotation: dict[str, Any]) -> tuple[str, int, str]:
    # Titles are "New failure: <test>", "Known flaky: <test>", "Quarantined: <test>": the test, not
    # its classification, identifies the annotation (a re-classified test is not annotated twice).
    title = str(annotation.get("title") or "")
    return str(annotation.get("path")), int(annotation.get("start_line") or 0), title.split(": ", 1)[-1]


WRITE_TRIES = 4  # each check-run write: the first try and three retries, 1-2 s, 2-4 s, 4-8 s apart


async def find_check_run(
    client: GitHubClient, owner: str, repo: str, head_sha: str, name: str
) -> dict[str, Any] | None:
    """The newest check run called `name` on `head_sha`, if any."""
    runs = await client.list_check_runs_for_ref(owner, repo, head_sha, name)
    return runs[0] if runs else None


async def publish_or_update(
    client: GitHubClient,
    owner: str,
    repo: str,
    head_sha: str,
    report: CheckRunReport,
    *,
    check_run_id: int | None = None,
    pause: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> PublishedCheckRun:
    """Creates the completed `FlakeGuard` check run (annotations 50 per request), or updates the one
    `head_sha` already has in place, appending only missing annotations.

    Safe to repeat, and repeated here on 5xx, resets and timeouts (`TransientGitHubError`): a create
    whose answer was lost may have created the check run all the same, so before every create the
    check run is looked up (`check_run_id` when known, else by head sha and name) and a second one is
    never created; an append whose answer was lost re-reads the annotations and sends the missing ones.
    """
    body, rest = build_check_run(report, head_sha)
    output = body["output"]
    pending: list[dict[str, Any]] = list(output.pop("annotations", []))
    for batch in rest:
        pending.extend(batch)
    calls = _Calls()
    existing: dict[str, Any] | None = None
    if check_run_id is not None:
        try:
            existing = await calls.count(client.get_check_run(owner, repo, check_run_id))
        except NotFound:
            existing = None
        if existing is not None and existing.get("head_sha") != head_sha:
            existing = None
    sent = 0
    for attempt in range(1, WRITE_TRIES + 1):
        try:
            if existing is None:
                existing = await calls.count(find_check_run(client, owner, repo, head_sha, body["name"]))
            if existing is not None:
                cid = int(existing["id"])
                if (existing.get("output") or {}).get("annotations_count"):
                    pending = await _missing(client, owner, repo, cid, pending, calls)
                patch = {k: v for k, v in body.items() if k not in ("head_sha", "name")}
                patch["output"] = output
                data = await calls.count(client.update_check_run(owner, repo, cid, patch))
            else:
                first = pending[:ANNOTATIONS_PER_REQUEST]
                create = {**body, "output": {**output, **({"annotations": first} if first else {})}}
                data = await calls.count(client.create_check_run(owner, repo, create))
                cid = int(data["id"])
                pending, sent = pending[len(first) :], len(first)
            break
        except TransientGitHubError as exc:
            if attempt == WRITE_TRIES:
                raise
            log.warn("check_run_write_retried", error=str(exc), attempt=attempt)
            await pause(_retry_pause_s(attempt))
    last = await _append(client, owner, repo, cid, output, pending, calls, pause)
    sent += len(pending)
    data = last or data
    return PublishedCheckRun(cid, conclusion_for(report), calls.n, sent, data.get("html_url"), data)


class _Calls:
    """Counts the API calls of one publication (reported as `requests`)."""

    def __init__(self) -> None:
        self.n = 0

    async def count(self, call: Awaitable[T]) -> T:
        self.n += 1
        return await call


def _retry_pause_s(attempt: int) -> float:
    cap = 2.0**attempt
    return random.uniform(cap / 2, cap)


async def _missing(
    client: GitHubClient,
    owner: str,
    repo: str,
    check_run_id: int,
    annotations: list[dict[str, Any]],
    calls: _Calls,
) -> list[dict[str, Any]]:
    present = {
        _annotation_key(a)
        for a in await calls.count(client.list_check_run_annotations(owner, repo, check_run_id))
    }
    return [a for a in annotations if _annotation_key(a) not in present]


async def _append(
    client: GitHubClient,
    owner: str,
    repo: str,
    check_run_id: int,
    output: dict[str, Any],
    annotations: list[dict[str, Any]],
    calls: _Calls,
    pause: Callable[[float], Awaitable[None]],
) -> dict[str, Any] | None:
    """PATCHes `annotations` 50 at a time. GitHub appends annotations, so a PATCH whose answer was
    lost is not simply repeated: the annotations are read back and only the missing ones re-sent."""
    pending = list(annotations)
    data: dict[str, Any] | None = None
    attempt = 1
    while pending:
        batch = pending[:ANNOTATIONS_PER_REQUEST]
        try:
            data = await calls.count(
                client.update_check_run(
                    owner,
                    repo,
                    check_run_id,
                    {
                        "output": {
                            "title": output["title"],
                            "summary": output["summary"],
                            "annotations": batch,
                        }
                    },
                )
            )
            pending = pending[len(batch) :]
        except TransientGitHubError as exc:
            if attempt == WRITE_TRIES:
                raise
            log.warn("check_run_write_retried", error=str(exc), attempt=attempt)
            await pause(_retry_pause_s(attempt))
            attempt += 1
            pending = await _missing(client, owner, repo, check_run_id, pending, calls)
    return data


async def _client(services: Services, repository: Repository) -> GitHubClient:
    return await services.github.client_for(repository.owner, repository.name, repository.installation_id)


async def check_run_current(services: Services, repository: Repository, run: WorkflowRun) -> bool:
    """Whether the head sha's check run was published after this run attempt's latest analysis.

    A `runs:analyze` job that is retried after its analysis was stored (a check-run write failed)
    skips the analysis but must still publish: this tells the two apart.
    """
    if run.analyzed_at is None or not run.head_sha:
        return False
    async with services.sessions() as session:
        published_at = (
            await session.execute(
                select(CheckRunRecord.updated_at).where(
                    CheckRunRecord.repository_id == repository.id, CheckRunRecord.head_sha == run.head_sha
                )
            )
        ).scalar_one_or_none()
    return published_at is not None and _aware(published_at) >= _aware(run.analyzed_at)


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


async def publish_run_check(
    services: Services, repository: Repository, run: WorkflowRun, *, priority: Priority = Priority.NORMAL
) -> dict[str, Any]:
    """Publishes the check run of one analysed run attempt; returns a small result for the job.

    Skipped (logged) without GitHub credentials or without a head sha (runs fed through the CLI).
    RateLimited and TransientGitHubError propagate (the job is delayed / retried: analysis is
    idempotent); other GitHub refusals (no permission, not installed, validation) are logged and
    reported in the result — the analysis itself stands.
    """
    where = {
        "repository": repository.full_name,
        "workflow_run_id": run.run_id,
        "run_attempt": run.run_attempt,
    }
    if not services.github.configured:
        log.info("check_run_skipped", reason="GitHub credentials are not configured", **where)
        return {"status": "skipped", "reason": "no GitHub credentials"}
    if not run.head_sha:
        log.info("check_run_skipped", reason="the run has no head sha", **where)
        return {"status": "skipped", "reason": "no head sha"}
    try:
        client = await _client(services, repository)
    except PermanentError as exc:
        log.warn("check_run_skipped", reason=str(exc), **where)
        return {"status": "skipped", "reason": str(exc)}
    if priority is Priority.LOW:
        client.ensure_budget(services.settings.github_rate_limit_reserve)
    async with services.sessions() as session:
        built = await build_run_report(session, repository, run)
        record = (
            await session.execute(
                select(CheckRunRecord).where(
                    CheckRunRecord.repository_id == repository.id, CheckRunRecord.head_sha == run.head_sha
                )
            )
        ).scalar_one_or_none()
        previous_id = record.check_run_id if record is not None else None
    try:
        published = await publish_or_update(
            client, repository.owner, repository.name, run.head_sha, built.report, check_run_id=previous_id
        )
    except (RateLimited, TransientGitHubError):
        raise
    except GitHubError as exc:
        log.warn("check_run_failed", status=exc.status, error=str(exc), **where)
        return {"status": "failed", "error": str(exc)}
    async with services.sessions.begin() as session:
        await upsert_rows(
            session,
            CheckRunRecord.__table__,  # type: ignore[arg-type]
            [
                {
                    "repository_id": repository.id,
                    "head_sha": run.head_sha,
                    "check_run_id": published.id,
                    "updated_at": utcnow(),
                }
            ],
            ["repository_id", "head_sha"],
        )
    log.info(
        "check_run_published",
        check_run_id=published.id,
        conclusion=published.conclusion,
        updated=previous_id == published.id,
        requests=published.requests,
        annotations=published.annotations,
        **where,
    )
    return {
        "status": "updated" if previous_id == published.id else "created",
        "id": published.id,
        "conclusion": published.conclusion,
        "annotations": published.annotations,
        "requests": published.requests,
    }


# --------------------------------------------------------------------------------------------
# the `Quarantine flaky` button


class QuarantineActionJob(WireModel):
    """`runs:analyze` job named `quarantine`: quarantine the known flaky tests that failed in one run
    attempt (what the check run's `Quarantine flaky` button offers), then re-publish its check run."""

    repository: RepositoryRef
    workflow_run_id: Annotated[int, Field(gt=0)]
    run_attempt: Annotated[int, Field(ge=1)] | None = None
    actor: Annotated[str, Field(min_length=1, max_length=255)]
    check_run_id: int | None = None
    delivery_id: str | None = None
    priority: Priority = Priority.HIGH
    correlation_id: str | None = None


async def find_run(
    session: AsyncSession, repository_id: int, run_id: int, attempt: int | None
) -> WorkflowRun | None:
    query = select(WorkflowRun).where(
        WorkflowRun.repository_id == repository_id, WorkflowRun.run_id == run_id
    )
    if attempt is not None:
        query = query.where(WorkflowRun.run_attempt == attempt)
    return (
        await session.execute(query.order_by(WorkflowRun.run_attempt.desc()).limit(1))
    ).scalar_one_or_none()


async def apply_quarantine_action(services: Services, job: QuarantineActionJob) -> dict[str, Any]:
    # Imported here: the quarantine module belongs to another part of the system and must not be
    # needed to import the worker.
    from flakeguard.pipeline.quarantine import quarantine_tests

    ref = job.repository
    async with services.sessions.begin() as session:
        repository = await get_repository(session, ref.owner, ref.repo)
        run = (
            await find_run(session, repository.id, job.workflow_run_id, job.run_attempt)
            if repository
            else None
        )
        if repository is None or run is None:
            raise PermanentError(
                f"workflow run {job.workflow_run_id} of {ref.full_name} has not been ingested"
            )
        built = await build_run_report(session, repository, run)
        changed = await quarantine_tests(
            session,
            repository.id,
            built.flaky_unquarantined,
            reason=f"quarantined from the FlakeGuard check run of run {run.run_id} ({run.head_sha[:7]})",
            actor=job.actor,
        )
    log.info(
        "quarantine_action",
        repository=ref.full_name,
        workflow_run_id=run.run_id,
        actor=job.actor,
        tests=len(built.flaky_unquarantined),
        changed=changed,
    )
    check = await publish_run_check(services, repository, run, priority=job.priority)
    return {
        "repository": ref.full_name,
        "workflowRunId": run.run_id,
        "runAttempt": run.run_attempt,
        "action": "quarantine",
        "quarantined": changed,
        "checkRun": check,
    }
