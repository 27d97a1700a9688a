"""Queue names, exactly as the original Node worker uses them.

Node BullMQ >= 5.12.12 refuses ':' in queue names; a Node producer reaches the same keys with
`new Queue('ingest', { prefix: 'bull:runs' })` (see docs/OPERATIONS.md, "Node producers").
"""

from __future__ import annotations

from enum import StrEnum


class QueueName(StrEnum):
    RUNS_INGEST = "runs:ingest"
    RUNS_ANALYZE = "runs:analyze"
    TESTS_RECOMPUTE = "tests:recompute"
    POLLING = "polling"


ALL_QUEUES: tuple[QueueName, ...] = tuple(QueueName)


class Priority(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def bullmq(self) -> int:
        """BullMQ priority (1 = first). Every job gets one: an unprioritised job would jump the queue."""
        return {"critical": 1, "high": 2, "normal": 3, "low": 4}[self.value]
