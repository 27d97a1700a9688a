"""Structured logs: JSON lines, the original's levels, correlation ids, and no secrets."""

from __future__ import annotations

import io
import json

import pytest

from flakeguard.logging import bind_job, clear_job, configure_logging, get_logger


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
    assert [entry["event"] for entry in lines(buf)] == ["c"]


def test_job_correlation_ids_are_on_every_line(buf: io.StringIO) -> None:
    configure_logging("info", stream=buf)
    bind_job(queue="runs:ingest", job_id="ingest-acme-project-1")
    get_logger("t").info("working")
    clear_job()
    get_logger("t").info("idle")
    first, second = lines(buf)
    assert first["queue"] == "runs:ingest" and first["job_id"] == "ingest-acme-project-1"
    assert "job_id" not in second and "timestamp" in second


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
