"""Scoring tests: load their observations, run the pure analysis core, store verdicts and quarantine.

Used by `runs:analyze` (the tests of one run) and `tests:recompute` (batches of a repository's
tests). One call handles one batch in the caller's transaction, so a recompute can commit per batch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from flakeguard.analysis import (
    AnalysisConfig,
    Observation,
    PreviousState,
    QuarantineAction,
    QuarantineOrigin,
    QuarantineState,
    Status,
    TestAnalysis,
    analyze_test,
    decide_quarantine,
)
from flakeguard.config import Settings
from flakeguard.jobs.payloads import AnalysisConfigPayload
from flakeguard.model import Outcome
from flakeguard.store.models import (
    FlakinessResult,
    Quarantine,
    QuarantineEvent,
    Repository,
    TestExecution,
    WorkflowRun,
)
from flakeguard.store.repository import chunked, upsert_rows


def analysis_config(
    settings: Settings, repository: Repository, payload: AnalysisConfigPayload | None = None
) -> AnalysisConfig:
    payload = payload or AnalysisConfigPayload()
    return AnalysisConfig(
        lookback_days=payload.lookback_days,
        min_runs_threshold=payload.min_runs_threshold,
        flakiness_threshold=payload.flakiness_threshold,
        infra_failure_share=settings.infra_failure_share,
        protected_branches=tuple(p.strip() for p in settings.protected_branches.split(",") if p.strip()),
        default_branch=repository.default_branch,
        quarantine_confidence_floor=settings.quarantine_confidence_floor,
        quarantine_quiet_days=settings.quarantine_quiet_days,
    )


async def load_observations(
    session: AsyncSession, test_ids: Sequence[int], since: datetime
) -> dict[int, list[Observation]]:
    """Observations per test since `since`. Executions of one test in one run attempt are numbered
    0, 1, ... by (source, ordinal), so shards and reruns read as in-run retries."""
    raw: dict[tuple[int, int], list[tuple[str, int, Outcome, WorkflowRun]]] = defaultdict(list)
    for part in chunked(test_ids, 900):
        result = await session.execute(
            select(TestExecution.test_case_id, TestExecution.source, TestExecution.ordinal,
                   TestExecution.outcome, WorkflowRun)
            .join(WorkflowRun, WorkflowRun.id == TestExecution.workflow_run_id)
            .where(TestExecution.test_case_id.in_(part), WorkflowRun.started_at >= since)
        )
        for test_id, source, ordinal, outcome, run in result.all():
            raw[(int(test_id), run.id)].append((source, ordinal, Outcome(outcome), run))
    observations: dict[int, list[Observation]] = defaultdict(list)
    for (test_id, _), rows in raw.items():
        rows.sort(key=lambda r: (r[0], r[1]))
        for index, (_, _, outcome, run) in enumerate(rows):
            share = run.tests_failed / run.tests_total if run.tests_total else 0.0
            observations[test_id].append(
                Observation(
                    outcome=outcome, started_at=run.started_at, head_sha=run.head_sha, branch=run.branch,
                    run_id=run.run_id, run_attempt=run.run_attempt, ordinal=index,
                    run_failure_share=min(max(share, 0.0), 1.0),
                )
            )
    return observations


@dataclass(slots=True)
class ScoringSummary:
    tests: int = 0
    by_status: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    quarantined: int = 0
    released: int = 0
    analyses: dict[int, TestAnalysis] = field(default_factory=dict)

    def merge(self, other: ScoringSummary) -> None:
        self.tests += other.tests
        for status, count in other.by_status.items():
            self.by_status[status] += count
        self.quarantined += other.quarantined
        self.released += other.released

    def as_dict(self) -> dict[str, int]:
        return {"tests": self.tests, "quarantined": self.quarantined, "released": self.released,
                **{f"status_{k}": v for k, v in sorted(self.by_status.items())}}


async def score_tests(
    session: AsyncSession,
    repository: Repository,
    test_ids: Sequence[int],
    config: AnalysisConfig,
    now: datetime,
    *,
    update_quarantine: bool,
    keep_analyses: bool = False,
) -> ScoringSummary:
    summary = ScoringSummary()
    if not test_ids:
        return summary
    observations = await load_observations(session, test_ids, now - timedelta(days=config.lookback_days))
    previous = {
        r.test_case_id: r
        for r in (
            await session.execute(select(FlakinessResult).where(FlakinessResult.test_case_id.in_(test_ids)))
        ).scalars()
    }
    quarantine = {}
    if update_quarantine:
        quarantine = {
            q.test_case_id: q
            for q in (await session.execute(select(Quarantine).where(Quarantine.test_case_id.in_(test_ids))))
            .scalars()
        }
    results: list[dict[str, Any]] = []
    for test_id in sorted(test_ids):
        prior = previous.get(test_id)
        prev_state = (
            PreviousState(status=Status(prior.status), statistically_flaky=prior.statistically_flaky)
            if prior is not None else None
        )
        analysis = analyze_test(observations.get(test_id, []), config, prev_state, now)
        verdict = analysis.verdict
        remembered_evidence = prior.last_flaky_evidence_at if prior is not None else None
        last_evidence = max(
            (t for t in (remembered_evidence, verdict.last_flaky_evidence_at) if t is not None), default=None
        )
        score = analysis.score
        values = dict(
            repository_id=repository.id, computed_at=now, lookback_days=config.lookback_days,
            executions=analysis.executions, failures=analysis.failures, failure_rate=analysis.failure_rate,
            inconsistency=score.inconsistency if score else None, recency=score.recency if score else None,
            branch_diversity=score.branch_diversity if score else None, score=score.score if score else None,
            original_flaky=bool(score and score.is_flaky), status=verdict.status.value,
            statistically_flaky=verdict.statistically_flaky, confidence=verdict.confidence,
            failure_probability=verdict.failure_probability, impact=analysis.impact,
            evidence={"reason": verdict.reason, "items": verdict.evidence_json()},
            last_failure_at=analysis.last_failure_at, last_flaky_evidence_at=last_evidence,
        )
        results.append({"test_case_id": test_id, **values})
        summary.tests += 1
        summary.by_status[verdict.status.value] += 1
        if keep_analyses:
            summary.analyses[test_id] = analysis
        if update_quarantine:
            changed = _apply_quarantine(
                session, repository.id, test_id, quarantine.get(test_id), verdict, config, now, last_evidence
            )
            if changed == QuarantineAction.QUARANTINE:
                summary.quarantined += 1
            elif changed == QuarantineAction.RELEASE:
                summary.released += 1
    await upsert_rows(session, FlakinessResult.__table__, results, ["test_case_id"])  # type: ignore[arg-type]
    await session.flush()
    return summary


def _apply_quarantine(
    session: AsyncSession,
    repository_id: int,
    test_id: int,
    row: Quarantine | None,
    verdict: object,
    config: AnalysisConfig,
    now: datetime,
    last_evidence: datetime | None,
) -> QuarantineAction:
    current = (
        QuarantineState(
            quarantined=row.quarantined,
            origin=QuarantineOrigin.AUTO if row.automatic else QuarantineOrigin.MANUAL,
            since=row.since, reason=row.reason, actor=row.actor,
        )
        if row is not None else None
    )
    decision = decide_quarantine(verdict, current, config, now, last_evidence)  # type: ignore[arg-type]
    if not decision.changed:
        return decision.action
    automatic = decision.origin is QuarantineOrigin.AUTO
    if row is None:
        session.add(Quarantine(test_case_id=test_id, repository_id=repository_id, quarantined=decision.quarantined,
                               automatic=automatic, since=now, reason=decision.reason, actor=decision.actor))
    else:
        row.quarantined = decision.quarantined
        row.automatic = automatic
        row.since = now
        row.reason = decision.reason
        row.actor = decision.actor
    session.add(QuarantineEvent(test_case_id=test_id, action=decision.action.value, automatic=automatic,
                                reason=decision.reason, actor=decision.actor, at=now))
    return decision.action
