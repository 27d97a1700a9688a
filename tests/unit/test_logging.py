"""Structured logs: the original's JSON line shape and levels, job fields, and no secrets."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import socket

import pytest

from flakeguard.logging import (
    bind_correlation_id,
    bind_job,
    clear_job,
    configure_logging,
    current_correlation_id,
    get_logger,
)


def lines(buf: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


@pytest.fixture
def buf() -> io.StringIO:
    return io.StringIO()


def test_every_level_from_trace_to_fatal(buf: io.StringIO) -> None:
    configure_logging("trace", stream=buf)
    log = get_logger("t")
    log.trace("a")
    log.debug("b")
    log.info("c")
    log.warn("d")
    log.error("e")
    log.fatal("f")
    assert [entry["level"] for entry in lines(buf)] == ["trace", "debug", "info", "warn", "error", "fatal"]


def test_levels_below_the_configured_one_are_dropped(buf: io.StringIO) -> None:
    configure_logging("warn", stream=buf)
    log = get_logger("t")
    log.trace("a")
    log.info("b")
    log.warn("c")
    assert [entry["msg"] for entry in lines(buf)] == ["c"]


def test_a_line_has_the_original_fields_first(buf: io.StringIO) -> None:
    """pino's line: level (name), time (ISO 8601, ms, UTC), pid, hostname, msg, then the fields."""
    configure_logging("info", stream=buf)
    get_logger("t").info("Processing runs ingestion job", workflowRunId=789)
    entry = lines(buf)[0]
    assert list(entry)[:5] == ["level", "time", "pid", "hostname", "msg"]
    assert entry["level"] == "info" and entry["msg"] == "Processing runs ingestion job"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(entry["time"]))
    assert entry["pid"] == os.getpid() and entry["hostname"] == socket.gethostname()
    assert entry["workflowRunId"] == 789


def test_job_fields_are_on_every_line_while_it_runs(buf: io.StringIO) -> None:
    configure_logging("info", stream=buf)
    bind_job(queue="runs:ingest", jobId="ingest-acme-project-1", correlationId="corr_456", priority="normal")
    get_logger("t").info("working")
    clear_job()
    get_logger("t").info("idle")
    first, second = lines(buf)
    assert first["queue"] == "runs:ingest" and first["jobId"] == "ingest-acme-project-1"
    assert first["correlationId"] == "corr_456" and first["priority"] == "normal"
    assert "jobId" not in second and "correlationId" not in second


def test_a_correlation_id_is_born_once_and_then_carried(buf: io.StringIO) -> None:
    configure_logging("info", stream=buf)
    clear_job()
    assert current_correlation_id() is None
    born = bind_correlation_id()
    assert current_correlation_id() == born and len(born) >= 16
    assert bind_correlation_id("delivery-72d3162e") == "delivery-72d3162e"
    clear_job()


def test_library_lines_have_the_same_shape(buf: io.StringIO) -> None:
    configure_logging("info", stream=buf)
    logging.getLogger("uvicorn.error").warning("Started server process [%d]", 42)
    entry = lines(buf)[0]
    assert entry["level"] == "warn" and entry["msg"] == "Started server process [42]"
    assert {"time", "pid", "hostname"} <= set(entry)


def test_console_format_is_for_humans(buf: io.StringIO) -> None:
    configure_logging("info", stream=buf, fmt="console")
    get_logger("t").info("job_started", queue="runs:ingest")
    text = buf.getvalue()
    assert "job_started" in text and "queue=runs:ingest" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_secrets_are_redacted_by_key_and_by_shape(buf: io.StringIO) -> None:
    configure_logging("info", stream=buf)
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"
    get_logger("t").info(
        "calling",
        token="ghs_1234567890abcdefghij",
        webhook_secret="hunter2",
        detail="Authorization: token ghs_1234567890abcdefghijklmn failed",
        key=pem,
        jwt_seen="eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIxMjMifQ.c2lnbmF0dXJl",
    )
    text = buf.getvalue()
    for secret in ("ghs_1234567890", "hunter2", "MIIEowIBAAKCAQEA", "eyJhbGciOiJSUzI1NiJ9"):
        assert secret not in text
    entry = lines(buf)[0]
    assert entry["token"] == "[redacted]" and entry["detail"] == "Authorization: token [redacted] failed"
