"""The dashboard's routes: overview, repository, test, run; login and logout; quarantine actions.

Every page is rendered on the server (Jinja2); htmx swaps parts of a page (the filtered test table,
the quarantine panel) and every form also works without JavaScript (a full page load and a 303).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from flakeguard.analysis.score import (
    WEIGHT_BRANCH_DIVERSITY,
    WEIGHT_FAILURE_RATE,
    WEIGHT_INCONSISTENCY,
    WEIGHT_RECENCY,
)
from flakeguard.pipeline.checks import find_run
from flakeguard.pipeline.quarantine import quarantine_history, quarantine_tests, release_tests
from flakeguard.pipeline.report import STATUS_ORDER
from flakeguard.pipeline.scoring import analysis_config
from flakeguard.services import Services
from flakeguard.store.models import Repository
from flakeguard.store.repository import get_repository
from flakeguard.web import queries
from flakeguard.web.evidence import describe_evidence, reason_of
from flakeguard.web.render import render
from flakeguard.web.security import CSRF_FIELD, WebSecurity
from flakeguard.web.signatures import group_failures
from flakeguard.web.trend import flaky_counts, trend_points
from flakeguard.web.views import PAGE_SIZES, Page, TestFilter, group_by_commit

router = APIRouter(include_in_schema=False)

STRIP_LENGTH = 30  # executions in each row's history strip
RECENT_RUNS = 12
HISTORY_LIMIT = 2000  # executions on a test page (the newest); ?limit= up to MAX_HISTORY
MAX_HISTORY = 20_000
TREND_DAYS, TREND_STEP_DAYS = 30, 2
MAX_REASON = 2000


class LoginRequired(Exception):
    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class PageNotFound(Exception):
    pass


def security_of(request: Request) -> WebSecurity:
    security: WebSecurity = request.app.state.web_security
    return security


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _here(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def _require_reader(request: Request) -> None:
    if not security_of(request).may_read(request):
        raise LoginRequired(_here(request))


def _safe_next(value: str | None) -> str:
    """Only a path on this site (no scheme, no host, no `//evil`), else the overview."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


async def _repository(request: Request, owner: str, repo: str) -> Repository:
    async with _services(request).sessions() as session:
        repository = await get_repository(session, owner, repo)
    if repository is None:
        raise PageNotFound(f"No repository {owner}/{repo} here.")
    return repository


def github_web_url(api_url: str) -> str:
    """Where GitHub's pages are, from its API URL: api.github.com -> github.com, and GitHub
    Enterprise Server's https://HOST/api/v3 -> https://HOST; anything else (a fake) -> github.com."""
    base = api_url.rstrip("/")
    if base.endswith("/api/v3"):
        return base.removesuffix("/api/v3")
    return "https://github.com"


# ------------------------------------------------------------------------------------ overview


@dataclass(frozen=True, slots=True)
class Figures:
    """What a repository's analysis adds up to over time: the replayed flaky trend and the CI time lost.

    Both read a month of executions, so they are computed once per process and kept until the
    repository's analysis changes (every analysed run changes it) or the hour turns."""

    trend: list[tuple[datetime, int]]
    time_lost: queries.TimeLost

    @property
    def trend_values(self) -> list[int]:
        return [v for _, v in self.trend]


async def repository_figures(request: Request, repository: Repository, now: datetime) -> Figures:
    services = _services(request)
    cache: dict[int, tuple[Any, Figures]] = request.app.state.web_figures
    config = analysis_config(services.settings, repository)
    async with services.sessions() as session:
        stamp = (await queries.analysis_stamp(session, repository.id), now.strftime("%Y-%m-%d %H"))
        cached = cache.get(repository.id)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        lost = (await queries.time_lost(session, [repository.id], now)).get(repository.id, queries.TimeLost())
        since = now - timedelta(days=TREND_DAYS) - config.lookback
        histories = await queries.failing_histories(session, repository.id, since)
    points = trend_points(now, days=TREND_DAYS, step_days=TREND_STEP_DAYS)
    # CPU-bound: off the event loop, which also serves the workers of this process.
    counts = await asyncio.to_thread(flaky_counts, histories, config, points)
    figures = Figures(list(zip(points, counts, strict=True)), lost)
    cache[repository.id] = (stamp, figures)
    return figures


@router.get("/")
async def overview(request: Request) -> Response:
    _require_reader(request)
    now = datetime.now(UTC)
    async with _services(request).sessions() as session:
        repos = await queries.repositories(session)
        summaries = await queries.repository_summaries(session, repos)
        attention = await queries.needs_attention(session)
    figures = {r.id: await repository_figures(request, r, now) for r in repos}
    return render(
        request,
        security_of(request),
        "overview.html",
        {"summaries": summaries, "figures": figures, "attention": attention},
    )


# --------------------------------------------------------------------------------------- login


@router.get("/login")
async def login_form(request: Request) -> Response:
    return render(
        request,
        security_of(request),
        "login.html",
        {"next": _safe_next(request.query_params.get("next")), "error": None},
        status=200 if security_of(request).login_possible else 503,
    )


@router.post("/login")
async def login(request: Request) -> Response:
    security = security_of(request)
    form = await request.form()
    next_path = _safe_next(str(form.get("next") or ""))
    if not security.csrf_valid(request, str(form.get(CSRF_FIELD) or "")):
        return render(
            request,
            security,
            "login.html",
            {"next": next_path, "error": "The form had expired; please try again."},
            status=403,
        )
    if not security.token_matches(str(form.get("token") or "")):
        return render(
            request,
            security,
            "login.html",
            {"next": next_path, "error": "That token is not right."},
            status=401,
        )
    response = RedirectResponse(next_path, status_code=303)
    security.start_session(request, response, str(form.get("name") or ""))
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    security = security_of(request)
    form = await request.form()
    if not security.csrf_valid(request, str(form.get(CSRF_FIELD) or "")):
        return render(request, security, "error.html", {"title": "Forbidden", "message": "Bad form."}, 403)
    response = RedirectResponse("/login" if not security.public else "/", status_code=303)
    security.end_session(request, response)
    return response


# ---------------------------------------------------------------------------------- repository


async def _report_page(session: AsyncSession, repository_id: int, f: TestFilter) -> Page:
    def fetch(page: int) -> Any:
        return queries.report_page(
            session,
            repository_id,
            status=f.status or None,
            quarantined=None if not f.quarantine else f.quarantine == "yes",
            name=f.q,
            sort=f.sort,
            descending=f.descending,
            offset=(page - 1) * f.per_page,
            limit=f.per_page,
        )

    found = await fetch(f.page)
    page = Page.of(found.rows, found.total, f)
    if page.page != f.page:  # past the last page: show the last one
        page = Page.of((await fetch(page.page)).rows, found.total, f)
    return page


@router.get("/repos/{owner}/{repo}")
async def repository_page(request: Request, owner: str, repo: str) -> Response:
    _require_reader(request)
    repository = await _repository(request, owner, repo)
    f = TestFilter.parse(request.query_params)
    now = datetime.now(UTC)
    async with _services(request).sessions() as session:
        page = await _report_page(session, repository.id, f)
        strips = await queries.recent_outcomes(session, [r.test_case_id for r in page.rows], STRIP_LENGTH)
        context: dict[str, Any] = {
            "repository": repository,
            "filter": f,
            "page": page,
            "strips": strips,
            "statuses": list(STATUS_ORDER),
            "page_sizes": PAGE_SIZES,
        }
        if _is_htmx(request) and request.headers.get("hx-target") == "tests":
            context["sort_state_oob"] = True  # the filter form keeps the sort the table now has
            return render(request, security_of(request), "partials/tests.html", context)
        (summary,) = await queries.repository_summaries(session, [repository])
        runs = await queries.recent_runs(session, repository.id, RECENT_RUNS)
    context.update(summary=summary, runs=runs, figures=await repository_figures(request, repository, now))
    return render(request, security_of(request), "repository.html", context)


# ---------------------------------------------------------------------------------------- test


COMPONENTS = (
    ("Failure rate", "failure_rate", WEIGHT_FAILURE_RATE, "failures ÷ executions that passed or failed"),
    ("Inconsistency", "inconsistency", WEIGHT_INCONSISTENCY, "how often the outcome flips, newest first"),
    ("Recency", "recency", WEIGHT_RECENCY, "failures among the last 10 executions, newest weigh most"),
    ("Branch diversity", "branch_diversity", WEIGHT_BRANCH_DIVERSITY, "branches with a failure ÷ branches"),
)


async def _test_context(request: Request, repository: Repository, test_id: int) -> dict[str, Any]:
    limit = min(max(int(request.query_params.get("limit", HISTORY_LIMIT) or HISTORY_LIMIT), 1), MAX_HISTORY)
    async with _services(request).sessions() as session:
        detail = await queries.test_detail(session, repository.id, test_id)
        if detail is None:
            raise PageNotFound(f"No test {test_id} in {repository.full_name}.")
        executions = await queries.test_executions(session, test_id, limit)
        total = (
            await queries.execution_count(session, test_id) if len(executions) >= limit else len(executions)
        )
        history = await quarantine_history(session, repository.id, test_case_ids=[test_id], limit=200)
    result = detail.result
    return {
        "repository": repository,
        "detail": detail,
        "case": detail.case,
        "result": result,
        "reason": reason_of(result.evidence) if result is not None else "not analysed yet",
        "evidence": describe_evidence(result.evidence) if result is not None else [],
        "components": COMPONENTS,
        "groups": group_by_commit(executions),
        "run_url": lambda run_id, attempt: (
            f"/repos/{repository.owner}/{repository.name}/runs/{run_id}/attempts/{attempt}"
        ),
        "shown": len(executions),
        "total": total,
        "limit": limit,
        "signatures": group_failures(
            (e.message, e.started_at) for e in executions if e.outcome in queries.FAILED
        ),
        "history": history,
    }


@router.get("/repos/{owner}/{repo}/tests/{test_id}")
async def test_page(request: Request, owner: str, repo: str, test_id: int) -> Response:
    _require_reader(request)
    repository = await _repository(request, owner, repo)
    context = await _test_context(request, repository, test_id)
    context["changed"] = request.query_params.get("changed")
    return render(request, security_of(request), "test.html", context)


@router.post("/repos/{owner}/{repo}/tests/{test_id}/quarantine")
async def change_quarantine(request: Request, owner: str, repo: str, test_id: int) -> Response:
    """Quarantine or release one test by hand: the same change-and-history step as the API and CLI."""
    security = security_of(request)
    viewer = security.viewer(request)
    if viewer is None:
        raise LoginRequired(f"/repos/{owner}/{repo}/tests/{test_id}")
    form = await request.form()
    if not security.csrf_valid(request, str(form.get(CSRF_FIELD) or "")):
        return render(
            request,
            security,
            "error.html",
            {
                "title": "Forbidden",
                "message": "The form had expired or came from another site. Reload the page.",
            },
            status=403,
        )
    repository = await _repository(request, owner, repo)
    action = str(form.get("action") or "")
    reason = " ".join(str(form.get("reason") or "").split())[:MAX_REASON]
    error = None
    if action not in ("quarantine", "release"):
        error = "Choose quarantine or release."
    elif not reason:
        error = "Say why: the reason is kept in the quarantine history."
    changed = 0
    if error is None:
        change = release_tests if action == "release" else quarantine_tests
        async with _services(request).sessions.begin() as session:
            if await queries.test_detail(session, repository.id, test_id) is None:
                raise PageNotFound(f"No test {test_id} in {repository.full_name}.")
            changed = await change(session, repository.id, [test_id], reason=reason, actor=viewer.name)
    outcome = f"{action}d" if changed else "unchanged"
    if not _is_htmx(request):
        if error is not None:
            context = await _test_context(request, repository, test_id)
            context.update(changed=None, form_error=error)
            return render(request, security, "test.html", context, status=422)
        return RedirectResponse(
            f"/repos/{owner}/{repo}/tests/{test_id}?changed={outcome}#quarantine", status_code=303
        )
    context = await _test_context(request, repository, test_id)
    context.update(changed=None if error else outcome, form_error=error)
    # 200 even for a form error: htmx swaps only successful responses, and the message must show.
    return render(request, security, "partials/quarantine.html", context)


# ----------------------------------------------------------------------------------------- run


async def _run_page(request: Request, owner: str, repo: str, run_id: int, attempt: int | None) -> Response:
    _require_reader(request)
    repository = await _repository(request, owner, repo)
    async with _services(request).sessions() as session:
        run = await find_run(session, repository.id, run_id, attempt)
        if run is None:
            what = f"attempt {attempt} of run {run_id}" if attempt else f"run {run_id}"
            raise PageNotFound(f"No {what} of {repository.full_name} has been ingested.")
        detail = await queries.run_detail(session, repository.id, run)
    web = github_web_url(_services(request).settings.github_api_url)
    check_url = (
        f"{web}/{repository.owner}/{repository.name}/runs/{detail.check_run_id}"
        if detail.check_run_id is not None
        else None
    )
    run_url = (
        f"{web}/{repository.owner}/{repository.name}/actions/runs/{run.run_id}/attempts/{run.run_attempt}"
    )
    known = [f for f in detail.failures if f.known_flaky]
    new = [f for f in detail.failures if not f.known_flaky]
    return render(
        request,
        security_of(request),
        "run.html",
        {
            "repository": repository,
            "detail": detail,
            "run": detail.run,
            "known": known,
            "new": new,
            "check_url": check_url,
            "run_url": run_url,
        },
    )


@router.get("/repos/{owner}/{repo}/runs/{run_id}")
async def run_page(request: Request, owner: str, repo: str, run_id: int) -> Response:
    return await _run_page(request, owner, repo, run_id, None)


@router.get("/repos/{owner}/{repo}/runs/{run_id}/attempts/{attempt}")
async def run_attempt_page(request: Request, owner: str, repo: str, run_id: int, attempt: int) -> Response:
    return await _run_page(request, owner, repo, run_id, attempt)


# ------------------------------------------------------------------------------- error handling


async def on_login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    target = f"/login?next={_quote(exc.next_path)}"
    if _is_htmx(request):
        return Response(status_code=401, headers={"HX-Redirect": target})
    if request.method != "GET":
        return render(
            request,
            security_of(request),
            "error.html",
            {"title": "Log in first", "message": "Changing anything needs the API token.", "login": target},
            status=401,
        )
    return RedirectResponse(target, status_code=303)


async def on_page_not_found(request: Request, exc: Exception) -> Response:
    return render(
        request, security_of(request), "error.html", {"title": "Not found", "message": str(exc)}, 404
    )


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")
