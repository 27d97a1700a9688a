"""`FakeGitHub`: the servers' lifecycle and the test-facing API (set-up, faults, what was seen)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flakeguard.testing.fake_github.api import GitHubApi, template_for
from flakeguard.testing.fake_github.auth import Credentials, generate_private_key_pem
from flakeguard.testing.fake_github.blobs import BlobHost
from flakeguard.testing.fake_github.budgets import Budgets
from flakeguard.testing.fake_github.faults import Fault, Faults
from flakeguard.testing.fake_github.handlers import Context
from flakeguard.testing.fake_github.journal import Journal, RecordedRequest, RecordedResponse
from flakeguard.testing.fake_github.render import Renderer, owner_id
from flakeguard.testing.fake_github.server import ApiHandler, BlobHandler, Server, Wiring
from flakeguard.testing.fake_github.state import CheckRunRecord, State


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
        self.token_ttl = token_ttl
        self.artifact_url_ttl = artifact_url_ttl
        self.artifact_retention_days = artifact_retention_days
        self.rate_limit = rate_limit
        self._host, self._port, self._blob_port = host, port, blob_port
        self._state = State()
        self._credentials = Credentials(app_id, self.private_key_pem, token_ttl)
        self._budgets = Budgets(rate_limit)
        self._render = Renderer(self._state, app_id, app_slug, artifact_retention_days)
        self._blobs = BlobHost(self._state, artifact_url_ttl)
        self._faults = Faults()
        self._journal = Journal()
        api = GitHubApi(
            Context(self._state, self._render, self._credentials, self._blobs),
            self._credentials,
            self._budgets,
        )
        self._wiring = Wiring(api, self._blobs, self._faults, self._journal, rate_limit)
        self._api: Server | None = None
        self._blob: Server | None = None
        self._threads: list[threading.Thread] = []

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> FakeGitHub:
        if self._api is not None:
            return self
        self._api = Server((self._host, self._port), ApiHandler, self._wiring)
        # A second loopback *address* where the OS has one (Linux: all of 127/8), else another port:
        # either way a different origin, like GitHub's blob host.
        blob_host = "127.0.0.2" if self._host == "127.0.0.1" else self._host
        try:
            self._blob = Server((blob_host, self._blob_port), BlobHandler, self._wiring)
        except OSError:
            self._blob = Server((self._host, self._blob_port), BlobHandler, self._wiring)
        self._render.base_url = self.url
        self._blobs.base_url = self.blob_url
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

    # -- set-up ------------------------------------------------------------------------------------

    def add_installation(self, installation_id: int, account: str) -> None:
        self._state.add_installation(installation_id, account, owner_id(account))

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
        with self._state.lock:
            self.add_installation(installation_id, owner)
            return self._state.add_repository(owner, repo, installation_id, default_branch, private)

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
        """Adds a workflow run, or re-runs a known `run_id` up to attempt `run_attempt`; the artifacts
        are uploaded by that attempt. Returns their ids.

        `created_at` is when the run was created (for a re-run: when the new attempt started, never
        before the previous one ended). The repository is created (installation 67890) when unknown.
        """
        with self._state.lock:
            if self._state.repository(owner, repo) is None:
                self.add_repository(owner, repo)
            return self._state.add_run(
                owner,
                repo,
                run_id,
                head_sha=head_sha,
                branch=branch,
                event=event,
                conclusion=conclusion,
                status=status,
                run_attempt=run_attempt,
                at=created_at,
                artifacts=artifacts or {},
                display_title=display_title,
            )

    def expire_artifact(self, artifact_id: int) -> None:
        with self._state.lock:
            self._state.artifacts[artifact_id].expired = True

    def issue_token(self, installation_id: int | None = None, ttl: float | None = None) -> str:
        """A token as if minted for `installation_id` (None: a plain token that sees every repository)."""
        return self._credentials.issue(installation_id, ttl)[0]

    def expire_tokens(self) -> None:
        """Every token issued so far now answers 401 (as after GitHub's one-hour lifetime)."""
        self._credentials.expire_all()

    def set_rate_limit_remaining(self, remaining: int, *, reset_in: int = 3600) -> None:
        """Sets the remaining primary budget of every identity (current and future)."""
        self._budgets.set_remaining(remaining, reset_in)

    # -- faults ------------------------------------------------------------------------------------

    def inject(self, pattern: str, fault: Fault | str, *, times: int = 1, **params: Any) -> None:
        """Makes the next `times` matching requests fail (`times=-1`: all of them).

        `pattern` is an endpoint template (`/repos/{owner}/{repo}/actions/runs`), or a glob over the
        concrete path (`/repos/*/*/actions/artifacts/*/zip`, `*` crosses `/`), optionally prefixed by a
        method (`"POST /repos/*/check-runs"`). The blob host's paths are `/_blob/{artifact_id}`.
        """
        self._faults.inject(
            pattern, fault if isinstance(fault, Fault) else Fault.named(fault, **params), times
        )

    def clear_faults(self) -> None:
        self._faults.clear()

    # -- what happened -----------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        return self._journal.requests

    @property
    def responses(self) -> list[RecordedResponse]:
        return self._journal.responses

    @property
    def check_runs(self) -> list[CheckRunRecord]:
        with self._state.lock:
            return list(self._state.check_runs.values())

    def requests_to(self, pattern: str, method: str | None = None) -> list[RecordedRequest]:
        """Recorded requests whose path matches a glob (or template), optionally by method."""
        return self._journal.requests_to(pattern, method)

    def template_for(self, method: str, path: str) -> str | None:
        """The endpoint template the fake routes `method path` to (None: unknown)."""
        return template_for(method, path)

    def signed_blob_url(self, artifact_id: int, *, expires: float | None = None) -> str:
        return self._blobs.signed_url(artifact_id, expires=expires)
