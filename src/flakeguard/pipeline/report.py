"""The flakiness report of a repository: every test (or those with some statuses), by impact.

Order (the stored counterpart of `flakeguard.analysis.report_sort_key`): impact descending (failures on
otherwise green runs first), then broken, flaky, healthy, insufficient_data, then confidence and score
descending, then the key. Tests that were never analysed are listed last as `insufficient_data`.

Three renderings: JSON (the shape below, for tools), a rich table (terminals) and Markdown (PRs, wikis).

    {"repository": "owner/name", "generated_at": ISO8601,
     "tests": [{"key", "suite", "classname", "name", "file", "executions", "skipped", "failures",
                "failure_rate", "score", "status", "confidence", "evidence", "quarantined",
                "last_failure_at"}]}

`evidence` is the stored explanation: {"reason": str, "items": [evidence objects]}. `skipped` counts the
executions of `executions` that were skipped (null for results analysed before it was recorded);
`failures` and `failure_rate` count the others, the ones that ran.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, case, func, null, select
from sqlalchemy.ext.asyncio import AsyncSession

from flakeguard.analysis import JSONObject, JSONValue, Status
from flakeguard.junit.identity import display_name, display_suite
from flakeguard.store.models import FlakinessResult, Quarantine, TestCase

STATUS_ORDER = {
    Status.BROKEN.value: 0,
    Status.FLAKY.value: 1,
    Status.HEALTHY.value: 2,
    Status.INSUFFICIENT_DATA.value: 3,
}
NOT_ANALYSED: JSONObject = {"reason": "not analysed yet", "items": []}


@dataclass(frozen=True, slots=True)
class ReportRow:
    test_case_id: int
    key: str
    suite: str
    classname: str
    name: str
    file: str | None
    executions: int
    failures: int
    failure_rate: float
    score: float | None
    status: str
    confidence: float
    evidence: JSONValue
    quarantined: bool
    last_failure_at: datetime | None
    impact: float
    analysed: bool
    skipped: int | None = None  # executions skipped in the window; None: analysed before it was recorded

    @property
    def ran(self) -> int:
        """Executions that passed or failed: what `failures` and `failure_rate` count."""
        return self.executions - (self.skipped or 0)

    @property
    def failures_text(self) -> str:
        return f"{self.failures}/{self.ran}"

    @property
    def rate_text(self) -> str:
        """The failure rate, or `–` when the test never ran (skipped every time)."""
        return "–" if self.ran == 0 else _pct(self.failure_rate)

    def sort_key(self) -> tuple[float, int, float, float, str]:
        return (
            -self.impact,
            STATUS_ORDER.get(self.status, 9),
            -self.confidence,
            -(self.score or 0.0),
            self.key,
        )

    @property
    def display(self) -> str:
        return display_name(self.classname, self.name)

    @property
    def reason(self) -> str:
        if isinstance(self.evidence, dict):
            reason = self.evidence.get("reason")
            if isinstance(reason, str):
                return reason
        return ""

    def to_json(self) -> JSONObject:
        return {
            "key": self.key,
            "suite": self.suite,
            "classname": self.classname,
            "name": self.name,
            "file": self.file,
            "executions": self.executions,
            "skipped": self.skipped,
            "failures": self.failures,
            "failure_rate": self.failure_rate,
            "score": self.score,
            "status": self.status,
            "confidence": self.confidence,
            "evidence": self.evidence,
            "quarantined": self.quarantined,
            "last_failure_at": None if self.last_failure_at is None else self.last_failure_at.isoformat(),
        }


def parse_statuses(value: str | None) -> set[str] | None:
    """`flaky,broken` -> {"flaky", "broken"}; None/empty -> None (every test). Raises ValueError."""
    if not value:
        return None
    statuses = {part.strip().lower() for part in value.split(",") if part.strip()}
    unknown = statuses - set(STATUS_ORDER)
    if unknown:
        raise ValueError(f"unknown status {', '.join(sorted(unknown))}; known: {', '.join(STATUS_ORDER)}")
    return statuses


STATUS = func.coalesce(FlakinessResult.status, Status.INSUFFICIENT_DATA.value)


def report_select(repository_id: int, *, with_evidence: bool = True) -> Select[Any]:
    """Every test of a repository with its latest analysis and quarantine state (unordered).
    `with_evidence=False` selects no evidence: decoding every test's evidence JSON is a large part of
    the cost of a big report, and the dashboard's list shows none."""
    return (
        select(
            TestCase.id,
            TestCase.key,
            TestCase.suite,
            TestCase.classname,
            TestCase.name,
            TestCase.file,
            FlakinessResult.executions,
            FlakinessResult.skipped,
            FlakinessResult.failures,
            FlakinessResult.failure_rate,
            FlakinessResult.score,
            FlakinessResult.status,
            FlakinessResult.confidence,
            FlakinessResult.evidence if with_evidence else null().label("evidence"),
            FlakinessResult.last_failure_at,
            FlakinessResult.impact,
            Quarantine.quarantined,
        )
        .outerjoin(FlakinessResult, FlakinessResult.test_case_id == TestCase.id)
        .outerjoin(Quarantine, Quarantine.test_case_id == TestCase.id)
        .where(TestCase.repository_id == repository_id)
    )


def status_rank() -> ColumnElement[int]:
    """STATUS_ORDER in SQL (never analysed counts as insufficient_data)."""
    return case(STATUS_ORDER, value=STATUS, else_=9)


def report_order(dialect: str) -> tuple[ColumnElement[Any], ...]:
    """The report's order in SQL, the one place it is defined for queries (`ReportRow.sort_key` states
    it in Python): impact desc, status, confidence desc, score desc (none = 0), then the key by code
    point (PostgreSQL's "C" collation and SQLite's BINARY compare UTF-8 bytes, which is code point
    order, as Python compares strings)."""
    key: Any = TestCase.key.collate("C") if dialect == "postgresql" else TestCase.key
    return (
        func.coalesce(FlakinessResult.impact, 0.0).desc(),
        status_rank(),
        func.coalesce(FlakinessResult.confidence, 0.0).desc(),
        func.coalesce(FlakinessResult.score, 0.0).desc(),
        key,
    )


def report_row(r: Row[Any], *, with_evidence: bool = True) -> ReportRow:
    analysed = r.status is not None
    return ReportRow(
        test_case_id=int(r.id),
        key=r.key,
        suite=r.suite,
        classname=r.classname,
        name=r.name,
        file=r.file,
        executions=int(r.executions or 0),
        failures=int(r.failures or 0),
        failure_rate=float(r.failure_rate or 0.0),
        score=r.score,
        status=r.status if analysed else Status.INSUFFICIENT_DATA.value,
        confidence=float(r.confidence or 0.0),
        evidence=(r.evidence if analysed else NOT_ANALYSED) if with_evidence else None,
        quarantined=bool(r.quarantined),
        last_failure_at=r.last_failure_at,
        impact=float(r.impact or 0.0),
        analysed=analysed,
        skipped=None if r.skipped is None else int(r.skipped),
    )


async def build_report(
    session: AsyncSession,
    repository_id: int,
    statuses: Collection[str] | None = None,
    *,
    with_evidence: bool = True,
) -> list[ReportRow]:
    """Every test of the repository (or those with one of `statuses`), in the report's order."""
    query = report_select(repository_id, with_evidence=with_evidence)
    if statuses is not None:
        query = query.where(STATUS.in_(sorted(statuses)))
    query = query.order_by(*report_order(session.bind.dialect.name))
    # Core rows: the ORM's per-row processing adds nothing for plain columns.
    result = await (await session.connection()).execute(query)
    return [report_row(r, with_evidence=with_evidence) for r in result]


def report_json(repository: str, rows: Sequence[ReportRow], generated_at: datetime) -> dict[str, Any]:
    return {
        "repository": repository,
        "generated_at": generated_at.isoformat(),
        "tests": [row.to_json() for row in rows],
    }


# ------------------------------------------------------------------------------------ rendering


def shorten(text: str, width: int) -> str:
    """Fit `text` in `width` characters, keeping its end: a test's own name and its class or module
    are its most specific part (`…test_module_0 › test_case_000`). `flakeguard quarantine add --test`
    accepts the shortened form."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[-width:] if width else ""
    return f"…{text[len(text) - (width - 1) :]}"


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _opt(value: float | None, fmt: str = "{:.2f}") -> str:
    return "–" if value is None else fmt.format(value)


def _skipped(row: ReportRow) -> str:
    return "–" if row.skipped is None else str(row.skipped)


def _date(value: datetime | None) -> str:
    return "–" if value is None else value.strftime("%Y-%m-%d %H:%M")


def render_markdown(repository: str, rows: Sequence[ReportRow], generated_at: datetime) -> str:
    def cell(text: str) -> str:
        return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("`", "'")

    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    summary = ", ".join(f"{counts[s]} {s}" for s in STATUS_ORDER if s in counts) or "no tests"
    lines = [
        f"## FlakeGuard report: {cell(repository)}",
        "",
        f"{len(rows)} tests ({summary}), generated {generated_at.isoformat(timespec='seconds')}, "
        "sorted by impact (failures on otherwise green runs first).",
        "",
        "| # | Test | Status | Confidence | Score | Failures | Skipped | Failure rate | Impact "
        "| Quarantined | Last failure |",
        "|--:|------|--------|-----------:|------:|---------:|--------:|-------------:|-------:"
        "|:-----------:|--------------|",
    ]
    for index, row in enumerate(rows, 1):
        suite = f" <sub>{cell(display_suite(row.suite))}</sub>" if row.suite else ""
        lines.append(
            f"| {index} | `{cell(shorten(row.display, 120))}`{suite} | {row.status} | {row.confidence:.2f} | "
            f"{_opt(row.score)} | {row.failures_text} | {_skipped(row)} | {row.rate_text} | "
            f"{row.impact:.2f} | "
            f"{'yes' if row.quarantined else ''} | {_date(row.last_failure_at)} |"
        )
    return "\n".join(lines) + "\n"


STATUS_STYLE = {"broken": "bold red", "flaky": "bold yellow", "healthy": "green", "insufficient_data": "dim"}


# Optional columns, most useful first: (header, widest content, justify, cell). On screen each
# column takes its content plus 3 (padding on both sides and a border).
_COLUMNS: tuple[tuple[str, int, str, Callable[[int, ReportRow], str]], ...] = (
    ("status", 17, "left", lambda i, r: r.status),
    ("failed/ran", 11, "right", lambda i, r: r.failures_text),  # skipped executions did not run
    ("rate", 6, "right", lambda i, r: r.rate_text),
    ("skipped", 7, "right", lambda i, r: _skipped(r)),
    ("Q", 3, "center", lambda i, r: "yes" if r.quarantined else ""),
    ("conf", 4, "right", lambda i, r: f"{r.confidence:.2f}"),
    ("score", 5, "right", lambda i, r: _opt(r.score)),
    ("last failure", 16, "left", lambda i, r: _date(r.last_failure_at)),
    ("impact", 7, "right", lambda i, r: f"{r.impact:.2f}"),
)
MIN_NAME_WIDTH = 30


def render_table(repository: str, rows: Sequence[ReportRow], generated_at: datetime, width: int) -> Any:
    """A rich Table for a terminal `width` characters wide. The test name keeps at least
    MIN_NAME_WIDTH characters; optional columns are added, most useful first, while they fit."""
    from rich.table import Table
    from rich.text import Text

    chosen = []
    used = MIN_NAME_WIDTH + 4  # the name column, and the table's outer border
    for column in _COLUMNS:
        if used + column[1] + 3 <= width:
            chosen.append(column)
            used += column[1] + 3
    name_width = MIN_NAME_WIDTH + max(0, width - used)
    table = Table(
        title=f"FlakeGuard · {repository} · {len(rows)} tests",
        caption=f"sorted by impact · generated {generated_at.isoformat(timespec='seconds')}",
        header_style="bold",
        expand=False,
        pad_edge=False,
    )
    table.add_column("test", no_wrap=True, max_width=name_width)
    for header, _, justify, _cell in chosen:
        table.add_column(header, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for index, row in enumerate(rows, 1):
        cells: list[Any] = [Text(shorten(row.display, name_width))]
        for header, _, _, cell in chosen:
            text = cell(index, row)
            cells.append(Text(text, style=STATUS_STYLE.get(text, "")) if header == "status" else text)
        table.add_row(*cells)
    return table
