"""What every command shares: the consoles, settings, the event loop, argument parsing, the queues.

Command modules import from here; nothing here imports a command module. Heavy modules (settings,
SQLAlchemy, bullmq) are imported inside the functions that need them, so `flakeguard --help` and
each command's own start-up stay fast.

Settings come from the environment, then from the `flakeguard up` running in the data folder
(`flakeguard.instance`): run in that folder, or pointed at it with `--home`, a command uses that
instance's Redis and database without any variable set.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from flakeguard.cli.errors import CliError, ExitCode

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from flakeguard.config import Settings
    from flakeguard.instance import Instance
    from flakeguard.jobs.connection import RedisTarget
    from flakeguard.jobs.names import QueueName
    from flakeguard.jobs.producer import JobProducer

console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")
REDIS_TIMEOUT_S = 5.0


@dataclass
class Invocation:
    """The root options of this run (`--home`, `--debug`), and the `up` instance found, if any."""

    home: Path | None = None
    debug: bool = False
    instance: Instance | None = None


invocation = Invocation()


def fail(message: str, code: ExitCode = ExitCode.FAILED) -> NoReturn:
    """Stop the command with one line on stderr (plain text: names may hold rich markup brackets)."""
    raise CliError(message, code)


def report_error(error: CliError) -> None:
    typer.echo(f"flakeguard: {error.message}", err=True)


def settings_or_exit(*, discover: bool = True, serving: bool = False) -> Settings:
    """Settings from the environment (exit 2 in one line naming each bad variable), the data folder
    made absolute (under `--home` when given) and, with `discover`, the running `up`'s Redis and
    database where REDIS_URL or DATABASE_URL is unset. `serving` processes (worker, up) also refuse
    what production must not run without."""
    from flakeguard.config import ConfigError, load_settings, production_problems
    from flakeguard.instance import find_running
    from flakeguard.logging import configure_logging

    try:
        settings = load_settings()
    except ConfigError as exc:
        fail(str(exc), ExitCode.USAGE)
    if serving and (problems := production_problems(settings)):
        fail("invalid configuration: " + "; ".join(problems), ExitCode.USAGE)
    base = invocation.home if invocation.home is not None else Path.cwd()
    if invocation.home is not None and not invocation.home.is_dir():
        fail(f"--home {invocation.home}: no such folder", ExitCode.USAGE)
    data_dir = (base / settings.data_dir).resolve()
    settings = settings.model_copy(update={"data_dir": data_dir})
    invocation.instance = find_running(data_dir) if discover else None
    if invocation.instance is not None:
        found: dict[str, Any] = {}
        if settings.redis_url is None and not settings.redis_cluster_enabled:
            found["redis_url"] = invocation.instance.redis_url
        if settings.database_url is None:
            found["database_url"] = invocation.instance.database_url
        settings = settings.model_copy(update=found)
    configure_logging(settings.log_level, fmt=settings.effective_log_format)
    return settings


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    import asyncio

    return asyncio.run(coro_fn())  # type: ignore[arg-type]


def parse_queues(value: str | None) -> list[QueueName] | None:
    from flakeguard.jobs.names import QueueName

    if not value:
        return None
    names = []
    for part in value.split(","):
        try:
            names.append(QueueName(part.strip()))
        except ValueError:
            fail(f"unknown queue {part.strip()!r}; known: {', '.join(QueueName)}", ExitCode.USAGE)
    return names


def split_repo(value: str) -> tuple[str, str]:
    owner, sep, name = value.partition("/")
    if not sep or not owner or not name or "/" in name:
        fail(f"--repo must be OWNER/NAME, got {value!r}", ExitCode.USAGE)
    return owner, name


def in_flag_terms(message: str, flags: dict[str, str]) -> str:
    """A payload validation message in the terms of the command line: `recomputeScope.type` becomes
    `--scope`, and the model's name goes."""
    import re

    message = re.sub(r"^invalid \w+ payload: ", "", message)
    for path in sorted(flags, key=len, reverse=True):
        message = message.replace(path, flags[path])
    return message


def drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: drop_none(v) for k, v in value.items() if v is not None}
    return value


def api_token_for(settings: Settings) -> str:
    """FLAKEGUARD_API_TOKEN, or a generated one kept in the data dir (readable only by its owner)."""
    if settings.api_token is not None:
        return settings.api_token.get_secret_value()
    path = settings.data_dir / "api-token"
    if path.exists():
        return path.read_text().strip()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    return token


def redis_source(settings: Settings) -> str:
    """Where the Redis in use was configured, for messages."""
    if invocation.instance is not None and settings.redis_url == invocation.instance.redis_url:
        return f"the `flakeguard up` running in {settings.data_dir.parent}"
    return "REDIS_CLUSTER_NODES" if settings.redis_cluster_enabled else "REDIS_URL"


def redis_target(settings: Settings) -> RedisTarget:
    from flakeguard.services import redis_target_from

    if settings.redis_url is None and not settings.redis_cluster_enabled:
        fail(
            f"no Redis to use: REDIS_URL is not set and no `flakeguard up` runs in "
            f"{settings.data_dir.parent}; start it there (`make up`), point at the folder where it "
            "runs with --home DIR, or set REDIS_URL",
            ExitCode.UNAVAILABLE,
        )
    try:
        return redis_target_from(settings, settings.redis_url)
    except ValueError as exc:
        fail(str(exc), ExitCode.USAGE)


async def check_redis(target: RedisTarget, source: str) -> None:
    """One PING, answered within REDIS_TIMEOUT_S, or CliError naming the server (never a password)."""
    import asyncio

    import redis.asyncio as aioredis
    from redis.asyncio.cluster import ClusterNode, RedisCluster
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import AuthenticationError, RedisError
    from redis.exceptions import TimeoutError as RedisTimeout

    timeouts: dict[str, Any] = {
        "socket_connect_timeout": REDIS_TIMEOUT_S,
        "socket_timeout": REDIS_TIMEOUT_S,
    }
    client: aioredis.Redis | RedisCluster
    if target.is_cluster:
        nodes = [ClusterNode(host, port) for host, port in target.cluster_nodes]
        client = RedisCluster(startup_nodes=nodes, **timeouts)
    else:
        assert target.url is not None
        client = aioredis.from_url(target.url, retry=Retry(NoBackoff(), 0), **timeouts)
    where = target.describe()
    try:
        async with asyncio.timeout(REDIS_TIMEOUT_S + 1):
            await client.ping()
    except (TimeoutError, RedisTimeout):
        fail(
            f"Redis at {where} did not answer within {REDIS_TIMEOUT_S:.0f} s ({source})", ExitCode.UNAVAILABLE
        )
    except AuthenticationError as exc:
        fail(f"Redis at {where} refused the credentials: {exc} ({source})", ExitCode.UNAVAILABLE)
    except (RedisError, OSError) as exc:
        fail(f"cannot reach Redis at {where}: {exc} ({source})", ExitCode.UNAVAILABLE)
    finally:
        await client.aclose()


async def with_producer(settings: Settings, fn: Callable[[JobProducer], Awaitable[T]]) -> T:
    """Run `fn` with the queues, after checking that Redis answers."""
    from flakeguard.jobs.producer import JobProducer
    from flakeguard.services import retry_policy_from

    target = redis_target(settings)
    await check_redis(target, redis_source(settings))
    producer = JobProducer(
        target,
        retry_policy_from(settings),
        keep_completed=settings.remove_on_complete,
        keep_failed=settings.remove_on_fail,
    )
    try:
        return await fn(producer)
    finally:
        await producer.close()


async def with_sessions(settings: Settings, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `fn` in one transaction of the checked database."""
    from flakeguard.cli.database import open_database

    async with open_database(settings) as db, db.sessions.begin() as session:
        return await fn(session)


def in_repository(
    settings: Settings, repo: str, fn: Callable[[AsyncSession, int], Awaitable[T]], *, write: bool = False
) -> T:
    """Run `fn(session, repository_id)`; exit 1 naming an unknown repository."""
    from flakeguard.cli.database import open_database
    from flakeguard.store.repository import get_repository

    owner, name = split_repo(repo)

    async def go() -> tuple[bool, T | None]:
        async with open_database(settings) as db:
            factory = db.sessions.begin if write else db.sessions
            async with factory() as session:
                repository = await get_repository(session, owner, name)
                if repository is None:
                    return False, None
                return True, await fn(session, repository.id)

    found, value = run(go)
    if not found:
        fail(
            f"unknown repository {owner}/{name}: nothing was ingested or polled for it in "
            f"{settings.data_dir.parent if settings.database_url is None else 'this database'} "
            "(`flakeguard repos list` shows the known ones)"
        )
    return value  # type: ignore[return-value]
