"""Value types shared by the parser, the store and the analysis core. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    """The result of one execution of one test."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"

    # A plain attribute set once per member (failed and error are failures), not a property: the
    # analysis asks this ~10 times per execution, and a property doing a tuple membership test cost
    # ~0.7 µs per call (measured, Python 3.11) against ~0.03 µs for the attribute.
    is_failure: bool

    def __init__(self, value: str) -> None:
        self.is_failure = value in ("failed", "error")


# Slotted but not frozen: a frozen dataclass sets every field through object.__setattr__, which made
# construction ~1.25 µs against ~0.18 µs here (measured, Python 3.11) — the parser builds one per
# execution, so this was its single largest cost. Treat instances as read-only all the same.
@dataclass(slots=True)
class TestExecution:
    """One execution of one test as read from a JUnit report (a value: do not mutate).

    `ordinal` numbers the executions of the same `key` within one report file, in document order
    (0 for the first). Reruns (repeated testcases, Surefire flakyFailure/rerunFailure) get 1, 2, ...
    so that re-reading the same file gives the same (source, key, ordinal) triples: that triple is
    what makes re-ingestion idempotent.
    """

    __test__ = False  # not a pytest test class

    key: str
    suite: str
    classname: str
    name: str
    file: str | None
    line: int | None
    outcome: Outcome
    duration_s: float | None
    ordinal: int
    message: str | None = None
    details: str | None = None
    system_out: str | None = None
    system_err: str | None = None
