"""What a verified GitHub webhook delivery turns into: queue jobs and repository tracking.

Called by `POST /webhooks/github` (server/webhooks.py) after the signature check, JSON parsing and
delivery dedup. Everything here is quick — jobs are enqueued, never run — so GitHub gets its answer
well within its 10 s:

* `workflow_run` `completed` → `runs:ingest` (push to the default branch: `high`; pull requests and
  the rest: `normal`), job id `ingest-owner-repo-run-attempt`, so polling and redeliveries dedup;
* `installation` / `installation_repositories` → repositories upserted with their installation id
  and marked active, or marked inactive when removed, suspended or uninstalled;
* `check_run` `requested_action` `reanalyze` (or `rerequested`) → `runs:analyze` for the run named by
  the check run's `external_id`; `quarantine` → the `quarantine` job on `runs:analyze`;
* `ping` → pong; anything else is acknowledged and ignored.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update

from flakeguard.github.checks import ACTION_QUARANTINE, ACTION_REANALYZE, CHECK_NAME
from flakeguard.github.webhooks import ingest_priority, parse_workflow_run_completed
from flakeguard.jobs.names import Priority, QueueName
from flakeguard.jobs.payloads import (
    PollingJob,
    RepositoryRef,
    RunMetadata,
    RunsAnalyzeJob,
    RunsIngestJob,
)
from flakeguard.jobs.producer import safe_id
from flakeguard.logging import get_logger
from flakeguard.pipeline.checks import QUARANTINE_JOB_NAME, QuarantineActionJob, parse_external_id
from flakeguard.services import Services
from flakeguard.store.models import Repository, WorkflowRun
from flakeguard.store.repository import get_repository, upsert_repository

log = get_logger("flakeguard.webhooks")

KNOWN_EVENTS = frozenset({"workflow_run", "installation", "installation_repositories", "check_run", "ping"})


class BadDelivery(ValueError):
    """A signed delivery whose payload lacks what its event documents (answered 400)."""


@dataclass(slots=True)
class Outcome:
    status_code: int
    status: str
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def body(self) -> dict[str, Any]:
        return {"status": self.status, **self.detail}


def _ignored(reason: str) -> Outcome:
    return Outcome(202, "ignored", {"reason": reason})


async def handle_delivery(
    services: Services, event: str | None, payload: dict[str, Any], delivery_id: str | None
) -> Outcome:
    """Routes one verified delivery. Raises BadDelivery for a payload that lacks documented fields."""
    try:
        if event == "ping":
            return Outcome(200, "pong")
        if event == "workflow_run":
            return await _workflow_run(services, payload, delivery_id)
        if event in ("installation", "installation_repositories"):
            return await _installation(services, event, payload, delivery_id)
        if event == "check_run":
            return await _check_run(services, payload, delivery_id)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:  # ValidationError is a ValueError
        raise BadDelivery(f"{event} payload: {type(exc).__name__}: {str(exc)[:200]}") from None
    return _ignored(f"event {event or '(none)'} is not used")


# -- workflow_run --------------------------------------------------------------------------------


async def _workflow_run(services: Services, payload: dict[str, Any], delivery_id: str | None) -> Outcome:
    run = parse_workflow_run_completed("workflow_run", payload)
    if run is None:
        return _ignored(f"workflow_run action {payload.get('action')!r} is not used")
    job = RunsIngestJob(
        workflow_run_id=run.workflow_run_id,
        repository=RepositoryRef(owner=run.owner, repo=run.repo, installation_id=run.installation_id),
        priority=Priority(ingest_priority(run)),
        correlation_id=delivery_id,
        metadata=RunMetadata(
            run_attempt=run.run_attempt,
            head_sha=run.head_sha,
            head_branch=run.head_branch,
            event=run.event,
            conclusion=run.conclusion,
            run_status="completed",
            triggered_by="webhook",
            delivery_id=delivery_id,
        ),
    )
    added = await services.producer.ingest(job)
    log.info(
        "webhook_run_enqueued",
        delivery_id=delivery_id,
        repository=job.repository.full_name,
        workflow_run_id=run.workflow_run_id,
        run_attempt=run.run_attempt,
        priority=job.priority.value,
        job_id=added.id,
    )
    return Outcome(202, "enqueued", {"queue": QueueName.RUNS_INGEST.value, "jobId": added.id})


# -- installation / installation_repositories ---------------------------------------------------


def _repo_ref(item: dict[str, Any], installation_id: int, fallback_owner: str | None) -> RepositoryRef | None:
    full_name = str(item.get("full_name") or "")
    owner, _, name = full_name.partition("/")
    if not name:
        owner, name = fallback_owner or "", str(item.get("name") or "")
    try:
        return RepositoryRef(owner=owner, repo=name, installation_id=installation_id)
    except ValueError:
        log.warn("webhook_repository_skipped", reason="unusable repository name")
        return None


async def _track(services: Services, refs: Iterable[RepositoryRef]) -> list[str]:
    names = []
    async with services.sessions.begin() as session:
        for ref in refs:
            repo = await upsert_repository(session, ref.owner, ref.repo, installation_id=ref.installation_id)
            repo.active = True
            names.append(ref.full_name)
    return names


async def _untrack(services: Services, refs: Iterable[RepositoryRef]) -> list[str]:
    names = []
    async with services.sessions.begin() as session:
        for ref in refs:
            if await get_repository(session, ref.owner, ref.repo) is None:
                continue
            await session.execute(
                update(Repository)
                .where(Repository.owner == ref.owner, Repository.name == ref.repo)
                .values(active=False)
            )
            names.append(ref.full_name)
    return names


async def _untrack_installation(services: Services, installation_id: int) -> list[str]:
    async with services.sessions.begin() as session:
        rows = await session.execute(
            select(Repository.owner, Repository.name).where(Repository.installation_id == installation_id)
        )
        names = [f"{o}/{n}" for o, n in rows.all()]
        await session.execute(
            update(Repository).where(Repository.installation_id == installation_id).values(active=False)
        )
    return names


async def _backfill(services: Services, refs: list[RepositoryRef], delivery_id: str | None) -> None:
    """New repositories get one low-priority poll, so recent runs are not missed."""
    if not services.settings.polling_enabled:
        return
    for ref in refs:
        await services.producer.poll(
            PollingJob(type="poll_repository", repository=ref),
            job_id=safe_id("poll", ref.owner, ref.repo, "installed", delivery_id or uuid.uuid4().hex),
        )


async def _installation(
    services: Services, event: str, payload: dict[str, Any], delivery_id: str | None
) -> Outcome:
    action = str(payload.get("action") or "")
    installation = payload["installation"]
    installation_id = int(installation["id"])
    account = (installation.get("account") or {}).get("login")
    added_items: list[dict[str, Any]] = []
    removed_items: list[dict[str, Any]] = []
    if event == "installation":
        if action in ("deleted", "suspend"):
            removed = await _untrack_installation(services, installation_id)
            log.info(
                "webhook_installation", action=action, installation_id=installation_id, removed=len(removed)
            )
            return Outcome(200, "tracked", {"action": action, "added": [], "removed": removed})
        if action in ("created", "unsuspend", "new_permissions_accepted"):
            added_items = list(payload.get("repositories") or [])
        else:
            return _ignored(f"installation action {action!r} is not used")
    else:
        if action not in ("added", "removed"):
            return _ignored(f"installation_repositories action {action!r} is not used")
        added_items = list(payload.get("repositories_added") or [])
        removed_items = list(payload.get("repositories_removed") or [])
    added_refs = [r for r in (_repo_ref(i, installation_id, account) for i in added_items) if r is not None]
    removed_refs = [
        r for r in (_repo_ref(i, installation_id, account) for i in removed_items) if r is not None
    ]
    added = await _track(services, added_refs)
    removed = await _untrack(services, removed_refs)
    if action == "unsuspend":
        async with services.sessions.begin() as session:
            await session.execute(
                update(Repository).where(Repository.installation_id == installation_id).values(active=True)
            )
    await _backfill(services, added_refs, delivery_id)
    log.info(
        "webhook_installation",
        github_event=event,
        action=action,
        installation_id=installation_id,
        added=len(added),
        removed=len(removed),
    )
    return Outcome(200, "tracked", {"action": action, "added": added, "removed": removed})


# -- check_run -----------------------------------------------------------------------------------


async def _run_of_check(
    services: Services, owner: str, repo: str, check_run: dict[str, Any]
) -> tuple[int, int | None] | None:
    """(run id, attempt) the check run reports on: its external_id, else the newest stored run of its sha."""
    ref = parse_external_id(check_run.get("external_id"))
    if ref is not None and (ref.owner, ref.repo) == (owner, repo):
        return ref.run_id, ref.attempt
    head_sha = str(check_run.get("head_sha") or "")
    async with services.sessions() as session:
        repository = await get_repository(session, owner, repo)
        if repository is None or not head_sha:
            return None
        row = (
            await session.execute(
                select(WorkflowRun.run_id, WorkflowRun.run_attempt)
                .where(WorkflowRun.repository_id == repository.id, WorkflowRun.head_sha == head_sha)
                .order_by(WorkflowRun.started_at.desc(), WorkflowRun.run_attempt.desc())
                .limit(1)
            )
        ).first()
    return (int(row[0]), int(row[1])) if row is not None else None


async def _check_run(services: Services, payload: dict[str, Any], delivery_id: str | None) -> Outcome:
    action = str(payload.get("action") or "")
    check_run = payload["check_run"]
    if check_run.get("name") != CHECK_NAME:
        return _ignored("not a FlakeGuard check run")
    if action == "requested_action":
        identifier = str((payload.get("requested_action") or {}).get("identifier") or "")
    elif action == "rerequested":
        identifier = ACTION_REANALYZE
    else:
        return _ignored(f"check_run action {action!r} is not used")
    if identifier not in (ACTION_REANALYZE, ACTION_QUARANTINE):
        return _ignored(f"unknown requested action {identifier[:20]!r}")
    repository = payload["repository"]
    owner, repo = str(repository["owner"]["login"]), str(repository["name"])
    installation_id = (payload.get("installation") or {}).get("id")
    ref = RepositoryRef(
        owner=owner, repo=repo, installation_id=int(installation_id) if installation_id else None
    )
    found = await _run_of_check(services, owner, repo, check_run)
    if found is None:
        return _ignored("the check run's workflow run is not known")
    run_id, attempt = found
    actor = str((payload.get("sender") or {}).get("login") or "unknown")
    unique = delivery_id or uuid.uuid4().hex
    if identifier == ACTION_REANALYZE:
        job = RunsAnalyzeJob(
            workflow_run_id=run_id,
            repository=ref,
            run_attempt=attempt,
            force_recompute=True,
            priority=Priority.HIGH,
            correlation_id=delivery_id,
            metadata=RunMetadata(
                run_attempt=attempt,
                head_sha=check_run.get("head_sha"),
                triggered_by="webhook",
                delivery_id=delivery_id,
            ),
        )
        # Not the standard analyze id: a kept completed analyze job would swallow the request.
        added = await services.producer.analyze(
            job, job_id=safe_id("reanalyze", owner, repo, run_id, attempt, unique)
        )
    else:
        action_job = QuarantineActionJob(
            repository=ref,
            workflow_run_id=run_id,
            run_attempt=attempt,
            actor=actor,
            check_run_id=int(check_run["id"]) if check_run.get("id") else None,
            delivery_id=delivery_id,
            correlation_id=delivery_id,
        )
        added = await services.producer.add(
            QueueName.RUNS_ANALYZE,
            QUARANTINE_JOB_NAME,
            action_job,
            safe_id("quarantine", owner, repo, run_id, attempt, unique),
        )
    log.info(
        "webhook_check_action",
        delivery_id=delivery_id,
        action=identifier,
        repository=ref.full_name,
        workflow_run_id=run_id,
        run_attempt=attempt,
        actor=actor,
        job_id=added.id,
    )
    return Outcome(
        202, "enqueued", {"queue": QueueName.RUNS_ANALYZE.value, "jobId": added.id, "action": identifier}
    )
