"""Quarantine API: the list test runners read to mute tests, manual quarantine/release, history.

    GET  /api/v1/repos/{owner}/{repo}/quarantine           the quarantined tests (JSON object, `tests`)
    POST /api/v1/repos/{owner}/{repo}/quarantine           {"tests": [name, ...], "reason", "actor"}
    POST /api/v1/repos/{owner}/{repo}/quarantine/release   same body
    GET  /api/v1/repos/{owner}/{repo}/quarantine/history   changes, newest first (?limit=, ?test=)

Every route needs the bearer token. Tests are named as the CLI names them (`pipeline.test_refs`: the
printed name, classname::name, a unique end of it, the id or the key). A change naming any unknown
test changes nothing (404 lists them), nor one naming several tests at once (409 lists the candidates).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from flakeguard.pipeline.quarantine import (
    quarantine_history,
    quarantine_json,
    quarantine_list,
    quarantine_tests,
    release_tests,
    resolve_tests,
)
from flakeguard.pipeline.test_refs import Resolution
from flakeguard.server.auth import require_api_token
from flakeguard.services import Services
from flakeguard.store.models import Repository
from flakeguard.store.repository import get_repository

router = APIRouter(
    prefix="/api/v1/repos/{owner}/{repo}/quarantine",
    tags=["quarantine"],
    dependencies=[Depends(require_api_token)],
)


class QuarantineChange(BaseModel):
    tests: Annotated[list[str | int], Field(min_length=1, max_length=10_000)]
    reason: Annotated[str, Field(min_length=1, max_length=2000)]
    actor: Annotated[str, Field(min_length=1, max_length=255)] = "api"


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def _repository(session: AsyncSession, owner: str, repo: str) -> Repository:
    repository = await get_repository(session, owner, repo)
    if repository is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown repository {owner}/{repo}")
    return repository


def _refuse_unresolved(resolved: Resolution) -> None:
    """404 naming unknown tests; 409 listing the candidates of a name several tests answer to."""
    if resolved.unknown:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            {
                "message": "unknown tests; nothing changed",
                "unknown": resolved.unknown,
                "ambiguous": resolved.ambiguous,
            },
        )
    if resolved.ambiguous:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            {"message": "ambiguous test names; nothing changed", "ambiguous": resolved.ambiguous},
        )


@router.get("")
async def list_quarantine(request: Request, owner: str, repo: str) -> dict[str, Any]:
    async with _services(request).sessions() as session:
        repository = await _repository(session, owner, repo)
        entries = await quarantine_list(session, repository.id)
    return quarantine_json(repository.full_name, entries, datetime.now(UTC))


async def _change(
    request: Request, owner: str, repo: str, body: QuarantineChange, *, release: bool
) -> dict[str, Any]:
    async with _services(request).sessions.begin() as session:
        repository = await _repository(session, owner, repo)
        resolved = await resolve_tests(session, repository.id, body.tests)
        _refuse_unresolved(resolved)
        fn = release_tests if release else quarantine_tests
        changed = await fn(session, repository.id, resolved.ids, reason=body.reason, actor=body.actor)
    return {
        "repository": repository.full_name,
        "action": "release" if release else "quarantine",
        "tests": resolved.ids,
        "changed": changed,
        "unchanged": len(resolved.ids) - changed,
    }


@router.post("")
async def add_quarantine(request: Request, owner: str, repo: str, body: QuarantineChange) -> dict[str, Any]:
    return await _change(request, owner, repo, body, release=False)


@router.post("/release")
async def release_quarantine(
    request: Request, owner: str, repo: str, body: QuarantineChange
) -> dict[str, Any]:
    return await _change(request, owner, repo, body, release=True)


@router.get("/history")
async def history(
    request: Request,
    owner: str,
    repo: str,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    test: Annotated[list[str] | None, Query(description="Only these tests (key or id; repeatable)")] = None,
) -> dict[str, Any]:
    async with _services(request).sessions() as session:
        repository = await _repository(session, owner, repo)
        ids = None
        if test:
            resolved = await resolve_tests(session, repository.id, test)
            _refuse_unresolved(resolved)
            ids = resolved.ids
        events = await quarantine_history(session, repository.id, test_case_ids=ids, limit=limit)
    return {"repository": repository.full_name, "events": [e.to_json() for e in events]}
