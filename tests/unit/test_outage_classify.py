"""Which errors mean "a dependency is unreachable" (hand the job back, no attempt spent) and which are
the job's own (spend an attempt). The unreachable cases are raised by the real drivers against a port
nobody listens on, so a driver upgrade that changes its exception types fails here."""

from __future__ import annotations

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy import text

from flakeguard.github.errors import GitHubError, TransientGitHubError
from flakeguard.jobs.errors import PermanentError, TransientError
from flakeguard.jobs.payloads import PayloadError
from flakeguard.outages import outage_dependency
from flakeguard.outages.monitor import describe_error
from flakeguard.store.db import create_engine
from tests.integration.helpers import free_port


async def _raised(coro: object) -> BaseException:
    try:
        await coro  # type: ignore[misc]
    except BaseException as exc:
        return exc
    raise AssertionError("no error")


async def test_a_refused_postgresql_port_is_a_database_outage() -> None:
    engine = create_engine(f"postgresql+asyncpg://postgres:secret@127.0.0.1:{free_port()}/x")

    async def query() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    try:
        error = await _raised(query())
    finally:
        await engine.dispose()
    # asyncpg raises a bare ConnectionRefusedError: the traceback names the dependency.
    assert isinstance(error, OSError)
    assert outage_dependency(error) == "database"


async def test_a_refused_redis_port_is_a_redis_outage() -> None:
    client = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=2)
    try:
        error = await _raised(client.ping())
    finally:
        await client.aclose()
    assert outage_dependency(error) == "redis"


async def test_an_unreachable_github_is_a_github_outage_even_wrapped_by_the_client() -> None:
    async with httpx.AsyncClient() as http:
        transport_error = await _raised(http.get(f"http://127.0.0.1:{free_port()}/rate_limit"))
    try:
        try:
            raise transport_error
        except httpx.TransportError:
            raise TransientGitHubError(None, "ConnectError after 4 tries", "/repos/{owner}/{repo}") from None
    except TransientGitHubError as wrapped:
        assert outage_dependency(wrapped) == "github"


@pytest.mark.parametrize("status", [502, 503, 504])
def test_github_gateway_errors_after_the_clients_retries_are_an_outage(status: int) -> None:
    assert outage_dependency(TransientGitHubError(status, "Bad Gateway", "/x")) == "github"


@pytest.mark.parametrize(
    "error",
    [
        TransientGitHubError(500, "Server Error", "/x"),  # one resource failing: the job's problem
        TransientGitHubError(None, "downloaded bytes do not match the artifact digest", "artifact-blob"),
        GitHubError(422, "Validation Failed", "/x"),
        PayloadError("invalid payload"),
        PermanentError("repository gone"),
        TransientError("run not completed yet"),
        ValueError("a bug"),
        TimeoutError(),  # raised by our own code, not by a driver
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_of_the_job_itself_are_not_outages(error: BaseException) -> None:
    assert outage_dependency(error) is None


def test_error_descriptions_are_short_and_carry_no_token() -> None:
    text_ = describe_error(RuntimeError("auth failed for ghs_" + "a" * 36 + " " + "x" * 500))
    assert "ghs_" not in text_ and len(text_) < 260 and text_.startswith("RuntimeError: ")
