"""The JSON shapes of GitHub's OpenAPI description (users, repositories, installations, the App,
workflow runs and attempts, artifacts, check runs) and Link-header pagination.

The tests validate every response the fake sends against `../shared/github/openapi_subset.json`.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlencode

from flakeguard.testing.fake_github.state import (
    Artifact,
    CheckRunRecord,
    Installation,
    Repo,
    Run,
    State,
    now,
)

JSON = dict[str, Any]
T = TypeVar("T")
PERMISSIONS = {"actions": "read", "checks": "write", "metadata": "read"}
EVENTS = ["workflow_run", "check_run"]
WORKFLOW_ID = 161335

# The `*_url` templates of a repository, relative to its API URL.
_REPO_URLS = {
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


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def node_id(kind: str, ident: int) -> str:
    return base64.b64encode(f"{kind}{ident}".encode()).decode()


def owner_id(owner: str) -> int:
    return int(hashlib.sha256(owner.encode()).hexdigest()[:7], 16)


class Renderer:
    """Renders the fake's records; `base_url` is the API server's URL once it listens."""

    def __init__(self, state: State, app_id: int, app_slug: str, artifact_retention_days: int) -> None:
        self.state = state
        self.app_id = app_id
        self.app_slug = app_slug
        self.artifact_retention_days = artifact_retention_days
        self.base_url = ""

    # -- accounts and repositories ---------------------------------------------------------------

    def user(self, login: str, uid: int, kind: str = "Organization") -> JSON:
        base = f"{self.base_url}/users/{login}"
        return {
            "login": login,
            "id": uid,
            "node_id": node_id("User", uid),
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

    def minimal_repository(self, r: Repo) -> JSON:
        base = f"{self.base_url}/repos/{r.owner}/{r.name}"
        out: JSON = {
            "id": r.id,
            "node_id": node_id("Repository", r.id),
            "name": r.name,
            "full_name": f"{r.owner}/{r.name}",
            "owner": self.user(r.owner, owner_id(r.owner)),
            "private": r.private,
            "html_url": f"https://github.com/{r.owner}/{r.name}",
            "description": None,
            "fork": False,
            "url": base,
        }
        out.update({k: base + v for k, v in _REPO_URLS.items()})
        return out

    def repository(self, r: Repo) -> JSON:
        out = self.minimal_repository(r)
        created = iso(self.state.started - timedelta(days=365))
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
                "pushed_at": iso(now()),
                "created_at": created,
                "updated_at": created,
            }
        )
        return out

    # -- the App ----------------------------------------------------------------------------------

    def installation(self, inst: Installation) -> JSON:
        created = iso(self.state.started - timedelta(days=30))
        return {
            "id": inst.id,
            # /app/installations' inline schema is allOf[simple-user, enterprise]: carry both field sets
            "account": {
                **self.user(inst.account, inst.account_id),
                "name": inst.account,
                "slug": inst.account,
                "created_at": created,
                "updated_at": created,
            },
            "repository_selection": "selected",
            "access_tokens_url": f"{self.base_url}/app/installations/{inst.id}/access_tokens",
            "repositories_url": f"{self.base_url}/installation/repositories",
            "html_url": f"https://github.com/organizations/{inst.account}/settings/installations/{inst.id}",
            "app_id": self.app_id,
            "app_slug": self.app_slug,
            "client_id": f"Iv1.{self.app_id:016x}",
            "target_id": inst.account_id,
            "target_type": "Organization",
            "permissions": dict(PERMISSIONS),
            "events": list(EVENTS),
            "created_at": created,
            "updated_at": created,
            "single_file_name": None,
            "has_multiple_single_files": False,
            "single_file_paths": [],
            "suspended_by": None,
            "suspended_at": None,
        }

    def integration(self) -> JSON:
        created = iso(self.state.started - timedelta(days=60))
        with self.state.lock:
            installations = len(self.state.installations)
        return {
            "id": self.app_id,
            "slug": self.app_slug,
            "node_id": node_id("App", self.app_id),
            "client_id": f"Iv1.{self.app_id:016x}",
            "owner": self.user("flakeguard", 1),
            "name": "FlakeGuard (fake)",
            "description": "Flaky-test detection",
            "external_url": "https://flakeguard.example.invalid",
            "html_url": f"https://github.com/apps/{self.app_slug}",
            "created_at": created,
            "updated_at": created,
            "permissions": dict(PERMISSIONS),
            "events": list(EVENTS),
            "installations_count": installations,
        }

    # -- Actions ----------------------------------------------------------------------------------

    def run(self, run: Run, attempt: int | None = None) -> JSON:
        """The run as its latest attempt shows it, or as attempt `attempt` (the attempts endpoint)."""
        repo = self.state.repos[(run.owner, run.repo)]
        shown = run.attempt(attempt) if attempt else run.latest
        assert shown is not None
        n = shown.number
        api = f"{self.base_url}/repos/{run.owner}/{run.repo}"
        base = f"{api}/actions/runs/{run.id}"
        suite = run.id * 10 + n
        actor = self.user("octocat", 583231, "User")
        minimal = self.minimal_repository(repo)
        return {
            "id": run.id,
            "name": "CI",
            "node_id": node_id("WorkflowRun", run.id),
            "check_suite_id": suite,
            "check_suite_node_id": node_id("CheckSuite", suite),
            "head_branch": run.branch,
            "head_sha": run.head_sha,
            "path": ".github/workflows/ci.yml",
            "run_number": run.run_number,
            "run_attempt": n,
            "referenced_workflows": [],
            "event": run.event,
            "status": shown.status,
            "conclusion": shown.conclusion if shown.status == "completed" else None,
            "workflow_id": WORKFLOW_ID,
            "url": base,
            "html_url": f"https://github.com/{run.owner}/{run.repo}/actions/runs/{run.id}",
            "pull_requests": [],
            "created_at": iso(run.created_at),
            "updated_at": iso(shown.updated_at),
            "actor": actor,
            "triggering_actor": actor,
            "run_started_at": iso(shown.started_at),
            "jobs_url": f"{base}/jobs",
            "logs_url": f"{base}/logs",
            "check_suite_url": f"{api}/check-suites/{suite}",
            "artifacts_url": f"{base}/artifacts",
            "cancel_url": f"{base}/cancel",
            "rerun_url": f"{base}/rerun",
            "previous_attempt_url": f"{base}/attempts/{n - 1}" if n > 1 else None,
            "workflow_url": f"{api}/actions/workflows/{WORKFLOW_ID}",
            "head_commit": {
                "id": run.head_sha,
                "tree_id": hashlib.sha1(run.head_sha.encode()).hexdigest(),
                "message": run.display_title,
                "timestamp": iso(run.created_at),
                "author": {"name": "Octo Cat", "email": "octocat@example.com"},
                "committer": {"name": "Octo Cat", "email": "octocat@example.com"},
            },
            "repository": minimal,
            "head_repository": minimal,
            "head_repository_id": repo.id,
            "display_title": run.display_title,
        }

    def artifact(self, a: Artifact) -> JSON:
        """No field names the attempt that made it: GitHub's artifact schema has none."""
        base = f"{self.base_url}/repos/{a.owner}/{a.repo}/actions/artifacts/{a.id}"
        run = self.state.runs[(a.owner, a.repo, a.run_id)]
        repo_id = self.state.repos[(a.owner, a.repo)].id
        return {
            "id": a.id,
            "node_id": node_id("Artifact", a.id),
            "name": a.name,
            "size_in_bytes": len(a.data),
            "url": base,
            "archive_download_url": f"{base}/zip",
            "expired": a.expired,
            "created_at": iso(a.created_at),
            "expires_at": iso(a.created_at + timedelta(days=self.artifact_retention_days)),
            "updated_at": iso(a.created_at),
            "digest": "sha256:" + hashlib.sha256(a.data).hexdigest(),
            "workflow_run": {
                "id": run.id,
                "repository_id": repo_id,
                "head_repository_id": repo_id,
                "head_branch": run.branch or "",
                "head_sha": run.head_sha,
            },
        }

    # -- Checks -----------------------------------------------------------------------------------

    def check_run(self, c: CheckRunRecord) -> JSON:
        base = f"{self.base_url}/repos/{c.owner}/{c.repo}/check-runs/{c.id}"
        return {
            "id": c.id,
            "head_sha": c.head_sha,
            "node_id": node_id("CheckRun", c.id),
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
            "app": self.integration(),
            "pull_requests": [],
        }

    # -- pagination -------------------------------------------------------------------------------

    def page(
        self, path: str, query: Mapping[str, str], items: Sequence[T]
    ) -> tuple[Sequence[T], dict[str, str]]:
        """One page of `items` (`per_page` ≤ 100, default 30; `page` from 1) and its Link header:
        prev/next/last/first, omitted when everything fits on one page."""
        per_page = min(100, max(1, _int(query.get("per_page"), 30)))
        page = max(1, _int(query.get("page"), 1))
        last = max(1, math.ceil(len(items) / per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        if last == 1:
            return chunk, {}

        def link(p: int) -> str:
            q = {**query, "per_page": str(per_page), "page": str(p)}
            return f"{self.base_url}{path}?{urlencode(q)}"

        rels = []
        if page > 1:
            rels.append(f'<{link(page - 1)}>; rel="prev"')
        if page < last:
            rels += [f'<{link(page + 1)}>; rel="next"', f'<{link(last)}>; rel="last"']
        if page > 1:
            rels.append(f'<{link(1)}>; rel="first"')
        return chunk, {"link": ", ".join(rels)}


def _int(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default
