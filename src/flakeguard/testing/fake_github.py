"""A fake GitHub REST API on loopback, for tests, demos and offline load tests.

It serves the endpoints FlakeGuard calls, in the shapes of GitHub's OpenAPI description
(`../shared/github/openapi_subset.json`; the tests validate every response against it):

* App auth: the JWT is checked (RS256, `iss` = app id, `iat`, `exp` at most 10 minutes ahead);
  installation tokens expire (`token_ttl`, one hour by default) and then answer 401.
* Workflow runs and attempts, artifacts (Link-header pagination, `per_page` <= 100, ETag / 304 that
  costs no rate limit), the artifact download as a 302 to a *second* loopback server (like GitHub's
  signed blob host) whose URL is HMAC-signed and expires after `artifact_url_ttl` seconds.
* Check runs with GitHub's validation (422 beyond 50 annotations per request, 65,535-character
  summary/text, annotation levels, at most 3 actions with 20/40/20-character fields).
* `x-ratelimit-*` headers on every response, with a per-identity primary budget (`rate_limit`).
* Fault injection: `gh.inject(pattern, fault, times=N)`.

It is a threaded `http.server`: no event loop of its own, so sync and async tests can both use it,
it starts in milliseconds, and it can do what an ASGI server cannot (a TCP reset mid-request).

    with FakeGitHub() as gh:
        gh.add_repository("acme", "project", installation_id=67890)
        gh.add_run("acme", "project", 1, head_sha="abc", branch="main",
                   artifacts={"test-results": zip_bytes})
        ... point a client at gh.url with gh.app_id / gh.private_key_pem ...

Run on its own: `python -m flakeguard.testing.fake_github --port 8081 --runs 20`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fnmatch
import hashlib
import hmac
import json
import math
import os
import random
import re
import secrets
import socket
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = [
    "CheckRunRecord",
    "FakeGitHub",
    "Fault",
    "RecordedRequest",
    "RecordedResponse",
    "generate_private_key_pem",
    "populate_demo_repository",
]

JSON = dict[str, Any]
DOCS = "https://docs.github.com/rest"

# --------------------------------------------------------------------------------------------
# keys

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


def _public_key_pem(private_pem: str) -> bytes:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# --------------------------------------------------------------------------------------------
# helpers


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _node_id(kind: str, ident: int) -> str:
    return base64.b64encode(f"{kind}{ident}".encode()).decode()


class RecordedRequest(tuple[str, str, dict[str, str]]):
    """One request the fake received: unpacks as `(method, path, headers)`.

    `headers` has lower-case names. Also `.query` (the raw query string), `.server`
    (`"api"` or `"blob"`, the signed download host) and `.at` (epoch seconds when it arrived).
    """

    query: str
    server: str
    at: float

    def __new__(
        cls, method: str, path: str, headers: dict[str, str], query: str = "", server: str = "api",
        at: float | None = None,
    ) -> RecordedRequest:
        self = super().__new__(cls, (method, path, headers))
        self.query = query
        self.server = server
        self.at = time.time() if at is None else at
        return self

    @property
    def method(self) -> str:
        return self[0]

    @property
    def path(self) -> str:
        return self[1]

    @property
    def headers(self) -> dict[str, str]:
        return self[2]


@dataclass(frozen=True)
class RecordedResponse:
    """One response the API server sent (for schema checks): `template` is None for unknown paths."""

    method: str
    path: str
    template: str | None
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class CheckRunRecord:
    """A check run as the fake holds it; `annotations` accumulate over create and updates."""

    id: int
    owner: str
    repo: str
    name: str
    head_sha: str
    status: str
    conclusion: str | None
    external_id: str
    details_url: str | None
    started_at: str | None
    completed_at: str | None
    output: JSON
    annotations: list[JSON] = field(default_factory=list)
    actions: list[JSON] = field(default_factory=list)
    requests: list[JSON] = field(default_factory=list)  # every accepted body, create first


@dataclass(frozen=True)
class Fault:
    """A fault to inject. Build with the class methods or pass a name to `FakeGitHub.inject`."""

    kind: str
    status: int = 500
    seconds: float = 0.0
    retry_after: int | None = None
    reset_in: int = 60
    keep: float = 0.5

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        return cls("status", status=status)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        return cls("slow", seconds=seconds)

    @classmethod
    def reset(cls) -> Fault:
        return cls("reset")

    @classmethod
    def primary_limit(cls, status: int = 403, reset_in: int = 60) -> Fault:
        return cls("primary_limit", status=status, reset_in=reset_in)

    @classmethod
    def secondary_limit(cls, status: int = 403, retry_after: int | None = 30, reset_in: int = 60) -> Fault:
        return cls("secondary_limit", status=status, retry_after=retry_after, reset_in=reset_in)

    @classmethod
    def expired_token(cls) -> Fault:
        return cls("expired_token", status=401)

    @classmethod
    def expired_artifact(cls) -> Fault:
        return cls("expired_artifact", status=410)

    @classmethod
    def truncated_zip(cls, keep: float = 0.5) -> Fault:
        return cls("truncated_zip", keep=keep)

    @classmethod
    def named(cls, name: str, **params: Any) -> Fault:
        """`"500"`/`"502"`/..., `"slow"`, `"reset"`, `"primary_limit"`, `"secondary_limit"`,
        `"secondary_limit_no_retry_after"`, `"expired_token"`, `"expired_artifact"`, `"truncated_zip"`."""
        if name.isdigit():
            return cls.server_error(int(name))
        if name == "secondary_limit_no_retry_after":
            return cls.secondary_limit(retry_after=None, **params)
        factory: Callable[..., Fault] | None = getattr(cls, name, None)
        if factory is None or name == "named":
            raise ValueError(f"unknown fault {name!r}")
        return factory(**params)


@dataclass
class _Injection:
    method: str | None
    pattern: str
    fault: Fault
    times: int  # < 0: forever


@dataclass
class _Repo:
    id: int
    owner: str
    name: str
    installation_id: int
    default_branch: str
    private: bool


@dataclass
class _Installation:
    id: int
    account: str
    account_id: int


@dataclass
class _Run:
    id: int
    owner: str
    repo: str
    head_sha: str
    branch: str | None
    event: str
    status: str
    conclusion: str | None
    run_attempt: int
    run_number: int
    created_at: datetime
    updated_at: datetime
    attempt_started: dict[int, datetime] = field(default_factory=dict)
    attempt_conclusion: dict[int, str | None] = field(default_factory=dict)
    display_title: str = "CI"


@dataclass
class _Artifact:
    id: int
    owner: str
    repo: str
    run_id: int
    name: str
    data: bytes
    created_at: datetime
    expired: bool = False


@dataclass
class _Token:
    installation_id: int | None  # None: a plain token with access to every repository
    expires_at: datetime


@dataclass
class _Budget:
    limit: int
    remaining: int
    reset_at: float


@dataclass
class _Reply:
    status: int
    body: Any = None  # JSON-able, or bytes, or None
    headers: dict[str, str] = field(default_factory=dict)
    etag: bool = False  # a GET body that can be answered 304


class _Error(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.extra = extra


# --------------------------------------------------------------------------------------------
# routes

_ROUTES: list[tuple[str, str, str, str]] = [
    # (method, template, handler, auth: jwt | token)
    ("GET", "/app", "app", "jwt"),
    ("GET", "/app/installations", "list_installations", "jwt"),
    ("GET", "/app/installations/{installation_id}", "get_installation", "jwt"),
    ("POST", "/app/installations/{installation_id}/access_tokens", "create_token", "jwt"),
    ("GET", "/repos/{owner}/{repo}/installation", "repo_installation", "jwt"),
    ("GET", "/installation/repositories", "installation_repositories", "token"),
    ("GET", "/rate_limit", "rate_limit", "token"),
    ("GET", "/repos/{owner}/{repo}/actions/runs", "list_runs", "token"),
    ("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}", "get_run", "token"),
    ("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}", "get_attempt", "token"),
    ("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}/artifacts", "list_run_artifacts", "token"),
    ("GET", "/repos/{owner}/{repo}/actions/artifacts", "list_repo_artifacts", "token"),
    ("GET", "/repos/{owner}/{repo}/actions/artifacts/{artifact_id}", "get_artifact", "token"),
    (
        "GET",
        "/repos/{owner}/{repo}/actions/artifacts/{artifact_id}/{archive_format}",
        "download_artifact",
        "token",
    ),
    ("POST", "/repos/{owner}/{repo}/check-runs", "create_check_run", "token"),
    ("PATCH", "/repos/{owner}/{repo}/check-runs/{check_run_id}", "update_check_run", "token"),
    ("GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}", "get_check_run", "token"),
    ("GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}/annotations", "list_annotations", "token"),
]


def _compile(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$")


_COMPILED = [(m, t, _compile(t), h, a) for m, t, h, a in _ROUTES]

_ANNOTATION_LEVELS = {"notice", "warning", "failure"}
_CONCLUSIONS = {
    "action_required",
    "cancelled",
    "failure",
    "neutral",
    "success",
    "skipped",
    "timed_out",
}
_STATUSES = {"queued", "in_progress", "completed"}
_RUN_STATUSES = {
    "completed",
    "action_required",
    "cancelled",
    "failure",
    "neutral",
    "skipped",
    "stale",
    "success",
    "timed_out",
    "in_progress",
    "queued",
    "requested",
    "waiting",
    "pending",
}


# --------------------------------------------------------------------------------------------
# the fake


class FakeGitHub:
    """A fake GitHub API server (plus a signed blob host for artifact downloads) on loopback."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        blob_port: int = 0,
        app_id: int = 424242,
        app_slug: str = "flakeguard-test",
        private_key_pem: str | None = None,
        token_ttl: float = 3600.0,
        artifact_url_ttl: float = 60.0,
        artifact_retention_days: int = 90,
        rate_limit: int = 5000,
    ) -> None:
        self.app_id = app_id
        self.app_slug = app_slug
        self.private_key_pem = private_key_pem or generate_private_key_pem()
        self._public_key = _public_key_pem(self.private_key_pem)
        self.token_ttl = token_ttl
        self.artifact_url_ttl = artifact_url_ttl
        self.artifact_retention_days = artifact_retention_days
        self.rate_limit = rate_limit
        self._host = host
        self._port = port
        self._blob_port = blob_port
        self._lock = threading.RLock()
        self._url_secret = secrets.token_bytes(32)
        self._repos: dict[tuple[str, str], _Repo] = {}
        self._installations: dict[int, _Installation] = {}
        self._runs: dict[tuple[str, str, int], _Run] = {}
        self._artifacts: dict[int, _Artifact] = {}
        self._tokens: dict[str, _Token] = {}
        self._budgets: dict[str, _Budget] = {}
        self._check_runs: dict[int, CheckRunRecord] = {}
        self._injections: list[_Injection] = []
        self._truncate: dict[int, float] = {}
        self._budget_override: tuple[int, int] | None = None
        self._next_id = 1000
        self._started = _now()
        self.requests: list[RecordedRequest] = []
        self.responses: list[RecordedResponse] = []
        self._api: ThreadingHTTPServer | None = None
        self._blob: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeGitHub:
        if self._api is not None:
            return self
        self._api = _Server((self._host, self._port), _ApiHandler, self)
        # A second loopback *address* where the OS has one (Linux: all of 127/8), else another port:
        # either way a different origin, like GitHub's blob host.
        blob_host = "127.0.0.2" if self._host == "127.0.0.1" else self._host
        try:
            self._blob = _Server((blob_host, self._blob_port), _BlobHandler, self)
        except OSError:
            self._blob = _Server((self._host, self._blob_port), _BlobHandler, self)
        for srv in (self._api, self._blob):
            t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        for srv in (self._api, self._blob):
            if srv is not None:
                srv.shutdown()
                srv.server_close()
        for t in self._threads:
            t.join(timeout=5)
        self._threads.clear()
        self._api = self._blob = None

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The API base URL, e.g. `http://127.0.0.1:PORT` (GITHUB_API_URL)."""
        assert self._api is not None, "FakeGitHub is not started"
        host, port = self._api.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def blob_url(self) -> str:
        assert self._blob is not None, "FakeGitHub is not started"
        host, port = self._blob.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def port(self) -> int:
        assert self._api is not None
        return int(self._api.server_address[1])

    # -- test-facing set-up -----------------------------------------------------------------

    def _new_id(self) -> int:
        with self._lock:
            self._next_id += 1
            return self._next_id

    def add_installation(self, installation_id: int, account: str) -> None:
        with self._lock:
            if installation_id not in self._installations:
                self._installations[installation_id] = _Installation(installation_id, account, self._new_id())

    def add_repository(
        self,
        owner: str,
        repo: str,
        *,
        installation_id: int = 67890,
        default_branch: str = "main",
        private: bool = False,
    ) -> int:
        """Adds a repository to an installation (created on first use). Returns the repository id."""
        with self._lock:
            self.add_installation(installation_id, owner)
            existing = self._repos.get((owner, repo))
            rid = existing.id if existing else self._new_id()
            self._repos[(owner, repo)] = _Repo(rid, owner, repo, installation_id, default_branch, private)
            return rid

    def add_run(
        self,
        owner: str,
        repo: str,
        run_id: int,
        *,
        head_sha: str,
        branch: str | None = "main",
        event: str = "push",
        conclusion: str | None = "failure",
        status: str = "completed",
        run_attempt: int = 1,
        created_at: datetime | None = None,
        artifacts: Mapping[str, bytes] | None = None,
        display_title: str = "CI",
    ) -> list[int]:
        """Adds (or re-runs, when `run_id` exists) a workflow run; returns the new artifact ids.

        The repository is created (installation 67890) when unknown.
        """
        with self._lock:
            if (owner, repo) not in self._repos:
                self.add_repository(owner, repo)
            created = (created_at or _now()).astimezone(UTC).replace(microsecond=0)
            key = (owner, repo, run_id)
            run = self._runs.get(key)
            if run is None:
                number = 1 + sum(1 for r in self._runs.values() if (r.owner, r.repo) == (owner, repo))
                run = _Run(
                    run_id,
                    owner,
                    repo,
                    head_sha,
                    branch,
                    event,
                    status,
                    conclusion,
                    run_attempt,
                    number,
                    created,
                    created,
                    display_title=display_title,
                )
                self._runs[key] = run
                for n in range(1, run_attempt + 1):
                    run.attempt_started[n] = created + timedelta(minutes=5 * (n - 1))
                    run.attempt_conclusion[n] = conclusion
            else:
                for n in range(run.run_attempt + 1, run_attempt + 1):
                    run.attempt_started[n] = max(created, run.created_at) + timedelta(minutes=n)
                    run.attempt_conclusion[n] = conclusion
                run.run_attempt = max(run.run_attempt, run_attempt)
                run.attempt_conclusion[run_attempt] = conclusion
                run.status, run.conclusion = status, conclusion
                run.updated_at = max(run.attempt_started.values()) + timedelta(minutes=3)
            if run.run_attempt == 1:
                run.updated_at = run.created_at + timedelta(minutes=3)
            ids = []
            for name, data in (artifacts or {}).items():
                aid = self._new_id()
                self._artifacts[aid] = _Artifact(aid, owner, repo, run_id, name, bytes(data), run.updated_at)
                ids.append(aid)
            return ids

    def expire_artifact(self, artifact_id: int) -> None:
        with self._lock:
            self._artifacts[artifact_id].expired = True

    def issue_token(self, installation_id: int | None = None, ttl: float | None = None) -> str:
        """A token as if minted for `installation_id` (None: a plain token that sees every repository)."""
        token = "ghs_" + secrets.token_urlsafe(27) if installation_id else "ghp_" + secrets.token_urlsafe(27)
        with self._lock:
            expires = _now() + timedelta(seconds=self.token_ttl if ttl is None else ttl)
            self._tokens[token] = _Token(installation_id, expires)
        return token

    def expire_tokens(self) -> None:
        """Every token issued so far now answers 401 (as after GitHub's one-hour lifetime)."""
        with self._lock:
            for t in self._tokens.values():
                t.expires_at = _now() - timedelta(seconds=1)

    def set_rate_limit_remaining(self, remaining: int, *, reset_in: int = 3600) -> None:
        """Sets the remaining primary budget of every identity (current and future)."""
        with self._lock:
            self._budget_override = (remaining, reset_in)
            for b in self._budgets.values():
                b.remaining = remaining
                b.reset_at = time.time() + reset_in

    def inject(self, pattern: str, fault: Fault | str, *, times: int = 1, **params: Any) -> None:
        """Makes the next `times` matching requests fail (`times=-1`: all of them).

        `pattern` is an endpoint template (`/repos/{owner}/{repo}/actions/runs`), or a glob over the
        concrete path (`/repos/*/*/actions/artifacts/*/zip`, `*` crosses `/`), optionally prefixed by a
        method (`"POST /repos/*/check-runs"`). The blob host's paths are `/_blob/{artifact_id}`.
        """
        method: str | None = None
        if " " in pattern:
            method, pattern = pattern.split(" ", 1)
            method = method.upper()
        f = fault if isinstance(fault, Fault) else Fault.named(fault, **params)
        with self._lock:
            self._injections.append(_Injection(method, pattern, f, times))

    def clear_faults(self) -> None:
        with self._lock:
            self._injections.clear()

    @property
    def check_runs(self) -> list[CheckRunRecord]:
        with self._lock:
            return list(self._check_runs.values())

    def requests_to(self, pattern: str, method: str | None = None) -> list[RecordedRequest]:
        """Recorded API requests whose path matches a glob (or template), optionally by method."""
        with self._lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method) and _path_matches(pattern, r.path, None)
            ]

    # -- request processing (server threads) ------------------------------------------------

    def _record(self, method: str, path: str, query: str, headers: dict[str, str], server: str) -> None:
        with self._lock:
            self.requests.append(RecordedRequest(method, path, headers, query, server))

    def _take_fault(self, method: str, path: str, template: str | None) -> Fault | None:
        with self._lock:
            for inj in self._injections:
                if inj.times == 0:
                    continue
                if inj.method and inj.method != method:
                    continue
                if _path_matches(inj.pattern, path, template):
                    if inj.times > 0:
                        inj.times -= 1
                    return inj.fault
        return None

    def _budget(self, identity: str) -> _Budget:
        b = self._budgets.get(identity)
        now = time.time()
        if b is None or now >= b.reset_at:
            override = self._budget_override
            if b is None and override is not None:
                b = _Budget(self.rate_limit, override[0], now + override[1])
            else:
                b = _Budget(self.rate_limit, self.rate_limit, now + 3600)
            self._budgets[identity] = b
        return b

    def _ratelimit_headers(self, b: _Budget) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(b.limit),
            "x-ratelimit-remaining": str(max(0, b.remaining)),
            "x-ratelimit-used": str(b.limit - max(0, b.remaining)),
            "x-ratelimit-reset": str(math.ceil(b.reset_at)),
            "x-ratelimit-resource": "core",
        }

    def _authenticate(self, kind: str, headers: Mapping[str, str]) -> tuple[str, _Token | None]:
        """Returns (rate-limit identity, token or None for the app JWT)."""
        auth = headers.get("authorization", "")
        scheme, _, cred = auth.partition(" ")
        if not cred or scheme.lower() not in ("bearer", "token"):
            raise _Error(401, "Requires authentication")
        if kind == "jwt":
            if scheme.lower() != "bearer":
                raise _Error(401, "A JSON web token could not be decoded")
            self._check_jwt(cred)
            return "app", None
        with self._lock:
            tok = self._tokens.get(cred)
        if tok is None:
            if cred.count(".") == 2:
                raise _Error(401, "A JSON web token could not be decoded")
            raise _Error(401, "Bad credentials")
        if tok.expires_at <= _now():
            raise _Error(401, "Bad credentials")
        return (f"installation:{tok.installation_id}" if tok.installation_id else f"token:{cred}"), tok

    def _check_jwt(self, token: str) -> None:
        try:
            claims = jwt.decode(
                token,
                self._public_key,
                algorithms=["RS256"],
                options={"require": ["exp", "iat", "iss"]},
                leeway=5,
            )
        except jwt.ExpiredSignatureError as e:
            raise _Error(
                401,
                "'Expiration time' claim ('exp') must be a numeric value representing the "
                "future time at which the assertion expires",
            ) from e
        except jwt.PyJWTError as e:
            raise _Error(401, "A JSON web token could not be decoded") from e
        now = time.time()
        if float(claims["exp"]) - now > 600 + 5:
            raise _Error(401, "'Expiration time' claim ('exp') is too far in the future")
        if float(claims["iat"]) > now + 5:
            raise _Error(
                401,
                "'Issued at' claim ('iat') must be an Integer representing the time that "
                "the assertion was issued",
            )
        if str(claims["iss"]) != str(self.app_id):
            raise _Error(401, "'Issuer' claim ('iss') must be an Integer")

    def _repo_for(self, owner: str, repo: str, tok: _Token | None) -> _Repo:
        with self._lock:
            r = self._repos.get((owner, repo))
        if r is None or (tok is not None and tok.installation_id not in (None, r.installation_id)):
            raise _Error(404, "Not Found")
        return r

    # -- JSON shapes --------------------------------------------------------------------------

    def _user(self, login: str, uid: int, kind: str = "Organization") -> JSON:
        base = f"{self.url}/users/{login}"
        return {
            "login": login,
            "id": uid,
            "node_id": _node_id("User", uid),
            "avatar_url": f"https://avatars.example.invalid/u/{uid}",
            "gravatar_id": "",
            "url": base,
            "html_url": f"https://github.com/{login}",
            "followers_url": f"{base}/followers",
            "following_url": f"{base}/following{{/other_user}}",
            "gists_url": f"{base}/gists{{/gist_id}}",
            "starred_url": f"{base}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{base}/subscriptions",
            "organizations_url": f"{base}/orgs",
            "repos_url": f"{base}/repos",
            "events_url": f"{base}/events{{/privacy}}",
            "received_events_url": f"{base}/received_events",
            "type": kind,
            "site_admin": False,
        }

    def _owner_id(self, owner: str) -> int:
        return int(hashlib.sha256(owner.encode()).hexdigest()[:7], 16)

    def _minimal_repo(self, r: _Repo) -> JSON:
        base = f"{self.url}/repos/{r.owner}/{r.name}"
        urls = {
            "archive_url": "/{archive_format}{/ref}",
            "assignees_url": "/assignees{/user}",
            "blobs_url": "/git/blobs{/sha}",
            "branches_url": "/branches{/branch}",
            "collaborators_url": "/collaborators{/collaborator}",
            "comments_url": "/comments{/number}",
            "commits_url": "/commits{/sha}",
            "compare_url": "/compare/{base}...{head}",
            "contents_url": "/contents/{+path}",
            "contributors_url": "/contributors",
            "deployments_url": "/deployments",
            "downloads_url": "/downloads",
            "events_url": "/events",
            "forks_url": "/forks",
            "git_commits_url": "/git/commits{/sha}",
            "git_refs_url": "/git/refs{/sha}",
            "git_tags_url": "/git/tags{/sha}",
            "hooks_url": "/hooks",
            "issue_comment_url": "/issues/comments{/number}",
            "issue_events_url": "/issues/events{/number}",
            "issues_url": "/issues{/number}",
            "keys_url": "/keys{/key_id}",
            "labels_url": "/labels{/name}",
            "languages_url": "/languages",
            "merges_url": "/merges",
            "milestones_url": "/milestones{/number}",
            "notifications_url": "/notifications{?since,all,participating}",
            "pulls_url": "/pulls{/number}",
            "releases_url": "/releases{/id}",
            "stargazers_url": "/stargazers",
            "statuses_url": "/statuses/{sha}",
            "subscribers_url": "/subscribers",
            "subscription_url": "/subscription",
            "tags_url": "/tags",
            "teams_url": "/teams",
            "trees_url": "/git/trees{/sha}",
        }
        out: JSON = {
            "id": r.id,
            "node_id": _node_id("Repository", r.id),
            "name": r.name,
            "full_name": f"{r.owner}/{r.name}",
            "owner": self._user(r.owner, self._owner_id(r.owner)),
            "private": r.private,
            "html_url": f"https://github.com/{r.owner}/{r.name}",
            "description": None,
            "fork": False,
            "url": base,
        }
        out.update({k: base + v for k, v in urls.items()})
        return out

    def _repository(self, r: _Repo) -> JSON:
        out = self._minimal_repo(r)
        created = _iso(self._started - timedelta(days=365))
        out.update(
            {
                "clone_url": f"https://github.com/{r.owner}/{r.name}.git",
                "git_url": f"git://github.com/{r.owner}/{r.name}.git",
                "ssh_url": f"git@github.com:{r.owner}/{r.name}.git",
                "svn_url": f"https://github.com/{r.owner}/{r.name}",
                "mirror_url": None,
                "homepage": None,
                "language": "Python",
                "license": None,
                "forks": 0,
                "forks_count": 0,
                "stargazers_count": 0,
                "watchers_count": 0,
                "watchers": 0,
                "size": 1024,
                "default_branch": r.default_branch,
                "open_issues_count": 0,
                "open_issues": 0,
                "has_issues": True,
                "has_projects": False,
                "has_wiki": False,
                "has_pages": False,
                "has_downloads": True,
                "archived": False,
                "disabled": False,
                "visibility": ("private" if r.private else "public"),
                "pushed_at": _iso(_now()),
                "created_at": created,
                "updated_at": created,
            }
        )
        return out

    def _installation(self, inst: _Installation) -> JSON:
        created = _iso(self._started - timedelta(days=30))
        return {
            "id": inst.id,
            # /app/installations' inline schema is allOf[simple-user, enterprise]: carry both field sets
            "account": {
                **self._user(inst.account, self._owner_id(inst.account)),
                "name": inst.account, "slug": inst.account, "created_at": created, "updated_at": created,
            },
            "repository_selection": "selected",
            "access_tokens_url": f"{self.url}/app/installations/{inst.id}/access_tokens",
            "repositories_url": f"{self.url}/installation/repositories",
            "html_url": f"https://github.com/organizations/{inst.account}/settings/installations/{inst.id}",
            "app_id": self.app_id,
            "app_slug": self.app_slug,
            "client_id": f"Iv1.{self.app_id:016x}",
            "target_id": self._owner_id(inst.account),
            "target_type": "Organization",
            "permissions": {"actions": "read", "checks": "write", "metadata": "read"},
            "events": ["workflow_run", "check_run"],
            "created_at": created,
            "updated_at": created,
            "single_file_name": None,
            "has_multiple_single_files": False,
            "single_file_paths": [],
            "suspended_by": None,
            "suspended_at": None,
        }

    def _integration(self) -> JSON:
        created = _iso(self._started - timedelta(days=60))
        with self._lock:
            n = len(self._installations)
        return {
            "id": self.app_id,
            "slug": self.app_slug,
            "node_id": _node_id("App", self.app_id),
            "client_id": f"Iv1.{self.app_id:016x}",
            "owner": self._user("flakeguard", 1),
            "name": "FlakeGuard (fake)",
            "description": "Flaky-test detection",
            "external_url": "https://flakeguard.example.invalid",
            "html_url": f"https://github.com/apps/{self.app_slug}",
            "created_at": created,
            "updated_at": created,
            "permissions": {"actions": "read", "checks": "write", "metadata": "read"},
            "events": ["workflow_run", "check_run"],
            "installations_count": n,
        }

    def _run_json(self, run: _Run, attempt: int | None = None) -> JSON:
        r = self._repos[(run.owner, run.repo)]
        n = attempt or run.run_attempt
        base = f"{self.url}/repos/{run.owner}/{run.repo}/actions/runs/{run.id}"
        started = run.attempt_started.get(n, run.created_at)
        latest = n == run.run_attempt
        status = run.status if latest else "completed"
        conclusion = run.attempt_conclusion.get(n, run.conclusion) if status == "completed" else None
        actor = self._user("octocat", 583231, "User")
        minimal = self._minimal_repo(r)
        return {
            "id": run.id,
            "name": "CI",
            "node_id": _node_id("WorkflowRun", run.id),
            "check_suite_id": run.id * 10 + n,
            "check_suite_node_id": _node_id("CheckSuite", run.id * 10 + n),
            "head_branch": run.branch,
            "head_sha": run.head_sha,
            "path": ".github/workflows/ci.yml",
            "run_number": run.run_number,
            "run_attempt": n,
            "referenced_workflows": [],
            "event": run.event,
            "status": status,
            "conclusion": conclusion,
            "workflow_id": 161335,
            "url": base,
            "html_url": f"https://github.com/{run.owner}/{run.repo}/actions/runs/{run.id}",
            "pull_requests": [],
            "created_at": _iso(run.created_at),
            "updated_at": _iso(run.updated_at if latest else started + timedelta(minutes=3)),
            "actor": actor,
            "triggering_actor": actor,
            "run_started_at": _iso(started),
            "jobs_url": f"{base}/jobs",
            "logs_url": f"{base}/logs",
            "check_suite_url": f"{self.url}/repos/{run.owner}/{run.repo}/check-suites/{run.id * 10 + n}",
            "artifacts_url": f"{base}/artifacts",
            "cancel_url": f"{base}/cancel",
            "rerun_url": f"{base}/rerun",
            "previous_attempt_url": f"{base}/attempts/{n - 1}" if n > 1 else None,
            "workflow_url": f"{self.url}/repos/{run.owner}/{run.repo}/actions/workflows/161335",
            "head_commit": {
                "id": run.head_sha,
                "tree_id": hashlib.sha1(run.head_sha.encode()).hexdigest(),
                "message": run.display_title,
                "timestamp": _iso(run.created_at),
                "author": {"name": "Octo Cat", "email": "octocat@example.com"},
                "committer": {"name": "Octo Cat", "email": "octocat@example.com"},
            },
            "repository": minimal,
            "head_repository": minimal,
            "head_repository_id": r.id,
            "display_title": run.display_title,
        }

    def _artifact_json(self, a: _Artifact) -> JSON:
        base = f"{self.url}/repos/{a.owner}/{a.repo}/actions/artifacts/{a.id}"
        run = self._runs[(a.owner, a.repo, a.run_id)]
        return {
            "id": a.id,
            "node_id": _node_id("Artifact", a.id),
            "name": a.name,
            "size_in_bytes": len(a.data),
            "url": base,
            "archive_download_url": f"{base}/zip",
            "expired": a.expired,
            "created_at": _iso(a.created_at),
            "expires_at": _iso(a.created_at + timedelta(days=self.artifact_retention_days)),
            "updated_at": _iso(a.created_at),
            "digest": "sha256:" + hashlib.sha256(a.data).hexdigest(),
            "workflow_run": {
                "id": run.id,
                "repository_id": self._repos[(a.owner, a.repo)].id,
                "head_repository_id": self._repos[(a.owner, a.repo)].id,
                "head_branch": run.branch or "",
                "head_sha": run.head_sha,
            },
        }

    def _check_run_json(self, c: CheckRunRecord) -> JSON:
        base = f"{self.url}/repos/{c.owner}/{c.repo}/check-runs/{c.id}"
        return {
            "id": c.id,
            "head_sha": c.head_sha,
            "node_id": _node_id("CheckRun", c.id),
            "external_id": c.external_id,
            "url": base,
            "html_url": f"https://github.com/{c.owner}/{c.repo}/runs/{c.id}",
            "details_url": c.details_url,
            "status": c.status,
            "conclusion": c.conclusion,
            "started_at": c.started_at,
            "completed_at": c.completed_at,
            "output": {
                "title": c.output.get("title"),
                "summary": c.output.get("summary"),
                "text": c.output.get("text"),
                "annotations_count": len(c.annotations),
                "annotations_url": f"{base}/annotations",
            },
            "name": c.name,
            "check_suite": {"id": 5},
            "app": self._integration(),
            "pull_requests": [],
        }

    # -- pagination ---------------------------------------------------------------------------

    def _paginate(
        self, path: str, query: dict[str, str], items: list[Any]
    ) -> tuple[list[Any], dict[str, str]]:
        try:
            per_page = min(100, max(1, int(query.get("per_page", "30"))))
        except ValueError:
            per_page = 30
        try:
            page = max(1, int(query.get("page", "1")))
        except ValueError:
            page = 1
        last = max(1, math.ceil(len(items) / per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        if last == 1:
            return chunk, {}

        def link(p: int) -> str:
            q = dict(query)
            q["per_page"] = str(per_page)
            q["page"] = str(p)
            return f"{self.url}{path}?{urlencode(q)}"

        rels = []
        if page > 1:
            rels += [f'<{link(page - 1)}>; rel="prev"']
        if page < last:
            rels += [f'<{link(page + 1)}>; rel="next"', f'<{link(last)}>; rel="last"']
        if page > 1:
            rels += [f'<{link(1)}>; rel="first"']
        return chunk, {"link": ", ".join(rels)}

    # -- handlers ---------------------------------------------------------------------------------

    def dispatch(
        self, method: str, path: str, query: dict[str, str], headers: Mapping[str, str], body: bytes
    ) -> tuple[_Reply, str | None]:
        """Routes one API request; returns the reply and the rate-limit identity to charge."""
        for m, _template, rx, handler, auth in _COMPILED:
            match = rx.match(path)
            if match is None:
                continue
            if m != method:
                continue
            identity, tok = self._authenticate(auth, headers)
            with self._lock:
                budget = self._budget(identity)
                if budget.remaining <= 0:
                    raise _Error(
                        403,
                        "API rate limit exceeded for installation. If you reach out to GitHub Support for "
                        "help, please include the request ID.",
                        self._ratelimit_headers(budget),
                    )
            payload: Any = None
            if body:
                try:
                    payload = json.loads(body)
                except ValueError as e:
                    raise _Error(400, "Problems parsing JSON") from e
                if not isinstance(payload, dict):
                    raise _Error(400, "Body should be a JSON object")
            fn = getattr(self, "_h_" + handler)
            reply: _Reply = fn(match.groupdict(), query, tok, payload or {}, path)
            return reply, identity
        if any(rx.match(path) for _, _, rx, _, _ in _COMPILED):
            raise _Error(404, "Not Found")  # GitHub answers 404 to unknown methods on known paths
        raise _Error(404, "Not Found")

    def template_for(self, method: str, path: str) -> str | None:
        for m, template, rx, _, _ in _COMPILED:
            if m == method and rx.match(path):
                return template
        return None

    def _h_app(self, p: dict[str, str], q: dict[str, str], tok: _Token | None, b: JSON, path: str) -> _Reply:
        return _Reply(200, self._integration(), etag=True)

    def _h_list_installations(
        self, p: dict[str, str], q: dict[str, str], tok: _Token | None, b: JSON, path: str
    ) -> _Reply:
        with self._lock:
            items = [self._installation(i) for i in sorted(self._installations.values(), key=lambda i: i.id)]
        chunk, hdrs = self._paginate(path, q, items)
        return _Reply(200, chunk, hdrs, etag=True)

    def _get_inst(self, raw: str) -> _Installation:
        with self._lock:
            inst = self._installations.get(int(raw)) if raw.isdigit() else None
        if inst is None:
            raise _Error(404, "Not Found")
        return inst

    def _h_get_installation(
        self, p: dict[str, str], q: dict[str, str], tok: _Token | None, b: JSON, path: str
    ) -> _Reply:
        return _Reply(200, self._installation(self._get_inst(p["installation_id"])), etag=True)

    def _h_create_token(
        self, p: dict[str, str], q: dict[str, str], tok: _Token | None, b: JSON, path: str
    ) -> _Reply:
        inst = self._get_inst(p["installation_id"])
        token = self.issue_token(inst.id)
        with self._lock:
            expires = self._tokens[token].expires_at
        return _Reply(
            201,
            {
                "token": token,
                "expires_at": _iso(expires),
                "permissions": {"actions": "read", "checks": "write", "metadata": "read"},
                "repository_selection": "selected",
            },
        )

    def _h_repo_installation(
        self, p: dict[str, str], q: dict[str, str], tok: _Token | None, b: JSON, path: str
    ) -> _Reply:
        r = self._repo_for(p["owner"], p["repo"], None)
        return _Reply(200, self._installation(self._get_inst(str(r.installation_id))), etag=True)

    def _h_installation_repositories(
        self, p: dict[str, str], q: dict[str, str], tok: _Token | None, b: JSON, path: str
    ) -> _Reply:
        assert tok is not None
        with self._lock:
            repos = sorted(
                (
                    r
                    for r in self._repos.values()
                    if tok.installation_id is None or r.installation_id == tok.installation_id
                ),
                key=lambda r: r.id,
            )
            items = [self._repository(r) for r in repos]
        chunk, hdrs = self._paginate(path, q, items)
        return _Reply(
            200,
            {"total_count": len(items), "repositories": chunk, "repository_selection": "selected"},
            hdrs,
            etag=True,
        )

    def _h_rate_limit(
        self, p: dict[str, str], q: dict[str, str], tok: _Token | None, b: JSON, path: str
    ) -> _Reply:
        return _Reply(200, None)  # filled in by the handler (needs the identity's budget)

    def _runs_of(self, owner: str, repo: str) -> list[_Run]:
        with self._lock:
            runs = [r for r in self._runs.values() if (r.owner, r.repo) == (owner, repo)]
        return sorted(runs, key=lambda r: (r.created_at, r.id), reverse=True)

    def _h_list_runs(
        self, p: dict[str, str], q: dict[str, str], tok: _Token | None, b: JSON, path: str
    ) -> _Reply:
        self._repo_for(p["owner"], p["repo"], tok)
        runs = self._runs_of(p["owner"], p["repo"])
        if "status" in q:
            if q["status"] not in _RUN_STATUSES:
                raise _Error(422, "Validation Failed")
            runs = [r for r in runs if q["status"] in (r.status, r.conclusion)]
        for key, attr in (("branch", "branch"), ("event", "event"), ("head_sha", "head_sha")):
            if key in q:
                runs = [r for r in runs if getattr(r, attr) == q[key]]
        if "created" in q:
            pred = _created_filter(q["created"])
            runs = [r for r in runs if pred(r.created_at)]
        with self._lock:
            items = [self._run_json(r) for r in runs]
        chunk, hdrs = self._paginate(path, q, items)
        return _Reply(200, {"total_count": len(items), "workflow_runs": chunk}, hdrs, etag=True)

    def _get_run(self, p: dict[str, str], tok: _Token | None) -> _Run:
        self._repo_for(p["owner"], p["repo"], tok)
        with self._lock:
            run = self._runs.get((p["owner"], p["repo"], int(p["run_id"]))) if p["run_id"].isdigit() else None
        if run is None:
            raise _Error(404, "Not Found")
        return run

    def _h_get_run(
        self, p: dict[str, str], q: dict[str, str], tok: _Token | None, b: JSON, path: str
    ) -> _Reply:
        run = self._get_run(p, tok)
        with self._lock:
            return _Reply(200, self._run_json(run), etag=True)

    def _h_get_attempt(
        self, p: dict[str, str], q: dict[str, str], tok: _Token | None, b: JSON, path: str
    ) -> _Reply:
        run = self._get_run(p, tok)
        n = int(p["attempt_number"]) if p["attempt_number"].isdigit() else 0
        if not 1 <= n <= run.run_attempt:
            raise _Error(404, "Not Found")
        with self._lock:
            return _Reply(200, self._run_json(run, n), etag=True)

    def _artifact_list(self, arts: list[_Artifact], q: dict[str, str], path: str) -> _Reply:
        if "name" in q:
            arts = [a for a in arts if a.name == q["name"]]
        arts.sort(key=lambda a: a.id, reverse=q.get("direction", "desc") != "asc")
        with self._lock:
            items = [self._artifact_json(a) for a in arts]
        chunk, hdrs = self._paginate(path, q, items)
        return _Reply(200, {"total_count": len(items), "artifacts": chunk}, hdrs, etag=True)

    def _h_list_run_artifacts(
        self, p: dict[str, str], q: dict[str, str], tok: _Token | None, b: JSON, path: str
    ) -> _Reply:
        run = self._get_run(p, tok)
        with self._lock:
            arts = [
                a
                for a in self._artifacts.values()
                if (a.owner, a.repo, a.run_id) == (run.owner, run.repo, run.id)
            ]
        return self._artifact_list(arts, q, path)

    def _h_list_repo_artifacts(
        self, p: dict[str, str], q: dict[str, str], tok: _Token | None, b: JSON, path: str
    ) -> _Reply:
        self._repo_for(p["owner"], p["repo"], tok)
        with self._lock:
            arts = [a for a in self._artifacts.values() if (a.owner, a.repo) == (p["owner"], p["repo"])]
        return self._artifact_list(arts, q, path)

    def _get_artifact(self, p: dict[str, str], tok: _Token | None) -> _Artifact:
        self._repo_for(p["owner"], p["repo"], tok)
        with self._lock:
            a = self._artifacts.get(int(p["artifact_id"])) if p["artifact_id"].isdigit() else None
        if a is None or (a.owner, a.repo) != (p["owner"], p["repo"]):
            raise _Error(404, "Not Found")
        return a

    def _h_get_artifact(
        self, p: dict[str, str], q: dict[str, str], tok: _Token | None, b: JSON, path: str
    ) -> _Reply:
        a = self._get_artifact(p, tok)
        with self._lock:
            return _Reply(200, self._artifact_json(a), etag=True)

    def _h_download_artifact(
        self, p: dict[str, str], q: dict[str, str], tok: _Token | None, b: JSON, path: str
    ) -> _Reply:
        a = self._get_artifact(p, tok)
        if p["archive_format"] != "zip":
            raise _Error(404, "Not Found")
        if a.expired:
            raise _Error(410, "Artifact has expired")
        return _Reply(302, None, {"location": self.signed_blob_url(a.id)})

    def signed_blob_url(self, artifact_id: int, *, expires: float | None = None) -> str:
        exp = int(expires if expires is not None else time.time() + self.artifact_url_ttl)
        sig = self._sign(artifact_id, exp)
        return f"{self.blob_url}/_blob/{artifact_id}?" + urlencode(
            {"urlExpires": str(exp), "urlSigningMethod": "HMACV1", "urlSignature": sig}
        )

    def _sign(self, artifact_id: int, exp: int) -> str:
        mac = hmac.new(self._url_secret, f"{artifact_id}:{exp}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def blob(self, artifact_id: int, query: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        try:
            exp = int(query.get("urlExpires", ""))
        except ValueError:
            return 403, b"<Error><Code>AuthenticationFailed</Code></Error>", {}
        if not hmac.compare_digest(self._sign(artifact_id, exp), query.get("urlSignature", "")):
            return 403, b"<Error><Code>AuthenticationFailed</Code></Error>", {}
        if time.time() > exp:
            return 403, b"<Error><Code>AuthenticationFailed</Code><Message>expired</Message></Error>", {}
        with self._lock:
            a = self._artifacts.get(artifact_id)
            keep = self._truncate.pop(artifact_id, None)
        if a is None:
            return 404, b"<Error><Code>BlobNotFound</Code></Error>", {}
        data = a.data if keep is None else a.data[: int(len(a.data) * keep)]
        return 200, data, {"content-type": "application/zip"}

    # -- check runs ---------------------------------------------------------------------------------

    def _validate_check_body(self, b: JSON, *, create: bool) -> None:
        errors: list[str] = []

        def check_len(obj: JSON, key: str, limit: int, where: str) -> None:
            v = obj.get(key)
            if v is not None and (not isinstance(v, str) or len(v) > limit):
                errors.append(f"For 'properties/{key}', {where} is too long (maximum is {limit} characters).")

        if create:
            for req in ("name", "head_sha"):
                if not isinstance(b.get(req), str) or not b.get(req):
                    errors.append(f'"{req}" wasn\'t supplied.')
        status = b.get("status")
        if status is not None and status not in _STATUSES:
            errors.append(f"{status!r} is not a member of {sorted(_STATUSES)}.")
        conclusion = b.get("conclusion")
        if conclusion is not None and conclusion not in _CONCLUSIONS:
            errors.append(f"{conclusion!r} is not a valid conclusion.")
        if (status == "completed" or b.get("completed_at")) and not conclusion:
            errors.append('"conclusion" wasn\'t supplied.')
        out = b.get("output")
        if out is not None:
            if not isinstance(out, dict):
                errors.append("output must be an object.")
            else:
                if create and not out.get("title"):
                    errors.append('"title" wasn\'t supplied.')
                if not isinstance(out.get("summary"), str):
                    errors.append('"summary" wasn\'t supplied.')
                check_len(out, "summary", 65535, "summary")
                check_len(out, "text", 65535, "text")
                anns = out.get("annotations") or []
                if not isinstance(anns, list):
                    errors.append("annotations must be an array.")
                    anns = []
                if len(anns) > 50:
                    errors.append("Only 50 annotations are allowed per request.")
                for i, a in enumerate(anns):
                    if not isinstance(a, dict):
                        errors.append(f"annotation {i} must be an object.")
                        continue
                    for req in ("path", "start_line", "end_line", "annotation_level", "message"):
                        if a.get(req) in (None, ""):
                            errors.append(f'annotation {i}: "{req}" wasn\'t supplied.')
                    if a.get("annotation_level") not in _ANNOTATION_LEVELS:
                        errors.append(
                            f"annotation {i}: annotation_level is not one of notice, warning, failure."
                        )
                    check_len(a, "title", 255, "title")
                    check_len(a, "message", 65535, "message")
                    check_len(a, "raw_details", 65535, "raw_details")
                    if ("start_column" in a or "end_column" in a) and a.get("start_line") != a.get(
                        "end_line"
                    ):
                        errors.append(f"annotation {i}: columns are only allowed on one line.")
        actions = b.get("actions")
        if actions is not None:
            if not isinstance(actions, list) or len(actions) > 3:
                errors.append("Only 3 actions are allowed.")
            else:
                for a in actions:
                    for key, limit in (("label", 20), ("description", 40), ("identifier", 20)):
                        v = a.get(key) if isinstance(a, dict) else None
                        if not isinstance(v, str) or not v:
                            errors.append(f'action "{key}" wasn\'t supplied.')
                        elif len(v) > limit:
                            check_len(a, key, limit, key)
        if errors:
            raise _Error(
                422,
                "Invalid request.\n\n" + "\n".join(errors),
                errors=[{"resource": "CheckRun", "code": "invalid", "message": e} for e in errors],
            )

    def _apply_check_body(self, c: CheckRunRecord, b: JSON) -> None:
        now = _iso(_now())
        for key in ("name", "details_url", "external_id", "started_at"):
            if key in b:
                setattr(c, key, b[key])
        if b.get("conclusion"):
            c.conclusion = b["conclusion"]
            c.status = "completed"
            c.completed_at = b.get("completed_at") or now
        elif "status" in b:
            c.status = b["status"]
            if c.status != "completed":
                c.conclusion = None
        if "output" in b:
            out = b["output"]
            for key in ("title", "summary", "text"):
                if key in out:
                    c.output[key] = out[key]
            for a in out.get("annotations") or []:
                c.annotations.append(
                    {
                        "path": a["path"],
                        "blob_href": f"https://github.com/{c.owner}/{c.repo}/blob/{c.head_sha}/{a['path']}",
                        "start_line": a["start_line"],
                        "end_line": a["end_line"],
                        "start_column": a.get("start_column"),
                        "end_column": a.get("end_column"),
                        "annotation_level": a["annotation_level"],
                        "title": a.get("title"),
                        "message": a["message"],
                        "raw_details": a.get("raw_details"),
                    }
                )
        if "actions" in b:
            c.actions = list(b["actions"])
        c.requests.append(b)

    def _h_create_check_run(
        self, p: dict[str, str], q: dict[str, str], tok: _Token | None, b: JSON, path: str
    ) -> _Reply:
        self._repo_for(p["owner"], p["repo"], tok)
        self._validate_check_body(b, create=True)
        with self._lock:
            cid = self._new_id()
            c = CheckRunRecord(
                id=cid,
                owner=p["owner"],
                repo=p["repo"],
                name=b["name"],
                head_sha=b["head_sha"],
                status="queued",
                conclusion=None,
                external_id=b.get("external_id") or "",
                details_url=b.get("details_url"),
                started_at=b.get("started_at") or _iso(_now()),
                completed_at=None,
                output={"title": None, "summary": None, "text": None},
            )
            self._apply_check_body(c, b)
            self._check_runs[cid] = c
            return _Reply(201, self._check_run_json(c))

    def _get_check_run(self, p: dict[str, str], tok: _Token | None) -> CheckRunRecord:
        self._repo_for(p["owner"], p["repo"], tok)
        with self._lock:
            c = self._check_runs.get(int(p["check_run_id"])) if p["check_run_id"].isdigit() else None
        if c is None or (c.owner, c.repo) != (p["owner"], p["repo"]):
            raise _Error(404, "Not Found")
        return c

    def _h_update_check_run(
        self, p: dict[str, str], q: dict[str, str], tok: _Token | None, b: JSON, path: str
    ) -> _Reply:
        c = self._get_check_run(p, tok)
        self._validate_check_body(b, create=False)
        with self._lock:
            self._apply_check_body(c, b)
            return _Reply(200, self._check_run_json(c))

    def _h_get_check_run(
        self, p: dict[str, str], q: dict[str, str], tok: _Token | None, b: JSON, path: str
    ) -> _Reply:
        c = self._get_check_run(p, tok)
        with self._lock:
            return _Reply(200, self._check_run_json(c), etag=True)

    def _h_list_annotations(
        self, p: dict[str, str], q: dict[str, str], tok: _Token | None, b: JSON, path: str
    ) -> _Reply:
        c = self._get_check_run(p, tok)
        with self._lock:
            items = list(c.annotations)
        chunk, hdrs = self._paginate(path, q, items)
        return _Reply(200, chunk, hdrs, etag=True)


# --------------------------------------------------------------------------------------------
# matching and filters


def _path_matches(pattern: str, path: str, template: str | None) -> bool:
    if "{" in pattern:
        return pattern == template or _compile(pattern).match(path) is not None
    return fnmatch.fnmatchcase(path, pattern)


def _parse_day(s: str, end: bool) -> datetime:
    s = s.strip()
    if "T" in s:
        return datetime.fromisoformat(s.replace("Z", "+00:00")).astimezone(UTC)
    d = datetime.fromisoformat(s).replace(tzinfo=UTC)
    return d + timedelta(days=1) - timedelta(microseconds=1) if end else d


def _created_filter(expr: str) -> Callable[[datetime], bool]:
    """GitHub's search date syntax: `>=D`, `>D`, `<=D`, `<D`, `A..B`, `D`."""
    try:
        if ".." in expr:
            a, b = expr.split("..", 1)
            lo = None if a in ("", "*") else _parse_day(a, False)
            hi = None if b in ("", "*") else _parse_day(b, True)
            return lambda t: (lo is None or t >= lo) and (hi is None or t <= hi)
        for op in (">=", "<=", ">", "<"):
            if expr.startswith(op):
                rest = expr[len(op) :]
                if op == ">=":
                    x = _parse_day(rest, False)
                    return lambda t: t >= x
                if op == ">":
                    x = _parse_day(rest, True)
                    return lambda t: t > x
                if op == "<=":
                    x = _parse_day(rest, True)
                    return lambda t: t <= x
                x = _parse_day(rest, False)
                return lambda t: t < x
        lo, hi = _parse_day(expr, False), _parse_day(expr, True)
        return lambda t: lo <= t <= hi
    except ValueError as e:
        raise _Error(422, "Validation Failed") from e


# --------------------------------------------------------------------------------------------
# HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], handler: type[BaseHTTPRequestHandler], fake: FakeGitHub):
        self.fake = fake
        super().__init__(addr, handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "GitHub.com"
    sys_version = ""
    timeout = 30
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers.items()}

    def _read_body(self) -> bytes:
        n = int(self.headers.get("content-length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _reset(self) -> None:
        """Closes the TCP connection with a RST and no response."""
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        for f in (self.rfile, self.wfile):
            with contextlib.suppress(OSError):
                f.close()
        self.connection.close()


class _ApiHandler(_Handler):
    def _send(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        fake = self.server.fake
        path = urlsplit(self.path).path
        rec = RecordedResponse(
            self.command,
            path,
            fake.template_for(self.command, path),
            status,
            {k.lower(): v for k, v in headers.items()},
            body,
        )
        with fake._lock:
            fake.responses.append(rec)
        super()._send(status, body, headers)

    def _handle(self) -> None:
        fake = self.server.fake
        split = urlsplit(self.path)
        path, query = split.path, dict(parse_qsl(split.query, keep_blank_values=True))
        headers = self._headers()
        body = self._read_body()
        fake._record(self.command, path, split.query, headers, "api")
        template = fake.template_for(self.command, path)
        fault = fake._take_fault(self.command, path, template)
        base_headers = {
            "content-type": "application/json; charset=utf-8",
            "x-github-media-type": "github.v3; format=json",
            "x-github-api-version-selected": "2022-11-28",
            "x-github-request-id": secrets.token_hex(8).upper(),
        }
        if fault is not None:
            if fault.kind == "slow":
                time.sleep(fault.seconds)
            elif fault.kind == "reset":
                self._reset()
                return
            elif fault.kind == "truncated_zip":
                m = re.search(r"/actions/artifacts/(\d+)/", path)
                if m:
                    with fake._lock:
                        fake._truncate[int(m.group(1))] = fault.keep
            else:
                self._send_fault(fault, base_headers)
                return
        identity: str | None = None
        try:
            reply, identity = fake.dispatch(self.command, path, query, headers, body)
        except _Error as e:
            err: JSON = {"message": e.message, "documentation_url": DOCS, "status": str(e.status)}
            err.update(e.extra)
            hdrs = dict(base_headers)
            hdrs.update(e.headers)
            self._send(e.status, json.dumps(err).encode(), hdrs)
            return
        with fake._lock:
            budget = fake._budget(identity) if identity else None
        if path == "/rate_limit" and budget is not None:
            core = {
                "limit": budget.limit,
                "remaining": budget.remaining,
                "reset": math.ceil(budget.reset_at),
                "used": budget.limit - budget.remaining,
            }
            reply.body = {"resources": {"core": core, "search": core}, "rate": core}
        hdrs = dict(base_headers)
        hdrs.update(reply.headers)
        payload = (
            b""
            if reply.body is None
            else (reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode())
        )
        if reply.etag:
            etag = 'W/"' + hashlib.sha256(payload).hexdigest()[:40] + '"'
            hdrs["etag"] = etag
            inm = headers.get("if-none-match", "")
            if etag in [t.strip() for t in inm.split(",")] or inm.strip() == "*":
                if budget is not None:
                    hdrs.update(fake._ratelimit_headers(budget))
                hdrs.pop("content-type", None)
                self._send(304, b"", hdrs)
                return
        if budget is not None and path != "/rate_limit":
            with fake._lock:
                budget.remaining -= 1
        if budget is not None:
            hdrs.update(fake._ratelimit_headers(budget))
        if reply.status == 302:
            hdrs.pop("content-type", None)
        self._send(reply.status, payload, hdrs)

    def _send_fault(self, fault: Fault, base: dict[str, str]) -> None:
        fake = self.server.fake
        hdrs = dict(base)
        reset = str(int(time.time()) + fault.reset_in)
        if fault.kind == "status":
            body: JSON = {"message": "Server Error"} if fault.status != 502 else {"message": "Bad Gateway"}
        elif fault.kind == "primary_limit":
            body = {
                "message": "API rate limit exceeded for installation ID 67890. If you reach out to GitHub "
                "Support for help, please include the request ID.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
            }
            hdrs.update(
                {
                    "x-ratelimit-limit": str(fake.rate_limit),
                    "x-ratelimit-remaining": "0",
                    "x-ratelimit-used": str(fake.rate_limit),
                    "x-ratelimit-reset": reset,
                    "x-ratelimit-resource": "core",
                }
            )
        elif fault.kind == "secondary_limit":
            body = {
                "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you "
                "try again.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
                "#about-secondary-rate-limits",
            }
            hdrs.update(
                {
                    "x-ratelimit-limit": str(fake.rate_limit),
                    "x-ratelimit-remaining": "4000",
                    "x-ratelimit-used": str(fake.rate_limit - 4000),
                    "x-ratelimit-reset": reset,
                    "x-ratelimit-resource": "core",
                }
            )
            if fault.retry_after is not None:
                hdrs["retry-after"] = str(fault.retry_after)
        elif fault.kind == "expired_token":
            body = {"message": "Bad credentials", "documentation_url": DOCS}
        elif fault.kind == "expired_artifact":
            body = {"message": "Artifact has expired", "documentation_url": DOCS}
        else:  # pragma: no cover
            body = {"message": "Server Error"}
        body.setdefault("status", str(fault.status))
        self._send(fault.status, json.dumps(body).encode(), hdrs)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()


class _BlobHandler(_Handler):
    server_version = "Windows-Azure-Blob/1.0"

    def do_GET(self) -> None:
        fake = self.server.fake
        split = urlsplit(self.path)
        headers = self._headers()
        fake._record("GET", split.path, split.query, headers, "blob")
        fault = fake._take_fault("GET", split.path, None)
        m = re.fullmatch(r"/_blob/(\d+)", split.path)
        if fault is not None:
            if fault.kind == "slow":
                time.sleep(fault.seconds)
            elif fault.kind == "reset":
                self._reset()
                return
            elif fault.kind == "truncated_zip" and m:
                with fake._lock:
                    fake._truncate[int(m.group(1))] = fault.keep
            else:
                self._send(fault.status, b"<Error><Code>ServerBusy</Code></Error>", {})
                return
        if m is None:
            self._send(404, b"", {})
            return
        status, data, hdrs = fake.blob(int(m.group(1)), dict(parse_qsl(split.query)))
        self._send(status, data, hdrs)


# --------------------------------------------------------------------------------------------
# the generated demo repository


def populate_demo_repository(
    gh: FakeGitHub,
    *,
    owner: str = "acme",
    repo: str = "project",
    installation_id: int = 67890,
    runs: int = 20,
    tests_per_run: int = 50,
    seed: int = 7,
    first_run_id: int = 12345,
) -> list[int]:
    """A repository with `runs` completed runs, each with a `test-results` artifact ZIP of JUnit
    reports (about 10 % of the tests flaky, one always broken) and a non-test `coverage` artifact.
    Deterministic for a given seed; returns the run ids (run `first_run_id` is the newest)."""
    from flakeguard.model import Outcome
    from flakeguard.testing.reports import CaseSpec, SuiteSpec, junit_xml, zip_members

    rng = random.Random(seed)
    gh.add_repository(owner, repo, installation_id=installation_id)
    n_flaky = max(1, tests_per_run // 10)
    names = [(f"tests.test_module_{i % 5}", f"test_case_{i:03d}") for i in range(tests_per_run)]
    flaky = set(range(1, 1 + n_flaky))
    broken = {0} if tests_per_run > n_flaky + 1 else set()
    now = _now()
    run_ids = []
    for k in range(runs):
        run_id = first_run_id + k
        created = now - timedelta(hours=k + 1)
        branch = "main" if k % 3 else f"feature-{k % 4}"
        event = "push" if branch == "main" else "pull_request"
        suites: dict[str, SuiteSpec] = {}
        failed = False
        for i, (cls, name) in enumerate(names):
            outcome = Outcome.PASSED
            if i in broken or (i in flaky and rng.random() < 0.3):
                outcome = Outcome.FAILED
                failed = True
            elif i % 17 == 16:
                outcome = Outcome.SKIPPED
            spec = CaseSpec(
                cls,
                name,
                outcome,
                time_s=round(rng.uniform(0.001, 0.5), 3),
                file=cls.replace(".", "/") + ".py",
                line=10 + i,
                message=f"assert {i} == {i + 1}",
            )
            suites.setdefault(cls, SuiteSpec(cls)).cases.append(spec)
        ordered = list(suites.values())
        half = max(1, len(ordered) // 2)
        zip_bytes = zip_members(
            {
                "junit/part-1.xml": junit_xml(ordered[:half]),
                "junit/part-2.xml": junit_xml(ordered[half:]),
            }
        )
        sha = hashlib.sha1(f"{owner}/{repo}/{run_id}".encode()).hexdigest()
        gh.add_run(
            owner,
            repo,
            run_id,
            head_sha=sha,
            branch=branch,
            event=event,
            conclusion="failure" if failed else "success",
            created_at=created,
            artifacts={"test-results": zip_bytes, "coverage": zip_members({"coverage.xml": b"<c/>"})},
            display_title=f"Change {k}",
        )
        run_ids.append(run_id)
    return run_ids


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m flakeguard.testing.fake_github",
        description="Serve a fake GitHub API with a generated repository acme/project.",
    )
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8081)
    ap.add_argument("--blob-port", type=int, default=0)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--tests-per-run", type=int, default=50)
    ap.add_argument("--app-id", type=int, default=424242)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--key-file", default=None, help="where to write the App private key PEM")
    args = ap.parse_args(argv)
    gh = FakeGitHub(host=args.host, port=args.port, blob_port=args.blob_port, app_id=args.app_id)
    key_file = args.key_file or os.path.join(
        tempfile.gettempdir(), f"flakeguard-fake-github-{args.app_id}.pem"
    )
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(gh.private_key_pem)
    gh.start()
    run_ids = populate_demo_repository(gh, runs=args.runs, tests_per_run=args.tests_per_run, seed=args.seed)
    print(
        f"fake GitHub serving acme/project (installation 67890) with {len(run_ids)} runs "
        f"({run_ids[0]}..{run_ids[-1]}) at {gh.url}",
        flush=True,
    )
    print(f"GITHUB_API_URL={gh.url}", flush=True)
    print(f"GITHUB_APP_ID={gh.app_id}", flush=True)
    print(f"GITHUB_PRIVATE_KEY={key_file}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        gh.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
