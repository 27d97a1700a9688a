from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

from flakeguard.github.auth import AppAuth, InstallationAuth, InstallationToken, TokenAuth, load_private_key
from flakeguard.github.client import classify_rate_limit
from flakeguard.testing.fake_github import generate_private_key_pem

PEM = generate_private_key_pem()


def test_load_private_key_variants(tmp_path: Path) -> None:
    p = tmp_path / "key.pem"
    p.write_text(PEM)
    assert load_private_key(PEM).strip() == PEM.strip()
    assert load_private_key(str(p)).strip() == PEM.strip()
    assert load_private_key(PEM.strip().replace("\n", "\\n")).strip() == PEM.strip()


@pytest.mark.parametrize(
    "value", ["/no/such/file.pem", "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----"]
)
def test_bad_key_errors_do_not_echo_the_value(value: str) -> None:
    with pytest.raises(ValueError) as e:
        load_private_key(value)
    assert "AAAA" not in str(e.value) and "/no/such" not in str(e.value)


def test_jwt_claims() -> None:
    auth = AppAuth(4242, PEM)
    token = auth.jwt()
    claims = jwt.decode(token, options={"verify_signature": False})
    now = time.time()
    assert claims["iss"] == "4242"
    assert now - 70 <= claims["iat"] <= now - 50
    assert claims["exp"] - now <= 9 * 60 + 1
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert auth.jwt() == token  # cached
    assert "PRIVATE" not in repr(auth)


async def test_installation_token_cached_until_a_minute_before_expiry() -> None:
    clock = [1_000_000.0]
    minted: list[int] = []

    async def mint(inst: int) -> InstallationToken:
        minted.append(inst)
        return InstallationToken(f"ghs_{len(minted)}", datetime.fromtimestamp(clock[0] + 3600, UTC))

    auth = InstallationAuth(7, mint, clock=lambda: clock[0])
    assert await auth.authorization() == "Bearer ghs_1"
    clock[0] += 3600 - 61
    assert await auth.authorization() == "Bearer ghs_1"
    clock[0] += 2
    assert await auth.authorization() == "Bearer ghs_2"
    assert auth.invalidate("Bearer ghs_2") and await auth.authorization() == "Bearer ghs_3"
    assert "ghs_" not in repr(auth) and "ghs_" not in repr(InstallationToken("ghs_x", datetime.now(UTC)))


def test_token_auth_repr() -> None:
    assert "secret" not in repr(TokenAuth("secret-token"))


NOW = datetime(2030, 1, 1, tzinfo=UTC)
RESET = int((NOW + timedelta(seconds=900)).timestamp())


@pytest.mark.parametrize(
    ("status", "headers", "message", "kind", "wait"),
    [
        (
            403,
            {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(RESET)},
            "API rate limit exceeded for x",
            "primary",
            900,
        ),
        (429, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(RESET)}, "", "primary", 900),
        (
            403,
            {"retry-after": "42", "x-ratelimit-remaining": "100"},
            "You have exceeded a secondary rate limit.",
            "secondary",
            42,
        ),
        (429, {"retry-after": "5"}, "", "secondary", 5),
        (
            403,
            {"x-ratelimit-remaining": "100", "x-ratelimit-reset": str(RESET)},
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            "secondary",
            60,
        ),
        (403, {}, "... Please retry your request again later.", "secondary", 60),
        (
            403,
            {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(RESET)},
            "You have exceeded a secondary rate limit.",
            "secondary",
            900,
        ),
    ],
)
def test_rate_limit_classification(
    status: int, headers: dict[str, str], message: str, kind: str, wait: int
) -> None:
    rl = classify_rate_limit(status, headers, message, NOW)
    assert rl is not None and rl.kind == kind
    assert rl.resume_at == NOW + timedelta(seconds=wait)


def test_secondary_backoff_grows_and_is_bounded() -> None:
    waits = [classify_rate_limit(403, {}, "secondary rate limit", NOW, n).resume_at - NOW for n in range(6)]  # type: ignore[union-attr]
    assert [w.total_seconds() for w in waits] == [60, 120, 240, 480, 900, 900]


def test_plain_403_is_not_a_rate_limit() -> None:
    assert (
        classify_rate_limit(
            403, {"x-ratelimit-remaining": "4000"}, "Resource not accessible by integration", NOW
        )
        is None
    )
