from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from flakeguard.github.webhooks import (
    ingest_priority,
    parse_workflow_run_completed,
    sign,
    verify_signature,
)
from flakeguard.testing.openapi import default_spec_path

SECRET = b"It's a Secret to Everybody"
BODY = b"Hello, World!"
GITHUB_VECTOR = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_githubs_published_vector() -> None:
    assert sign(SECRET, BODY) == GITHUB_VECTOR
    assert verify_signature(SECRET, BODY, GITHUB_VECTOR)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        GITHUB_VECTOR.replace("757", "758"),
        GITHUB_VECTOR.removeprefix("sha256="),
        "sha1=" + GITHUB_VECTOR.removeprefix("sha256="),
    ],
)
def test_wrong_or_missing_signature(header: str | None) -> None:
    assert not verify_signature(SECRET, BODY, header)


def test_other_body_or_secret_fails() -> None:
    assert not verify_signature(SECRET, BODY + b" ", GITHUB_VECTOR)
    assert not verify_signature(b"other", BODY, GITHUB_VECTOR)
    assert not verify_signature(b"", BODY, sign(b"", BODY))


def _payload(name: str) -> dict[str, object]:
    path = default_spec_path().parent / name
    if not path.is_file():
        assert os.environ.get("CI") != "true", f"{name} missing: CI needs ../shared beside the clone"
        pytest.skip(f"{name} not found beside the OpenAPI subset")
    data: dict[str, object] = json.loads(Path(path).read_text())
    return data


def test_parse_completed_example() -> None:
    run = parse_workflow_run_completed("workflow_run", _payload("webhook-workflow_run-completed.json"))
    assert run is not None
    assert run.workflow_run_id == 289782451 and run.run_attempt == 1
    assert run.owner and run.repo and run.head_sha


def test_other_events_are_ignored() -> None:
    payload = _payload("webhook-workflow_run-completed.json")
    assert parse_workflow_run_completed("push", payload) is None
    assert parse_workflow_run_completed("workflow_run", {**payload, "action": "requested"}) is None


def test_priority() -> None:
    run = parse_workflow_run_completed(
        "workflow_run", _payload("webhook-workflow_run-completed-with-prs.json")
    )
    assert run is not None
    from dataclasses import replace

    push_main = replace(run, event="push", head_branch="main", default_branch="main")
    assert ingest_priority(push_main) == "high"
    assert ingest_priority(replace(push_main, head_branch="feature")) == "normal"
    assert ingest_priority(replace(push_main, event="pull_request")) == "normal"
