"""Async GitHub REST client on plain `httpx`.

Why httpx directly and not githubkit (measured with githubkit 0.16.1 in a scratch venv; numbers in
docs/GITHUB.md): we call 14 endpoints, while githubkit brings 29 MB of generated pydantic models
(githubkit-schemas), costs 0.85 s / 73 MB RSS to import and reach actions+checks+apps (this module with
httpx, PyJWT and our metrics: 0.49 s / 44 MB), and a plain `pip install githubkit` resolved hishel 2.0.0,
with which githubkit 0.16.1 fails to import (needs an extra pin). Its behaviour under limits is also
not the one we need:
* its default retry *sleeps inside the call* on rate limits (blocking a worker slot for up to an hour)
  where we must raise `RateLimited(resume_at)` at once so the queue delays the job without spending an
  attempt and holds every other job;
* it does not recognise a 403 secondary limit that has no `retry-after` and remaining != 0
  (API-NOTES §8), which GitHub documents and we must handle;
* its HTTP cache (hishel) is keyed by request, and we need a 304 to hand back the previous page
  *including its Link header*, per installation;
* the artifact download must follow the 302 without `Authorization`, stream with a byte cap and map
  410 to `ArtifactExpired` — a raw httpx stream either way.
What is left is ~400 lines of plain, tested code (pagination, ETags, retries, limits, metrics).

Behaviour:
* Link-header pagination with `per_page=100`; next links are only followed on the API's own origin.
* ETag / If-None-Match on GET listings; a 304 reuses the cached page (and costs no primary limit).
* GET (and other idempotent calls) retry 5xx, timeouts and connection errors with exponential backoff
  and full jitter, bounded by `max_retries`; writes retry only failures that happened before the
  request was sent (connect errors), so a check run is never created twice.
* 401: the credential is refreshed once and the call repeated.
* 403/429 rate limits raise `RateLimited(resume_at, kind)`; the client also remembers the block and the
  latest `x-ratelimit-*` values, and refuses further calls (without a request) until `resume_at`.
* Every response is counted in `flakeguard_worker_github_api_calls_total{endpoint,status}` (endpoint =
  path template), timed in `..._api_duration_seconds`, and `x-ratelimit-remaining` is set into
  `..._rate_limit_remaining{resource}`.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import IO, Any
from urllib.parse import quote, urlsplit

import httpx

from flakeguard.github.auth import (
    AppAuth,
    Auth,
    InstallationAuth,
    InstallationToken,
    TokenAuth,
    load_private_key,
    parse_expires_at,
)
from flakeguard.github.errors import (
    ArtifactExpired,
    ArtifactTooLarge,
    GitHubError,
    NotFound,
    RateLimited,
    RateLimitKind,
    TransientGitHubError,
    Unauthorized,
)
from flakeguard.metrics import GITHUB_API_CALLS, GITHUB_API_DURATION, GITHUB_RATE_LIMIT_REMAINING

__all__ = [
    "DEFAULT_TIMEOUT",
    "EtagCache",
    "GitHubApp",
    "GitHubClient",
    "RateLimitInfo",
    "RateLimitTracker",
    "RunListing",
    "token_client",
]

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
API_VERSION = "2022-11-28"
PER_PAGE = 100

# Endpoint templates: the only values of the `endpoint` metric label.
EP_APP_INSTALLATIONS = "/app/installations"
EP_ACCESS_TOKENS = "/app/installations/{installation_id}/access_tokens"
EP_REPO_INSTALLATION = "/repos/{owner}/{repo}/installation"
EP_INSTALLATION_REPOS = "/installation/repositories"
EP_RATE_LIMIT = "/rate_limit"
EP_RUNS = "/repos/{owner}/{repo}/actions/runs"
EP_RUN = "/repos/{owner}/{repo}/actions/runs/{run_id}"
EP_RUN_ATTEMPT = "/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}"
EP_RUN_ARTIFACTS = "/repos/{owner}/{repo}/actions/runs/{run_id}/artifacts"
EP_ARTIFACT = "/repos/{owner}/{repo}/actions/artifacts/{artifact_id}"
EP_ARTIFACT_ZIP = "/repos/{owner}/{repo}/actions/artifacts/{artifact_id}/{archive_format}"
EP_ARTIFACT_BLOB = "artifact-blob"  # the signed download host (no path template of ours)
EP_CHECK_RUNS = "/repos/{owner}/{repo}/check-runs"
EP_CHECK_RUN = "/repos/{owner}/{repo}/check-runs/{check_run_id}"
EP_CHECK_RUN_ANNOTATIONS = "/repos/{owner}/{repo}/check-runs/{check_run_id}/annotations"
EP_CHECK_RUNS_FOR_REF = "/repos/{owner}/{repo}/commits/{ref}/check-runs"

# "This endpoint will return up to 1,000 results for each search when using the following
# parameters: actor, branch, check_suite_id, created, event, head_sha, status." (list-workflow-runs)
RUN_SEARCH_RESULT_CAP = 1000

SECONDARY_MIN_WAIT_S = 60.0
SECONDARY_MAX_WAIT_S = 900.0

Sleep = Callable[[float], Awaitable[None]]


# --------------------------------------------------------------------------------------------
# rate-limit state


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """The latest `x-ratelimit-*` values GitHub sent for one resource."""

    resource: str
    limit: int
    remaining: int
    used: int
    reset_at: datetime


@dataclass
class RateLimitTracker:
    """Rate-limit knowledge for one credential (one installation, the app, a token); shareable."""

    resources: dict[str, RateLimitInfo] = field(default_factory=dict)
    blocked_until: datetime | None = None
    blocked_kind: RateLimitKind = "primary"
    secondary_strikes: int = 0

    @property
    def core(self) -> RateLimitInfo | None:
        return self.resources.get("core")


class EtagCache:
    """A bounded LRU of (credential, URL) → (etag, body, link) for conditional GETs."""

    def __init__(self, max_entries: int = 1024) -> None:
        self._max = max_entries
        self._data: OrderedDict[tuple[str, str], tuple[str, bytes, str | None]] = OrderedDict()

    def get(self, key: tuple[str, str]) -> tuple[str, bytes, str | None] | None:
        hit = self._data.get(key)
        if hit is not None:
            self._data.move_to_end(key)
        return hit

    def put(self, key: tuple[str, str], etag: str, body: bytes, link: str | None) -> None:
        self._data[key] = (etag, body, link)
        self._data.move_to_end(key)
        while len(self._data) > self._max:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


@dataclass(frozen=True, slots=True)
class RunListing:
    """A listing of workflow runs, newest first. `complete` is False when it was cut short (GitHub
    stops a filtered listing at 1,000 runs, or `max_pages` stopped it): older matches are missing."""

    runs: list[dict[str, Any]]
    total_count: int
    complete: bool


@dataclass(slots=True)
class _Result:
    status: int
    data: Any
    headers: httpx.Headers
    link: str | None
    not_modified: bool = False


def _next_link(link: str | None) -> str | None:
    if not link:
        return None
    for part in link.split(","):
        segs = part.strip().split(";")
        url = segs[0].strip()
        if any(s.strip().replace(" ", "") in ('rel="next"', "rel=next") for s in segs[1:]):
            return url.strip("<>")
    return None


def _origin(url: str) -> tuple[str, str]:
    s = urlsplit(url)
    return s.scheme, s.netloc


def _message(resp: httpx.Response) -> str:
    try:
        data = resp.json()
    except ValueError:
        return resp.reason_phrase or ""
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])
    return resp.reason_phrase or ""


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _retry_after(value: str | None, now: datetime) -> float | None:
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - now).total_seconds())


def classify_rate_limit(
    status: int, headers: Mapping[str, str], message: str, now: datetime, secondary_strikes: int = 0
) -> RateLimited | None:
    """Turns a 403/429 into `RateLimited` when it is one (GitHub's documented retry rules), else None.

    retry-after present → wait that long; else remaining 0 → until x-ratelimit-reset; else a secondary
    limit (by message, or any 429) → at least 60 s, doubling with each consecutive strike (max 15 min).
    """
    if status not in (403, 429):
        return None
    lower = message.lower().strip()
    secondary_msg = (
        "secondary rate limit" in lower
        or lower.endswith("please retry your request again later.")
        or lower.endswith("please wait a few minutes before you try again.")
        or "abuse detection" in lower
    )
    primary_msg = lower.startswith("api rate limit exceeded")
    remaining = _int(headers.get("x-ratelimit-remaining"))
    reset = _int(headers.get("x-ratelimit-reset"))
    retry_after = _retry_after(headers.get("retry-after"), now)
    if retry_after is not None:
        kind: RateLimitKind = "primary" if remaining == 0 and not secondary_msg else "secondary"
        return RateLimited(now + timedelta(seconds=retry_after), kind, status=status, message=message)
    if remaining == 0:
        resume = datetime.fromtimestamp(reset, UTC) if reset is not None else now + timedelta(seconds=60)
        resume = max(resume, now + timedelta(seconds=1))
        return RateLimited(
            resume, "secondary" if secondary_msg else "primary", status=status, message=message
        )
    if secondary_msg or status == 429:
        wait = min(SECONDARY_MAX_WAIT_S, SECONDARY_MIN_WAIT_S * 2 ** max(0, secondary_strikes))
        return RateLimited(now + timedelta(seconds=wait), "secondary", status=status, message=message)
    if primary_msg:
        resume = datetime.fromtimestamp(reset, UTC) if reset is not None else now + timedelta(seconds=60)
        return RateLimited(resume, "primary", status=status, message=message)
    return None


# --------------------------------------------------------------------------------------------
# the client


class GitHubClient:
    """One credential's view of the GitHub REST API. Build with `GitHubApp` or `token_client`."""

    def __init__(
        self,
        api_url: str,
        auth: Auth,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        http: httpx.AsyncClient | None = None,
        max_retries: int = 3,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        etag_cache: EtagCache | None = None,
        rate_limits: RateLimitTracker | None = None,
        user_agent: str = "FlakeGuard",
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._origin = _origin(self.api_url)
        self._auth = auth
        self._owns_http = http is None
        self._http = http or _make_http(timeout, transport, user_agent)
        self._max_retries = max_retries
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._etags = etag_cache if etag_cache is not None else EtagCache()
        self.rate_limits = rate_limits if rate_limits is not None else RateLimitTracker()
        self._sleep = sleep
        self._clock = clock

    def __repr__(self) -> str:
        return f"GitHubClient({self.api_url!r}, {self._auth!r})"

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> GitHubClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- rate-limit state ----------------------------------------------------------------------

    @property
    def rate_limit(self) -> RateLimitInfo | None:
        """The latest known `core` limits of this credential (None before the first response)."""
        return self.rate_limits.core

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def ensure_budget(self, reserve: int) -> None:
        """Raises `RateLimited(kind="reserve")` when the known remaining budget is below `reserve`:
        low-priority work calls this first so that critical work keeps the last `reserve` calls."""
        info = self.rate_limits.core
        if info is not None and info.remaining < reserve and info.reset_at > self._now():
            raise RateLimited(
                info.reset_at, "reserve", message=f"remaining {info.remaining} < reserve {reserve}"
            )

    def _preflight(self, endpoint: str) -> None:
        now = self._now()
        rl = self.rate_limits
        if rl.blocked_until is not None:
            if now < rl.blocked_until:
                raise RateLimited(
                    rl.blocked_until,
                    rl.blocked_kind,
                    endpoint=endpoint,
                    message="rate limited (known, no request sent)",
                )
            rl.blocked_until = None
        info = rl.core
        if info is not None and info.remaining <= 0 and now < info.reset_at:
            raise RateLimited(
                info.reset_at,
                "primary",
                endpoint=endpoint,
                message="primary rate limit exhausted (known, no request sent)",
            )

    def _record(self, endpoint: str, status: str, started: float, resp: httpx.Response | None) -> None:
        GITHUB_API_CALLS.labels(endpoint=endpoint, status=status).inc()
        GITHUB_API_DURATION.labels(endpoint=endpoint).observe(time.monotonic() - started)
        if resp is None:
            return
        h = resp.headers
        remaining = _int(h.get("x-ratelimit-remaining"))
        reset = _int(h.get("x-ratelimit-reset"))
        if remaining is None or reset is None:
            return
        resource = h.get("x-ratelimit-resource", "core")
        if resource not in {"core", "search", "graphql", "code_search", "integration_manifest"}:
            resource = "other"
        limit = _int(h.get("x-ratelimit-limit")) or 0
        used = _int(h.get("x-ratelimit-used")) or max(0, limit - remaining)
        self.rate_limits.resources[resource] = RateLimitInfo(
            resource, limit, remaining, used, datetime.fromtimestamp(reset, UTC)
        )
        GITHUB_RATE_LIMIT_REMAINING.labels(resource=resource).set(remaining)

    async def _backoff(self, attempt: int) -> None:
        cap = min(self._backoff_max, self._backoff_base * 2 ** (attempt - 1))
        await self._sleep(random.uniform(cap / 2, cap))

    # -- the request core ----------------------------------------------------------------------

    def _url(self, template: str, **params: object) -> str:
        return self.api_url + template.format(**{k: quote(str(v), safe="") for k, v in params.items()})

    async def _call(
        self,
        method: str,
        endpoint: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        use_etag: bool = False,
        ok: tuple[int, ...] = (),
        idempotent: bool | None = None,
    ) -> _Result:
        if _origin(url) != self._origin:
            raise GitHubError(None, "refusing to send credentials to another origin", endpoint)
        idem = method in ("GET", "HEAD") if idempotent is None else idempotent
        cache_key = (self._auth.cache_key, str(httpx.URL(url, params=params)))
        refreshed = False
        attempt = 0
        while True:
            self._preflight(endpoint)
            auth_value = await self._auth.authorization()
            headers = {
                "authorization": auth_value,
                "accept": "application/vnd.github+json",
                "x-github-api-version": API_VERSION,
            }
            cached = self._etags.get(cache_key) if use_etag else None
            if cached is not None:
                headers["if-none-match"] = cached[0]
            started = time.monotonic()
            try:
                resp = await self._http.request(method, url, params=params, json=json, headers=headers)
                await resp.aread()
            except httpx.TransportError as e:
                self._record(endpoint, "error", started, None)
                before_send = isinstance(e, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
                if (idem or before_send) and attempt < self._max_retries:
                    attempt += 1
                    await self._backoff(attempt)
                    continue
                raise TransientGitHubError(
                    None, f"{type(e).__name__} after {attempt + 1} tries", endpoint
                ) from None
            status = resp.status_code
            self._record(endpoint, str(status), started, resp)
            if status == 304 and cached is not None:
                self.rate_limits.secondary_strikes = 0
                return _Result(200, _loads(cached[1]), resp.headers, cached[2], not_modified=True)
            if 200 <= status < 300 or status in ok:
                self.rate_limits.secondary_strikes = 0
                data = _loads(resp.content) if resp.content and status != 302 else None
                link = resp.headers.get("link")
                etag = resp.headers.get("etag")
                if use_etag and etag and status == 200:
                    self._etags.put(cache_key, etag, resp.content, link)
                return _Result(status, data, resp.headers, link)
            message = _message(resp)
            if status == 401 and not refreshed and self._auth.invalidate(auth_value):
                refreshed = True
                continue
            if status in (403, 429):
                limited = classify_rate_limit(
                    status, resp.headers, message, self._now(), self.rate_limits.secondary_strikes
                )
                if limited is not None:
                    limited.endpoint = endpoint
                    if limited.kind == "secondary" and resp.headers.get("retry-after") is None:
                        self.rate_limits.secondary_strikes += 1
                    self.rate_limits.blocked_until = limited.resume_at
                    self.rate_limits.blocked_kind = limited.kind
                    raise limited
            if status >= 500 and idem and attempt < self._max_retries:
                attempt += 1
                await self._backoff(attempt)
                continue
            raise _error(status, message, endpoint)

    async def _get(
        self, endpoint: str, url: str, params: Mapping[str, Any] | None = None, *, use_etag: bool = True
    ) -> Any:
        return (await self._call("GET", endpoint, url, params=params, use_etag=use_etag)).data

    async def _paginate(
        self,
        endpoint: str,
        url: str,
        params: Mapping[str, Any] | None,
        key: str | None,
        *,
        use_etag: bool = True,
        max_pages: int | None = None,
    ) -> list[Any]:
        items: list[Any] = []
        next_url: str | None = url
        next_params: dict[str, Any] | None = {**(params or {}), "per_page": PER_PAGE}
        pages = 0
        while next_url is not None:
            res = await self._call("GET", endpoint, next_url, params=next_params, use_etag=use_etag)
            page = res.data[key] if key is not None else res.data
            items.extend(page)
            pages += 1
            next_url = _next_link(res.link)
            next_params = None
            if max_pages is not None and pages >= max_pages:
                break
        return items

    # -- App endpoints (JWT) -----------------------------------------------------------------------

    async def create_installation_token(self, installation_id: int) -> InstallationToken:
        res = await self._call(
            "POST",
            EP_ACCESS_TOKENS,
            self._url(EP_ACCESS_TOKENS, installation_id=installation_id),
            idempotent=True,
        )
        return InstallationToken(str(res.data["token"]), parse_expires_at(str(res.data["expires_at"])))

    async def list_installations(self) -> list[dict[str, Any]]:
        return await self._paginate(EP_APP_INSTALLATIONS, self._url(EP_APP_INSTALLATIONS), None, None)

    async def get_repo_installation(self, owner: str, repo: str) -> dict[str, Any]:
        data: dict[str, Any] = await self._get(
            EP_REPO_INSTALLATION, self._url(EP_REPO_INSTALLATION, owner=owner, repo=repo)
        )
        return data

    # -- installation endpoints ----------------------------------------------------------------

    async def list_installation_repositories(self) -> list[dict[str, Any]]:
        """Repositories this installation token can see (`GET /installation/repositories`)."""
        return await self._paginate(
            EP_INSTALLATION_REPOS, self._url(EP_INSTALLATION_REPOS), None, "repositories"
        )

    async def get_rate_limit(self) -> dict[str, Any]:
        data: dict[str, Any] = await self._get(EP_RATE_LIMIT, self._url(EP_RATE_LIMIT), use_etag=False)
        return data

    async def list_workflow_runs(
        self,
        owner: str,
        repo: str,
        *,
        status: str | None = None,
        created: str | None = None,
        branch: str | None = None,
        event: str | None = None,
        head_sha: str | None = None,
        per_page: int = PER_PAGE,
        max_pages: int | None = 10,
    ) -> RunListing:
        """Workflow runs, newest first, all pages up to `max_pages`. `created` uses GitHub's search
        syntax (`>=2024-01-01T00:00:00Z`, `A..B`). ETag-cached.

        GitHub answers a filtered listing with at most 1,000 runs, whatever `total_count` says:
        `RunListing.complete` is False when the listing holds fewer runs than match."""
        params: dict[str, Any] = {"per_page": min(PER_PAGE, max(1, per_page))}
        for k, v in (
            ("status", status),
            ("created", created),
            ("branch", branch),
            ("event", event),
            ("head_sha", head_sha),
        ):
            if v is not None:
                params[k] = v
        url = self._url(EP_RUNS, owner=owner, repo=repo)
        items: list[dict[str, Any]] = []
        total = 0
        next_url: str | None = url
        next_params: dict[str, Any] | None = params
        pages = 0
        while next_url is not None:
            res = await self._call("GET", EP_RUNS, next_url, params=next_params, use_etag=True)
            items.extend(res.data["workflow_runs"])
            total = max(total, int(res.data.get("total_count") or 0))
            pages += 1
            next_url, next_params = _next_link(res.link), None
            if max_pages is not None and pages >= max_pages:
                break
        filtered = any(v is not None for v in (status, created, branch, event, head_sha))
        complete = (
            next_url is None
            and len(items) >= total
            and not (filtered and len(items) >= RUN_SEARCH_RESULT_CAP)
        )
        return RunListing(items, total, complete)

    async def get_workflow_run(
        self, owner: str, repo: str, run_id: int, attempt: int | None = None
    ) -> dict[str, Any]:
        if attempt is None:
            url = self._url(EP_RUN, owner=owner, repo=repo, run_id=run_id)
            data: dict[str, Any] = await self._get(EP_RUN, url, {"exclude_pull_requests": "true"})
        else:
            url = self._url(EP_RUN_ATTEMPT, owner=owner, repo=repo, run_id=run_id, attempt_number=attempt)
            data = await self._get(EP_RUN_ATTEMPT, url, {"exclude_pull_requests": "true"})
        return data

    async def list_run_artifacts(
        self, owner: str, repo: str, run_id: int, *, name: str | None = None
    ) -> list[dict[str, Any]]:
        url = self._url(EP_RUN_ARTIFACTS, owner=owner, repo=repo, run_id=run_id)
        return await self._paginate(EP_RUN_ARTIFACTS, url, {"name": name} if name else None, "artifacts")

    async def get_artifact(self, owner: str, repo: str, artifact_id: int) -> dict[str, Any]:
        url = self._url(EP_ARTIFACT, owner=owner, repo=repo, artifact_id=artifact_id)
        data: dict[str, Any] = await self._get(EP_ARTIFACT, url)
        return data

    async def download_artifact(
        self,
        owner: str,
        repo: str,
        artifact_id: int,
        *,
        max_bytes: int,
        expected_size: int | None = None,
        expected_digest: str | None = None,
    ) -> bytes:
        """The artifact ZIP's bytes (see `download_artifact_to`)."""
        buf = io.BytesIO()
        await self.download_artifact_to(
            owner,
            repo,
            artifact_id,
            buf,
            max_bytes=max_bytes,
            expected_size=expected_size,
            expected_digest=expected_digest,
        )
        return buf.getvalue()

    async def download_artifact_to(
        self,
        owner: str,
        repo: str,
        artifact_id: int,
        dest: IO[bytes],
        *,
        max_bytes: int,
        expected_size: int | None = None,
        expected_digest: str | None = None,
    ) -> int:
        """Streams the artifact ZIP into `dest` (a seekable binary file); returns the byte count.

        Asks the API for the signed URL (302), then fetches that URL *without* Authorization (another
        host). Raises `ArtifactExpired` on 410, `ArtifactTooLarge` as soon as the size (known
        `expected_size`, Content-Length, or bytes streamed) passes `max_bytes`. When `expected_size` /
        `expected_digest` (the artifact's `size_in_bytes` / `digest`) are given, a download that does
        not match them is retried and finally raises `TransientGitHubError`.
        """
        endpoint = EP_ARTIFACT_ZIP
        if expected_size is not None and expected_size > max_bytes:
            raise ArtifactTooLarge(endpoint, max_bytes, expected_size)
        start = dest.tell()
        url = self._url(
            EP_ARTIFACT_ZIP, owner=owner, repo=repo, artifact_id=artifact_id, archive_format="zip"
        )
        attempt = 0
        while True:
            try:
                res = await self._call("GET", endpoint, url, ok=(302,))
            except GitHubError as e:
                if e.status == 410:
                    raise ArtifactExpired(410, e.message, endpoint) from None
                raise
            location = res.headers.get("location")
            if res.status != 302 or not location:
                raise GitHubError(res.status, "artifact download did not redirect", endpoint)
            dest.seek(start)
            dest.truncate()
            try:
                return await self._fetch_blob(location, dest, max_bytes, expected_size, expected_digest)
            except _RetryBlob as e:
                if attempt >= self._max_retries:
                    raise TransientGitHubError(e.status, e.reason, EP_ARTIFACT_BLOB) from None
                attempt += 1
                await self._backoff(attempt)

    async def _fetch_blob(
        self,
        location: str,
        dest: IO[bytes],
        max_bytes: int,
        expected_size: int | None,
        expected_digest: str | None,
    ) -> int:
        started = time.monotonic()
        digest = hashlib.sha256()
        total = 0
        try:
            # A fresh request with no Authorization: the signed URL is the credential. Redirects beyond
            # it are followed by httpx, which would strip auth on other origins anyway.
            async with self._http.stream(
                "GET", location, headers={"accept": "*/*"}, follow_redirects=True
            ) as resp:
                self._record(EP_ARTIFACT_BLOB, str(resp.status_code), started, None)
                if resp.status_code != 200:
                    raise _RetryBlob(resp.status_code, f"blob host answered {resp.status_code}")
                declared = _int(resp.headers.get("content-length"))
                if declared is not None and declared > max_bytes:
                    raise ArtifactTooLarge(EP_ARTIFACT_BLOB, max_bytes, declared)
                async for chunk in resp.aiter_bytes(64 * 1024):
                    total += len(chunk)
                    if total > max_bytes:
                        raise ArtifactTooLarge(EP_ARTIFACT_BLOB, max_bytes, None)
                    digest.update(chunk)
                    dest.write(chunk)
        except httpx.TransportError as e:
            self._record(EP_ARTIFACT_BLOB, "error", started, None)
            raise _RetryBlob(None, f"{type(e).__name__} while downloading") from None
        if expected_size is not None and total != expected_size:
            raise _RetryBlob(None, f"downloaded {total} bytes, expected {expected_size}")
        if (
            expected_digest
            and expected_digest.startswith("sha256:")
            and digest.hexdigest() != expected_digest.removeprefix("sha256:")
        ):
            raise _RetryBlob(None, "downloaded bytes do not match the artifact digest")
        return total

    # -- check runs ---------------------------------------------------------------------------------

    async def create_check_run(self, owner: str, repo: str, body: Mapping[str, Any]) -> dict[str, Any]:
        res = await self._call(
            "POST", EP_CHECK_RUNS, self._url(EP_CHECK_RUNS, owner=owner, repo=repo), json=dict(body)
        )
        data: dict[str, Any] = res.data
        return data

    async def update_check_run(
        self, owner: str, repo: str, check_run_id: int, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        output = body.get("output")
        appends = isinstance(output, Mapping) and bool(output.get("annotations"))
        url = self._url(EP_CHECK_RUN, owner=owner, repo=repo, check_run_id=check_run_id)
        res = await self._call("PATCH", EP_CHECK_RUN, url, json=dict(body), idempotent=not appends)
        data: dict[str, Any] = res.data
        return data

    async def list_check_runs_for_ref(
        self, owner: str, repo: str, ref: str, check_name: str
    ) -> list[dict[str, Any]]:
        """Every check run named `check_name` on the commit `ref` (`checks/list-for-ref`), newest first."""
        url = self._url(EP_CHECK_RUNS_FOR_REF, owner=owner, repo=repo, ref=ref)
        params = {"check_name": check_name, "filter": "all"}
        runs = await self._paginate(EP_CHECK_RUNS_FOR_REF, url, params, "check_runs", use_etag=False)
        return sorted(runs, key=lambda run: int(run["id"]), reverse=True)

    async def get_check_run(self, owner: str, repo: str, check_run_id: int) -> dict[str, Any]:
        url = self._url(EP_CHECK_RUN, owner=owner, repo=repo, check_run_id=check_run_id)
        data: dict[str, Any] = await self._get(EP_CHECK_RUN, url, use_etag=False)
        return data

    async def list_check_run_annotations(
        self, owner: str, repo: str, check_run_id: int
    ) -> list[dict[str, Any]]:
        url = self._url(EP_CHECK_RUN_ANNOTATIONS, owner=owner, repo=repo, check_run_id=check_run_id)
        return await self._paginate(EP_CHECK_RUN_ANNOTATIONS, url, None, None, use_etag=False)


class _RetryBlob(Exception):
    def __init__(self, status: int | None, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _loads(content: bytes) -> Any:
    import json

    return json.loads(content) if content else None


def _error(status: int, message: str, endpoint: str) -> GitHubError:
    if status == 404:
        return NotFound(status, message, endpoint)
    if status == 401:
        return Unauthorized(status, message, endpoint)
    if status >= 500:
        return TransientGitHubError(status, message, endpoint)
    return GitHubError(status, message, endpoint)


def _make_http(
    timeout: httpx.Timeout | float, transport: httpx.AsyncBaseTransport | None, user_agent: str
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=timeout,
        transport=transport,
        follow_redirects=False,
        headers={"user-agent": user_agent},
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
    )


# --------------------------------------------------------------------------------------------
# factories


class GitHubApp:
    """A GitHub App: makes clients for the app (JWT) and its installations, sharing one connection pool,
    one ETag cache, cached installation tokens and per-installation rate-limit state."""

    def __init__(
        self,
        api_url: str,
        app_id: int | str,
        private_key_pem: str,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        max_retries: int = 3,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        user_agent: str = "FlakeGuard",
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.auth = AppAuth(app_id, load_private_key(private_key_pem), clock=clock)
        self._http = _make_http(timeout, transport, user_agent)
        self._etags = EtagCache()
        self._clock = clock
        self._client_kw: dict[str, Any] = dict(
            http=self._http,
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            etag_cache=self._etags,
            sleep=sleep,
            clock=clock,
        )
        self._app_client = GitHubClient(
            self.api_url, self.auth, rate_limits=RateLimitTracker(), **self._client_kw
        )
        self._installations: dict[int, tuple[InstallationAuth, RateLimitTracker]] = {}

    def __repr__(self) -> str:
        return f"GitHubApp({self.api_url!r}, app_id={self.auth.app_id})"

    def app_client(self) -> GitHubClient:
        """Calls as the App itself (JWT): installations, repository installation, token minting."""
        return self._app_client

    def installation_client(self, installation_id: int) -> GitHubClient:
        """Calls as one installation; its token is minted on first use and cached across clients."""
        entry = self._installations.get(installation_id)
        if entry is None:
            auth = InstallationAuth(
                installation_id, self._app_client.create_installation_token, clock=self._clock
            )
            entry = (auth, RateLimitTracker())
            self._installations[installation_id] = entry
        return GitHubClient(self.api_url, entry[0], rate_limits=entry[1], **self._client_kw)

    async def list_installation_repositories(self, installation_id: int) -> list[dict[str, Any]]:
        """Repositories of one installation (with that installation's token)."""
        return await self.installation_client(installation_id).list_installation_repositories()

    def rate_limit(self, installation_id: int) -> RateLimitInfo | None:
        entry = self._installations.get(installation_id)
        return entry[1].core if entry else None

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> GitHubApp:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def token_client(api_url: str, token: str, **kwargs: Any) -> GitHubClient:
    """A client on a plain token (`GITHUB_TOKEN` / PAT) for a single repository without an App."""
    return GitHubClient(api_url, TokenAuth(token), **kwargs)
