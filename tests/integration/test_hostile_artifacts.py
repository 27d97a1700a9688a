"""Hostile artifacts through the worker path (fake GitHub -> `ingest_run` -> PostgreSQL): refused with
artifact/member/line/reason, counted in the metric, the good reports still stored, and a real worker
keeps serving jobs after a hostile one."""

from __future__ import annotations

import io
import time
import zipfile

import pytest
from sqlalchemy import func, select

from flakeguard.jobs.names import QueueName
from flakeguard.jobs.payloads import RunsIngestJob, parse_payload
from flakeguard.metrics import REGISTRY
from flakeguard.model import Outcome
from flakeguard.pipeline.ingest import ingest_run
from flakeguard.services import Services
from flakeguard.store.models import TestExecution, WorkflowRun
from flakeguard.testing.fake_github import FakeGitHub
from flakeguard.testing.reports import zip_bomb, zip_many_members, zip_members
from flakeguard.workers.handlers import HANDLERS

from .test_end_to_end import REPO, artifact_for
from .test_worker import hosted, wait_state

pytestmark = pytest.mark.integration

METRIC = "flakeguard_worker_junit_refused_total"
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE testsuite [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<testsuite name="s"><testcase classname="c" name="&secret;"/></testsuite>
"""
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<testsuite name="lolz"><testcase classname="c" name="&lol9;"/></testsuite>
"""
MALFORMED = b'<?xml version="1.0"?>\n<testsuite name="s">\n<testcase classname="c" name="n">\n</testsuite>\n'


def refused_count(reason: str) -> float:
    return REGISTRY.get_sample_value(f"{METRIC}", {"reason": reason}) or 0.0


def job_for(run_id: int) -> RunsIngestJob:
    return parse_payload(
        RunsIngestJob,
        {"workflowRunId": run_id, "repository": {"owner": REPO[0], "repo": REPO[1], "installationId": 67890}},
    )


async def stored(services: Services, run_id: int) -> int:
    async with services.sessions() as session:
        return int(
            (
                await session.execute(
                    select(func.count(TestExecution.id))
                    .join(WorkflowRun, WorkflowRun.id == TestExecution.workflow_run_id)
                    .where(WorkflowRun.run_id == run_id)
                )
            ).scalar_one()
        )


async def test_hostile_members_are_refused_and_the_good_ones_stored(
    services: Services, fake_github: FakeGitHub
) -> None:
    members = {
        "junit/a-billion-laughs.xml": BILLION_LAUGHS,
        "junit/b-xxe.xml": XXE,
        "junit/c-malformed.xml": MALFORMED,
    }
    # Next to the hostile members, the two good reports of the end-to-end artifact (3 executions).
    with zipfile.ZipFile(io.BytesIO(artifact_for(Outcome.FAILED))) as zf:
        members.update({info.filename: zf.read(info) for info in zf.infolist()})
    good = zip_members(members)
    fake_github.add_repository(*REPO, installation_id=67890)
    fake_github.add_run(*REPO, 501, head_sha="b" * 40, artifacts={"test-results": good})
    before = {r: refused_count(r) for r in ("dtd_forbidden", "malformed_xml")}

    result = await ingest_run(services, job_for(501))

    assert (result.reports, result.executions, result.executions_new) == (2, 3, 3)
    refusals = {(r.artifact, r.member, r.line, r.reason_code) for r in result.refused}
    assert refusals == {
        ("test-results", "junit/a-billion-laughs.xml", 2, "dtd_forbidden"),
        ("test-results", "junit/b-xxe.xml", 2, "dtd_forbidden"),
        ("test-results", "junit/c-malformed.xml", 4, "malformed_xml"),
    }
    assert all(r.message for r in result.refused)
    assert refused_count("dtd_forbidden") == before["dtd_forbidden"] + 2
    assert refused_count("malformed_xml") == before["malformed_xml"] + 1
    assert await stored(services, 501) == 3
    async with services.sessions() as session:
        (files_refused,) = (
            await session.execute(select(WorkflowRun.files_refused).where(WorkflowRun.run_id == 501))
        ).one()
    assert files_refused == 3


async def test_a_zip_bomb_a_non_zip_and_a_member_flood_are_refused_and_the_job_completes(
    services: Services, fake_github: FakeGitHub
) -> None:
    fake_github.add_repository(*REPO, installation_id=67890)
    fake_github.add_run(
        *REPO,
        502,
        head_sha="c" * 40,
        artifacts={
            "bomb-test-results": zip_bomb("junit/bomb.xml", 1 << 30),
            "not-a-zip-test-results": b"<testsuite name='raw xml, not a zip'/>",
            "flood-test-results": zip_many_members(100_000),
            "test-results": artifact_for(Outcome.PASSED),
        },
    )
    before = {r: refused_count(r) for r in ("zip_bomb", "bad_zip", "too_many_members")}
    started = time.monotonic()

    result = await ingest_run(services, job_for(502))

    assert time.monotonic() - started < 30
    by_artifact = {r.artifact: r for r in result.refused}
    assert set(by_artifact) == {"bomb-test-results", "not-a-zip-test-results", "flood-test-results"}
    assert (by_artifact["bomb-test-results"].member, by_artifact["bomb-test-results"].reason_code) == (
        "junit/bomb.xml",
        "zip_bomb",
    )
    assert by_artifact["not-a-zip-test-results"].reason_code == "bad_zip"
    assert by_artifact["not-a-zip-test-results"].member is None
    assert by_artifact["flood-test-results"].reason_code == "too_many_members"
    for reason in before:
        assert refused_count(reason) == before[reason] + 1
    assert (result.outcome, result.executions_new) == ("ingested", 3)
    assert await stored(services, 502) == 3


async def test_a_real_worker_refuses_a_hostile_job_and_serves_the_next_one(
    services: Services, fake_github: FakeGitHub
) -> None:
    fake_github.add_repository(*REPO, installation_id=67890)
    fake_github.add_run(
        *REPO,
        601,
        head_sha="d" * 40,
        artifacts={
            "bomb-test-results": zip_bomb("bomb.xml", 1 << 30),
            "xxe-test-results": zip_members({"x.xml": XXE, "lol.xml": BILLION_LAUGHS}),
        },
    )
    fake_github.add_run(
        *REPO, 602, head_sha="e" * 40, artifacts={"test-results": artifact_for(Outcome.PASSED)}
    )
    queue = services.producer.queue(QueueName.RUNS_INGEST)
    async with hosted(services, HANDLERS, [QueueName.RUNS_INGEST], concurrency=1):
        hostile = await services.producer.ingest(job_for(601))
        assert await wait_state(queue, str(hostile.id), {"completed", "failed"}, 60) == "completed"
        good = await services.producer.ingest(job_for(602))
        assert await wait_state(queue, str(good.id), {"completed", "failed"}, 30) == "completed"
    hostile_job = await queue.getJob(str(hostile.id))
    assert hostile_job.attemptsMade <= 1
    value = hostile_job.returnvalue
    assert value["executions"] == 0
    assert sorted(r["reason_code"] for r in value["refused"]) == [
        "dtd_forbidden",
        "dtd_forbidden",
        "zip_bomb",
    ]
    assert (await queue.getJob(str(good.id))).returnvalue["executionsNew"] == 3
    assert await stored(services, 601) == 0
    assert await stored(services, 602) == 3
