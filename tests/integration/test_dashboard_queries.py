"""The dashboard's page of the report, filtered, sorted and paged by the database, agrees with the
report itself (`flakeguard report`): same rows, same order, on PostgreSQL."""

from __future__ import annotations

from flakeguard.pipeline.report import build_report
from flakeguard.services import Services
from flakeguard.web.queries import report_page

from .test_report import suite


async def _page(services: Services, repository_id: int, **values: object) -> list[str]:
    args: dict[str, object] = dict(
        status=None, quarantined=None, name="", sort="rank", descending=False, offset=0, limit=100
    )
    args.update(values)
    async with services.sessions() as session:
        page = await report_page(session, repository_id, **args)  # type: ignore[arg-type]
    return [r.name for r in page.rows]


async def test_pages_of_the_report_are_the_report_cut_in_pieces(services: Services) -> None:
    h = await suite(services)
    async with services.sessions() as session:
        report = [r.name for r in await build_report(session, h.repository_id)]
        page = await report_page(
            session, h.repository_id, status=None, quarantined=None, name="", sort="rank",
            descending=False, offset=2, limit=3,
        )  # fmt: skip
    assert page.total == len(report) and [r.name for r in page.rows] == report[2:5]
    assert await _page(services, h.repository_id) == report
    assert await _page(services, h.repository_id, descending=True) == report[::-1]


async def test_filters_and_sorting_happen_in_the_database(services: Services) -> None:
    h = await suite(services)
    async with services.sessions() as session:
        report = await build_report(session, h.repository_id)
    flaky = [r.name for r in report if r.status == "flaky"]
    assert await _page(services, h.repository_id, status="flaky") == flaky
    assert await _page(services, h.repository_id, quarantined=True) == ["lonely"]
    assert "lonely" not in await _page(services, h.repository_id, quarantined=False)
    assert await _page(services, h.repository_id, name="LONE") == ["lonely"]
    assert await _page(services, h.repository_id, name="%") == []  # LIKE wildcards are literal
    assert await _page(services, h.repository_id, name="never_") == ["never_run"]
    by_score = await _page(services, h.repository_id, sort="score", descending=True)
    scores = {r.name: -1.0 if r.score is None else r.score for r in report}
    assert [scores[n] for n in by_score] == sorted(scores.values(), reverse=True)
    ties = [n for n in by_score if scores[n] == scores[by_score[-1]]]
    assert ties == [r.name for r in report if r.name in ties]  # ties keep the report's order
    assert await _page(services, h.repository_id, sort="name") == sorted(r.name for r in report)
