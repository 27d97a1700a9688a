"""Page models: the pure shaping of query results for the templates (filters, sorting, paging,
the history grouped by commit). No I/O here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from math import ceil
from typing import Any

from flakeguard.pipeline.report import STATUS_ORDER, ReportRow
from flakeguard.web.queries import ExecutionRow

PAGE_SIZES = (25, 50, 100, 200, 500)
DEFAULT_PAGE_SIZE = 50
MAX_QUERY = 200

# Sortable columns and whether each sorts descending first ("rank" is the report's own order);
# the sorting itself is done by the database (`flakeguard.web.queries.report_page`).
SORTS: dict[str, bool] = {
    "rank": False,
    "name": False,
    "status": False,
    "score": True,
    "confidence": True,
    "failure_rate": True,
    "last_failure": True,
}


@dataclass(frozen=True, slots=True)
class TestFilter:
    """The repository page's query string, made safe: unknown values fall back to the defaults."""

    __test__ = False

    status: str = ""
    quarantine: str = ""  # "", "yes", "no"
    q: str = ""
    sort: str = "rank"
    descending: bool = False
    page: int = 1
    per_page: int = DEFAULT_PAGE_SIZE

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> TestFilter:
        status = params.get("status", "")
        quarantine = params.get("quarantine", "")
        sort = params.get("sort", "rank")
        if sort not in SORTS:
            sort = "rank"
        order = params.get("order", "")
        descending = SORTS[sort] if order not in ("asc", "desc") else order == "desc"
        return cls(
            status=status if status in STATUS_ORDER else "",
            quarantine=quarantine if quarantine in ("yes", "no") else "",
            q=" ".join(params.get("q", "").split())[:MAX_QUERY],
            sort=sort,
            descending=descending,
            page=_int(params.get("page"), 1, minimum=1),
            per_page=_choice(_int(params.get("per_page"), DEFAULT_PAGE_SIZE), PAGE_SIZES, DEFAULT_PAGE_SIZE),
        )

    def query(self, **changes: Any) -> dict[str, str]:
        """The query string of this filter with some values changed (defaults left out)."""
        values = {
            "status": self.status,
            "quarantine": self.quarantine,
            "q": self.q,
            "sort": "" if self.sort == "rank" else self.sort,
            "order": "" if self.descending == SORTS[self.sort] else ("desc" if self.descending else "asc"),
            "page": "" if self.page == 1 else str(self.page),
            "per_page": "" if self.per_page == DEFAULT_PAGE_SIZE else str(self.per_page),
        }
        values.update({k: "" if v is None else str(v) for k, v in changes.items()})
        return {k: v for k, v in values.items() if v}

    def sort_query(self, column: str) -> dict[str, str]:
        """Clicking a column header: sort by it (its natural direction), or flip it when sorted by it."""
        descending = not self.descending if column == self.sort else SORTS[column]
        order = "" if descending == SORTS[column] else ("desc" if descending else "asc")
        return self.query(sort="" if column == "rank" else column, order=order, page="")

    def aria_sort(self, column: str) -> str:
        if column != self.sort:
            return "none"
        return "descending" if self.descending else "ascending"


def _int(value: str | None, default: int, *, minimum: int = 1) -> int:
    try:
        number = int(value) if value is not None else default
    except ValueError:
        return default
    return max(number, minimum)


def _choice(value: int, allowed: Sequence[int], default: int) -> int:
    return value if value in allowed else default


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[ReportRow]
    total: int  # rows that match the filter
    page: int
    pages: int
    first_rank: int  # 1-based position of the first row in the filtered list

    @classmethod
    def of(cls, rows: list[ReportRow], total: int, f: TestFilter) -> Page:
        pages = max(1, ceil(total / f.per_page))
        return cls(rows, total, min(f.page, pages), pages, (min(f.page, pages) - 1) * f.per_page + 1)


# --------------------------------------------------------------------------------- the history


@dataclass(slots=True)
class Attempt:
    run_id: int
    run_attempt: int
    started_at: datetime
    executions: list[ExecutionRow] = field(default_factory=list)  # in-run order: first try, retries

    @property
    def failed(self) -> bool:
        return any(e.outcome in ("failed", "error") for e in self.executions)


@dataclass(slots=True)
class CommitGroup:
    """Every execution of a test on one commit and branch: its run attempts, oldest first."""

    head_sha: str
    branch: str | None
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def newest(self) -> Attempt:
        return max(self.attempts, key=lambda a: (a.started_at, a.run_attempt))

    def count(self, *outcomes: str) -> int:
        return sum(1 for a in self.attempts for e in a.executions if e.outcome in outcomes)

    @property
    def flaky_here(self) -> bool:
        """Both passed and failed on this commit: flakiness seen on the same code."""
        return self.count("passed") > 0 and self.count("failed", "error") > 0

    def label(self) -> str:
        parts = [f"commit {self.head_sha[:7]}" + (f" on {self.branch}" if self.branch else "")]
        runs = len({a.run_id for a in self.attempts})
        reruns = len(self.attempts) - runs
        parts.append(f"{runs} run{'s' if runs != 1 else ''}")
        if reruns:
            parts.append(f"{reruns} re-run{'s' if reruns != 1 else ''}")
        parts.append(f"{self.count('failed', 'error')} failed, {self.count('passed')} passed")
        skipped = self.count("skipped")
        if skipped:
            parts.append(f"{skipped} skipped")
        return ", ".join(parts)


def group_by_commit(executions: Sequence[ExecutionRow]) -> list[CommitGroup]:
    """Executions (newest first) -> commit groups, newest group first; inside a group the attempts
    and their executions in the order they ran (first try, retries; attempt 1, re-runs)."""
    groups: dict[tuple[str, str | None], CommitGroup] = {}
    attempts: dict[tuple[int, int], Attempt] = {}
    for e in executions:
        group = groups.get((e.head_sha, e.branch))
        if group is None:
            group = groups[(e.head_sha, e.branch)] = CommitGroup(e.head_sha, e.branch)
        attempt = attempts.get((e.run_id, e.run_attempt))
        if attempt is None:
            attempt = attempts[(e.run_id, e.run_attempt)] = Attempt(e.run_id, e.run_attempt, e.started_at)
            group.attempts.append(attempt)
        attempt.executions.append(e)
    for group in groups.values():
        group.attempts.sort(key=lambda a: (a.started_at, a.run_attempt, a.run_id))
        for attempt in group.attempts:
            attempt.executions.reverse()  # given newest first
    return list(groups.values())
