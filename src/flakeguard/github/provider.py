"""Which GitHub credentials a job uses: the App's installation token, or a plain GITHUB_TOKEN."""

from __future__ import annotations

from flakeguard.config import Settings
from flakeguard.github.client import GitHubApp, GitHubClient, token_client
from flakeguard.github.errors import NotFound
from flakeguard.jobs.errors import PermanentError


class GitHubProvider:
    def __init__(self, app: GitHubApp | None = None, token: GitHubClient | None = None) -> None:
        self.app = app
        self.token = token

    @classmethod
    def from_settings(cls, settings: Settings) -> GitHubProvider:
        app = None
        if settings.github_app_id and settings.github_private_key is not None:
            key = settings.github_private_key.get_secret_value()
            app = GitHubApp(settings.github_api_url, settings.github_app_id, key)
        token = None
        if settings.github_token is not None:
            token = token_client(settings.github_api_url, settings.github_token.get_secret_value())
        return cls(app, token)

    @property
    def configured(self) -> bool:
        return self.app is not None or self.token is not None

    async def client_for(self, owner: str, repo: str, installation_id: int | None) -> GitHubClient:
        """A client acting for this repository. Without an installation id the App looks it up."""
        if self.app is not None:
            if installation_id is None:
                try:
                    installation = await self.app.app_client().get_repo_installation(owner, repo)
                except NotFound:
                    raise PermanentError(f"the GitHub App is not installed on {owner}/{repo}") from None
                installation_id = int(installation["id"])
            return self.app.installation_client(installation_id)
        if self.token is not None:
            return self.token
        raise PermanentError(
            "GitHub credentials are not configured: set GITHUB_APP_ID and GITHUB_PRIVATE_KEY, or GITHUB_TOKEN"
        )

    async def aclose(self) -> None:
        if self.app is not None:
            await self.app.aclose()
        if self.token is not None:
            await self.token.aclose()
