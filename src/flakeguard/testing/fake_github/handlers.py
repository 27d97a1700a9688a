"""The endpoints the fake serves, as a table of routes; each handler takes the shared `Context`
and one `ApiRequest` and returns a `Reply` (or raises `ApiError`).

Authentication, budgets, body parsing and schema checks happen before a handler runs (`api.py`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flakeguard.testing.fake_github.auth import Credentials
from flakeguard.testing.fake_github.blobs import BlobHost
from flakeguard.testing.fake_github.checks import apply_body, check_rules, new_check_run
from flakeguard.testing.fake_github.render import PERMISSIONS, Renderer, iso
from flakeguard.testing.fake_github.request import ApiError, ApiRequest, Reply, not_found
from flakeguard.testing.fake_github.search import filter_runs
from flakeguard.testing.fake_github.state import Artifact, CheckRunRecord, Installation, Repo, Run, State


@dataclass(frozen=True)
class Context:
    """What handlers work with."""

    state: State
    render: Renderer
    credentials: Credentials
    blobs: BlobHost


Handler = Callable[[Context, ApiRequest], Reply]
Owned = TypeVar("Owned", Artifact, CheckRunRecord)


def compile_template(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$")


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    auth: str  # "jwt": the App's JWT; "token": an installation (or plain) token
    handle: Handler
    resource: str = "Request"  # named in validation errors
    pattern: re.Pattern[str] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pattern", compile_template(self.template))


# -- look-ups that answer 404 ------------------------------------------------------------------------


def _repo(ctx: Context, req: ApiRequest) -> Repo:
    """The request's repository, 404 when unknown or outside the token's installation."""
    repo = ctx.state.repository(req.params["owner"], req.params["repo"])
    token = req.token
    if repo is None or (token is not None and token.installation_id not in (None, repo.installation_id)):
        raise not_found()
    return repo


def _installation(ctx: Context, installation_id: int | None) -> Installation:
    inst = ctx.state.installation(installation_id) if installation_id is not None else None
    if inst is None:
        raise not_found()
    return inst


def _run(ctx: Context, req: ApiRequest) -> Run:
    _repo(ctx, req)
    run_id = req.int_param("run_id")
    run = ctx.state.run(req.params["owner"], req.params["repo"], run_id) if run_id is not None else None
    if run is None:
        raise not_found()
    return run


def _in_repo(ctx: Context, req: ApiRequest, param: str, find: Callable[[int], Owned | None]) -> Owned:
    """The record named by path parameter `param`, 404 unless it belongs to the request's repository."""
    _repo(ctx, req)
    ident = req.int_param(param)
    record = find(ident) if ident is not None else None
    if record is None or (record.owner, record.repo) != (req.params["owner"], req.params["repo"]):
        raise not_found()
    return record


def _artifact(ctx: Context, req: ApiRequest) -> Artifact:
    return _in_repo(ctx, req, "artifact_id", ctx.state.artifact)


def _check_run(ctx: Context, req: ApiRequest) -> CheckRunRecord:
    return _in_repo(ctx, req, "check_run_id", ctx.state.check_run)


def _listing(
    ctx: Context, req: ApiRequest, items: Sequence[Any], render: Callable[[Any], Any]
) -> tuple[list[Any], dict[str, str]]:
    chunk, link = ctx.render.page(req.path, req.query, items)
    with ctx.state.lock:
        return [render(item) for item in chunk], link


# -- the App (JWT) ----------------------------------------------------------------------------------


def get_app(ctx: Context, req: ApiRequest) -> Reply:
    return Reply(200, ctx.render.integration(), etag=True)


def list_installations(ctx: Context, req: ApiRequest) -> Reply:
    with ctx.state.lock:
        installations = sorted(ctx.state.installations.values(), key=lambda i: i.id)
    page, link = _listing(ctx, req, installations, ctx.render.installation)
    return Reply(200, page, link, etag=True)


def get_installation(ctx: Context, req: ApiRequest) -> Reply:
    inst = _installation(ctx, req.int_param("installation_id"))
    return Reply(200, ctx.render.installation(inst), etag=True)


def create_installation_token(ctx: Context, req: ApiRequest) -> Reply:
    inst = _installation(ctx, req.int_param("installation_id"))
    value, token = ctx.credentials.issue(inst.id)
    return Reply(
        201,
        {
            "token": value,
            "expires_at": iso(token.expires_at),
            "permissions": dict(PERMISSIONS),
            "repository_selection": "selected",
        },
    )


def get_repo_installation(ctx: Context, req: ApiRequest) -> Reply:
    repo = ctx.state.repository(req.params["owner"], req.params["repo"])
    if repo is None:
        raise not_found()
    return Reply(200, ctx.render.installation(_installation(ctx, repo.installation_id)), etag=True)


# -- installation tokens ----------------------------------------------------------------------------


def list_installation_repositories(ctx: Context, req: ApiRequest) -> Reply:
    token = req.token
    assert token is not None
    with ctx.state.lock:
        repos = sorted(
            (r for r in ctx.state.repos.values() if token.installation_id in (None, r.installation_id)),
            key=lambda r: r.id,
        )
    page, link = _listing(ctx, req, repos, ctx.render.repository)
    body = {"total_count": len(repos), "repositories": page, "repository_selection": "selected"}
    return Reply(200, body, link, etag=True)


def get_rate_limit(ctx: Context, req: ApiRequest) -> Reply:
    core = req.budget.as_json()
    return Reply(200, {"resources": {"core": core, "search": core}, "rate": core})


# -- Actions ------------------------------------------------------------------------------------------


def list_runs(ctx: Context, req: ApiRequest) -> Reply:
    repo = _repo(ctx, req)
    runs, total = filter_runs(ctx.state.runs_of(repo.owner, repo.name), req.query)
    page, link = _listing(ctx, req, runs, ctx.render.run)
    return Reply(200, {"total_count": total, "workflow_runs": page}, link, etag=True)


def get_run(ctx: Context, req: ApiRequest) -> Reply:
    run = _run(ctx, req)
    with ctx.state.lock:
        return Reply(200, ctx.render.run(run), etag=True)


def get_run_attempt(ctx: Context, req: ApiRequest) -> Reply:
    run = _run(ctx, req)
    number = req.int_param("attempt_number")
    if number is None or run.attempt(number) is None:
        raise not_found()
    with ctx.state.lock:
        return Reply(200, ctx.render.run(run, number), etag=True)


def _artifact_listing(ctx: Context, req: ApiRequest, artifacts: list[Artifact]) -> Reply:
    if "name" in req.query:
        artifacts = [a for a in artifacts if a.name == req.query["name"]]
    artifacts.sort(key=lambda a: a.id, reverse=req.query.get("direction", "desc") != "asc")
    page, link = _listing(ctx, req, artifacts, ctx.render.artifact)
    return Reply(200, {"total_count": len(artifacts), "artifacts": page}, link, etag=True)


def list_run_artifacts(ctx: Context, req: ApiRequest) -> Reply:
    """Every attempt's artifacts: GitHub lists a run's artifacts across its attempts."""
    run = _run(ctx, req)
    return _artifact_listing(ctx, req, ctx.state.artifacts_of(run.owner, run.repo, run.id))


def list_repo_artifacts(ctx: Context, req: ApiRequest) -> Reply:
    repo = _repo(ctx, req)
    return _artifact_listing(ctx, req, ctx.state.artifacts_of(repo.owner, repo.name))


def get_artifact(ctx: Context, req: ApiRequest) -> Reply:
    artifact = _artifact(ctx, req)
    with ctx.state.lock:
        return Reply(200, ctx.render.artifact(artifact), etag=True)


def download_artifact(ctx: Context, req: ApiRequest) -> Reply:
    artifact = _artifact(ctx, req)
    if req.params["archive_format"] != "zip":
        raise not_found()
    if artifact.expired:
        raise ApiError(410, "Artifact has expired")
    return Reply(302, None, {"location": ctx.blobs.signed_url(artifact.id)})


# -- Checks -------------------------------------------------------------------------------------------


def create_check_run(ctx: Context, req: ApiRequest) -> Reply:
    repo = _repo(ctx, req)
    check_rules(req.body, create=True)
    with ctx.state.lock:
        record = new_check_run(ctx.state.new_id(), repo.owner, repo.name, req.body)
        ctx.state.check_runs[record.id] = record
        return Reply(201, ctx.render.check_run(record))


def update_check_run(ctx: Context, req: ApiRequest) -> Reply:
    record = _check_run(ctx, req)
    check_rules(req.body, create=False)
    with ctx.state.lock:
        apply_body(record, req.body)
        return Reply(200, ctx.render.check_run(record))


def get_check_run(ctx: Context, req: ApiRequest) -> Reply:
    record = _check_run(ctx, req)
    with ctx.state.lock:
        return Reply(200, ctx.render.check_run(record), etag=True)


def list_check_runs_for_ref(ctx: Context, req: ApiRequest) -> Reply:
    """`checks/list-for-ref` for a commit sha, newest first; `check_name`, and `filter` as GitHub
    applies it (`latest`, the default: the newest run of each name; `all`)."""
    repo = _repo(ctx, req)
    wanted = req.query.get("filter", "latest")
    if wanted not in ("latest", "all"):
        raise ApiError(422, "Validation Failed")
    name = req.query.get("check_name")
    with ctx.state.lock:
        runs = [
            c
            for c in ctx.state.check_runs.values()
            if (c.owner, c.repo, c.head_sha) == (repo.owner, repo.name, req.params["ref"])
            and (name is None or c.name == name)
        ]
    runs.sort(key=lambda c: c.id, reverse=True)
    if wanted == "latest":
        runs = list({c.name: c for c in reversed(runs)}.values())[::-1]
    page, link = _listing(ctx, req, runs, ctx.render.check_run)
    return Reply(200, {"total_count": len(runs), "check_runs": page}, link)


def list_check_run_annotations(ctx: Context, req: ApiRequest) -> Reply:
    record = _check_run(ctx, req)
    with ctx.state.lock:
        annotations = list(record.annotations)
    page, link = _listing(ctx, req, annotations, dict)
    return Reply(200, page, link, etag=True)


ROUTES: tuple[Route, ...] = (
    Route("GET", "/app", "jwt", get_app),
    Route("GET", "/app/installations", "jwt", list_installations),
    Route("GET", "/app/installations/{installation_id}", "jwt", get_installation),
    Route("POST", "/app/installations/{installation_id}/access_tokens", "jwt", create_installation_token),
    Route("GET", "/repos/{owner}/{repo}/installation", "jwt", get_repo_installation),
    Route("GET", "/installation/repositories", "token", list_installation_repositories),
    Route("GET", "/rate_limit", "token", get_rate_limit),
    Route("GET", "/repos/{owner}/{repo}/actions/runs", "token", list_runs),
    Route("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}", "token", get_run),
    Route(
        "GET",
        "/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}",
        "token",
        get_run_attempt,
    ),
    Route("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}/artifacts", "token", list_run_artifacts),
    Route("GET", "/repos/{owner}/{repo}/actions/artifacts", "token", list_repo_artifacts),
    Route("GET", "/repos/{owner}/{repo}/actions/artifacts/{artifact_id}", "token", get_artifact),
    Route(
        "GET",
        "/repos/{owner}/{repo}/actions/artifacts/{artifact_id}/{archive_format}",
        "token",
        download_artifact,
    ),
    Route("POST", "/repos/{owner}/{repo}/check-runs", "token", create_check_run, "CheckRun"),
    Route("PATCH", "/repos/{owner}/{repo}/check-runs/{check_run_id}", "token", update_check_run, "CheckRun"),
    Route("GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}", "token", get_check_run),
    Route(
        "GET",
        "/repos/{owner}/{repo}/check-runs/{check_run_id}/annotations",
        "token",
        list_check_run_annotations,
    ),
    Route("GET", "/repos/{owner}/{repo}/commits/{ref}/check-runs", "token", list_check_runs_for_ref),
)
