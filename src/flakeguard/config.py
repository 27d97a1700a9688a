"""Settings from the environment, validated once at start-up.

Every variable of the original Node worker is accepted under its original name. A bad value stops
the process with a message naming the variable (see `load_settings`): a malformed or unreadable
GitHub App key and a malformed Redis Cluster node list are found here, at start-up, not by the first
job. Secrets are `SecretStr`, so they never appear in a repr, a log line or an error message.

`FLAKEGUARD_ENV` (or the original's `NODE_ENV`) sets defaults as users of the original expect:
`development` logs for humans (console), `production` and `test` log JSON lines; `production`
also refuses to serve without what a safe deployment needs (`production_problems`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["trace", "debug", "info", "warn", "warning", "error", "fatal"]
LogFormat = Literal["json", "console"]
Environment = Literal["development", "production", "test"]

DEFAULT_DATA_DIR = Path(".flakeguard")


class QueueDefaults(BaseSettings):
    """Queue defaults of the original worker; overridable from the environment."""

    model_config = SettingsConfigDict(env_prefix="QUEUE_", extra="ignore")

    concurrency: int = Field(5, ge=1, le=500)
    high_priority_concurrency: int = Field(3, ge=1, le=500)
    attempts: int = Field(3, ge=1, le=100)
    retry_delay_ms: int = Field(5000, ge=0)
    max_retry_delay_ms: int = Field(30000, ge=0)
    backoff_multiplier: float = Field(2.0, ge=1.0)
    stalled_job_timeout_ms: int = Field(30000, ge=1000)
    # How often a worker looks for jobs whose worker died (their lock expired): a job of a killed worker
    # runs again within stalled_job_timeout_ms + stalled_check_interval_ms.
    stalled_check_interval_ms: int = Field(5000, ge=500)
    # A job whose worker dies this many times while running it is failed ("job stalled more than
    # allowable limit"): a crash loop, not restarts (a graceful stop hands jobs back without a stall).
    max_stalled_count: int = Field(10, ge=1, le=1000)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    env: Environment = Field("development", validation_alias=AliasChoices("FLAKEGUARD_ENV", "NODE_ENV"))
    database_url: str | None = Field(None, validation_alias="DATABASE_URL")
    redis_url: str | None = Field(None, validation_alias="REDIS_URL")
    data_dir: Path = Field(DEFAULT_DATA_DIR, validation_alias="FLAKEGUARD_DATA_DIR")
    redis_prefix: str = Field("bull", validation_alias="REDIS_PREFIX", min_length=1)

    worker_concurrency: int = Field(5, ge=1, le=500, validation_alias="WORKER_CONCURRENCY")
    worker_name: str = Field("flakeguard-worker", validation_alias="WORKER_NAME", min_length=1)
    log_level: LogLevel = Field("info", validation_alias="LOG_LEVEL")
    log_format: LogFormat | None = Field(None, validation_alias="LOG_FORMAT")

    github_app_id: str | None = Field(None, validation_alias="GITHUB_APP_ID")
    github_private_key: SecretStr | None = Field(None, validation_alias="GITHUB_PRIVATE_KEY")
    github_token: SecretStr | None = Field(None, validation_alias="GITHUB_TOKEN")
    github_webhook_secret: SecretStr | None = Field(None, validation_alias="GITHUB_WEBHOOK_SECRET")
    github_api_url: str = Field("https://api.github.com", validation_alias="GITHUB_API_URL")
    github_rate_limit_reserve: int = Field(500, ge=0, validation_alias="GITHUB_RATE_LIMIT_RESERVE")

    protected_branches: str = Field(
        "main,master,release/*",
        validation_alias="PROTECTED_BRANCHES",
        description="Comma-separated branch names or globs whose failure rate counts as statistical evidence",
    )
    infra_failure_share: float = Field(0.8, gt=0.0, le=1.0, validation_alias="INFRA_FAILURE_SHARE")
    flaky_activation_rate: float = Field(0.10, gt=0.0, le=1.0, validation_alias="FLAKY_ACTIVATION_RATE")
    flaky_resolution_rate: float = Field(0.05, ge=0.0, le=1.0, validation_alias="FLAKY_RESOLUTION_RATE")
    flaky_min_sample: int = Field(10, ge=1, le=10_000, validation_alias="FLAKY_MIN_SAMPLE")
    cross_run_evidence_on_feature_branches: bool = Field(
        False, validation_alias="CROSS_RUN_EVIDENCE_ON_FEATURE_BRANCHES"
    )
    quarantine_quiet_days: int = Field(7, ge=0, le=365, validation_alias="QUARANTINE_QUIET_DAYS")
    quarantine_confidence_floor: float = Field(
        0.9, ge=0.0, le=1.0, validation_alias="QUARANTINE_CONFIDENCE_FLOOR"
    )
    artifact_name_patterns: str = Field(
        "*test*,*junit*,*surefire*,*failsafe*,*report*,*results*,*xunit*",
        validation_alias="ARTIFACT_NAME_PATTERNS",
    )

    polling_enabled: bool = Field(True, validation_alias="POLLING_ENABLED")
    polling_interval_minutes: int = Field(15, ge=1, le=24 * 60, validation_alias="POLLING_INTERVAL_MINUTES")
    polling_batch_size: int = Field(10, ge=1, le=1000, validation_alias="POLLING_BATCH_SIZE")

    shutdown_grace_ms: int = Field(
        30_000,
        ge=0,
        le=3_600_000,
        validation_alias="SHUTDOWN_GRACE_MS",
        description="On SIGTERM, how long jobs in flight may run on before they are handed back",
    )
    outage_retry_delay_ms: int = Field(
        5000,
        ge=0,
        le=600_000,
        validation_alias="OUTAGE_RETRY_DELAY_MS",
        description="Delay of a job handed back because a dependency was unreachable",
    )
    startup_max_backoff_ms: int = Field(
        30_000,
        ge=100,
        le=600_000,
        validation_alias="STARTUP_MAX_BACKOFF_MS",
        description="Cap of the backoff between start-up checks of Redis and the database",
    )

    metrics_enabled: bool = Field(True, validation_alias="METRICS_ENABLED")
    metrics_port: int = Field(9090, ge=0, le=65535, validation_alias="METRICS_PORT")
    health_check_port: int = Field(8080, ge=0, le=65535, validation_alias="HEALTH_CHECK_PORT")
    bind_host: str = Field("0.0.0.0", validation_alias="BIND_HOST")
    api_token: SecretStr | None = Field(None, validation_alias="FLAKEGUARD_API_TOKEN")
    # The web dashboard: readable without logging in when public; actions always need the token.
    web_public: bool = Field(False, validation_alias="WEB_PUBLIC")
    web_session_hours: int = Field(12, ge=1, le=24 * 90, validation_alias="WEB_SESSION_HOURS")

    redis_cluster_enabled: bool = Field(False, validation_alias="REDIS_CLUSTER_ENABLED")
    redis_cluster_nodes: str | None = Field(None, validation_alias="REDIS_CLUSTER_NODES")

    remove_on_complete: int = Field(100, ge=0, validation_alias="REMOVE_ON_COMPLETE")
    remove_on_fail: int = Field(50, ge=0, validation_alias="REMOVE_ON_FAIL")

    # JUnit ingestion limits (see docs/JUNIT.md).
    max_artifact_bytes: int = Field(512 * 1024 * 1024, ge=1, validation_alias="MAX_ARTIFACT_BYTES")
    max_zip_members: int = Field(10_000, ge=1, validation_alias="MAX_ZIP_MEMBERS")
    max_uncompressed_bytes: int = Field(
        4 * 1024 * 1024 * 1024, ge=1, validation_alias="MAX_UNCOMPRESSED_BYTES"
    )
    max_compression_ratio: int = Field(200, ge=1, validation_alias="MAX_COMPRESSION_RATIO")
    max_output_bytes: int = Field(64 * 1024, ge=0, validation_alias="MAX_SYSTEM_OUT_BYTES")

    queue: QueueDefaults = Field(default_factory=QueueDefaults)

    @field_validator("env", mode="before")
    @classmethod
    def _lower_env(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower_level(cls, value: object) -> object:
        if value == "":
            return None
        return value.lower() if isinstance(value, str) else value

    @field_validator("github_private_key")
    @classmethod
    def _check_private_key(cls, value: SecretStr | None) -> SecretStr | None:
        """The PEM text or a readable PEM file: checked now, so a bad key stops the start, not a job."""
        if value is None or not value.get_secret_value().strip():
            return None
        from flakeguard.github.auth import load_private_key

        load_private_key(value.get_secret_value())  # ValueError names the variable, never the value
        return value

    @field_validator("redis_cluster_nodes")
    @classmethod
    def _check_cluster_nodes(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        for item in value.split(","):
            host, _, port = item.strip().rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(
                    f"entry {item.strip()[:60]!r} is not host:port (e.g. redis-1:6379,redis-2:6379)"
                )
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        scheme = urlsplit(value).scheme
        if not scheme.startswith(("postgres", "sqlite")):
            raise ValueError("must be a postgresql:// or sqlite:// URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @model_validator(mode="after")
    def _check_hysteresis(self) -> Settings:
        if self.flaky_resolution_rate > self.flaky_activation_rate:
            raise ValueError("FLAKY_RESOLUTION_RATE must not be above FLAKY_ACTIVATION_RATE")
        if self.redis_cluster_enabled and not self.redis_cluster_nodes:
            raise ValueError(
                "REDIS_CLUSTER_NODES: required with REDIS_CLUSTER_ENABLED=true (host:port,host:port)"
            )
        return self

    @property
    def effective_log_format(self) -> LogFormat:
        """LOG_FORMAT when set; else console for `development`, JSON lines for `production` and `test`."""
        if self.log_format is not None:
            return self.log_format
        return "console" if self.env == "development" else "json"

    @property
    def async_database_url(self) -> str:
        """The SQLAlchemy async URL: postgresql:// is mapped to asyncpg, sqlite to aiosqlite."""
        if self.database_url is None:
            return f"sqlite+aiosqlite:///{(self.data_dir / 'flakeguard.db').resolve()}"
        return to_async_database_url(self.database_url)


def to_async_database_url(url: str) -> str:
    """postgresql:// -> postgresql+asyncpg://, sqlite:// -> sqlite+aiosqlite://; the rest is kept as given
    (rebuilding the URL with urlunsplit would drop the empty host of sqlite:///path)."""
    scheme, sep, rest = url.partition("://")
    if scheme in ("postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"):
        scheme = "postgresql+asyncpg"
        # asyncpg takes `ssl`, not libpq's `sslmode`.
        base, qmark, query = rest.partition("?")
        if qmark:
            pairs = [
                ("ssl", v) if k == "sslmode" else (k, v) for k, v in parse_qsl(query, keep_blank_values=True)
            ]
            rest = f"{base}?{urlencode(pairs)}"
    elif scheme == "sqlite":
        scheme = "sqlite+aiosqlite"
    return f"{scheme}{sep}{rest}"


class ConfigError(Exception):
    """Raised with a one-line message that names each bad variable; never echoes secret values."""


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = ".".join(str(p) for p in error["loc"])
            message = " ".join(str(error["msg"]).removeprefix("Value error, ").split())
            name = _env_name(loc) if loc else ""
            problems.append(f"{name}: {message}" if name and not message.startswith(name) else message)
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None


def production_problems(settings: Settings) -> list[str]:
    """What a process that serves (worker, up) refuses to start without in production."""
    if settings.env != "production":
        return []
    problems = []
    if settings.database_url is None:
        problems.append("DATABASE_URL: required in production (the embedded SQLite file is for trials)")
    if (settings.github_app_id or settings.github_token) and settings.github_webhook_secret is None:
        problems.append(
            "GITHUB_WEBHOOK_SECRET: required in production with GitHub credentials "
            "(webhook deliveries cannot be verified without it)"
        )
    return problems


def _env_name(loc: str) -> str:
    if loc.startswith("queue."):
        return "QUEUE_" + loc.split(".", 1)[1].upper()
    field = Settings.model_fields.get(loc)
    alias = field.validation_alias if field is not None else None
    if isinstance(alias, str):
        return alias
    if isinstance(alias, AliasChoices):
        return " or ".join(str(c) for c in alias.choices)
    return loc.upper()
