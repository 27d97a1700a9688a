"""Configuration: the original's variables, defaults, and errors that name the variable."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from flakeguard.config import ConfigError, Settings, load_settings, to_async_database_url


def rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def test_defaults_match_the_original_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "WORKER_CONCURRENCY", "NODE_ENV", "FLAKEGUARD_ENV"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.worker_concurrency == 5
    assert settings.github_api_url == "https://api.github.com"
    assert (settings.metrics_port, settings.health_check_port) == (9090, 8080)
    assert (settings.remove_on_complete, settings.remove_on_fail) == (100, 50)
    q = settings.queue
    assert (q.concurrency, q.high_priority_concurrency, q.attempts) == (5, 3, 3)
    assert (q.retry_delay_ms, q.max_retry_delay_ms, q.backoff_multiplier) == (5000, 30000, 2.0)
    assert q.stalled_job_timeout_ms == 30000


def test_node_env_is_accepted_and_flakeguard_env_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NODE_ENV", "production")
    monkeypatch.delenv("FLAKEGUARD_ENV", raising=False)
    assert load_settings().env == "production"
    monkeypatch.setenv("FLAKEGUARD_ENV", "test")
    assert load_settings().env == "test"


def test_a_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_CONCURRENCY", "lots")
    monkeypatch.setenv("METRICS_PORT", "70000")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "WORKER_CONCURRENCY" in str(info.value) and "METRICS_PORT" in str(info.value)


def test_secrets_never_appear_in_errors_or_reprs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", "hunter2-very-secret")
    monkeypatch.setenv("GITHUB_PRIVATE_KEY", "-----BEGIN RSA PRIVATE KEY-----abc")
    monkeypatch.setenv("WORKER_CONCURRENCY", "0")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "hunter2" not in str(info.value) and "PRIVATE KEY" not in str(info.value)
    monkeypatch.setenv("WORKER_CONCURRENCY", "2")
    monkeypatch.setenv("GITHUB_PRIVATE_KEY", rsa_pem())
    settings = load_settings()
    assert "hunter2" not in repr(settings) and "PRIVATE KEY" not in repr(settings)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@db:5432/fg", "postgresql+asyncpg://u:p@db:5432/fg"),
        ("postgres://u@db/fg?sslmode=require", "postgresql+asyncpg://u@db/fg?ssl=require"),
        ("sqlite:///tmp/x.db", "sqlite+aiosqlite:///tmp/x.db"),
    ],
)
def test_database_urls_are_mapped_to_async_drivers(given: str, expected: str) -> None:
    assert to_async_database_url(given) == expected


def test_without_database_url_the_embedded_sqlite_file_is_used(tmp_path: object) -> None:
    settings = Settings.model_validate({"FLAKEGUARD_DATA_DIR": str(tmp_path)})
    assert settings.async_database_url.startswith("sqlite+aiosqlite:///")
    assert settings.async_database_url.endswith("/flakeguard.db")


def test_the_process_exits_non_zero_with_the_variable_named() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "flakeguard", "migrate"],
        env={"PATH": "/usr/bin:/bin", "REDIS_URL": "http://nope"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "REDIS_URL" in proc.stderr


def test_the_status_thresholds_are_settings_and_keep_their_hysteresis(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from types import SimpleNamespace

    from flakeguard.pipeline.scoring import analysis_config

    monkeypatch.setenv("FLAKY_ACTIVATION_RATE", "0.2")
    monkeypatch.setenv("FLAKY_RESOLUTION_RATE", "0.1")
    monkeypatch.setenv("FLAKY_MIN_SAMPLE", "15")
    monkeypatch.setenv("CROSS_RUN_EVIDENCE_ON_FEATURE_BRANCHES", "true")
    monkeypatch.setenv("PROTECTED_BRANCHES", "main, release/*")
    config = analysis_config(load_settings(), SimpleNamespace(default_branch="trunk"))  # type: ignore[arg-type]
    assert (config.activation_failure_rate, config.resolution_failure_rate) == (0.2, 0.1)
    assert config.min_statistical_sample == 15 and config.cross_run_evidence_on_unprotected
    assert config.protected_branches == ("main", "release/*") and config.is_protected("trunk")
    monkeypatch.setenv("FLAKY_RESOLUTION_RATE", "0.3")
    with pytest.raises(ConfigError, match="FLAKY_RESOLUTION_RATE must not be above FLAKY_ACTIVATION_RATE"):
        load_settings()


def start(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """`flakeguard ARGS` with only `env` (and PATH): what an operator's broken configuration does."""
    return subprocess.run(
        [sys.executable, "-m", "flakeguard", *args],
        env={"PATH": "/usr/bin:/bin", "REDIS_URL": "redis://127.0.0.1:1/0", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("variable", "env"),
    [
        ("GITHUB_PRIVATE_KEY", {"GITHUB_APP_ID": "1", "GITHUB_PRIVATE_KEY": "not a key"}),
        ("GITHUB_PRIVATE_KEY", {"GITHUB_APP_ID": "1", "GITHUB_PRIVATE_KEY": "/nonexistent/app.pem"}),
        ("GITHUB_PRIVATE_KEY", {"GITHUB_APP_ID": "1", "GITHUB_PRIVATE_KEY": "/"}),  # unreadable: a directory
        (
            "GITHUB_PRIVATE_KEY",
            {"GITHUB_APP_ID": "1", "GITHUB_PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END"},
        ),
        ("REDIS_CLUSTER_NODES", {"REDIS_CLUSTER_ENABLED": "true", "REDIS_CLUSTER_NODES": "r-1,r-2:x"}),
        ("REDIS_CLUSTER_NODES", {"REDIS_CLUSTER_ENABLED": "true"}),
        ("LOG_LEVEL", {"LOG_LEVEL": "loud"}),
        ("LOG_FORMAT", {"LOG_FORMAT": "xml"}),
    ],
)
def test_a_start_up_configuration_error_is_one_line_and_exit_2(variable: str, env: dict[str, str]) -> None:
    proc = start(["worker"], **env)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and "AAAA" not in proc.stderr


def test_production_refuses_to_serve_webhooks_without_a_secret(tmp_path: object) -> None:
    env = {"NODE_ENV": "production", "GITHUB_APP_ID": "1", "GITHUB_PRIVATE_KEY": rsa_pem()}
    proc = start(["worker"], **env, DATABASE_URL="postgresql://u@127.0.0.1:1/db")
    assert proc.returncode == 2 and "GITHUB_WEBHOOK_SECRET" in proc.stderr
    assert "DATABASE_URL" not in proc.stderr
    proc = start(["worker"], **env, GITHUB_WEBHOOK_SECRET="s3cret-for-webhooks")
    assert proc.returncode == 2 and "DATABASE_URL" in proc.stderr  # no embedded SQLite in production
    assert "s3cret" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"NODE_ENV": "production"}, "json"),
        ({"NODE_ENV": "development"}, "console"),
        ({"NODE_ENV": "test"}, "json"),
        ({"NODE_ENV": "development", "LOG_FORMAT": "json"}, "json"),
        ({"FLAKEGUARD_ENV": "production", "LOG_FORMAT": "console"}, "console"),
    ],
)
def test_the_environment_chooses_the_log_format(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    for name in ("NODE_ENV", "FLAKEGUARD_ENV", "LOG_FORMAT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert load_settings().effective_log_format == expected
