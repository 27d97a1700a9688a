"""The `FlakeGuard` check run: pure rendering (summary, annotations, actions, conclusion) within
GitHub's limits, and `publish_check_run`, which sends it.

GitHub's limits (API-NOTES §3): `summary`/`text` at most 65,535 characters, at most 50 annotations per
request (more go in follow-up updates, which append), at most 3 actions with label <= 20,
description <= 40 and identifier <= 20 characters, annotation `title` <= 255, `message` <= 64 KB.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

__all__ = [
    "ACTION_QUARANTINE",
    "ACTION_REANALYZE",
    "ANNOTATIONS_PER_REQUEST",
    "CHECK_NAME",
    "SUMMARY_LIMIT",
    "CheckRunFailure",
    "CheckRunReport",
    "PublishedCheckRun",
    "batched",
    "build_check_run",
    "conclusion_for",
    "publish_check_run",
    "render_actions",
    "render_annotations",
    "render_summary",
    "render_title",
    "start_check_run",
]

CHECK_NAME = "FlakeGuard"
SUMMARY_LIMIT = 65_535
ANNOTATIONS_PER_REQUEST = 50
MAX_ANNOTATIONS = 1_000  # 20 requests; the summary still lists everything that fits
ACTION_QUARANTINE = "quarantine"
ACTION_REANALYZE = "reanalyze"
_MESSAGE_BYTES = 60_000  # UTF-8 bytes: GitHub caps an annotation's message at 64 KB
_TITLE_LIMIT = 255

Conclusion = Literal["success", "failure", "neutral"]


@dataclass(frozen=True, slots=True)
class CheckRunFailure:
    """One failing test of the analysed run."""

    test_name: str
    file: str | None = None
    line: int | None = None
    message: str = ""
    known_flaky: bool = False
    score: float | None = None  # flakiness score 0..1 where known
    evidence_text: str = ""  # e.g. "failed 4 of 20 runs on 3 branches; passed on retry twice"
    quarantined: bool = False

    @property
    def is_new(self) -> bool:
        return not (self.known_flaky or self.quarantined)


@dataclass(frozen=True, slots=True)
class CheckRunReport:
    """What the analysis of one run found."""

    failures: Sequence[CheckRunFailure] = ()
    total_tests: int = 0
    passed: int = 0
    skipped: int = 0
    quarantined_tests: Sequence[str] = ()  # every test quarantined in this repository
    details_url: str | None = None
    workflow_run_id: int | None = None
    external_id: str | None = None
    extra_text: str | None = None  # optional Markdown for the `text` field


@dataclass(frozen=True, slots=True)
class PublishedCheckRun:
    id: int
    conclusion: Conclusion
    requests: int  # API calls made to publish
    annotations: int
    html_url: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


def conclusion_for(report: CheckRunReport) -> Conclusion:
    """`failure` when a new failure remains; `neutral` when every failure is known flaky or
    quarantined; `success` when nothing failed."""
    if not report.failures:
        return "success"
    if any(f.is_new for f in report.failures):
        return "failure"
    return "neutral"


def render_title(report: CheckRunReport) -> str:
    new = sum(f.is_new for f in report.failures)
    known = len(report.failures) - new
    if not report.failures:
        return "No failing tests"
    parts = []
    if new:
        parts.append(f"{new} new failure{'s' if new != 1 else ''}")
    if known:
        parts.append(f"{known} known flaky or quarantined")
    return ", ".join(parts)[:_TITLE_LIMIT]


def _cell(text: str, limit: int = 300) -> str:
    one = " ".join(text.split())
    if len(one) > limit:
        one = one[: limit - 1] + "…"
    return one.replace("|", "\\|")


def _code(text: str) -> str:
    return "`" + _cell(text, 200).replace("`", "'") + "`"


def _failure_row(f: CheckRunFailure) -> str:
    if f.quarantined:
        status = "🔒 quarantined"
    elif f.known_flaky:
        status = "🔁 known flaky"
    else:
        status = "❌ new failure"
    score = f"{f.score:.2f}" if f.score is not None else "–"
    where = f" ({_cell(f.file, 120)}{f':{f.line}' if f.line else ''})" if f.file else ""
    detail = _cell(f.evidence_text) if not f.is_new and f.evidence_text else _cell(f.message)
    return f"| {status} | {_code(f.test_name)}{where} | {score} | {detail} |"


def _cut_utf8(text: str, limit: int) -> str:
    """At most `limit` bytes of UTF-8, cut between characters."""
    data = text.encode()
    return text if len(data) <= limit else data[:limit].decode(errors="ignore")


def _size(text: str) -> int:
    # GitHub counts characters; counting UTF-8 bytes is never less, so the result fits either way.
    return len(text.encode())


def render_summary(report: CheckRunReport, limit: int = SUMMARY_LIMIT) -> str:
    """The Markdown summary: totals, the failing tests (new failures first), quarantined tests.
    Cut to `limit` with a closing note that says how many rows were left out."""
    failed = len(report.failures)
    new = sum(f.is_new for f in report.failures)
    head = [f"## FlakeGuard: {render_title(report)}", ""]
    if report.total_tests:
        head.append(
            f"**Totals:** {report.total_tests} tests, {report.passed} passed, {failed} failed "
            f"({new} new, {failed - new} known flaky or quarantined), {report.skipped} skipped."
        )
    else:
        head.append(f"**Totals:** {failed} failed ({new} new, {failed - new} known flaky or quarantined).")
    head.append("")
    body: list[tuple[str, str]] = []  # (kind, line)
    ordered = sorted(report.failures, key=lambda f: (not f.is_new, f.quarantined, -(f.score or 0.0)))
    if ordered:
        body += [
            ("", "### Failing tests"),
            ("", ""),
            ("", "| | Test | Flakiness | Evidence / message |"),
            ("", "|---|---|---|---|"),
        ]
        body += [("failing tests", _failure_row(f)) for f in ordered]
        body.append(("", ""))
    if report.quarantined_tests:
        body += [("", f"### Quarantined tests ({len(report.quarantined_tests)})"), ("", "")]
        body += [("quarantined tests", f"- {_code(name)}") for name in report.quarantined_tests]
        body.append(("", ""))

    text = "\n".join(head)
    full = text + "\n" + "\n".join(line for _, line in body)
    if _size(full) <= limit:
        return full.rstrip("\n") + "\n"
    reserve = 400  # room for the note
    lines = [text]
    used = _size(text) + 1
    omitted: dict[str, int] = {}
    for kind, line in body:
        cost = _size(line) + 1
        if not omitted and used + cost <= limit - reserve:
            lines.append(line)
            used += cost
        elif kind:
            omitted[kind] = omitted.get(kind, 0) + 1
    what = " and ".join(f"{n} {kind}" for kind, n in omitted.items())
    note = (
        f"\n\n> ✂️ Summary truncated to GitHub's {limit:,}-character limit: {what} not shown."
        " New failures are listed first; annotations and the details page have the rest."
    )
    return "\n".join(lines).rstrip("\n") + note + "\n"


def render_annotations(
    report: CheckRunReport, max_annotations: int = MAX_ANNOTATIONS
) -> list[dict[str, Any]]:
    """One annotation per failing test that has a file (line 1 when the report has no line);
    new failures at level `failure`, known flaky / quarantined ones at `warning`; new first."""
    out: list[dict[str, Any]] = []
    ordered = sorted(report.failures, key=lambda f: not f.is_new)
    for f in ordered:
        if not f.file:
            continue
        line = f.line if f.line and f.line > 0 else 1
        if f.quarantined:
            title = f"Quarantined: {f.test_name}"
        elif f.known_flaky:
            title = f"Known flaky: {f.test_name}"
        else:
            title = f"New failure: {f.test_name}"
        message = f.message or "failed"
        if not f.is_new:
            score = f" (flakiness {f.score:.2f})" if f.score is not None else ""
            message = f"Known flaky{score}. {f.evidence_text}\n\n{message}".strip()
        ann: dict[str, Any] = {
            "path": f.file.removeprefix("./"),
            "start_line": line,
            "end_line": line,
            "annotation_level": "failure" if f.is_new else "warning",
            "title": title[:_TITLE_LIMIT],
            "message": _cut_utf8(message, _MESSAGE_BYTES),
        }
        out.append(ann)
        if len(out) >= max_annotations:
            break
    return out


def render_actions(report: CheckRunReport) -> list[dict[str, str]]:
    """The requested-action buttons: `Quarantine flaky` when known flaky tests failed and are not yet
    quarantined, and always `Re-analyze`."""
    actions = []
    if any(f.known_flaky and not f.quarantined for f in report.failures):
        actions.append(
            {
                "label": "Quarantine flaky",
                "description": "Quarantine the known flaky tests",
                "identifier": ACTION_QUARANTINE,
            }
        )
    actions.append(
        {
            "label": "Re-analyze",
            "description": "Recompute flakiness for this run",
            "identifier": ACTION_REANALYZE,
        }
    )
    for a in actions:
        assert len(a["label"]) <= 20 and len(a["description"]) <= 40 and len(a["identifier"]) <= 20
    return actions[:3]


def batched(items: Sequence[Any], size: int = ANNOTATIONS_PER_REQUEST) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


def build_check_run(
    report: CheckRunReport, head_sha: str, *, name: str = CHECK_NAME, now: datetime | None = None
) -> tuple[dict[str, Any], list[list[dict[str, Any]]]]:
    """The completed check-run body (with the first annotation batch) and the remaining batches."""
    batches = list(batched(render_annotations(report)))
    output: dict[str, Any] = {"title": render_title(report), "summary": render_summary(report)}
    if report.extra_text:
        output["text"] = report.extra_text[: SUMMARY_LIMIT // 2]
    if batches:
        output["annotations"] = batches[0]
    body: dict[str, Any] = {
        "name": name,
        "head_sha": head_sha,
        "status": "completed",
        "conclusion": conclusion_for(report),
        "completed_at": (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "output": output,
        "actions": render_actions(report),
    }
    if report.details_url:
        body["details_url"] = report.details_url
    ext = report.external_id or (str(report.workflow_run_id) if report.workflow_run_id else None)
    if ext:
        body["external_id"] = ext
    return body, batches[1:]


class _ChecksClient(Protocol):
    async def create_check_run(self, owner: str, repo: str, body: Any) -> dict[str, Any]: ...

    async def update_check_run(
        self, owner: str, repo: str, check_run_id: int, body: Any
    ) -> dict[str, Any]: ...

    async def get_check_run(self, owner: str, repo: str, check_run_id: int) -> dict[str, Any]: ...


async def publish_check_run(
    client: _ChecksClient,
    owner: str,
    repo: str,
    head_sha: str,
    report: CheckRunReport,
    *,
    check_run_id: int | None = None,
    name: str = CHECK_NAME,
) -> PublishedCheckRun:
    """Creates the `FlakeGuard` check run on `head_sha` (or updates `check_run_id`, e.g. the one
    created in_progress when analysis started), then sends the remaining annotations 50 per PATCH.

    The OpenAPI subset has no "list check runs for a ref" endpoint, so the caller keeps the id (store
    `PublishedCheckRun.id`). Annotations only ever append on GitHub: when the existing run already has
    annotations (a re-analysis), a new check run is created instead — GitHub shows the newest run of a
    name — so annotations are never duplicated or left stale.
    """
    body, rest = build_check_run(report, head_sha, name=name)
    requests = 0
    data: dict[str, Any] | None = None
    if check_run_id is not None:
        existing = await client.get_check_run(owner, repo, check_run_id)
        requests += 1
        if existing.get("head_sha") == head_sha and not (existing.get("output") or {}).get(
            "annotations_count"
        ):
            patch = {k: v for k, v in body.items() if k != "head_sha"}
            data = await client.update_check_run(owner, repo, check_run_id, patch)
            requests += 1
    if data is None:
        data = await client.create_check_run(owner, repo, body)
        requests += 1
    cid = int(data["id"])
    title, summary = body["output"]["title"], body["output"]["summary"]
    for batch in rest:
        data = await client.update_check_run(
            owner, repo, cid, {"output": {"title": title, "summary": summary, "annotations": batch}}
        )
        requests += 1
    annotations = len(body["output"].get("annotations", [])) + sum(len(b) for b in rest)
    return PublishedCheckRun(cid, body["conclusion"], requests, annotations, data.get("html_url"), data)


async def start_check_run(
    client: _ChecksClient,
    owner: str,
    repo: str,
    head_sha: str,
    *,
    details_url: str | None = None,
    external_id: str | None = None,
    name: str = CHECK_NAME,
) -> int:
    """Creates the check run `in_progress` (shown while analysis runs); returns its id for
    `publish_check_run(..., check_run_id=...)`."""
    body: dict[str, Any] = {
        "name": name,
        "head_sha": head_sha,
        "status": "in_progress",
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "output": {"title": "Analysing test results", "summary": "Analysis in progress."},
    }
    if details_url:
        body["details_url"] = details_url
    if external_id:
        body["external_id"] = external_id
    data = await client.create_check_run(owner, repo, body)
    return int(data["id"])
