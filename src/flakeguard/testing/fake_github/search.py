"""Filtering workflow runs as `GET /repos/{owner}/{repo}/actions/runs` does.

"This endpoint will return up to 1,000 results for each search when using the following
parameters: actor, branch, check_suite_id, created, event, head_sha, status." (OpenAPI
description). A filtered listing is therefore cut to its newest 1,000 runs; `total_count` still
counts every match (GitHub's search endpoints do so; for this one the documentation is silent).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from flakeguard.testing.fake_github.request import ApiError
from flakeguard.testing.fake_github.state import Run

SEARCH_RESULT_CAP = 1000
SEARCH_FILTERS = ("actor", "branch", "check_suite_id", "created", "event", "head_sha", "status")
RUN_STATUSES = frozenset(
    {
        "completed",
        "action_required",
        "cancelled",
        "failure",
        "neutral",
        "skipped",
        "stale",
        "success",
        "timed_out",
        "in_progress",
        "queued",
        "requested",
        "waiting",
        "pending",
    }
)
ACTOR = "octocat"  # every run of the fake is triggered by this user


def filter_runs(runs: list[Run], query: Mapping[str, str]) -> tuple[list[Run], int]:
    """The runs a listing returns (newest first, capped when filtered) and its `total_count`."""
    if "status" in query:
        if query["status"] not in RUN_STATUSES:
            raise ApiError(422, "Validation Failed")
        runs = [r for r in runs if query["status"] in (r.latest.status, r.latest.conclusion)]
    for key, value_of in (
        ("branch", lambda r: r.branch),
        ("event", lambda r: r.event),
        ("head_sha", lambda r: r.head_sha),
        ("actor", lambda r: ACTOR),
        ("check_suite_id", lambda r: str(r.id * 10 + r.latest.number)),
    ):
        if key in query:
            runs = [r for r in runs if value_of(r) == query[key]]
    if "created" in query:
        created = created_filter(query["created"])
        runs = [r for r in runs if created(r.created_at)]
    if any(key in query for key in SEARCH_FILTERS):
        return runs[:SEARCH_RESULT_CAP], len(runs)
    return runs, len(runs)


def _parse_day(s: str, end: bool) -> datetime:
    s = s.strip()
    if "T" in s:
        return datetime.fromisoformat(s.replace("Z", "+00:00")).astimezone(UTC)
    d = datetime.fromisoformat(s).replace(tzinfo=UTC)
    return d + timedelta(days=1) - timedelta(microseconds=1) if end else d


def created_filter(expr: str) -> Callable[[datetime], bool]:
    """GitHub's search date syntax: `>=D`, `>D`, `<=D`, `<D`, `A..B` (`*` open), `D`; dates or
    ISO 8601 date-times. 422 for anything else."""
    try:
        if ".." in expr:
            a, b = expr.split("..", 1)
            lo = None if a in ("", "*") else _parse_day(a, False)
            hi = None if b in ("", "*") else _parse_day(b, True)
            return lambda t: (lo is None or t >= lo) and (hi is None or t <= hi)
        for op in (">=", "<=", ">", "<"):
            if expr.startswith(op):
                rest = expr[len(op) :]
                if op == ">=":
                    x = _parse_day(rest, False)
                    return lambda t: t >= x
                if op == ">":
                    x = _parse_day(rest, True)
                    return lambda t: t > x
                if op == "<=":
                    x = _parse_day(rest, True)
                    return lambda t: t <= x
                x = _parse_day(rest, False)
                return lambda t: t < x
        lo, hi = _parse_day(expr, False), _parse_day(expr, True)
        return lambda t: lo <= t <= hi
    except ValueError as e:
        raise ApiError(422, "Validation Failed") from e
