"""Check runs: GitHub's rules beyond the request-body schema, and how an accepted body changes a
check run (annotations are only ever appended).

The schema (`bodies.validate_body`) has the required fields, enums, the 65,535-character summary and
text, ≤ 50 annotations and ≤ 3 actions with 20/40/20-character fields. The rules here are in the
operations' descriptions (API-NOTES §3): `conclusion` is required with `completed_at` or status
`completed` and cannot be `stale`; an annotation's title is at most 255 characters, its message and
raw details at most 64 KB; columns only on a one-line annotation; times are ISO 8601.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flakeguard.testing.fake_github.bodies import invalid
from flakeguard.testing.fake_github.render import iso
from flakeguard.testing.fake_github.state import CheckRunRecord, now

JSON = dict[str, Any]
RESOURCE = "CheckRun"
ANNOTATION_TITLE_CHARS = 255
ANNOTATION_TEXT_BYTES = 64 * 1024
ANNOTATION_LEVELS = ("notice", "warning", "failure")
CONCLUSIONS = ("action_required", "cancelled", "failure", "neutral", "success", "skipped", "timed_out")
STATUSES = ("queued", "in_progress", "completed")


def check_rules(body: JSON, *, create: bool) -> None:
    """422 for what the schema cannot say (and the required fields, so that a fake started without
    the schema, see `bodies.py`, still refuses a body it could not store)."""
    problems: list[str] = []
    if create:
        problems += [f'"{key}" wasn\'t supplied.' for key in ("name", "head_sha") if not body.get(key)]
    status, conclusion = body.get("status"), body.get("conclusion")
    if status is not None and status not in STATUSES:
        problems.append(f"For 'status', {status!r} is not a member of {list(STATUSES)}.")
    if conclusion == "stale":
        problems.append("Only GitHub can set the conclusion 'stale'.")
    elif conclusion is not None and conclusion not in CONCLUSIONS:
        problems.append(f"For 'conclusion', {conclusion!r} is not a member of {list(CONCLUSIONS)}.")
    if (status == "completed" or body.get("completed_at")) and not conclusion:
        problems.append('"conclusion" wasn\'t supplied.')
    for key in ("started_at", "completed_at"):
        if key in body and not _is_timestamp(body[key]):
            problems.append(f"For '{key}', {str(body[key])[:40]!r} is not an ISO 8601 timestamp.")
    output = body.get("output")
    annotations = output.get("annotations") if isinstance(output, dict) else None
    for i, a in enumerate(annotations if isinstance(annotations, list) else []):
        if isinstance(a, dict):
            problems += _annotation_problems(i, a)
    if problems:
        raise invalid(RESOURCE, problems)


def _annotation_problems(i: int, a: JSON) -> list[str]:
    problems = []
    if a.get("annotation_level") not in ANNOTATION_LEVELS:
        problems.append(f"annotation {i}: annotation_level is not one of {', '.join(ANNOTATION_LEVELS)}.")
    title = a.get("title")
    if isinstance(title, str) and len(title) > ANNOTATION_TITLE_CHARS:
        problems.append(f"annotation {i}: title is longer than {ANNOTATION_TITLE_CHARS} characters.")
    for key in ("message", "raw_details"):
        value = a.get(key)
        if isinstance(value, str) and len(value.encode()) > ANNOTATION_TEXT_BYTES:
            problems.append(f"annotation {i}: {key} is larger than 64 KB.")
    if ("start_column" in a or "end_column" in a) and a.get("start_line") != a.get("end_line"):
        problems.append(f"annotation {i}: columns are only allowed on one line.")
    return problems


def _is_timestamp(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def new_check_run(cid: int, owner: str, repo: str, body: JSON) -> CheckRunRecord:
    record = CheckRunRecord(
        id=cid,
        owner=owner,
        repo=repo,
        name=body["name"],
        head_sha=body["head_sha"],
        status="queued",
        conclusion=None,
        external_id=body.get("external_id") or "",
        details_url=body.get("details_url"),
        started_at=body.get("started_at") or iso(now()),
        completed_at=None,
        output={"title": None, "summary": None, "text": None},
    )
    apply_body(record, body)
    return record


def apply_body(c: CheckRunRecord, body: JSON) -> None:
    """A conclusion completes the run; output fields replace, annotations append."""
    for key in ("name", "details_url", "external_id", "started_at"):
        if key in body:
            setattr(c, key, body[key])
    if body.get("conclusion"):
        c.conclusion = body["conclusion"]
        c.status = "completed"
        c.completed_at = body.get("completed_at") or iso(now())
    elif "status" in body:
        c.status = body["status"]
        if c.status != "completed":
            c.conclusion = None
    if "output" in body:
        output = body["output"]
        for key in ("title", "summary", "text"):
            if key in output:
                c.output[key] = output[key]
        for a in output.get("annotations") or []:
            c.annotations.append(
                {
                    "path": a["path"],
                    "blob_href": f"https://github.com/{c.owner}/{c.repo}/blob/{c.head_sha}/{a['path']}",
                    "start_line": a["start_line"],
                    "end_line": a["end_line"],
                    "start_column": a.get("start_column"),
                    "end_column": a.get("end_column"),
                    "annotation_level": a["annotation_level"],
                    "title": a.get("title"),
                    "message": a["message"],
                    "raw_details": a.get("raw_details"),
                }
            )
    if "actions" in body:
        c.actions = list(body["actions"])
    c.requests.append(body)
