"""Manual quarantine and release, the quarantine list and its history.

The current state of a test is one `quarantine` row; every change is one `quarantine_events` row
(history is never rewritten). Rules (see `flakeguard.analysis.quarantine` for the automatic side):

* a manual quarantine is never released automatically; quarantining by hand a test that is already
  quarantined automatically turns it into a manual quarantine (a human now owns it);
* a manual release leaves a row with `quarantined=False, automatic=False, since=<release time>`:
  automatic quarantine then waits for flaky evidence newer than the release, so it never fights a
  human decision (`QuarantineState` in `flakeguard.analysis.model`);
* functions here run in the caller's transaction and lock the rows they change (`FOR UPDATE` on
  PostgreSQL), so a concurrent `runs:analyze` cannot interleave with a manual change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from flakeguard.analysis import JSONObject
from flakeguard.junit.identity import KEY_SEP, display_name, split_key
from flakeguard.pipeline.test_refs import NamedTest, Resolution, resolve_references
from flakeguard.store.models import FlakinessResult, Quarantine, QuarantineEvent, TestCase
from flakeguard.store.repository import chunked, insert_ignoring_conflicts, key_hash

MANUAL_ACTOR = "unknown"


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    """One quarantined test, with what a test runner needs to mute it."""

    test_case_id: int
    key: str
    suite: str
    classname: str
    name: str
    file: str | None
    since: datetime
    reason: str
    actor: str
    automatic: bool
    status: str | None = None
    confidence: float | None = None
    score: float | None = None

    @property
    def display(self) -> str:
        return display_name(self.classname, self.name)

    def to_json(self) -> JSONObject:
        return {
            "id": self.test_case_id,
            "key": self.key,
            "suite": self.suite,
            "classname": self.classname,
            "name": self.name,
            "file": self.file,
            "since": self.since.isoformat(),
            "reason": self.reason,
            "actor": self.actor,
            "automatic": self.automatic,
            "status": self.status,
            "confidence": self.confidence,
            "score": self.score,
        }


@dataclass(frozen=True, slots=True)
class QuarantineHistoryEntry:
    id: int
    test_case_id: int
    key: str
    action: str
    automatic: bool
    reason: str
    actor: str
    at: datetime

    @property
    def display(self) -> str:
        """The test's name as the report prints it (from its key)."""
        _, classname, name, file_part = (
            split_key(self.key) if self.key.count(KEY_SEP) == 3 else ([], "", self.key, "")
        )
        return display_name(classname, name or file_part)

    def to_json(self) -> JSONObject:
        return {
            "id": self.id,
            "test_case_id": self.test_case_id,
            "key": self.key,
            "action": self.action,
            "automatic": self.automatic,
            "reason": self.reason,
            "actor": self.actor,
            "at": self.at.isoformat(),
        }


async def resolve_tests(session: AsyncSession, repository_id: int, refs: Sequence[str | int]) -> Resolution:
    """Test case ids of this repository for references as people give them (`test_refs`): full keys
    and ids are looked up directly; any other name is matched against the repository's tests."""
    wanted = [str(r) for r in refs]
    hashes = {key_hash(ref): ref for ref in wanted}
    numeric = {int(ref): ref for ref in wanted if ref.isdigit()}
    found: dict[str, int] = {}
    for part in chunked(list(hashes), 900):
        rows = await session.execute(
            select(TestCase.key_hash, TestCase.id).where(
                TestCase.repository_id == repository_id, TestCase.key_hash.in_(part)
            )
        )
        for h, test_id in rows.all():
            found[hashes[h]] = int(test_id)
    for id_part in chunked([i for i, ref in numeric.items() if ref not in found], 900):
        rows = await session.execute(
            select(TestCase.id).where(TestCase.repository_id == repository_id, TestCase.id.in_(id_part))
        )
        for (test_id,) in rows.all():
            found.setdefault(numeric[int(test_id)], int(test_id))
    named = Resolution()
    rest = [ref for ref in wanted if ref not in found]
    if rest:
        rows = await session.execute(
            select(TestCase.id, TestCase.key, TestCase.classname, TestCase.name).where(
                TestCase.repository_id == repository_id
            )
        )
        named = resolve_references(rest, [NamedTest(int(r[0]), r[1], r[2], r[3]) for r in rows.all()])
    found.update(named.found)
    return Resolution(
        found={ref: found[ref] for ref in wanted if ref in found},
        unknown=named.unknown,
        ambiguous=named.ambiguous,
    )


async def _own_ids(session: AsyncSession, repository_id: int, test_case_ids: Sequence[int]) -> list[int]:
    """The given ids that are test cases of this repository, sorted (locks taken in one order)."""
    ids: list[int] = []
    for part in chunked(sorted({int(i) for i in test_case_ids}), 900):
        rows = await session.execute(
            select(TestCase.id).where(TestCase.repository_id == repository_id, TestCase.id.in_(part))
        )
        ids.extend(int(i) for i in rows.scalars())
    return sorted(ids)


async def lock_quarantine_rows(
    session: AsyncSession, repository_id: int, test_case_ids: Sequence[int]
) -> dict[int, Quarantine]:
    """The quarantine rows of these tests, locked for update. Missing rows are *not* created."""
    rows: dict[int, Quarantine] = {}
    for part in chunked(sorted(test_case_ids), 900):
        result = await session.execute(
            select(Quarantine)
            .where(Quarantine.repository_id == repository_id, Quarantine.test_case_id.in_(part))
            .order_by(Quarantine.test_case_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        rows.update({q.test_case_id: q for q in result.scalars()})
    return rows


async def _ensure_rows(
    session: AsyncSession, repository_id: int, test_case_ids: Sequence[int], *, now: datetime
) -> dict[int, Quarantine]:
    """Create missing rows as 'not quarantined' (no history: nothing changed yet), then lock all."""
    values: list[dict[str, Any]] = [
        dict(
            test_case_id=i,
            repository_id=repository_id,
            quarantined=False,
            automatic=True,
            since=now,
            reason="",
            actor="flakeguard",
        )
        for i in test_case_ids
    ]
    for rows_part in chunked(values, 1000):
        stmt = insert_ignoring_conflicts(session, Quarantine.__table__, ["test_case_id"])
        await session.execute(stmt, rows_part)
    return await lock_quarantine_rows(session, repository_id, test_case_ids)


def _apply_manual(
    session: AsyncSession, row: Quarantine, *, quarantined: bool, reason: str, actor: str, now: datetime
) -> None:
    """A manual quarantine or release of one locked row, with its history event."""
    row.quarantined, row.automatic, row.since, row.reason, row.actor = quarantined, False, now, reason, actor
    action = "quarantine" if quarantined else "release"
    session.add(
        QuarantineEvent(
            test_case_id=row.test_case_id, action=action, automatic=False, reason=reason, actor=actor, at=now
        )
    )


async def quarantine_tests(
    session: AsyncSession,
    repository_id: int,
    test_case_ids: Sequence[int],
    *,
    reason: str,
    actor: str,
    now: datetime | None = None,
) -> int:
    """Quarantine tests by hand. Returns how many changed (already manually quarantined: unchanged).

    Ids that are not test cases of `repository_id` are ignored.
    """
    now = now or datetime.now(UTC)
    actor = actor or MANUAL_ACTOR
    ids = await _own_ids(session, repository_id, test_case_ids)
    if not ids:
        return 0
    rows = await _ensure_rows(session, repository_id, ids, now=now)
    changed = 0
    for test_id in ids:
        row = rows[test_id]
        if row.quarantined and not row.automatic:
            continue
        _apply_manual(session, row, quarantined=True, reason=reason, actor=actor, now=now)
        changed += 1
    await session.flush()
    return changed


async def release_tests(
    session: AsyncSession,
    repository_id: int,
    test_case_ids: Sequence[int],
    *,
    reason: str,
    actor: str,
    now: datetime | None = None,
) -> int:
    """Release quarantined tests by hand. Returns how many changed (not quarantined: unchanged).

    The row stays as a manual release, so automatic quarantine waits for flaky evidence newer than now.
    """
    now = now or datetime.now(UTC)
    actor = actor or MANUAL_ACTOR
    ids = await _own_ids(session, repository_id, test_case_ids)
    if not ids:
        return 0
    rows = await lock_quarantine_rows(session, repository_id, ids)
    changed = 0
    for test_id in ids:
        row = rows.get(test_id)
        if row is None or not row.quarantined:
            continue
        _apply_manual(session, row, quarantined=False, reason=reason, actor=actor, now=now)
        changed += 1
    await session.flush()
    return changed


async def quarantine_list(session: AsyncSession, repository_id: int) -> list[QuarantineEntry]:
    """The tests of a repository that are quarantined now, by key."""
    result = await session.execute(
        select(
            TestCase.id,
            TestCase.key,
            TestCase.suite,
            TestCase.classname,
            TestCase.name,
            TestCase.file,
            Quarantine.since,
            Quarantine.reason,
            Quarantine.actor,
            Quarantine.automatic,
            FlakinessResult.status,
            FlakinessResult.confidence,
            FlakinessResult.score,
        )
        .join(TestCase, TestCase.id == Quarantine.test_case_id)
        .outerjoin(FlakinessResult, FlakinessResult.test_case_id == Quarantine.test_case_id)
        .where(Quarantine.repository_id == repository_id, Quarantine.quarantined.is_(True))
        .order_by(TestCase.key)
    )
    return [
        QuarantineEntry(
            test_case_id=int(r[0]),
            key=r[1],
            suite=r[2],
            classname=r[3],
            name=r[4],
            file=r[5],
            since=r[6],
            reason=r[7],
            actor=r[8],
            automatic=bool(r[9]),
            status=r[10],
            confidence=r[11],
            score=r[12],
        )
        for r in result.all()
    ]


async def quarantine_history(
    session: AsyncSession,
    repository_id: int,
    *,
    test_case_ids: Sequence[int] | None = None,
    limit: int = 1000,
) -> list[QuarantineHistoryEntry]:
    """Quarantine changes of a repository (or of some of its tests), newest first."""
    query = (
        select(
            QuarantineEvent.id,
            QuarantineEvent.test_case_id,
            TestCase.key,
            QuarantineEvent.action,
            QuarantineEvent.automatic,
            QuarantineEvent.reason,
            QuarantineEvent.actor,
            QuarantineEvent.at,
        )
        .join(TestCase, TestCase.id == QuarantineEvent.test_case_id)
        .where(TestCase.repository_id == repository_id)
    )
    if test_case_ids is not None:
        query = query.where(QuarantineEvent.test_case_id.in_(list(test_case_ids)))
    query = query.order_by(QuarantineEvent.at.desc(), QuarantineEvent.id.desc()).limit(limit)
    return [
        QuarantineHistoryEntry(
            id=int(r[0]),
            test_case_id=int(r[1]),
            key=r[2],
            action=r[3],
            automatic=bool(r[4]),
            reason=r[5],
            actor=r[6],
            at=r[7],
        )
        for r in (await session.execute(query)).all()
    ]


def quarantine_json(
    repository: str, entries: Sequence[QuarantineEntry], generated_at: datetime
) -> JSONObject:
    """The quarantine list as served by the API and `flakeguard quarantine list --json`."""
    return {
        "repository": repository,
        "generated_at": generated_at.isoformat(),
        "count": len(entries),
        "tests": [entry.to_json() for entry in entries],
    }
