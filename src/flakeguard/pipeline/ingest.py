"""`runs:ingest`: fetch a workflow run's test-result artifacts, parse them, store every execution.

Flow: the run (and its attempt) from the REST API -> its artifacts, kept when their name looks like
test results and they were made during this attempt -> each ZIP spooled to a temporary file with
the download cap -> its reports read by the guarded archive reader in a worker thread, one report at
a time (a refused report keeps nothing of itself; the others are kept) -> every execution stored in
one transaction for the run attempt. Then `runs:analyze` is enqueued.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO, cast

from sqlalchemy.ext.asyncio import AsyncSession

from flakeguard.github.client import GitHubClient
from flakeguard.github.errors import ArtifactExpired, ArtifactTooLarge, NotFound
from flakeguard.jobs.errors import PermanentError, TransientError
from flakeguard.jobs.payloads import AnalysisConfigPayload, RunsAnalyzeJob, RunsIngestJob
from flakeguard.junit import ArchiveLimits, MemberReport, ParseLimits, Refusal, iter_artifact
from flakeguard.logging import get_logger
from flakeguard.metrics import JUNIT_REFUSED, TEST_EXECUTIONS_STORED
from flakeguard.pipeline.runs import (
    artifacts_of_attempt,
    is_test_artifact,
    metadata_mismatches,
    parse_time,
    run_info,
)
from flakeguard.services import Services
from flakeguard.store.repository import RunInfo, finish_run, record_run, store_executions, upsert_repository

log = get_logger("flakeguard.ingest")
SPOOL_IN_MEMORY = 8 * 1024 * 1024


@dataclass(slots=True)
class IngestResult:
    repository: str
    run_id: int
    run_attempt: int
    outcome: str = "ingested"
    artifacts: int = 0
    artifacts_expired: int = 0
    reports: int = 0
    executions: int = 0
    executions_new: int = 0
    tests: int = 0
    refused: list[Refusal] = field(default_factory=list)
    analyze_job_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "workflowRunId": self.run_id,
            "runAttempt": self.run_attempt,
            "outcome": self.outcome,
            "artifacts": self.artifacts,
            "artifactsExpired": self.artifacts_expired,
            "reports": self.reports,
            "executions": self.executions,
            "executionsNew": self.executions_new,
            "tests": self.tests,
            "refused": [asdict(r) for r in self.refused],
            "analyzeJobId": self.analyze_job_id,
        }


def archive_limits(services: Services) -> ArchiveLimits:
    s = services.settings
    return ArchiveLimits(
        max_download_bytes=s.max_artifact_bytes,
        max_members=s.max_zip_members,
        max_total_uncompressed_bytes=s.max_uncompressed_bytes,
        max_compression_ratio=s.max_compression_ratio,
    )


def parse_limits(services: Services) -> ParseLimits:
    return ParseLimits(max_output_bytes=services.settings.max_output_bytes)


async def _attempt_window(
    client: GitHubClient, owner: str, repo: str, run: dict[str, Any], attempt: int
) -> tuple[Any, Any]:
    """Start of this attempt and of the next one (None when this is the latest)."""
    latest = int(run.get("run_attempt") or 1)
    if attempt == latest:
        return parse_time(run.get("run_started_at")), None
    this = await client.get_workflow_run(owner, repo, int(run["id"]), attempt)
    following = await client.get_workflow_run(owner, repo, int(run["id"]), attempt + 1)
    return parse_time(this.get("run_started_at")), parse_time(following.get("run_started_at"))


async def ingest_run(services: Services, job: RunsIngestJob) -> IngestResult:
    ref = job.repository
    client = await services.github.client_for(ref.owner, ref.repo, ref.installation_id)
    requested_attempt = job.metadata.run_attempt if job.metadata else None
    try:
        run = await client.get_workflow_run(ref.owner, ref.repo, job.workflow_run_id)
    except NotFound:
        raise PermanentError(f"workflow run {job.workflow_run_id} of {ref.full_name} not found") from None
    if run.get("status") not in (None, "completed"):
        raise TransientError(f"workflow run {job.workflow_run_id} is {run.get('status')}, not completed yet")
    attempt = requested_attempt or int(run.get("run_attempt") or 1)
    if attempt != int(run.get("run_attempt") or 1):
        run_for_attempt = await client.get_workflow_run(ref.owner, ref.repo, job.workflow_run_id, attempt)
    else:
        run_for_attempt = run
    info = run_info(run_for_attempt, attempt)
    result = IngestResult(repository=ref.full_name, run_id=info.run_id, run_attempt=info.run_attempt)
    kept = checked_metadata(job, run_for_attempt)

    patterns = [p.strip() for p in services.settings.artifact_name_patterns.split(",") if p.strip()]
    listed = await client.list_run_artifacts(ref.owner, ref.repo, job.workflow_run_id)
    started, next_started = await _attempt_window(client, ref.owner, ref.repo, run, attempt)
    artifacts = [
        a for a in artifacts_of_attempt(listed, started, next_started) if is_test_artifact(a, patterns)
    ]
    result.artifacts = len(artifacts)

    limits = (archive_limits(services), parse_limits(services))
    async with services.sessions.begin() as session:
        repository = await upsert_repository(
            session, ref.owner, ref.repo, installation_id=ref.installation_id
        )
        run_row = await record_run(session, repository.id, info, kept)
        for artifact in artifacts:
            if artifact.get("expired"):
                result.artifacts_expired += 1
                continue
            try:
                with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
                    await client.download_artifact_to(
                        ref.owner,
                        ref.repo,
                        int(artifact["id"]),
                        spool,
                        max_bytes=services.settings.max_artifact_bytes,
                        expected_size=artifact.get("size_in_bytes"),
                        expected_digest=artifact.get("digest"),
                    )
                    spool.seek(0)
                    await _store_artifact(
                        session,
                        repository.id,
                        run_row,
                        str(artifact["name"]),
                        cast(BinaryIO, spool),
                        limits,
                        result,
                    )
            except ArtifactExpired:
                result.artifacts_expired += 1
            except ArtifactTooLarge as exc:
                refuse(
                    result,
                    Refusal(
                        artifact=str(artifact["name"]),
                        member=None,
                        line=None,
                        reason_code="too_large",
                        message=str(exc),
                    ),
                )
        if result.artifacts and result.artifacts_expired == result.artifacts:
            result.outcome = "artifact expired"
        elif not result.artifacts:
            result.outcome = "no test artifacts"
        result.tests, _, _ = await finish_run(
            session, run_row, outcome=result.outcome, files_refused=len(result.refused)
        )
    TEST_EXECUTIONS_STORED.inc(result.executions_new)
    if result.executions:
        analyze = RunsAnalyzeJob(
            workflow_run_id=info.run_id,
            repository=ref,
            run_attempt=info.run_attempt,
            analysis_config=AnalysisConfigPayload(),
            priority=job.priority,
            correlation_id=job.correlation_id,
            metadata=job.metadata,
        )
        analyze_job = await services.producer.analyze(analyze)
        result.analyze_job_id = analyze_job.id
    log.info(
        "run_ingested",
        **{k: v for k, v in result.as_dict().items() if k != "refused"},
        refused=len(result.refused),
    )
    return result


def checked_metadata(job: RunsIngestJob, run: dict[str, Any]) -> dict[str, Any] | None:
    """The job's `metadata` as sent, with the fields GitHub's run contradicts (GitHub's values win)."""
    if job.metadata is None:
        return None
    sent = job.metadata.to_wire()
    mismatches = metadata_mismatches(sent, run)
    if mismatches:
        log.warn("run_metadata_mismatch", fields=sorted(mismatches), mismatches=mismatches)
    return {**sent, "mismatches": mismatches}


def refuse(result: IngestResult, refusal: Refusal) -> None:
    """Record a refused archive or report: in the result, the metric and the log."""
    result.refused.append(refusal)
    JUNIT_REFUSED.labels(refusal.reason_code).inc()
    log.warn(
        "junit_refused",
        artifact=refusal.artifact,
        member=refusal.member,
        line=refusal.line,
        reason=refusal.reason_code,
        error=refusal.message,
    )


async def _store_artifact(
    session: AsyncSession,
    repository_id: int,
    run_row: int,
    artifact: str,
    archive: BinaryIO,
    limits: tuple[ArchiveLimits, ParseLimits],
    result: IngestResult,
) -> None:
    """Store the artifact report by report; the CPU-bound reading runs in a thread."""
    reports = iter_artifact(archive, artifact=artifact, archive_limits=limits[0], parse_limits=limits[1])
    await store_reports(session, repository_id, run_row, reports, result)


async def store_reports(
    session: AsyncSession,
    repository_id: int,
    run_row: int,
    reports: Iterator[MemberReport | Refusal],
    result: IngestResult,
) -> None:
    """Pull reports (from `iter_artifact`, or plain files read by `read_report`) in a worker thread,
    one at a time, storing each accepted one and counting each refusal; shared with local ingest."""
    while (item := await asyncio.to_thread(next, reports, None)) is not None:
        if isinstance(item, Refusal):
            refuse(result, item)
            continue
        assert isinstance(item, MemberReport)
        counts = await store_executions(
            session, repository_id, run_row, ((item.source, e) for e in item.executions)
        )
        result.reports += 1
        result.executions += counts.executions_seen
        result.executions_new += counts.executions_inserted


__all__ = ["IngestResult", "RunInfo", "ingest_run", "refuse", "store_reports"]
