"""What a job handler gets: the job, its lock token and the shared services."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bullmq import Job

from flakeguard.jobs.names import QueueName

if TYPE_CHECKING:
    from flakeguard.services import Services


@dataclass(slots=True)
class JobContext:
    job: Job
    token: str
    queue: QueueName
    services: Services

    @property
    def data(self) -> Any:
        return self.job.data

    async def progress(self, value: int | dict[str, Any]) -> None:
        await self.job.updateProgress(value)


Handler = Callable[[JobContext], Awaitable[dict[str, Any]]]
