"""Soak: N minutes of mixed faults over two `flakeguard worker` processes, then a count against truth.

Not a test (it runs for minutes and prints figures): `.venv/bin/python bench/soak.py --minutes 10`.
Everything runs on loopback and is started here: a redis-server with AOF, a database of its own
(reached through a TCP proxy, so that PostgreSQL can be cut off), the fake GitHub serving a generated
repository, and two worker processes with production timings (30 s locks, 5 s stalled checks,
30 s shutdown grace). While runs are enqueued at a steady rate, one fault every `--fault-every`
seconds, in turn:

- kill -9 of a worker (restarted at once);
- SIGTERM of a worker (restarted once it has exited);
- Redis kill -9, down 20 s, restarted from its append-only file;
- PostgreSQL unreachable for 30 s;
- GitHub failing ~30 % of requests (5xx, resets, lost answers, secondary limits) for 40 s.

Then it waits for the queues to drain and prints: runs enqueued, jobs completed, jobs dead-lettered
with their reasons, executions lost and duplicated (every run has exactly `--tests-per-run`
executions), jobs stuck, and the peak RSS of each worker slot (over its restarts).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.faults.harness import (  # noqa: E402
    Chaos,
    Jobs,
    Tally,
    WorkerProcess,
    own_database,
    populate,
    tally,
    until,
    worker_env,
)
from tests.faults.redis_servers import RedisServer  # noqa: E402
from tests.faults.tcp_proxy import TcpProxy  # noqa: E402

from flakeguard.jobs.names import QueueName  # noqa: E402
from flakeguard.testing.fake_github import FakeGitHub, Fault  # noqa: E402

FAULTS = (
    "kill -9 worker",
    "SIGTERM worker",
    "Redis down 20 s",
    "PostgreSQL down 30 s",
    "GitHub 30 % faults 40 s",
)


@dataclass
class Slot:
    """One of the two worker processes, restarted after each kill; its peak RSS over all of them."""

    name: str
    env: dict[str, str]
    workdir: Path
    process: WorkerProcess | None = None
    incarnation: int = 0
    peak_rss_kib: int = 0
    all: list[WorkerProcess] = field(default_factory=list)

    def start(self) -> None:
        self.incarnation += 1
        self.process = WorkerProcess(self.env, self.workdir, f"{self.name}-{self.incarnation}").start()
        self.all.append(self.process)

    def sample_rss(self) -> None:
        if self.process is None or not self.process.alive():
            return
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    self.peak_rss_kib = max(self.peak_rss_kib, int(line.split()[1]))
        except OSError:
            pass


async def soak(
    minutes: float, tests_per_run: int, runs_per_s: float, fault_every: float, database: str
) -> int:
    total_runs = max(10, int(minutes * 60 * runs_per_s))
    workdir = Path(tempfile.mkdtemp(prefix="flakeguard-soak-"))
    print(
        f"soak: {minutes} min, {total_runs} runs x {tests_per_run} tests, a fault every {fault_every:.0f} s"
    )
    print(f"      logs in {workdir}")
    redis = RedisServer(workdir, None, "--appendonly", "yes", "--appendfsync", "everysec").start()
    faults_done: Counter[str] = Counter()
    try:
        with FakeGitHub() as gh:
            run_ids = populate(gh, runs=total_runs, tests_per_run=tests_per_run)
            gh.inject("/_blob/*", Fault.slow(0.5), times=-1)  # jobs that take a while: faults catch them
            real = urlsplit(database)
            with TcpProxy(real.hostname or "127.0.0.1", real.port or 5432) as proxy:
                via_proxy = database.replace(f"{real.hostname}:{real.port}", f"127.0.0.1:{proxy.port}")
                env = worker_env(
                    redis.url,
                    via_proxy,
                    gh,
                    QUEUE_STALLED_JOB_TIMEOUT_MS="30000",
                    QUEUE_STALLED_CHECK_INTERVAL_MS="5000",
                    OUTAGE_RETRY_DELAY_MS="5000",
                    LOG_LEVEL="info",
                )
                slots = [Slot("w1", env, workdir), Slot("w2", env, workdir)]
                for slot in slots:
                    slot.start()
                jobs = Jobs(redis.url)
                try:
                    started = time.monotonic()
                    deadline = started + minutes * 60
                    enqueued = 0
                    next_fault = started + fault_every / 2
                    fault_index = 0
                    while time.monotonic() < deadline:
                        due = min(total_runs, int((time.monotonic() - started) * runs_per_s) + 1)
                        if due > enqueued and not redis_down(redis):
                            await jobs.enqueue_ingests(run_ids[enqueued:due])
                            enqueued = due
                        for slot in slots:
                            slot.sample_rss()
                        if time.monotonic() >= next_fault:
                            name = FAULTS[fault_index % len(FAULTS)]
                            print(f"  {time.monotonic() - started:6.0f} s  fault: {name}", flush=True)
                            await inject(name, slots, redis, proxy, gh, workdir, fault_index)
                            faults_done[name] += 1
                            fault_index += 1
                            next_fault = time.monotonic() + fault_every
                        await asyncio.sleep(0.5)
                    if enqueued < total_runs:
                        await jobs.enqueue_ingests(run_ids[enqueued:])
                        enqueued = total_runs
                    print("  faults over; waiting for the queues to drain", flush=True)
                    for slot in slots:
                        if slot.process is None or not slot.process.alive():
                            slot.start()

                    async def drained() -> bool:
                        for slot in slots:
                            slot.sample_rss()
                        return await jobs.all_finished()

                    await until(drained, 900, "all queues drained", *[s.process for s in slots if s.process])
                    result = await tally(jobs, database, run_ids[:enqueued], tests_per_run)
                    counts = await jobs.producer.counts()
                    reasons = Counter(reason for dead in result.dead_lettered.values() for _, reason in dead)
                    print_report(
                        enqueued, counts, result, reasons, slots, faults_done, time.monotonic() - started
                    )
                    for slot in slots:
                        if slot.process is not None and slot.process.alive():
                            slot.process.signal(signal.SIGTERM)
                            await slot.process.wait_exit(60)
                    clean = (result.lost, result.duplicated, result.dead_lettered, result.stuck) == (
                        0,
                        0,
                        {},
                        {},
                    )
                    return 0 if clean else 1
                finally:
                    for slot in slots:
                        for process in slot.all:
                            process.stop()
                    await jobs.close()
    finally:
        redis.stop()


def redis_down(redis: RedisServer) -> bool:
    return redis.process is None


async def inject(
    name: str, slots: list[Slot], redis: RedisServer, proxy: TcpProxy, gh: FakeGitHub, workdir: Path, n: int
) -> None:
    slot = slots[n % len(slots)]
    if name == "kill -9 worker" and slot.process is not None:
        slot.process.signal(signal.SIGKILL)
        await slot.process.wait_exit(30)
        slot.start()
    elif name == "SIGTERM worker" and slot.process is not None:
        slot.process.signal(signal.SIGTERM)
        code = await slot.process.wait_exit(120)
        print(f"           {slot.process.name} exited {code}", flush=True)
        slot.start()
    elif name == "Redis down 20 s":
        port = redis.port
        redis.stop()
        await asyncio.sleep(20)
        restarted = RedisServer(workdir, port, "--appendonly", "yes", "--appendfsync", "everysec").start()
        redis.process = restarted.process
    elif name == "PostgreSQL down 30 s":
        proxy.cut()
        await asyncio.sleep(30)
        proxy.restore()
    elif name == "GitHub 30 % faults 40 s":
        with Chaos(gh, rate=0.3, seed=n):
            await asyncio.sleep(40)
        gh.inject("/_blob/*", Fault.slow(0.5), times=-1)  # Chaos clears every fault when it ends


def print_report(
    enqueued: int,
    counts: dict[str, dict[str, int]],
    result: Tally,
    reasons: Counter[str],
    slots: list[Slot],
    faults: Counter[str],
    seconds: float,
) -> None:
    ingest, analyze = counts[QueueName.RUNS_INGEST.value], counts[QueueName.RUNS_ANALYZE.value]
    print()
    print(f"wall time                 {seconds:8.0f} s")
    print(
        f"faults injected           {sum(faults.values()):8d}  "
        + ", ".join(f"{k}: {v}" for k, v in faults.items())
    )
    print(f"runs enqueued             {enqueued:8d}")
    print(f"ingest jobs completed     {ingest['completed']:8d}")
    print(f"analyze jobs completed    {analyze['completed']:8d}")
    dead = sum(reasons.values())
    print(
        f"jobs dead-lettered        {dead:8d}  "
        + (", ".join(f"{r!r}: {c}" for r, c in reasons.items()) or "")
    )
    print(f"executions lost           {result.lost:8d}")
    print(f"executions duplicated     {result.duplicated:8d}")
    print(f"jobs stuck                {sum(sum(s.values()) for s in result.stuck.values()):8d}")
    for slot in slots:
        print(f"peak RSS {slot.name} ({slot.incarnation} starts) {slot.peak_rss_kib / 1024:8.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--tests-per-run", type=int, default=200)
    parser.add_argument("--runs-per-second", type=float, default=0.5)
    parser.add_argument("--fault-every", type=float, default=60.0, help="seconds between faults")
    args = parser.parse_args()
    with own_database() as database:  # created and dropped outside the event loop
        code = asyncio.run(
            soak(args.minutes, args.tests_per_run, args.runs_per_second, args.fault_every, database)
        )
    sys.exit(code)


if __name__ == "__main__":
    main()
