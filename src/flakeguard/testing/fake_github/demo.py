"""The generated demo repository `acme/project` (README demo, `flakeguard loadtest`)."""

from __future__ import annotations

import hashlib
import random
from datetime import timedelta

from flakeguard.testing.fake_github.fake import FakeGitHub
from flakeguard.testing.fake_github.state import now


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
    start = now()
    run_ids = []
    for k in range(runs):
        run_id = first_run_id + k
        created = start - timedelta(hours=k + 1)
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
