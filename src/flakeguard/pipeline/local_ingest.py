"""Ingest JUnit reports from local files, folders and ZIPs (any CI: GitLab, Jenkins, CircleCI, a laptop).

The same path as `runs:ingest` once the artifacts are in hand: ZIPs through the guarded
`iter_artifact`, plain XML files through `read_report`, both with the limits from settings
(`archive_limits`/`parse_limits`), then `store_reports` of the worker pipeline stores every accepted
report and records every refusal (result, metric, log) in one transaction for the run attempt.

Sources (what makes re-ingestion idempotent) are ``<artifact>!<member>``, independent of the working
directory: for a folder, the folder's name and each report's path inside it; for a ZIP, its file
name and the member name; for a lone XML file, its file name as both.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from flakeguard.jobs.payloads import RepositoryRef
from flakeguard.junit import MemberReport, Refusal, iter_artifact, read_report
from flakeguard.junit import errors as E
from flakeguard.metrics import TEST_EXECUTIONS_STORED
from flakeguard.pipeline.ingest import IngestResult, archive_limits, parse_limits, store_reports
from flakeguard.services import Services
from flakeguard.store.repository import RunInfo, finish_run, record_run, upsert_repository

__all__ = ["InputError", "LocalInput", "LocalRun", "collect_inputs", "ingest_local", "parse_commit_sha"]
_COMMIT_SHA = re.compile(r"[0-9a-f]{40}")


def parse_commit_sha(value: str) -> str:
    """A git commit id: 40 hexadecimal characters (lower-cased). ValueError otherwise."""
    sha = value.strip().lower()
    if not _COMMIT_SHA.fullmatch(sha):
        raise ValueError(
            f"{value!r} is not a commit id (40 hexadecimal characters, as `git rev-parse HEAD` prints)"
        )
    return sha


@dataclass(frozen=True, slots=True)
class LocalRun:
    """What the CI knows about the run the reports come from."""

    repository: RepositoryRef
    run_id: int
    run_attempt: int
    head_sha: str
    branch: str
    event: str
    started_at: datetime


@dataclass(frozen=True, slots=True)
class LocalInput:
    """One thing to read: a ZIP archive, or an XML report with its (artifact, member) labels."""

    path: Path
    artifact: str
    member: str | None  # None for a ZIP: its members name themselves

    @property
    def is_zip(self) -> bool:
        return self.member is None


class InputError(ValueError):
    """A PATH that does not exist or cannot be read."""


def _looks_like_zip(path: Path) -> bool:
    return path.suffix.lower() == ".zip" or zipfile.is_zipfile(path)


def _xml_files(folder: Path) -> list[Path]:
    """``*.xml`` files under `folder`, recursively, sorted; links to folders are not followed."""
    found = [
        Path(top, name)
        for top, _dirs, names in os.walk(folder, followlinks=False)
        for name in names
        if name.lower().endswith(".xml")
    ]
    return sorted(p for p in found if p.is_file())


def collect_inputs(paths: Sequence[Path]) -> list[LocalInput]:
    """Inputs for the given paths: a folder gives every ``*.xml`` under it (recursively, sorted);
    a ``.zip`` (or any file that is a ZIP) an archive; any other file is read as an XML report.
    Symbolic links to folders are not followed (no cycles); listed files may be links."""
    inputs: list[LocalInput] = []
    for path in paths:
        if path.is_dir():
            for report in _xml_files(path):
                member = report.relative_to(path).as_posix()
                inputs.append(LocalInput(report, path.resolve().name or "reports", member))
        elif path.is_file():
            if _looks_like_zip(path):
                inputs.append(LocalInput(path, path.name, None))
            else:
                inputs.append(LocalInput(path, path.name, path.name))
        else:
            raise InputError(f"{path}: no such file or folder")
    for item in inputs:
        if not os.access(item.path, os.R_OK):
            raise InputError(f"{item.path}: not readable")
    return inputs


def _reports(inputs: Sequence[LocalInput], services: Services) -> Iterator[MemberReport | Refusal]:
    """Every accepted report and every refusal, input by input (run in a worker thread)."""
    archive, parse = archive_limits(services), parse_limits(services)
    for item in inputs:
        try:
            with item.path.open("rb") as stream:
                if item.member is None:
                    yield from iter_artifact(
                        stream, artifact=item.artifact, archive_limits=archive, parse_limits=parse
                    )
                    continue
                read = read_report(stream, artifact=item.artifact, member=item.member, parse_limits=parse)
        except OSError as exc:
            yield Refusal(
                item.artifact, item.member, None, E.BAD_ZIP if item.is_zip else E.MALFORMED_XML, str(exc)
            )
            continue
        yield from read.refusals
        yield from read.members


async def ingest_local(services: Services, run: LocalRun, inputs: Sequence[LocalInput]) -> IngestResult:
    """Store the reports of `inputs` as run attempt (`run.run_id`, `run.run_attempt`) of the repository."""
    ref = run.repository
    result = IngestResult(repository=ref.full_name, run_id=run.run_id, run_attempt=run.run_attempt)
    result.artifacts = len({i.artifact for i in inputs})
    info = RunInfo(
        run_id=run.run_id,
        run_attempt=run.run_attempt,
        head_sha=run.head_sha,
        branch=run.branch,
        event=run.event,
        conclusion=None,
        started_at=run.started_at,
        created_at=run.started_at,
        workflow_name="flakeguard ingest",
    )
    async with services.sessions.begin() as session:
        repository = await upsert_repository(session, ref.owner, ref.repo, active=False)
        run_row = await record_run(session, repository.id, info)
        await store_reports(session, repository.id, run_row, _reports(inputs, services), result)
        if not inputs:
            result.outcome = "no test reports"
        elif result.reports == 0 and result.refused:
            result.outcome = "all refused"
        result.tests, _, _ = await finish_run(
            session, run_row, outcome=result.outcome, files_refused=len(result.refused)
        )
    TEST_EXECUTIONS_STORED.inc(result.executions_new)
    return result
