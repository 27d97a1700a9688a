"""The original worker's operator contract, through the doors operators use: a real `flakeguard worker`
process, its HTTP ports, its log, and jobs enqueued as the original's producers enqueue them.

Metrics (the 16 names), `/health` (the original's JSON), the `/queues/...` routes, log lines with
correlation ids, the `tests:recompute` payload of the original's README, and Node jobs whose priority
is only in the payload.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from flakeguard.config import Settings
from flakeguard.github.webhooks import sign
from flakeguard.jobs.connection import RedisTarget, with_socket_timeout
from flakeguard.jobs.names import Priority, QueueName
from flakeguard.jobs.payloads import RunsIngestJob
from flakeguard.jobs.producer import JobProducer
from flakeguard.metrics import ORIGINAL_METRICS
from flakeguard.model import Outcome
from flakeguard.services import Services, retry_policy_from
from flakeguard.testing.fake_github import FakeGitHub

from ..conftest import REDIS_URL, SHARED
from .helpers import ROOT, running_worker, wait_for
from .history_helpers import F, History, P, key_of
from .tcp_proxy import TcpProxy
from .test_end_to_end import (
    EXAMPLE_PAYLOAD,
    HISTORY,
    REPO,
    artifact_for,
    completed,
    db_rows,
    job_state,
    publish_history,
    worker_env,
)

pytestmark = pytest.mark.integration
TOKEN = "operator-contract-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WEBHOOK_SECRET = "operator-contract-webhook-secret"


# ------------------------------------------------------------------------------------------ helpers


def contract_env(settings: Settings, tmp_path: Path, **extra: str) -> dict[str, str]:
    """A worker's environment; `NODE_ENV=...` in `extra` replaces the tests' FLAKEGUARD_ENV=test."""
    env = worker_env(settings, tmp_path)
    if "NODE_ENV" in extra:
        env.pop("FLAKEGUARD_ENV", None)
    env.update(
        FLAKEGUARD_API_TOKEN=TOKEN,
        GITHUB_WEBHOOK_SECRET=WEBHOOK_SECRET,
        QUEUE_RETRY_DELAY_MS="200",
        QUEUE_MAX_RETRY_DELAY_MS="400",
        BIND_HOST="127.0.0.1",
    )
    env.update(extra)
    return env


def health_url(env: dict[str, str], path: str) -> str:
    return f"http://127.0.0.1:{env['HEALTH_CHECK_PORT']}{path}"


def scrape(env: dict[str, str]) -> dict[str, list[Sample]]:
    text = httpx.get(f"http://127.0.0.1:{env['METRICS_PORT']}/metrics", timeout=5).text
    families: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = list(family.samples)
    return families


def value(families: dict[str, list[Sample]], sample: str, **labels: str) -> float:
    """The sum of the samples named `sample` whose labels include `labels`."""
    return sum(
        s.value
        for samples in families.values()
        for s in samples
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
    )


def log_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for raw in path.read_text().splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


def enqueue_ingest(settings: Settings, payload: dict[str, Any], *, job_id: str, priority: int = 3) -> None:
    async def go() -> None:
        from bullmq import Queue

        queue = Queue(
            QueueName.RUNS_INGEST.value,
            {"connection": with_socket_timeout(str(settings.redis_url)), "prefix": settings.redis_prefix},
        )
        try:
            await queue.add("ingest", payload, {"jobId": job_id, "priority": priority, "attempts": 3})
        finally:
            await queue.close()

    asyncio.run(go())


def wait_completed(settings: Settings, queue: str, job_id: str, within: float = 60) -> None:
    wait_for(lambda: completed(settings, queue, job_id), within, f"{queue} job {job_id}")


def node_or_skip() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the Node BullMQ interop test needs it")
    assert (ROOT / "tests" / "interop" / "node_modules" / "bullmq").exists(), "run `make node-deps` first"
    return node


# ------------------------------------------------------------------------------------------ metrics


def test_a_scrape_after_an_end_to_end_run_shows_the_original_metrics_with_sane_values(
    settings: Settings, fake_github: FakeGitHub, tmp_path: Path
) -> None:
    publish_history(fake_github)
    # The first ingest job meets GitHub 5xx beyond the client's own retries: one job-level retry.
    fake_github.inject("/repos/{owner}/{repo}/actions/runs/{run_id}/artifacts", "server_error", times=4)
    env = contract_env(settings, tmp_path)
    with running_worker(env, tmp_path / "worker.log"):
        for run_id, _, _ in HISTORY:
            enqueue_ingest(settings, {**EXAMPLE_PAYLOAD, "workflowRunId": run_id}, job_id=f"m-{run_id}")
            # One at a time, so that each analysis sees the runs before it (as in production).
            wait_completed(settings, "runs:analyze", f"analyze-acme-project-{run_id}-1")
        families = wait_for(
            lambda: (
                (f := scrape(env))
                and value(f, "flakeguard_worker_queue_size", queue="runs:analyze", status="completed") == 5
                and f
            ),
            30,
            "the sampler to count the completed jobs",
        )

    present = {s.name for samples in families.values() for s in samples}
    missing = [n for n in ORIGINAL_METRICS if n not in present and f"{n}_count" not in present]
    assert missing == []
    v = value
    processed = "flakeguard_worker_jobs_processed_total"
    assert v(families, processed, queue="runs:ingest", status="completed") == 5
    assert v(families, processed, queue="runs:analyze", status="completed") == 5
    assert v(families, processed, queue="runs:ingest", status="retried") == 1
    assert v(families, "flakeguard_worker_job_retries_total", queue="runs:ingest", error_type="network") == 1
    duration = "flakeguard_worker_job_processing_duration_seconds"
    assert v(families, f"{duration}_count", queue="runs:ingest") == 6  # 5 jobs, one of them twice
    assert 0 < v(families, f"{duration}_sum", queue="runs:analyze") < 60
    assert v(families, "flakeguard_worker_jobs_in_progress") == 0
    assert v(families, "flakeguard_worker_queue_size", queue="runs:ingest", status="completed") == 5
    assert v(families, "flakeguard_worker_queue_size", queue="runs:ingest", status="failed") == 0
    assert v(families, "flakeguard_worker_dlq_size", queue="runs:ingest") == 0
    # 10 jobs finished within the last minute: jobs/s over a sliding minute.
    throughput = v(families, "flakeguard_worker_queue_throughput")
    assert v(families, "flakeguard_worker_queue_throughput", queue="runs:ingest") == pytest.approx(5 / 60)
    assert throughput == pytest.approx(10 / 60)
    rss = v(families, "flakeguard_worker_memory_usage_bytes", type="rss")
    assert 20e6 < rss <= v(families, "flakeguard_worker_memory_usage_bytes", type="vms")
    assert 0 < v(families, "flakeguard_worker_memory_usage_bytes", type="heap_used") <= rss
    assert 0 <= v(families, "flakeguard_worker_cpu_usage_percent") <= 200 * 2
    assert v(families, "flakeguard_worker_health") == 1
    calls = "flakeguard_worker_github_api_calls_total"
    assert v(families, calls, endpoint="/repos/{owner}/{repo}/actions/runs/{run_id}", status="200") >= 5
    assert (
        v(families, calls, endpoint="/repos/{owner}/{repo}/actions/runs/{run_id}/artifacts", status="500")
        == 4
    )
    assert v(families, "flakeguard_worker_github_api_duration_seconds_count") >= v(families, calls)
    remaining = v(families, "flakeguard_worker_github_rate_limit_remaining", resource="core")
    assert 0 < remaining <= 5000
    # Five analyses of a run of three tests.
    assert v(families, "flakeguard_worker_tests_analyzed_total") == 15
    flaky = v(families, "flakeguard_worker_flaky_tests_detected_total")
    assert 0 <= flaky <= 15
    scored = v(families, "flakeguard_worker_flakiness_score_count")
    assert 0 < scored <= 15
    assert 0 <= v(families, "flakeguard_worker_flakiness_score_sum") <= scored
    assert v(families, "flakeguard_worker_flakiness_score_bucket", le="1.0") == scored


def test_metrics_answer_from_the_last_sample_while_redis_is_down(
    settings: Settings, fake_github: FakeGitHub, tmp_path: Path
) -> None:
    host, port = "127.0.0.1", int(str(settings.redis_url).rsplit(":", 1)[1].split("/")[0])
    with TcpProxy(host, port) as proxy:
        env = contract_env(settings, tmp_path, REDIS_URL=f"redis://127.0.0.1:{proxy.port}/0")
        with running_worker(env, tmp_path / "worker.log"):
            wait_for(
                lambda: value(scrape(env), "flakeguard_worker_queue_sampled_at_seconds") > 0, 30, "a sample"
            )
            before = scrape(env)
            proxy.cut()
            # Health follows the outage; the scrape keeps answering at once with the last queue sample.
            after = wait_for(
                lambda: (f := scrape(env)) and value(f, "flakeguard_worker_health") == 0 and f,
                30,
                "health 0 while Redis is down",
            )
            for _ in range(5):
                response = httpx.get(f"http://127.0.0.1:{env['METRICS_PORT']}/metrics", timeout=2)
                assert response.status_code == 200
    sampled_at = "flakeguard_worker_queue_sampled_at_seconds"
    assert value(after, sampled_at) == value(before, sampled_at)  # not refreshed, not lost
    assert value(after, "flakeguard_worker_queue_size", queue="runs:ingest", status="completed") == 0
    assert "flakeguard_worker_queue_size" in after


# ------------------------------------------------------------------------------------------ /health


HEALTH_KEYS = {"status", "timestamp", "uptime", "version", "environment", "checks"}
CHECK_KEYS = {"status", "responseTime", "lastChecked", "details"}


def test_health_has_the_original_shape_and_says_unhealthy_when_postgresql_stops(
    settings: Settings, tmp_path: Path
) -> None:
    pg_port = int(str(settings.database_url).split("@", 1)[1].split("/")[0].rsplit(":", 1)[1])
    with TcpProxy("127.0.0.1", pg_port) as proxy:
        database = str(settings.database_url).replace(f":{pg_port}/", f":{proxy.port}/")
        env = contract_env(settings, tmp_path, DATABASE_URL=database, NODE_ENV="production")
        with running_worker(env, tmp_path / "worker.log"):
            healthy = httpx.get(health_url(env, "/health"), timeout=10)
            memory = healthy.json()["checks"]["memory"]  # curl :8080/health | jq '.checks.memory'
            redis_check = healthy.json()["checks"]["redis"]  # ... | jq '.checks.redis'
            proxy.cut()
            down = httpx.get(health_url(env, "/health"), timeout=10)
            ready = httpx.get(health_url(env, "/health/ready"), timeout=10)
            live = httpx.get(health_url(env, "/health/live"), timeout=10)

    body = healthy.json()
    assert healthy.status_code == 200 and set(body) == HEALTH_KEYS
    assert body["status"] == "healthy" and body["environment"] == "production"
    assert datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00")) <= datetime.now(UTC)
    assert isinstance(body["uptime"], int) and 0 < body["uptime"] < 120_000  # milliseconds
    assert set(body["checks"]) == {"database", "redis", "queues", "memory"}
    for check in body["checks"].values():
        assert set(check) == CHECK_KEYS and check["status"] == "healthy"
        assert isinstance(check["responseTime"], int) and check["lastChecked"].endswith("Z")
    assert redis_check["details"]["cluster"] is False and redis_check["details"]["nodes"] == 1
    queues = body["checks"]["queues"]["details"]
    assert {"totalWaiting", "totalActive", "totalFailed"} <= set(queues)
    assert set(queues["workers"]) == {q.value for q in QueueName}
    assert memory["details"]["rss"] > 0 and memory["details"]["heapUsed"] > 0

    assert down.status_code == 503 and down.json()["status"] == "unhealthy"
    assert down.json()["checks"]["database"]["status"] == "unhealthy"
    assert down.json()["checks"]["redis"]["status"] == "healthy"
    assert ready.status_code == 503 and ready.json()["components"]["database"]["status"] == "down"
    assert live.status_code == 200
    assert "postgres@" not in down.text and TOKEN not in down.text


# ------------------------------------------------------------------------------------------ /queues


def test_every_queue_route_needs_the_token(settings: Settings, tmp_path: Path) -> None:
    env = contract_env(settings, tmp_path, NODE_ENV="development")
    routes = [
        ("GET", "/queues"),
        ("GET", "/queues/runs:ingest/stats"),
        ("GET", "/queues/runs%3Aingest/stats"),
        ("GET", "/queues/runs:ingest/failed"),
        ("POST", "/queues/runs:ingest/retry/some-job"),
        ("POST", "/queues/runs:ingest/retry-failed"),
        ("POST", "/queues/runs:ingest/pause"),
        ("POST", "/queues/runs:ingest/resume"),
    ]
    log_path = tmp_path / "worker.log"
    with running_worker(env, log_path), httpx.Client(timeout=10) as http:
        for method, path in routes:
            refused = http.request(method, health_url(env, path))
            assert refused.status_code == 401, (method, path)
            wrong = http.request(method, health_url(env, path), headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401, (method, path)
            allowed = http.request(method, health_url(env, path), headers=AUTH)
            # An unknown job is 404; every other route answers 200.
            assert allowed.status_code == (404 if "/retry/" in path else 200), (method, path, allowed.text)
        stats = http.get(health_url(env, "/queues/runs%3Aingest/stats"), headers=AUTH).json()
        listed = http.get(health_url(env, "/queues"), headers=AUTH).json()["queues"]
        unknown = http.get(health_url(env, "/queues/nope/stats"), headers=AUTH)
    assert stats["name"] == "runs:ingest" and set(stats["counts"]) >= {"waiting", "active", "failed"}
    assert [q["name"] for q in listed] == [q.value for q in QueueName]
    assert unknown.status_code == 404
    # NODE_ENV=development: log lines for humans, not JSON.
    text = log_path.read_text()
    assert "worker_started" in text and log_lines(log_path) == []


def test_pause_holds_processing_and_resume_restarts_it(
    settings: Settings, fake_github: FakeGitHub, tmp_path: Path
) -> None:
    publish_history(fake_github)
    env = contract_env(settings, tmp_path)
    with running_worker(env, tmp_path / "worker.log"), httpx.Client(timeout=10, headers=AUTH) as http:
        assert http.post(health_url(env, "/queues/runs%3Aingest/pause")).json()["paused"] is True
        enqueue_ingest(settings, EXAMPLE_PAYLOAD, job_id="held")
        # A running worker takes a waiting job within about a second (drainDelay 1 s); paused, it does not.
        asyncio.run(asyncio.sleep(3))
        assert job_state(settings, "runs:ingest", "held") in ("waiting", "prioritized", "paused")
        stats = http.get(health_url(env, "/queues/runs:ingest/stats")).json()
        assert stats["paused"] is True
        assert http.post(health_url(env, "/queues/runs:ingest/resume")).json()["paused"] is False
        wait_completed(settings, "runs:ingest", "held")


def test_a_dead_letter_retried_through_the_original_route_completes(
    settings: Settings, fake_github: FakeGitHub, tmp_path: Path
) -> None:
    fake_github.add_repository(*REPO, installation_id=67890)
    env = contract_env(settings, tmp_path)
    payload = {**EXAMPLE_PAYLOAD, "workflowRunId": 880001}
    with running_worker(env, tmp_path / "worker.log"), httpx.Client(timeout=10, headers=AUTH) as http:
        enqueue_ingest(settings, payload, job_id="dead-letter")  # the run does not exist yet: 404
        wait_for(lambda: job_state(settings, "runs:ingest", "dead-letter").startswith("failed"), 30, "a DLQ")
        failed = http.get(health_url(env, "/queues/runs:ingest/failed?start=0&limit=10")).json()
        assert [j["id"] for j in failed["jobs"]] == ["dead-letter"] and failed["total"] == 1
        assert "880001" in failed["jobs"][0]["failedReason"]
        fake_github.add_run(
            *REPO,
            880001,
            head_sha="e" * 40,
            branch="main",
            artifacts={"test-results": artifact_for(Outcome.PASSED)},
        )
        retried = http.post(health_url(env, "/queues/runs:ingest/retry/dead-letter"))
        assert retried.status_code == 200, retried.text
        wait_completed(settings, "runs:ingest", "dead-letter")
        assert http.get(health_url(env, "/queues/runs:ingest/failed")).json()["total"] == 0


# ------------------------------------------------------------------------------------------ logs


def test_a_webhook_driven_chain_logs_one_correlation_id_on_every_line(
    settings: Settings, fake_github: FakeGitHub, tmp_path: Path
) -> None:
    publish_history(fake_github)
    example = json.loads((SHARED / "github" / "webhook-workflow_run-completed.json").read_text())
    run = example["workflow_run"]
    run.update(id=12345, run_attempt=1, head_sha=f"{12345:040x}", head_branch="main")
    example["repository"]["owner"]["login"], example["repository"]["name"] = REPO
    example["repository"]["full_name"] = "/".join(REPO)
    example["installation"] = {"id": 67890}
    body = json.dumps(example).encode()
    delivery = str(uuid.uuid4())
    env = contract_env(settings, tmp_path)
    log_path = tmp_path / "worker.log"
    with running_worker(env, log_path):
        response = httpx.post(
            health_url(env, "/webhooks/github"),
            content=body,
            headers={
                "X-GitHub-Event": "workflow_run",
                "X-GitHub-Delivery": delivery,
                "X-Hub-Signature-256": sign(WEBHOOK_SECRET.encode(), body),
                "Content-Type": "application/json",
            },
            timeout=10,
        )
        assert response.status_code == 202, response.text
        ingest_id = response.json()["jobId"]
        wait_completed(settings, "runs:ingest", ingest_id)
        wait_completed(settings, "runs:analyze", "analyze-acme-project-12345-1")

    lines = log_lines(log_path)
    assert len(lines) == len(log_path.read_text().splitlines())  # every line is one JSON object
    for line in lines:
        assert {"level", "time", "pid", "hostname", "msg"} <= set(line), line
    chain = [line for line in lines if line.get("jobId") in (ingest_id, "analyze-acme-project-12345-1")]
    started = [line for line in chain if line["msg"] == "job_started"]
    assert [line["queue"] for line in started] == ["runs:ingest", "runs:analyze"]
    assert {line["correlationId"] for line in chain} == {delivery}
    assert len(chain) >= 6  # started, the work, completed: for both jobs
    for line in chain:
        assert line["workflowRunId"] == 12345 and line["repository"] == "acme/project"
        assert line["priority"] in {p.value for p in Priority} and line["attempt"] == 1
    webhook_lines = [line for line in lines if line["msg"].startswith("webhook_")]
    assert webhook_lines and {line["correlationId"] for line in webhook_lines} == {delivery}


# ------------------------------------------------------------------------------------------ payloads


async def _flaky_history_until_now(services: Services) -> History:
    """`flaky` fails then passes in each of the last 4 runs (a confident flake, quarantinable); 10 green
    runs of it lie 9-12 days back; `test_ok_1..4` pass throughout."""
    h = await History(services).create()
    now = datetime.now(UTC)
    others = {f"test_ok_{i}": P for i in range(1, 5)}
    for index in range(10):
        await h.run({"flaky": P, **others}, at=now - timedelta(days=12) + index * timedelta(hours=6))
    for index in range(4):
        await h.run({"flaky": [F, P], **others}, at=now - timedelta(hours=30) + index * timedelta(hours=6))
    return h


def progress_events(settings: Settings, queue: str, job_id: str) -> list[Any]:
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        entries = client.xrange(f"{settings.redis_prefix}:{queue}:events")
    finally:
        client.close()
    return [
        json.loads(fields["data"])
        for _, fields in entries
        if fields.get("event") == "progress" and fields.get("jobId") == job_id
    ]


def test_a_recompute_job_in_the_original_shape_applies_every_field(
    settings: Settings, services: Services, tmp_path: Path
) -> None:
    history = asyncio.run(_flaky_history_until_now(services))
    # The original README's TestsRecomputeJobData, exactly: `specific_tests` names tests by name or key.
    job = {
        "repository": {"owner": history.owner, "repo": history.name},
        "recomputeScope": {
            "type": "specific_tests",
            "patterns": ["flaky", key_of("test_ok_1")],
            "lookbackDays": 3,
        },
        "options": {"batchSize": 1, "updateQuarantineStatus": True},
    }

    async def add() -> str:
        producer = JobProducer(
            RedisTarget(url=str(settings.redis_url), prefix=settings.redis_prefix),
            retry_policy_from(settings),
        )
        try:
            queue = producer.queue(QueueName.TESTS_RECOMPUTE)
            added = await queue.add("recompute", job, {"jobId": "original-shape", "priority": 4})
            return str(added.id)
        finally:
            await producer.close()

    env = contract_env(settings, tmp_path)
    with running_worker(env, tmp_path / "worker.log"):
        job_id = asyncio.run(add())
        wait_completed(settings, "tests:recompute", job_id)

    rows = db_rows(
        settings,
        "SELECT t.name, f.status, f.lookback_days, f.executions, q.quarantined FROM flakiness_results f"
        " JOIN test_cases t ON t.id = f.test_case_id LEFT JOIN quarantine q ON q.test_case_id = t.id"
        " ORDER BY t.name",
    )
    by_name = {r["name"]: r for r in rows}
    # specific_tests with patterns: exactly the named test and the keyed one.
    assert set(by_name) == {"flaky", "test_ok_1"}
    # lookbackDays 3: only the last four runs count (two executions each for `flaky`).
    assert by_name["flaky"]["lookback_days"] == 3 and by_name["flaky"]["executions"] == 8
    assert by_name["test_ok_1"]["executions"] == 4
    # updateQuarantineStatus: the confident flake is quarantined.
    assert by_name["flaky"]["status"] == "flaky" and by_name["flaky"]["quarantined"] is True
    assert by_name["test_ok_1"]["quarantined"] is None
    # batchSize 1: progress after each of the two tests.
    assert [(p["done"], p["total"]) for p in progress_events(settings, "tests:recompute", job_id)] == [
        (0, 2),
        (1, 2),
        (2, 2),
    ]


def test_a_node_job_with_payload_priority_low_runs_after_later_critical_work(
    settings: Settings, fake_github: FakeGitHub, tmp_path: Path
) -> None:
    node = node_or_skip()
    fake_github.add_repository(*REPO, installation_id=67890)
    for run_id in (990001, 990002):
        fake_github.add_run(
            *REPO,
            run_id,
            head_sha=f"{run_id:040x}",
            branch="main",
            artifacts={"test-results": artifact_for(Outcome.PASSED)},
        )
    low = {**EXAMPLE_PAYLOAD, "workflowRunId": 990001, "priority": "low"}
    out = subprocess.run(
        [node, "readme_producer.mjs", str(settings.redis_url), settings.redis_prefix, json.dumps(low)],
        cwd=ROOT / "tests" / "interop",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    node_id = str(json.loads(out.stdout)["id"])

    async def add_critical() -> str:
        services = Services.create(settings)
        try:
            job = RunsIngestJob.model_validate(
                {**EXAMPLE_PAYLOAD, "workflowRunId": 990002, "priority": "critical"}
            )
            return str((await services.producer.ingest(job)).id)
        finally:
            await services.close()

    critical_id = asyncio.run(add_critical())
    env = contract_env(settings, tmp_path, WORKER_CONCURRENCY="1")
    log_path = tmp_path / "worker.log"
    with running_worker(env, log_path, "--queues", "runs:ingest"):
        wait_completed(settings, "runs:ingest", node_id)
        wait_completed(settings, "runs:ingest", critical_id)
    started = [line["jobId"] for line in log_lines(log_path) if line["msg"] == "job_started"]
    assert started == [critical_id, node_id]
    requeued = [line for line in log_lines(log_path) if line["msg"] == "job_requeued_with_priority"]
    assert [(line["jobId"], line["priority"]) for line in requeued] == [(node_id, "low")]
    # The Node job was processed like FlakeGuard's own: stored, with our retry policy adopted.
    assert db_rows(settings, "SELECT count(*) AS n FROM workflow_runs WHERE run_id = 990001")[0]["n"] == 1
