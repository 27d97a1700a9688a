"""One API request, from its raw parts to the bytes of the answer, in GitHub's order of checks:

1. no `User-Agent` → 403 from the edge (plain text, no rate-limit headers);
2. an `Authorization` that does not resolve → 401 `Bad credentials`, no rate-limit headers, free;
3. an unknown `X-GitHub-Api-Version` → 400;
4. unknown path or method → 404; no credential where one is needed → 401 (anonymous budget);
5. primary budget spent → 403 `API rate limit exceeded`;
6. body not a JSON object → 400; against the operation's schema → 422;
7. the handler; `If-None-Match` on an unchanged GET → 304.

Every answer from step 3 on spends one call of the caller's budget (anonymous: 60 an hour) and
carries its `x-ratelimit-*` headers — errors too — except a 304 and `GET /rate_limit`, which are
free (API-NOTES §5, §6; the order of 2 and 3 and the headers of 2 as observed on api.github.com).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from flakeguard.testing.fake_github.auth import Caller, Credentials, bad_credentials
from flakeguard.testing.fake_github.bodies import parse_json_object, validate_body
from flakeguard.testing.fake_github.budgets import ANONYMOUS, Budget, Budgets
from flakeguard.testing.fake_github.handlers import ROUTES, Context, Route
from flakeguard.testing.fake_github.request import ApiError, ApiRequest, Reply, not_found

API_VERSIONS = ("2022-11-28", "2026-03-10")  # the date versions GitHub serves (API-NOTES §0)
DEFAULT_API_VERSION = "2022-11-28"
RATE_LIMIT_PATH = "/rate_limit"
USER_AGENT_REFUSAL = (
    b"Request forbidden by administrative rules. Please make sure your request has a User-Agent header "
    b"(https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). "
    b"Check https://developer.github.com for other possible causes."
)


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    template: str | None  # the operation that answered; None for the edge's refusals and unknown paths


def _match(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    for route in ROUTES:
        m = route.pattern.match(path)
        if m is not None and route.method == method:
            return route, m.groupdict()
    return None


def template_for(method: str, path: str) -> str | None:
    found = _match(method, path)
    return found[0].template if found else None


class GitHubApi:
    def __init__(self, ctx: Context, credentials: Credentials, budgets: Budgets) -> None:
        self.ctx = ctx
        self.credentials = credentials
        self.budgets = budgets

    def budget_for(self, headers: Mapping[str, str]) -> Budget | None:
        """The budget a request would spend (None when its credential does not resolve)."""
        try:
            caller = self._caller(headers)
        except ApiError:
            return None
        return self.budgets.of(caller.identity if caller else ANONYMOUS)

    def handle(self, method: str, target: str, headers: Mapping[str, str], raw_body: bytes) -> Response:
        split = urlsplit(target)
        path, query = split.path, dict(parse_qsl(split.query, keep_blank_values=True))
        version = headers.get("x-github-api-version", DEFAULT_API_VERSION)
        base = {
            "content-type": "application/json; charset=utf-8",
            "x-github-media-type": "github.v3; format=json",
            "x-github-api-version-selected": version if version in API_VERSIONS else DEFAULT_API_VERSION,
            "x-github-request-id": secrets.token_hex(8).upper(),
        }
        if not headers.get("user-agent", "").strip():
            return Response(403, {"content-type": "text/plain; charset=utf-8"}, USER_AGENT_REFUSAL, None)
        found = _match(method, path)
        template = found[0].template if found else None
        try:
            caller = self._caller(headers)
        except ApiError as e:
            return self._error(e, base, None, template)
        budget = self.budgets.of(caller.identity if caller else ANONYMOUS)
        try:
            reply = self._answer(found, path, query, headers, raw_body, caller, budget)
        except ApiError as e:
            return self._error(e, base, budget, template)
        return self._reply(reply, base, budget, headers, template)

    def _caller(self, headers: Mapping[str, str]) -> Caller | None:
        authorization = headers.get("authorization", "")
        return self.credentials.resolve(authorization) if authorization else None

    def _answer(
        self,
        found: tuple[Route, dict[str, str]] | None,
        path: str,
        query: dict[str, str],
        headers: Mapping[str, str],
        raw_body: bytes,
        caller: Caller | None,
        budget: Budget,
    ) -> Reply:
        version = headers.get("x-github-api-version")
        if version is not None and version not in API_VERSIONS:
            raise ApiError(400, f"'{version[:40]}' is not a supported version of the REST API.")
        if found is None:
            raise not_found()  # GitHub answers 404 to unknown methods on known paths too
        route, params = found
        if caller is None:
            raise ApiError(401, "Requires authentication")
        if caller.kind != route.auth:
            raise bad_credentials("A JSON web token could not be decoded")
        if budget.remaining <= 0 and path != RATE_LIMIT_PATH:
            who = f"installation ID {caller.token.installation_id}" if caller.token else "this app"
            raise ApiError(
                403,
                f"API rate limit exceeded for {who}. If you reach out to GitHub Support for help, "
                "please include the request ID.",
                budget.headers(),
                charge=False,
            )
        body = parse_json_object(raw_body)
        validate_body(route.method, route.template, body, resource=route.resource)
        request = ApiRequest(
            route.method, path, route.template, params, query, headers, body, caller.token, budget
        )
        return route.handle(self.ctx, request)

    def _error(
        self, e: ApiError, base: dict[str, str], budget: Budget | None, template: str | None
    ) -> Response:
        headers = dict(base)
        if budget is not None and e.charge:
            self.budgets.charge(budget)
            headers.update(budget.headers())
        headers.update(e.headers)
        return Response(e.status, headers, json.dumps(e.body()).encode(), template)

    def _reply(
        self,
        reply: Reply,
        base: dict[str, str],
        budget: Budget,
        request_headers: Mapping[str, str],
        template: str | None,
    ) -> Response:
        headers = {**base, **reply.headers}
        payload = b"" if reply.body is None else json.dumps(reply.body).encode()
        if reply.etag:
            etag = 'W/"' + hashlib.sha256(payload).hexdigest()[:40] + '"'
            headers["etag"] = etag
            wanted = request_headers.get("if-none-match", "")
            if etag in [t.strip() for t in wanted.split(",")] or wanted.strip() == "*":
                headers.pop("content-type", None)
                return Response(304, {**headers, **budget.headers()}, b"", template)
        if template != RATE_LIMIT_PATH:
            self.budgets.charge(budget)
        headers.update(budget.headers())
        if reply.status == 302:
            headers.pop("content-type", None)
        return Response(reply.status, headers, payload, template)
