"""GitHub App authentication as GitHub checks it: the App's RS256 JWT (`iss`, `iat`, `exp` at most
10 minutes ahead) and installation tokens that expire (`token_ttl`) and then answer 401.

`Credentials.resolve` turns an `Authorization` header into the identity whose rate-limit budget a
request spends, or raises the 401 GitHub gives for a credential that does not resolve.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from flakeguard.testing.fake_github.request import ApiError
from flakeguard.testing.fake_github.state import Token, now

APP_IDENTITY = "app"
JWT_LEEWAY_S = 5
JWT_MAX_LIFETIME_S = 600

_KEY_LOCK = threading.Lock()
_KEY_PEM: str | None = None


def generate_private_key_pem() -> str:
    """An RSA private key (PKCS#1 PEM, as GitHub hands them out); one per process, for speed."""
    global _KEY_PEM
    with _KEY_LOCK:
        if _KEY_PEM is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            _KEY_PEM = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            ).decode()
        return _KEY_PEM


def public_key_pem(private_pem: str) -> bytes:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the rate-limit identity, the token (None for the App JWT), its kind."""

    identity: str
    token: Token | None
    kind: str  # "jwt" | "token"


def bad_credentials(message: str = "Bad credentials") -> ApiError:
    # GitHub answers a credential that does not resolve without any x-ratelimit-* header and
    # charges no budget (observed against api.github.com; API-NOTES §5 lists the headers).
    return ApiError(401, message, charge=False)


class Credentials:
    """The App's key and the installation tokens minted so far."""

    def __init__(self, app_id: int, private_key_pem: str, token_ttl: float) -> None:
        self.app_id = app_id
        self.token_ttl = token_ttl
        self._public_key = public_key_pem(private_key_pem)
        self._tokens: dict[str, Token] = {}
        self._lock = threading.Lock()

    def issue(self, installation_id: int | None, ttl: float | None = None) -> tuple[str, Token]:
        prefix = "ghs_" if installation_id else "ghp_"
        value = prefix + secrets.token_urlsafe(27)
        token = Token(installation_id, now() + timedelta(seconds=self.token_ttl if ttl is None else ttl))
        with self._lock:
            self._tokens[value] = token
        return value, token

    def expire_all(self) -> None:
        with self._lock:
            for token in self._tokens.values():
                token.expires_at = now() - timedelta(seconds=1)

    def resolve(self, authorization: str) -> Caller:
        """The caller behind an `Authorization` header value; ApiError(401) when it does not resolve."""
        scheme, _, credential = authorization.partition(" ")
        scheme = scheme.lower()
        if not credential or scheme not in ("bearer", "token"):
            raise bad_credentials()
        with self._lock:
            token = self._tokens.get(credential)
        if token is not None:
            if token.expires_at <= now():
                raise bad_credentials()
            identity = (
                f"installation:{token.installation_id}" if token.installation_id else f"token:{credential}"
            )
            return Caller(identity, token, "token")
        if credential.count(".") != 2:
            raise bad_credentials()
        if scheme != "bearer":  # a JWT must be sent as Bearer
            raise bad_credentials("A JSON web token could not be decoded")
        self._check_jwt(credential)
        return Caller(APP_IDENTITY, None, "jwt")

    def _check_jwt(self, token: str) -> None:
        try:
            claims = jwt.decode(
                token,
                self._public_key,
                algorithms=["RS256"],
                options={"require": ["exp", "iat", "iss"]},
                leeway=JWT_LEEWAY_S,
            )
        except jwt.ExpiredSignatureError as e:
            raise bad_credentials(
                "'Expiration time' claim ('exp') must be a numeric value representing the "
                "future time at which the assertion expires"
            ) from e
        except jwt.PyJWTError as e:
            raise bad_credentials("A JSON web token could not be decoded") from e
        at = time.time()
        if float(claims["exp"]) - at > JWT_MAX_LIFETIME_S + JWT_LEEWAY_S:
            raise bad_credentials("'Expiration time' claim ('exp') is too far in the future")
        if float(claims["iat"]) > at + JWT_LEEWAY_S:
            raise bad_credentials(
                "'Issued at' claim ('iat') must be an Integer representing the time that "
                "the assertion was issued"
            )
        if str(claims["iss"]) != str(self.app_id):
            raise bad_credentials("'Issuer' claim ('iss') must be an Integer")
