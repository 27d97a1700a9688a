"""A fake GitHub REST API on loopback, for tests, demos and offline load tests — as strict as GitHub.

It serves the endpoints FlakeGuard calls, in the shapes of GitHub's OpenAPI description
(`../shared/github/openapi_subset.json`; the tests validate every answer against it), and behaves as
API-NOTES.md describes GitHub: App JWTs and expiring installation tokens, a primary budget per
caller spent by every answer (errors too) with `x-ratelimit-*` headers, 304s for free, `User-Agent`
and `X-GitHub-Api-Version` enforced, Link pagination, filtered run listings cut at 1,000 results,
a run's artifacts listed across its attempts, downloads as 302s to a signed second host, request
bodies checked against the schema. Faults are injected with `gh.inject(pattern, fault, times=N)`.

    with FakeGitHub() as gh:
        gh.add_repository("acme", "project", installation_id=67890)
        gh.add_run("acme", "project", 1, head_sha="abc", branch="main",
                   artifacts={"test-results": zip_bytes})
        ... point a client at gh.url with gh.app_id / gh.private_key_pem ...

Modules: `fake` (the class), `state`, `auth`, `budgets`, `api` (the order of checks), `handlers`
(the route table), `bodies` and `checks` (validation), `search` (run filters), `render` (JSON),
`blobs` (download host), `faults`, `server` (HTTP), `journal`, `demo`, `__main__` (the CLI).
"""

from flakeguard.testing.fake_github.auth import generate_private_key_pem
from flakeguard.testing.fake_github.demo import populate_demo_repository
from flakeguard.testing.fake_github.fake import FakeGitHub
from flakeguard.testing.fake_github.faults import Fault
from flakeguard.testing.fake_github.journal import RecordedRequest, RecordedResponse
from flakeguard.testing.fake_github.state import CheckRunRecord

__all__ = [
    "CheckRunRecord",
    "FakeGitHub",
    "Fault",
    "RecordedRequest",
    "RecordedResponse",
    "generate_private_key_pem",
    "populate_demo_repository",
]
