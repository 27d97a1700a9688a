"""GitHub credentials: App JWTs, installation tokens, plain tokens.

Secrets never leave these objects except as an `Authorization` header value: reprs, exceptions and
log lines name the app id / installation id only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = [
    "AppAuth",
    "Auth",
    "InstallationAuth",
    "InstallationToken",
    "TokenAuth",
    "load_private_key",
]

JWT_LIFETIME_S = 540  # GitHub accepts at most 600; 9 minutes leaves room for clock drift
JWT_BACKDATE_S = 60  # iat 60 s in the past, as GitHub recommends for clock drift
TOKEN_REFRESH_MARGIN_S = 60  # refresh installation tokens a minute before expires_at


def load_private_key(value: str) -> str:
    """The App private key from `GITHUB_PRIVATE_KEY`: the PEM itself (real newlines or `\\n` escapes,
    as env files often hold it) or a path to a PEM file. Raises ValueError without echoing the value."""
    text = value.strip()
    if "-----BEGIN" not in text:
        path = Path(text).expanduser()
        try:
            text = path.read_text().strip()
        except (OSError, ValueError):
            raise ValueError(
                "GITHUB_PRIVATE_KEY is neither a PEM private key nor a readable file path"
            ) from None
    if "\\n" in text and "\n" not in text:
        text = text.replace("\\n", "\n")
    try:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError("GITHUB_PRIVATE_KEY does not hold a valid unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("GITHUB_PRIVATE_KEY must be an RSA key (GitHub Apps sign JWTs with RS256)")
    return text + "\n"


class Auth(Protocol):
    """What the client needs from a credential."""

    @property
    def cache_key(self) -> str:
        """Identifies whose view of GitHub this is (for the ETag cache); holds no secret."""
        ...

    async def authorization(self) -> str:
        """The `Authorization` header value to send now."""
        ...

    def invalidate(self, rejected: str) -> bool:
        """GitHub answered 401 to `rejected`; drop it. True when a fresh credential may help."""
        ...


@dataclass(frozen=True, repr=False)
class InstallationToken:
    token: str
    expires_at: datetime

    def __repr__(self) -> str:
        return f"InstallationToken(expires_at={self.expires_at.isoformat()})"


class AppAuth:
    """Signs App JWTs (RS256, iat now-60 s, exp now+9 min, iss app id), cached until a minute before exp."""

    def __init__(
        self, app_id: int | str, private_key_pem: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.app_id = str(app_id)
        key = serialization.load_pem_private_key(load_private_key(private_key_pem).encode(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)  # load_private_key checked it
        self._key = key
        self._clock = clock
        self._jwt: str | None = None
        self._jwt_exp = 0.0

    def __repr__(self) -> str:
        return f"AppAuth(app_id={self.app_id})"

    @property
    def cache_key(self) -> str:
        return f"app:{self.app_id}"

    def jwt(self) -> str:
        now = self._clock()
        if self._jwt is None or now >= self._jwt_exp - 60:
            iat = int(now) - JWT_BACKDATE_S
            exp = int(now) + JWT_LIFETIME_S
            self._jwt = jwt.encode({"iat": iat, "exp": exp, "iss": self.app_id}, self._key, algorithm="RS256")
            self._jwt_exp = exp
        return self._jwt

    async def authorization(self) -> str:
        return "Bearer " + self.jwt()

    def invalidate(self, rejected: str) -> bool:
        self._jwt = None
        return True


MintToken = Callable[[int], Awaitable[InstallationToken]]


class InstallationAuth:
    """An installation token, minted on demand and cached until a minute before it expires."""

    def __init__(
        self, installation_id: int, mint: MintToken, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.installation_id = installation_id
        self._mint = mint
        self._clock = clock
        self._token: InstallationToken | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"InstallationAuth(installation_id={self.installation_id})"

    @property
    def cache_key(self) -> str:
        return f"installation:{self.installation_id}"

    def _fresh(self) -> InstallationToken | None:
        tok = self._token
        if tok is None or self._clock() >= tok.expires_at.timestamp() - TOKEN_REFRESH_MARGIN_S:
            return None
        return tok

    async def authorization(self) -> str:
        tok = self._fresh()
        if tok is None:
            async with self._lock:
                tok = self._fresh()
                if tok is None:
                    tok = await self._mint(self.installation_id)
                    self._token = tok
        return "Bearer " + tok.token

    def invalidate(self, rejected: str) -> bool:
        if self._token is not None and rejected == "Bearer " + self._token.token:
            self._token = None
        return True

    @property
    def expires_at(self) -> datetime | None:
        return self._token.expires_at if self._token else None


class TokenAuth:
    """A plain token (`GITHUB_TOKEN`, a PAT): nothing to refresh."""

    def __init__(self, token: str) -> None:
        if not token.strip():
            raise ValueError("empty GitHub token")
        self._token = token.strip()

    def __repr__(self) -> str:
        return "TokenAuth(***)"

    @property
    def cache_key(self) -> str:
        return f"token:{id(self)}"

    async def authorization(self) -> str:
        return "Bearer " + self._token

    def invalidate(self, rejected: str) -> bool:
        return False


def parse_expires_at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
