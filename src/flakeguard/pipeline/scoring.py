"""Scoring tests: load their histories, run the pure analysis core, store verdicts and quarantine.

Used by `runs:analyze` (the tests of one run) and `tests:recompute` (batches of a repository's
tests). One call scores one batch in the caller's transaction, so a recompute can commit per batch.

How it stays fast (see docs/PERFORMANCE.md, "Recompute"):

* **One aggregate query per batch.** On PostgreSQL each test's history within the lookback arrives
  as one row: `array_send(array_agg(run << 12 | ordinal << 8 | outcome letter))`, one bytes object
  per test. No ORM objects, no per-execution rows or ints in Python until a history is analysed; the
  run context (sha, branch, start, failure share) is loaded once per repository and shared by every
  observation of that run attempt.
* **Identical histories are analysed once.** `analyze_test` is pure in (observations, config,
  previous state, now), and observations are fully determined by the run attempts and outcomes, so
  the encoded history plus the previous state is an exact cache key (`AnalysisMemo`). In a real
  suite most tests run in every run and pass, so most histories are shared.
* **One write per batch.** On PostgreSQL the results are upserted with a single
  `INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO UPDATE`.
* **No process pool.** Measured on the 2-core benchmark machine (bench/bench_recompute.py, 20,000
  tests, 1,735 distinct histories): after the analysis core's rewrite `analyze_test` costs ~0.15 ms
  per history, ~0.25 s of a ~1.0 s recompute, while the recompute already keeps both cores busy
  (~0.65 s Python CPU + ~1.3 s PostgreSQL CPU per recompute: fetching, upserting). A pool has no
  idle core to run on and would add pickling of observations and results; not added. Nor did
  writing one batch while analysing the next pay (tried: median 1.39 s with it, 1.36 s without): the
  machine is CPU-bound, not latency-bound.

SQLite (the embedded default) takes the portable path: one ordered row query and `upsert_rows`.
"""

from __future__ import annotations

import json
import struct
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
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
    Verdict,
    analyze_test,
    decide_quarantine,
    within_lookback,
)
from flakeguard.config import Settings
from flakeguard.jobs.payloads import AnalysisConfigPayload
from flakeguard.metrics import tests_scored
from flakeguard.model import Outcome
from flakeguard.pipeline.quarantine import lock_quarantine_rows
from flakeguard.store.models import (
    FlakinessResult,
    Quarantine,
    QuarantineEvent,
    Repository,
    TestExecution,
    WorkflowRun,
)
from flakeguard.store.repository import chunked, upsert_rows

# An execution is one int: workflow_runs.id << 12 | min(ordinal, 15) << 8 | the outcome's first letter
# (ascii(): cheaper in PostgreSQL than a CASE over the text).
_OUTCOME_CODE = {outcome: ord(outcome.value[0]) for outcome in Outcome}
_CODE_OUTCOME = {code: outcome for outcome, code in _OUTCOME_CODE.items()}
assert len(_CODE_OUTCOME) == len(Outcome)


def analysis_config(
    settings: Settings, repository: Repository, payload: AnalysisConfigPayload | None = None
) -> AnalysisConfig:
    payload = payload or AnalysisConfigPayload()
    return AnalysisConfig(
        lookback_days=payload.lookback_days,
        min_runs_threshold=payload.min_runs_threshold,
        flakiness_threshold=payload.flakiness_threshold,
        infra_failure_share=settings.infra_failure_share,
        activation_failure_rate=settings.flaky_activation_rate,
        resolution_failure_rate=settings.flaky_resolution_rate,
        min_statistical_sample=settings.flaky_min_sample,
        cross_run_evidence_on_unprotected=settings.cross_run_evidence_on_feature_branches,
        protected_branches=tuple(p.strip() for p in settings.protected_branches.split(",") if p.strip()),
        default_branch=repository.default_branch,
        quarantine_confidence_floor=settings.quarantine_confidence_floor,
        quarantine_quiet_days=settings.quarantine_quiet_days,
    )


# ------------------------------------------------------------------------------------ loading


@dataclass(frozen=True, slots=True)
class RunContext:
    """What every observation of one run attempt shares."""

    started_at: datetime
    head_sha: str
    branch: str | None
    run_id: int
    run_attempt: int
    failure_share: float


class RunCache:
    """Run attempts of one repository by workflow_runs.id, loaded once per recompute."""

    def __init__(self, repository_id: int, since: datetime) -> None:
        self.repository_id = repository_id
        self.since = since
        self.runs: dict[int, RunContext] = {}
        self.observations: dict[int, Observation] = {}
        self._loaded = False
        self._covered: set[bytes | tuple[int, ...]] = set()  # history keys whose run attempts are here

    async def _load(self, session: AsyncSession, ids: Sequence[int] | None) -> None:
        query = select(
            WorkflowRun.id,
            WorkflowRun.started_at,
            WorkflowRun.head_sha,
            WorkflowRun.branch,
            WorkflowRun.run_id,
            WorkflowRun.run_attempt,
            WorkflowRun.tests_total,
            WorkflowRun.tests_failed,
        ).where(WorkflowRun.repository_id == self.repository_id)
        if ids is None:
            query = query.where(WorkflowRun.started_at >= self.since)
        else:
            query = query.where(WorkflowRun.id.in_(list(ids)))
        for row_id, started, sha, branch, run_id, attempt, total, failed in (
            await session.execute(query)
        ).all():
            share = failed / total if total else 0.0
            self.runs[int(row_id)] = RunContext(
                started_at=started,
                head_sha=sha,
                branch=branch,
                run_id=int(run_id),
                run_attempt=int(attempt),
                failure_share=min(max(share, 0.0), 1.0),
            )

    async def ensure(self, session: AsyncSession, ids: Iterable[int]) -> None:
        """Load the window on first use, then any run attempt ingested since (by id)."""
        if not self._loaded:
            await self._load(session, None)
            self._loaded = True
        missing = {i for i in ids if i not in self.runs}
        for part in chunked(sorted(missing), 900):
            await self._load(session, part)

    async def ensure_histories(self, session: AsyncSession, histories: Iterable[TestHistory]) -> None:
        """`ensure` the run attempts of these histories; a history already seen is not decoded again."""
        new = {h.key: h for h in histories if h.key not in self._covered}
        await self.ensure(session, run_rows_of(code for h in new.values() for code in h.codes))
        self._covered.update(new)


@dataclass(frozen=True, slots=True)
class TestHistory:
    """One test's executions in the window, encoded (`encode`).

    `key` is the history as fetched: on PostgreSQL the raw binary `int8[]` (`array_send`, in the
    order PostgreSQL aggregated it: no per-execution Python int is made unless the history has to be
    analysed), elsewhere the sorted codes. Equal keys mean equal histories, so `key` is what the
    memo compares; two keys of the same executions in another order only cost a second analysis.

    `codes` are the codes sorted: by run attempt row, then by ordinal within it (executions of one
    attempt from different report files tie on ordinal; the tie is broken by outcome code, which is
    deterministic — which of them is "newer" is undefined anyway)."""

    __test__ = False

    test_case_id: int
    key: bytes | tuple[int, ...]

    @property
    def codes(self) -> tuple[int, ...]:
        key = self.key
        return key if isinstance(key, tuple) else tuple(sorted(decode_int8_array(key)))


def decode_int8_array(raw: bytes) -> tuple[int, ...]:
    """The elements of a one-dimensional, NULL-free `int8[]` in PostgreSQL's binary format
    (`array_send`): ndim, has-nulls flag, element type, then (length, lower bound) per dimension, then
    (byte length, value) per element, all big-endian."""
    ndim, has_nulls = struct.unpack_from(">ii", raw)
    if ndim == 0:
        return ()
    if ndim != 1 or has_nulls:
        raise ValueError("expected a one-dimensional int8[] without NULLs")
    (length,) = struct.unpack_from(">i", raw, 12)
    return struct.unpack_from(">" + "iq" * length, raw, 20)[1::2]


_RUN_SHIFT = 12


def encode(run_row: int, ordinal: int, outcome: Outcome) -> int:
    return run_row << _RUN_SHIFT | min(ordinal, 15) << 8 | _OUTCOME_CODE[outcome]


def run_rows_of(codes: Iterable[int]) -> set[int]:
    return {code >> _RUN_SHIFT for code in codes}


def observations_of(
    codes: Sequence[int], runs: dict[int, RunContext], cache: dict[int, Observation] | None = None
) -> list[Observation]:
    """Observations from sorted codes; in one run attempt they are numbered 0, 1, ... (retries).

    Observations are immutable, so one object per (run attempt, ordinal, outcome) is shared through `cache`.
    """
    cache = {} if cache is None else cache
    observations: list[Observation] = []
    previous_run = -1
    ordinal = 0
    for code in codes:
        run_row = code >> _RUN_SHIFT
        ordinal = ordinal + 1 if run_row == previous_run else 0
        previous_run = run_row
        key = run_row << 14 | min(ordinal, 63) << 8 | code & 255
        obs = cache.get(key)
        if obs is None or obs.ordinal != ordinal:
            run = runs[run_row]
            obs = Observation(
                outcome=_CODE_OUTCOME[code & 255],
                started_at=run.started_at,
                head_sha=run.head_sha,
                branch=run.branch,
                run_id=run.run_id,
                run_attempt=run.run_attempt,
                ordinal=ordinal,
                run_failure_share=run.failure_share,
            )
            if ordinal < 63:
                cache[key] = obs
        observations.append(obs)
    return observations


# PostgreSQL gives << and | the same precedence: keep the parentheses. The aggregate is unordered:
# sorting ~50 small ints per test in Python is cheaper than PostgreSQL's per-group sort of an ordered
# aggregate (measured: 0.85 s -> 0.45 s for 1M executions), and it is only done for the histories that
# are analysed. `array_send` gives the array's binary form as bytea: the same bytes PostgreSQL sends for
# an int8[] anyway, but asyncpg hands them over as one bytes object instead of decoding ~50 Python ints
# per test (1M per full recompute, ~0.1 s), and bytes are the memo's key as they come.
_PG_HISTORIES = f"""
SELECT e.test_case_id,
       array_send(array_agg(
           (e.workflow_run_id << {_RUN_SHIFT}) | (least(e.ordinal, 15) << 8) | ascii(e.outcome)
       ))
FROM test_executions e
JOIN workflow_runs r ON r.id = e.workflow_run_id
WHERE e.test_case_id = ANY($1::bigint[]) AND r.started_at >= $2
GROUP BY e.test_case_id
"""


def _is_postgres(session: AsyncSession) -> bool:
    return session.bind.dialect.name == "postgresql"


async def _asyncpg(session: AsyncSession) -> Any:
    """The asyncpg connection under the session (same transaction)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection


async def load_histories(
    session: AsyncSession, test_ids: Sequence[int], since: datetime
) -> dict[int, TestHistory]:
    """Histories since `since` of the tests that have executions in the window."""
    histories: dict[int, TestHistory] = {}
    if _is_postgres(session):
        conn = await _asyncpg(session)
        for test_id, raw in await conn.fetch(_PG_HISTORIES, list(test_ids), since):
            histories[test_id] = TestHistory(test_id, raw)
        return histories
    grouped: dict[int, list[int]] = defaultdict(list)
    for part in chunked(test_ids, 900):
        result = await session.execute(
            select(
                TestExecution.test_case_id,
                TestExecution.workflow_run_id,
                TestExecution.ordinal,
                TestExecution.outcome,
            )
            .join(WorkflowRun, WorkflowRun.id == TestExecution.workflow_run_id)
            .where(TestExecution.test_case_id.in_(part), WorkflowRun.started_at >= since)
        )
        for test_id, run_row, ordinal, outcome in result.all():
            grouped[int(test_id)].append(encode(int(run_row), int(ordinal), Outcome(outcome)))
    return {test_id: TestHistory(test_id, tuple(sorted(codes))) for test_id, codes in grouped.items()}


async def load_observations(
    session: AsyncSession, repository_id: int, test_ids: Sequence[int], since: datetime
) -> dict[int, list[Observation]]:
    """Observations per test since `since` (for callers that want them, e.g. check-run rendering)."""
    histories = await load_histories(session, test_ids, since)
    runs = RunCache(repository_id, since)
    await runs.ensure(session, run_rows_of(code for h in histories.values() for code in h.codes))
    return {
        test_id: observations_of(h.codes, runs.runs, runs.observations) for test_id, h in histories.items()
    }


# ----------------------------------------------------------------------------------- analysing


@dataclass(frozen=True, slots=True)
class _Prior:
    status: str
    statistically_flaky: bool
    last_flaky_evidence_at: datetime | None


@dataclass(frozen=True, slots=True)
class _Computed:
    """An analysis and the parts of its stored row that do not depend on the test."""

    analysis: TestAnalysis
    evidence_json: str
    skipped: int  # executions of the window that were skipped (the report shows how many ran)


@dataclass(slots=True)
class AnalysisMemo:
    """Exact cache of `analyze_test` for one (config, now): identical histories are analysed once.
    With `reuse=False` (a forced re-analysis) every test is analysed on its own."""

    config: AnalysisConfig
    now: datetime
    entries: dict[tuple[bytes | tuple[int, ...], str | None, bool], _Computed] = field(default_factory=dict)
    hits: int = 0
    misses: int = 0
    reuse: bool = True

    def analyse(self, history: TestHistory | None, prior: _Prior | None, runs: RunCache) -> _Computed:
        """The analysis of one test; `runs` must hold the history's run attempts (`ensure_histories`)."""
        key = (
            history.key if history is not None else (),
            prior.status if prior else None,
            prior.statistically_flaky if prior else False,
        )
        cached = self.entries.get(key) if self.reuse else None
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        previous = (
            PreviousState(status=Status(prior.status), statistically_flaky=prior.statistically_flaky)
            if prior is not None
            else None
        )
        codes = history.codes if history is not None else ()
        observations = observations_of(codes, runs.runs, runs.observations)
        analysis = analyze_test(observations, self.config, previous, self.now)
        skipped = sum(obs.is_skipped for obs in within_lookback(observations, self.config, self.now))
        verdict = analysis.verdict
        evidence = json.dumps(
            {"reason": verdict.reason, "items": verdict.evidence_json()}, separators=(",", ":")
        )
        computed = _Computed(analysis, evidence, skipped)
        if self.reuse:
            self.entries[key] = computed
        return computed


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
        return {
            "tests": self.tests,
            "quarantined": self.quarantined,
            "released": self.released,
            **{f"status_{k}": v for k, v in sorted(self.by_status.items())},
        }


_PG_PRIORS = """
SELECT test_case_id, status, statistically_flaky, last_flaky_evidence_at
FROM flakiness_results WHERE test_case_id = ANY($1::bigint[])
"""


async def _load_priors(session: AsyncSession, test_ids: Sequence[int]) -> dict[int, _Prior]:
    priors: dict[int, _Prior] = {}
    if _is_postgres(session):  # raw: ~10x cheaper than the ORM result path for 20k rows
        conn = await _asyncpg(session)
        for test_id, status, stat, last in await conn.fetch(_PG_PRIORS, list(test_ids)):
            priors[test_id] = _Prior(status, stat, last)
        return priors
    for part in chunked(test_ids, 5000):
        result = await session.execute(
            select(
                FlakinessResult.test_case_id,
                FlakinessResult.status,
                FlakinessResult.statistically_flaky,
                FlakinessResult.last_flaky_evidence_at,
            ).where(FlakinessResult.test_case_id.in_(part))
        )
        for test_id, status, stat, last in result.all():
            priors[int(test_id)] = _Prior(status, bool(stat), last)
    return priors


_RESULT_COLUMNS = (
    "test_case_id",
    "executions",
    "skipped",
    "failures",
    "failure_rate",
    "inconsistency",
    "recency",
    "branch_diversity",
    "score",
    "original_flaky",
    "status",
    "statistically_flaky",
    "confidence",
    "failure_probability",
    "impact",
    "evidence",
    "last_failure_at",
    "last_flaky_evidence_at",
)
_RESULT_TYPES = (
    "bigint",
    "int",
    "int",
    "int",
    "float8",
    "float8",
    "float8",
    "float8",
    "float8",
    "bool",
    "text",
    "bool",
    "float8",
    "float8",
    "float8",
    "text",
    "timestamptz",
    "timestamptz",
)
_UPDATED_COLUMNS = ("repository_id", "computed_at", "lookback_days", *_RESULT_COLUMNS[1:])
_PG_UPSERT = f"""
INSERT INTO flakiness_results (repository_id, computed_at, lookback_days, {", ".join(_RESULT_COLUMNS)})
SELECT $1, $2, $3, {", ".join("t.evidence::json" if c == "evidence" else f"t.{c}" for c in _RESULT_COLUMNS)}
FROM unnest({", ".join(f"${i + 4}::{t}[]" for i, t in enumerate(_RESULT_TYPES))})
     AS t({", ".join(_RESULT_COLUMNS)})
ON CONFLICT (test_case_id) DO UPDATE SET
{", ".join(f"{c} = EXCLUDED.{c}" for c in _UPDATED_COLUMNS)}
"""


def _row(test_id: int, computed: _Computed, last_evidence: datetime | None) -> tuple[Any, ...]:
    analysis = computed.analysis
    verdict, score = analysis.verdict, analysis.score
    return (
        test_id,
        analysis.executions,
        computed.skipped,
        analysis.failures,
        analysis.failure_rate,
        score.inconsistency if score else None,
        score.recency if score else None,
        score.branch_diversity if score else None,
        score.score if score else None,
        bool(score and score.is_flaky),
        verdict.status.value,
        verdict.statistically_flaky,
        verdict.confidence,
        verdict.failure_probability,
        analysis.impact,
        computed.evidence_json,
        analysis.last_failure_at,
        last_evidence,
    )


async def _write_results(
    session: AsyncSession,
    repository_id: int,
    config: AnalysisConfig,
    now: datetime,
    rows: list[tuple[Any, ...]],
) -> None:
    if not rows:
        return
    if _is_postgres(session):
        columns = [list(column) for column in zip(*rows, strict=True)]
        conn = await _asyncpg(session)
        await conn.execute(_PG_UPSERT, repository_id, now, config.lookback_days, *columns)
        return
    dicts: list[dict[str, Any]] = []
    for row in rows:
        values = dict(zip(_RESULT_COLUMNS, row, strict=True))
        values["evidence"] = json.loads(values["evidence"])
        dicts.append(
            {
                "repository_id": repository_id,
                "computed_at": now,
                "lookback_days": config.lookback_days,
                **values,
            }
        )
    await upsert_rows(session, FlakinessResult.__table__, dicts, ["test_case_id"])  # type: ignore[arg-type]


async def score_tests(
    session: AsyncSession,
    repository: Repository,
    test_ids: Sequence[int],
    config: AnalysisConfig,
    now: datetime,
    *,
    update_quarantine: bool,
    keep_analyses: bool = False,
    memo: AnalysisMemo | None = None,
    runs: RunCache | None = None,
    histories: dict[int, TestHistory] | None = None,
) -> ScoringSummary:
    """Analyse these tests of `repository` and store the results (and quarantine changes).

    A recompute passes the same `memo` and `runs` to every batch; they must have been made for the
    same `config`, `now` and repository. `histories` may be preloaded (`load_histories` with
    `now - config.lookback`), so a caller can fetch the next batch while this one is analysed.
    """
    summary = ScoringSummary()
    if not test_ids:
        return summary
    since = now - config.lookback
    memo = memo if memo is not None else AnalysisMemo(config, now)
    runs = runs if runs is not None else RunCache(repository.id, since)
    test_ids = sorted(set(test_ids))
    if histories is None:
        histories = await load_histories(session, test_ids, since)
    await runs.ensure_histories(session, histories.values())
    priors = await _load_priors(session, test_ids)
    quarantine = await lock_quarantine_rows(session, repository.id, test_ids) if update_quarantine else {}
    rows: list[tuple[Any, ...]] = []
    scores: list[float] = []
    by_status = summary.by_status
    for test_id in test_ids:
        history = histories.get(test_id)
        prior = priors.get(test_id)
        computed = memo.analyse(history, prior, runs)
        verdict = computed.analysis.verdict
        if computed.analysis.score is not None:
            scores.append(computed.analysis.score.score)
        remembered = prior.last_flaky_evidence_at if prior is not None else None
        last_evidence = verdict.last_flaky_evidence_at
        if remembered is not None and (last_evidence is None or remembered > last_evidence):
            last_evidence = remembered
        rows.append(_row(test_id, computed, last_evidence))
        by_status[verdict.status.value] += 1
        if keep_analyses:
            summary.analyses[test_id] = computed.analysis
        if update_quarantine:
            action = _apply_quarantine(
                session, repository.id, test_id, quarantine.get(test_id), verdict, config, now, last_evidence
            )
            if action is QuarantineAction.QUARANTINE:
                summary.quarantined += 1
            elif action is QuarantineAction.RELEASE:
                summary.released += 1
    summary.tests = len(test_ids)
    await _write_results(session, repository.id, config, now, rows)
    tests_scored(len(test_ids), by_status.get(Status.FLAKY.value, 0), scores)
    if update_quarantine:
        await session.flush()
    return summary


def _apply_quarantine(
    session: AsyncSession,
    repository_id: int,
    test_id: int,
    row: Quarantine | None,
    verdict: Verdict,
    config: AnalysisConfig,
    now: datetime,
    last_evidence: datetime | None,
) -> QuarantineAction:
    current = (
        QuarantineState(
            quarantined=row.quarantined,
            origin=QuarantineOrigin.AUTO if row.automatic else QuarantineOrigin.MANUAL,
            since=row.since,
            reason=row.reason,
            actor=row.actor,
        )
        if row is not None
        else None
    )
    decision = decide_quarantine(verdict, current, config, now, last_evidence)
    if not decision.changed:
        return decision.action
    automatic = decision.origin is QuarantineOrigin.AUTO
    if row is None:
        session.add(
            Quarantine(
                test_case_id=test_id,
                repository_id=repository_id,
                quarantined=decision.quarantined,
                automatic=automatic,
                since=now,
                reason=decision.reason,
                actor=decision.actor,
            )
        )
    else:
        row.quarantined = decision.quarantined
        row.automatic = automatic
        row.since = now
        row.reason = decision.reason
        row.actor = decision.actor
    session.add(
        QuarantineEvent(
            test_case_id=test_id,
            action=decision.action.value,
            automatic=automatic,
            reason=decision.reason,
            actor=decision.actor,
            at=now,
        )
    )
    return decision.action
