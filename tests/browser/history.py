"""A repository history for the dashboard's browser tests, published on the fake GitHub.

`acme/web`: 40 workflow runs over 20 days (two thirds on `main`, the rest on feature branches) of 25
tests, with one test of each kind a team lead meets:

* `CheckoutTest.test_total_includes_tax` fails now and then and passes on an in-run retry;
* `LoginTest.test_redirects_after_login` fails one `main` run in four (statistically flaky);
* `SearchTest.test_suggestions_appear` fails now and then; those runs are re-run (attempt 2) and pass;
* `PaymentTest.test_webhook_signature` has failed in every run since six runs ago (broken);
* `CartTest.test_legacy_coupon` is always skipped; the rest pass.

Deterministic (seeded). Failure messages carry volatile parts (ids, numbers) so the test page's
signatures have something to group.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flakeguard.model import Outcome
from flakeguard.testing.fake_github import FakeGitHub
from flakeguard.testing.reports import CaseSpec, SuiteSpec, junit_xml, zip_members

OWNER, REPO = "acme", "web"
INSTALLATION = 67890
FIRST_RUN = 5001
RUNS = 40
RETRY_FLAKY = ("shop.CheckoutTest", "test_total_includes_tax")
MAIN_FLAKY = ("auth.LoginTest", "test_redirects_after_login")
RERUN_FLAKY = ("shop.SearchTest", "test_suggestions_appear")
BROKEN = ("billing.PaymentTest", "test_webhook_signature")
SKIPPED = ("shop.CartTest", "test_legacy_coupon")
HEALTHY_NAMES = {
    "shop.CheckoutTest": ["test_empty_cart", "test_discount_code", "test_shipping_options", "test_gift_wrap"],
    "shop.SearchTest": ["test_exact_match", "test_no_results", "test_pagination", "test_filters"],
    "auth.LoginTest": ["test_wrong_password", "test_lockout", "test_remember_me", "test_logout"],
    "billing.PaymentTest": ["test_refund", "test_currency", "test_invoice_pdf", "test_tax_rates"],
    "shop.CartTest": ["test_add_item", "test_remove_item", "test_quantity", "test_merge_carts"],
}


@dataclass(frozen=True, slots=True)
class PublishedRun:
    run_id: int
    attempt: int


def _sha(run_id: int) -> str:
    return hashlib.sha1(f"{OWNER}/{REPO}/{run_id}".encode()).hexdigest()


def _case(
    cls: str, name: str, rng: random.Random, outcome: Outcome = Outcome.PASSED, **extra: object
) -> CaseSpec:
    return CaseSpec(
        cls,
        name,
        outcome,
        time_s=round(rng.uniform(0.05, 2.5), 3),
        file="tests/" + cls.split(".")[0] + "/" + cls.split(".")[1].lower() + ".py",
        line=12,
        **extra,  # type: ignore[arg-type]
    )


def _artifact(cases: list[CaseSpec]) -> bytes:
    suites: dict[str, SuiteSpec] = {}
    for case in cases:
        suites.setdefault(case.classname, SuiteSpec(case.classname)).cases.append(case)
    return zip_members({"junit/report.xml": junit_xml(suites.values())})


def publish(gh: FakeGitHub, now: datetime | None = None) -> list[PublishedRun]:
    """Adds `acme/web` and its runs to the fake; returns every run attempt to ingest, oldest first."""
    rng = random.Random(14)
    now = now or datetime.now(UTC)
    gh.add_repository(OWNER, REPO, installation_id=INSTALLATION)
    published: list[PublishedRun] = []
    for k in range(RUNS):
        run_id = FIRST_RUN + k
        created = now - timedelta(hours=12 * (RUNS - k)) + timedelta(minutes=7)
        branch = "main" if k % 3 else f"feature/{['search', 'checkout', 'login'][k % 9 // 3]}"
        newest = k >= RUNS - 6
        cases: list[CaseSpec] = []
        for cls, names in HEALTHY_NAMES.items():
            cases.extend(_case(cls, name, rng) for name in names)
        cases.append(_case(*SKIPPED, rng, Outcome.SKIPPED))
        if newest:
            cases.append(
                _case(
                    *BROKEN,
                    rng,
                    Outcome.ERROR,
                    message=f"ConnectionRefusedError: [Errno 111] refused port {rng.randint(30000, 60000)}",
                )
            )
        else:
            cases.append(_case(*BROKEN, rng))
        retry_fails = rng.random() < 0.3
        cases.append(
            _case(
                *RETRY_FLAKY,
                rng,
                flaky_failures=1 if retry_fails else 0,
                message=f"TimeoutError: waited {rng.randint(4000, 6000)} ms for #cart-total",
            )
        )
        main_fails = branch == "main" and rng.random() < 0.28
        request_id = uuid.UUID(int=rng.getrandbits(128))
        cases.append(
            _case(
                *MAIN_FLAKY,
                rng,
                Outcome.FAILED if main_fails else Outcome.PASSED,
                message=f"AssertionError: expected 302, got 500 (request {request_id})",
            )
        )
        rerun = rng.random() < 0.2
        search_message = (
            f"ElementNotVisible: .suggestions not shown after {rng.randint(2, 4)}.5 s"
            if rng.random() < 0.6
            else f"StaleElementReference: element 0x{rng.getrandbits(40):x} is gone"
        )
        cases.append(
            _case(*RERUN_FLAKY, rng, Outcome.FAILED if rerun else Outcome.PASSED, message=search_message)
        )
        failed = rerun or main_fails or newest
        gh.add_run(
            OWNER,
            REPO,
            run_id,
            head_sha=_sha(run_id),
            branch=branch,
            event="push" if branch == "main" else "pull_request",
            conclusion="failure" if failed else "success",
            created_at=created,
            artifacts={"test-results": _artifact(cases)},
            display_title=f"Change {k}",
        )
        published.append(PublishedRun(run_id, 1))
        if rerun:
            again = [_case(*RERUN_FLAKY, rng) if (c.classname, c.name) == RERUN_FLAKY else c for c in cases]
            gh.add_run(
                OWNER,
                REPO,
                run_id,
                head_sha=_sha(run_id),
                branch=branch,
                run_attempt=2,
                conclusion="failure" if newest or main_fails else "success",
                created_at=created + timedelta(hours=1),
                artifacts={"test-results": _artifact(again)},
            )
            published.append(PublishedRun(run_id, 2))
    return published
