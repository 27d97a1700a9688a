"""`POST /webhooks/github` against real Redis and PostgreSQL, with GitHub's example payloads."""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from flakeguard.config import Settings
from flakeguard.github.webhooks import sign
from flakeguard.jobs.names import QueueName
from flakeguard.metrics import REGISTRY
from flakeguard.pipeline.checks import QUARANTINE_JOB_NAME
from flakeguard.server.app import create_api_app
from flakeguard.services import Services
from flakeguard.store.models import Repository
from flakeguard.store.repository import RunInfo, record_run, upsert_repository

from ..conftest import SHARED

pytestmark = pytest.mark.integration

SECRET = "webhook-secret-for-tests-5f1c"
EXAMPLE = json.loads((SHARED / "github" / "webhook-workflow_run-completed.json").read_text())
EXAMPLE_PRS = json.loads((SHARED / "github" / "webhook-workflow_run-completed-with-prs.json").read_text())
INGEST_ID = "ingest-octo-org-octo-repo-289782451-1"


@pytest.fixture
async def hooked(settings: Settings) -> AsyncIterator[Services]:
    svc = Services.create(settings.model_copy(update={"github_webhook_secret": SecretStr(SECRET)}))
    try:
        yield svc
    finally:
        await svc.close()


@pytest.fixture
async def http(hooked: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_api_app(hooked, None, "api-token")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://flakeguard") as c:
        yield c


async def deliver(
    http: httpx.AsyncClient,
    event: str,
    payload: Any,
    *,
    delivery: str | None = None,
    secret: str | None = SECRET,
    raw: bytes | None = None,
    content_type: str = "application/json",
) -> httpx.Response:
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "Content-Type": content_type,
        "User-Agent": "GitHub-Hookshot/test",
    }
    if secret is not None:
        headers["X-Hub-Signature-256"] = sign(secret.encode(), body)
    return await http.post("/webhooks/github", content=body, headers=headers)


async def queued(services: Services, name: QueueName) -> int:
    counts = await services.producer.queue(name).getJobCounts("waiting", "prioritized", "delayed", "active")
    return sum(int(v) for v in counts.values())


def variant(base: dict[str, Any], **run: Any) -> dict[str, Any]:
    payload = copy.deepcopy(base)
    payload["workflow_run"].update(run)
    return payload


async def test_a_completed_run_is_enqueued_for_ingest(hooked: Services, http: httpx.AsyncClient) -> None:
    started = time.monotonic()
    response = await deliver(http, "workflow_run", EXAMPLE, delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert time.monotonic() - started < 1.0
    assert response.status_code == 202
    assert response.json() == {"status": "enqueued", "queue": "runs:ingest", "jobId": INGEST_ID}
    job = await hooked.producer.queue(QueueName.RUNS_INGEST).getJob(INGEST_ID)
    assert job.opts["priority"] == 3  # repository_dispatch: normal
    assert job.data == {
        "workflowRunId": 289782451,
        "repository": {"owner": "octo-org", "repo": "octo-repo"},
        "priority": "normal",
        "correlationId": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "metadata": {
            "runAttempt": 1,
            "headSha": EXAMPLE["workflow_run"]["head_sha"],
            "headBranch": "master",
            "event": "repository_dispatch",
            "conclusion": "success",
            "runStatus": "completed",
            "triggeredBy": "webhook",
            "deliveryId": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        },
    }


async def test_priority_follows_the_event(hooked: Services, http: httpx.AsyncClient) -> None:
    push = variant(EXAMPLE, event="push", run_attempt=2)
    push["installation"] = {"id": 67890, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNjc4OTA="}
    assert (await deliver(http, "workflow_run", push)).status_code == 202
    pr = variant(EXAMPLE_PRS, event="pull_request", id=289782452)
    assert (await deliver(http, "workflow_run", pr)).status_code == 202
    queue = hooked.producer.queue(QueueName.RUNS_INGEST)
    high = await queue.getJob("ingest-octo-org-octo-repo-289782451-2")
    assert high.opts["priority"] == 2 and high.data["priority"] == "high"
    assert high.data["repository"]["installationId"] == 67890
    normal = await queue.getJob("ingest-octo-org-octo-repo-289782452-1")
    assert normal.opts["priority"] == 3 and normal.data["priority"] == "normal"


async def test_a_form_encoded_delivery_is_accepted(hooked: Services, http: httpx.AsyncClient) -> None:
    body = urlencode({"payload": json.dumps(EXAMPLE)}).encode()
    response = await deliver(
        http, "workflow_run", None, raw=body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 202 and response.json()["jobId"] == INGEST_ID


@pytest.mark.parametrize("secret", ["wrong secret", None], ids=["wrong-signature", "missing-header"])
async def test_an_unsigned_or_badly_signed_delivery_is_refused(
    hooked: Services, http: httpx.AsyncClient, secret: str | None
) -> None:
    response = await deliver(http, "workflow_run", EXAMPLE, secret=secret)
    assert response.status_code == 401
    assert SECRET not in response.text and "sha256=" not in response.text
    assert await queued(hooked, QueueName.RUNS_INGEST) == 0


async def test_the_signature_covers_the_raw_body(hooked: Services, http: httpx.AsyncClient) -> None:
    body = json.dumps(EXAMPLE).encode()
    signature = sign(SECRET.encode(), body)
    reformatted = json.dumps(EXAMPLE, indent=2).encode()  # same JSON, other bytes
    response = await http.post(
        "/webhooks/github",
        content=reformatted,
        headers={
            "X-GitHub-Event": "workflow_run",
            "X-Hub-Signature-256": signature,
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 401
    assert await queued(hooked, QueueName.RUNS_INGEST) == 0


async def test_without_a_configured_secret_every_delivery_is_refused(services: Services) -> None:
    app = create_api_app(services, None, "api-token")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://flakeguard") as c:
        response = await deliver(c, "workflow_run", EXAMPLE, secret="")
    assert response.status_code == 503
    assert await queued(services, QueueName.RUNS_INGEST) == 0


async def test_a_replayed_delivery_is_not_enqueued_twice(hooked: Services, http: httpx.AsyncClient) -> None:
    delivery = str(uuid.uuid4())
    first = await deliver(http, "workflow_run", EXAMPLE, delivery=delivery)
    await hooked.producer.queue(QueueName.RUNS_INGEST).remove(INGEST_ID)  # jobId dedup would hide a replay
    replay = await deliver(http, "workflow_run", EXAMPLE, delivery=delivery)
    assert first.status_code == 202
    assert replay.status_code == 200 and replay.json() == {"status": "duplicate"}
    assert await queued(hooked, QueueName.RUNS_INGEST) == 0
    ttl = await hooked.kv.ttl(hooked.key("webhook-delivery", delivery))
    assert 23 * 3600 < ttl <= 24 * 3600


async def test_malformed_json_is_a_400(hooked: Services, http: httpx.AsyncClient) -> None:
    response = await deliver(http, "workflow_run", None, raw=b'{"action": "completed", ')
    assert response.status_code == 400
    not_an_object = await deliver(http, "workflow_run", None, raw=b"[1, 2]")
    assert not_an_object.status_code == 400
    missing = await deliver(http, "workflow_run", {"action": "completed", "workflow_run": {}})
    assert missing.status_code == 400
    assert await queued(hooked, QueueName.RUNS_INGEST) == 0
    # a 400 does not burn the delivery id: a fixed redelivery is processed
    delivery = str(uuid.uuid4())
    assert (
        await deliver(http, "workflow_run", {"action": "completed"}, delivery=delivery)
    ).status_code == 400
    assert (await deliver(http, "workflow_run", EXAMPLE, delivery=delivery)).status_code == 202


async def test_other_events_and_actions_are_ignored(hooked: Services, http: httpx.AsyncClient) -> None:
    requested = copy.deepcopy(EXAMPLE)
    requested["action"] = "requested"
    answers = [
        await deliver(http, "workflow_run", requested),
        await deliver(http, "push", {"ref": "refs/heads/main"}),
        await deliver(http, "check_run", {"action": "created", "check_run": {"name": "FlakeGuard"}}),
    ]
    assert [(a.status_code, a.json()["status"]) for a in answers] == [(202, "ignored")] * 3
    assert (await deliver(http, "ping", {"zen": "Design for failure."})).json() == {"status": "pong"}
    assert await queued(hooked, QueueName.RUNS_INGEST) == 0
    assert await queued(hooked, QueueName.RUNS_ANALYZE) == 0
    sample = REGISTRY.get_sample_value(
        "flakeguard_webhook_deliveries_total", {"event": "other", "outcome": "ignored"}
    )
    assert sample is not None and sample >= 1


def _installation_payload(action: str, **extra: Any) -> dict[str, Any]:
    return {
        "action": action,
        "installation": {"id": 4242, "account": {"login": "octo-org", "id": 1}},
        "sender": {"login": "octocat", "id": 2},
        **extra,
    }


def _repo_item(name: str) -> dict[str, Any]:
    return {
        "id": hash(name) % 10_000,
        "node_id": "x",
        "name": name,
        "full_name": f"octo-org/{name}",
        "private": False,
    }


async def tracked(services: Services) -> dict[str, tuple[int | None, bool]]:
    async with services.sessions() as session:
        rows = (await session.execute(select(Repository))).scalars().all()
        return {r.full_name: (r.installation_id, r.active) for r in rows}


async def test_installations_track_repositories(hooked: Services, http: httpx.AsyncClient) -> None:
    created = _installation_payload("created", repositories=[_repo_item("alpha"), _repo_item("beta")])
    response = await deliver(http, "installation", created)
    assert response.status_code == 200 and response.json()["added"] == ["octo-org/alpha", "octo-org/beta"]
    assert await tracked(hooked) == {"octo-org/alpha": (4242, True), "octo-org/beta": (4242, True)}

    changed = _installation_payload(
        "removed",
        repository_selection="selected",
        repositories_added=[],
        repositories_removed=[_repo_item("beta")],
    )
    assert (await deliver(http, "installation_repositories", changed)).json()["removed"] == ["octo-org/beta"]
    added = _installation_payload(
        "added",
        repository_selection="selected",
        repositories_added=[_repo_item("gamma")],
        repositories_removed=[],
    )
    assert (await deliver(http, "installation_repositories", added)).status_code == 200
    assert await tracked(hooked) == {
        "octo-org/alpha": (4242, True),
        "octo-org/beta": (4242, False),
        "octo-org/gamma": (4242, True),
    }
    assert (await deliver(http, "installation", _installation_payload("deleted"))).status_code == 200
    assert all(not active for _, active in (await tracked(hooked)).values())


async def _stored_run(services: Services, sha: str) -> None:
    async with services.sessions.begin() as session:
        repo = await upsert_repository(session, "octo-org", "octo-repo", installation_id=4242)
        await record_run(
            session,
            repo.id,
            RunInfo(
                run_id=777,
                run_attempt=2,
                head_sha=sha,
                branch="main",
                event="push",
                conclusion="failure",
                started_at=datetime.now(UTC),
            ),
        )


def _check_run_payload(identifier: str | None, *, external_id: str, action: str = "requested_action") -> dict:
    payload: dict[str, Any] = {
        "action": action,
        "check_run": {
            "id": 5555,
            "name": "FlakeGuard",
            "head_sha": "9" * 40,
            "external_id": external_id,
            "status": "completed",
            "conclusion": "neutral",
        },
        "repository": {
            "name": "octo-repo",
            "full_name": "octo-org/octo-repo",
            "owner": {"login": "octo-org"},
        },
        "installation": {"id": 4242},
        "sender": {"login": "octocat"},
    }
    if identifier is not None:
        payload["requested_action"] = {"identifier": identifier}
    return payload


async def test_check_run_buttons_enqueue_reanalysis_and_quarantine(
    hooked: Services, http: httpx.AsyncClient
) -> None:
    analyze = hooked.producer.queue(QueueName.RUNS_ANALYZE)
    reanalyze = await deliver(
        http, "check_run", _check_run_payload("reanalyze", external_id="octo-org/octo-repo/12345/1")
    )
    assert reanalyze.status_code == 202
    job = await analyze.getJob(reanalyze.json()["jobId"])
    assert job.name == "analyze" and job.opts["priority"] == 2
    assert job.data["workflowRunId"] == 12345 and job.data["runAttempt"] == 1
    assert job.data["repository"] == {"owner": "octo-org", "repo": "octo-repo", "installationId": 4242}
    assert job.data["forceRecompute"] is True

    quarantine = await deliver(
        http, "check_run", _check_run_payload("quarantine", external_id="octo-org/octo-repo/12345/1")
    )
    assert quarantine.status_code == 202
    qjob = await analyze.getJob(quarantine.json()["jobId"])
    assert qjob.name == QUARANTINE_JOB_NAME
    assert (
        qjob.data["actor"] == "octocat"
        and qjob.data["workflowRunId"] == 12345
        and qjob.data["checkRunId"] == 5555
    )

    # Without a usable external id, the newest stored run of the head sha is used; "Re-run" too.
    await _stored_run(hooked, "9" * 40)
    rerun = await deliver(http, "check_run", _check_run_payload(None, external_id="", action="rerequested"))
    assert rerun.status_code == 202
    job = await analyze.getJob(rerun.json()["jobId"])
    assert (job.data["workflowRunId"], job.data["runAttempt"]) == (777, 2)
    assert await queued(hooked, QueueName.RUNS_ANALYZE) == 3
