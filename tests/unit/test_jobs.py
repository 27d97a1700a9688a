"""Job payloads, ids and the retry policy."""

from __future__ import annotations

from typing import Any

import pytest

from flakeguard.jobs.errors import PermanentError
from flakeguard.jobs.names import Priority, QueueName
from flakeguard.jobs.payloads import (
    PayloadError,
    PollingJob,
    RunsAnalyzeJob,
    RunsIngestJob,
    TestsRecomputeJob,
    WireModel,
    parse_payload,
)
from flakeguard.jobs.producer import ingest_job_id, safe_id
from flakeguard.jobs.retry import FAIL_NOW, RetryPolicy, make_backoff_strategy

EXAMPLE = {
    "workflowRunId": 12345,
    "repository": {"owner": "acme", "repo": "project", "installationId": 67890},
    "priority": "high",
}


def test_queue_names_are_the_originals() -> None:
    assert [q.value for q in QueueName] == ["runs:ingest", "runs:analyze", "tests:recompute", "polling"]


def test_the_original_example_payload_round_trips_in_camel_case() -> None:
    job = parse_payload(RunsIngestJob, EXAMPLE)
    assert job.workflow_run_id == 12345 and job.repository.installation_id == 67890
    assert job.priority is Priority.HIGH
    assert job.to_wire() == EXAMPLE


def test_analysis_and_recompute_payloads_use_the_original_field_names() -> None:
    analyze = parse_payload(
        RunsAnalyzeJob,
        {
            **EXAMPLE,
            "forceRecompute": True,
            "analysisConfig": {
                "lookbackDays": 14,
                "minRunsThreshold": 3,
                "flakinessThreshold": 0.5,
                "updateQuarantineStatus": True,
            },
        },
    )
    assert analyze.force_recompute and analyze.analysis_config.lookback_days == 14
    assert analyze.analysis_config.update_quarantine_status
    recompute = parse_payload(
        TestsRecomputeJob,
        {
            "repository": EXAMPLE["repository"],
            "recomputeScope": {"type": "class_pattern", "patterns": ["*Api*"]},
            "batchSize": 100,
            "lookbackDays": 7,
        },
    )
    assert recompute.recompute_scope.type == "class_pattern" and recompute.batch_size == 100


REPO_ONLY = {"repository": {"owner": "acme", "repo": "project"}}


def test_the_originals_recompute_interface_validates_as_written() -> None:
    """TestsRecomputeJobData of the original README: lookbackDays in recomputeScope, options nested."""
    job = parse_payload(
        TestsRecomputeJob,
        {
            "repository": {"owner": "acme", "repo": "project"},
            "recomputeScope": {"type": "specific_tests", "patterns": ["test_login"], "lookbackDays": 14},
            "options": {"batchSize": 50, "updateQuarantineStatus": True},
        },
    )
    assert (job.lookback_days, job.batch_size, job.update_quarantine_status) == (14, 50, True)
    assert job.recompute_scope.patterns == ["test_login"]
    wire = job.to_wire()
    assert wire["recomputeScope"]["lookbackDays"] == 14 and wire["options"]["batchSize"] == 50


def test_flakeguard_01_recompute_jobs_keep_their_meaning_and_the_original_fields_win() -> None:
    legacy = parse_payload(
        TestsRecomputeJob,
        {**REPO_ONLY, "lookbackDays": 7, "batchSize": 10, "updateQuarantineStatus": True},
    )
    assert (legacy.lookback_days, legacy.batch_size, legacy.update_quarantine_status) == (7, 10, True)
    both = parse_payload(
        TestsRecomputeJob,
        {
            "repository": EXAMPLE["repository"],
            "lookbackDays": 7,
            "batchSize": 10,
            "recomputeScope": {"type": "all", "lookbackDays": 21},
            "options": {"batchSize": 99},
        },
    )
    assert (both.lookback_days, both.batch_size) == (21, 99)
    defaults = parse_payload(TestsRecomputeJob, REPO_ONLY)
    assert (defaults.lookback_days, defaults.batch_size) == (30, 500)
    assert defaults.update_quarantine_status is False


@pytest.mark.parametrize(
    ("model", "data", "field"),
    [
        (RunsAnalyzeJob, {**EXAMPLE, "forceRecompute": "sometimes"}, "forceRecompute"),
        (
            RunsAnalyzeJob,
            {**EXAMPLE, "analysisConfig": {"minRunsThreshold": "many"}},
            "analysisConfig.minRunsThreshold",
        ),
        (RunsIngestJob, {**EXAMPLE, "metadata": {"headSha": 12}}, "metadata.headSha"),
        (
            TestsRecomputeJob,
            {"repository": EXAMPLE["repository"], "recomputeScope": {"type": "all", "lookbackDays": "x"}},
            "recomputeScope.lookbackDays",
        ),
        (TestsRecomputeJob, {**REPO_ONLY, "options": {"batchSize": 0}}, "options.batchSize"),
        (
            TestsRecomputeJob,
            {"repository": EXAMPLE["repository"], "options": {"updateQuarantineStatus": "perhaps"}},
            "options.updateQuarantineStatus",
        ),
    ],
)
def test_a_wrong_type_is_refused_with_the_field_named(
    model: type[WireModel], data: dict[str, Any], field: str
) -> None:
    with pytest.raises(PayloadError) as info:
        parse_payload(model, data)
    assert f"{field}:" in str(info.value)


def test_unknown_fields_from_newer_producers_are_ignored() -> None:
    assert parse_payload(RunsIngestJob, {**EXAMPLE, "someNewField": 1}).workflow_run_id == 12345


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({**EXAMPLE, "workflowRunId": "twelve"}, "workflowRunId"),
        ({**EXAMPLE, "workflowRunId": -1}, "workflowRunId"),
        ({"workflowRunId": 1}, "repository"),
        ({**EXAMPLE, "repository": {"owner": "../etc", "repo": "x"}}, "repository.owner"),
        ({**EXAMPLE, "priority": "urgent"}, "priority"),
        ("not an object", "(payload)"),
    ],
)
def test_a_bad_payload_names_the_field(data: object, named: str) -> None:
    with pytest.raises(PayloadError) as info:
        parse_payload(RunsIngestJob, data)
    assert named in str(info.value)


def test_polling_payload_defaults() -> None:
    assert parse_payload(PollingJob, {}).type == "poll_all"


def test_job_ids_are_legal_for_node_bullmq() -> None:
    job = parse_payload(RunsIngestJob, {**EXAMPLE, "metadata": {"runAttempt": 2}})
    assert ingest_job_id(job) == "ingest-acme-project-12345-2"
    assert ":" not in safe_id("a:b", "c") and not safe_id(123).isdigit()


def test_priorities_map_to_bullmq_order() -> None:
    assert [p.bullmq for p in Priority] == [1, 2, 3, 4]


def test_backoff_is_exponential_capped_and_jittered() -> None:
    policy = RetryPolicy(attempts=5, base_delay_ms=5000, max_delay_ms=30000, multiplier=2.0)
    assert [policy.backoff_delay_ms(n, rng=lambda: 1.0) for n in (1, 2, 3, 4, 5)] == [
        5000,
        10000,
        20000,
        30000,
        30000,
    ]
    assert [policy.backoff_delay_ms(n, rng=lambda: 0.0) for n in (1, 2, 3)] == [2500, 5000, 10000]


def test_permanent_errors_are_not_retried() -> None:
    strategy = make_backoff_strategy(RetryPolicy())
    assert strategy(1, "flakeguard", PayloadError("x"), None) == FAIL_NOW
    assert strategy(1, "flakeguard", PermanentError("x"), None) == FAIL_NOW
    assert 2500 <= strategy(1, "flakeguard", RuntimeError("x"), None) <= 5000
