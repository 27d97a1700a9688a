"""Job payloads: the original TypeScript interfaces, field for field, camelCase on the wire.

`RunsIngestJobData`, `RunsAnalyzeJobData` and `TestsRecomputeJobData` of the original worker's README
validate here as they are; FlakeGuard's additions (`correlationId`, `runAttempt`, `testIds`, ...) are
optional extras beside them. Unknown fields are ignored (a newer producer must not break an older
worker); a missing or ill-typed known field fails validation with a message naming the field path.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from flakeguard.jobs.names import Priority

_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,100}$"


class WireModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class RepositoryRef(WireModel):
    owner: Annotated[str, Field(pattern=_NAME_PATTERN)]
    repo: Annotated[str, Field(pattern=_NAME_PATTERN)]
    installation_id: Annotated[int, Field(gt=0)] | None = None

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.repo}"


class RunMetadata(WireModel):
    """The original's `metadata` (`runStatus`, `conclusion`, `headSha`, `headBranch`) and FlakeGuard's
    extras. Kept with the stored run and checked against GitHub's run (GitHub's values win)."""

    run_status: str | None = None
    conclusion: str | None = None
    head_sha: str | None = None
    head_branch: str | None = None
    run_attempt: Annotated[int, Field(ge=1)] | None = None
    event: str | None = None
    triggered_by: Literal["webhook", "polling", "manual", "api"] | None = None
    delivery_id: str | None = None


class AnalysisConfigPayload(WireModel):
    lookback_days: Annotated[int, Field(ge=1, le=365)] = 30
    min_runs_threshold: Annotated[int, Field(ge=1, le=10_000)] = 5
    flakiness_threshold: Annotated[float, Field(ge=0.0, le=1.0)] = 0.3
    update_quarantine_status: bool = False


class RunsIngestJob(WireModel):
    workflow_run_id: Annotated[int, Field(gt=0)]
    repository: RepositoryRef
    priority: Priority = Priority.NORMAL
    correlation_id: str | None = None
    metadata: RunMetadata | None = None


class RunsAnalyzeJob(WireModel):
    workflow_run_id: Annotated[int, Field(gt=0)]
    repository: RepositoryRef
    run_attempt: Annotated[int, Field(ge=1)] | None = None
    analysis_config: AnalysisConfigPayload = Field(default_factory=AnalysisConfigPayload)
    force_recompute: bool = False
    priority: Priority = Priority.NORMAL
    correlation_id: str | None = None
    metadata: RunMetadata | None = None


class RecomputeScope(WireModel):
    """`type` and `patterns` as the original: globs for `test_pattern` (test name or key) and
    `class_pattern` (classname); exact test names or keys for `specific_tests`. `testIds` (FlakeGuard's
    extra) takes test case ids or keys."""

    type: Literal["all", "test_pattern", "class_pattern", "specific_tests"] = "all"
    patterns: list[str] = Field(default_factory=list)
    lookback_days: Annotated[int, Field(ge=1, le=365)] | None = None
    test_ids: list[str] = Field(default_factory=list)

    @field_validator("patterns", "test_ids")
    @classmethod
    def _bounded(cls, value: list[str]) -> list[str]:
        if len(value) > 10_000:
            raise ValueError("at most 10,000 entries")
        return value


class RecomputeOptions(WireModel):
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = 500
    update_quarantine_status: bool = False


_LEGACY_RECOMPUTE_FIELDS = {  # FlakeGuard 0.1's top-level fields -> where the original has them
    "lookbackDays": ("recomputeScope", "lookbackDays"),
    "batchSize": ("options", "batchSize"),
    "updateQuarantineStatus": ("options", "updateQuarantineStatus"),
}


class TestsRecomputeJob(WireModel):
    __test__ = False

    repository: RepositoryRef
    recompute_scope: RecomputeScope = Field(default_factory=RecomputeScope)
    options: RecomputeOptions = Field(default_factory=RecomputeOptions)
    analysis_config: AnalysisConfigPayload | None = None
    priority: Priority = Priority.LOW
    correlation_id: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _legacy_top_level(cls, data: Any) -> Any:
        """Jobs of FlakeGuard 0.1 (top-level `lookbackDays`, `batchSize`, `updateQuarantineStatus`), still
        queued during an upgrade, keep their meaning; the original's nested fields win when both are set."""
        if not isinstance(data, dict) or not any(key in data for key in _LEGACY_RECOMPUTE_FIELDS):
            return data
        data = dict(data)
        for key, (parent, child) in _LEGACY_RECOMPUTE_FIELDS.items():
            if key not in data:
                continue
            value = data.pop(key)
            nested = data.get(parent)
            if nested is None:
                nested = {}
            if isinstance(nested, dict) and child not in nested:
                data[parent] = {**nested, child: value}
        return data

    @property
    def lookback_days(self) -> int:
        """`recomputeScope.lookbackDays`, else `analysisConfig.lookbackDays`, else 30."""
        if self.recompute_scope.lookback_days is not None:
            return self.recompute_scope.lookback_days
        return self.analysis_config.lookback_days if self.analysis_config is not None else 30

    @property
    def batch_size(self) -> int:
        return self.options.batch_size

    @property
    def update_quarantine_status(self) -> bool:
        return self.options.update_quarantine_status or bool(
            self.analysis_config and self.analysis_config.update_quarantine_status
        )


class PollingJob(WireModel):
    type: Literal["discover_repositories", "poll_repository", "poll_all"] = "poll_all"
    repository: RepositoryRef | None = None
    installation_id: Annotated[int, Field(gt=0)] | None = None
    batch_size: Annotated[int, Field(ge=1, le=1000)] | None = None
    lookback_hours: Annotated[int, Field(ge=1, le=24 * 90)] = 72
    priority: Priority = Priority.LOW
    correlation_id: str | None = None


class PayloadError(ValueError):
    """A job payload that does not validate. Never retried."""


M = TypeVar("M", bound=WireModel)


def parse_payload(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors()[:10]:
            path = ".".join(str(p) for p in err["loc"]) or "(payload)"
            problems.append(f"{path}: {err['msg']}")
        raise PayloadError(f"invalid {model.__name__} payload: " + "; ".join(problems)) from None
