"""Redis connection settings for bullmq.

Every Queue and Worker gets its own connection (sharing one object between a Queue and a Worker
has been reported to empty job data upstream). redis-py 8's default 5 s socket timeout silently
stalls idle bullmq workers (BULLMQ-NOTES.md), so every URL we hand to bullmq carries
`socket_timeout=30`.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.asyncio.cluster import ClusterNode, RedisCluster

SOCKET_TIMEOUT_S = 30
CLUSTER_PREFIX = "{bull}"


def with_socket_timeout(url: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("socket_timeout", str(SOCKET_TIMEOUT_S))
    query.setdefault("socket_connect_timeout", "10")
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """Where the queues live: a standalone Redis URL, or a cluster's seed nodes."""

    url: str | None = None
    cluster_nodes: tuple[tuple[str, int], ...] = ()
    prefix: str = "bull"

    @classmethod
    def cluster(cls, nodes_csv: str, prefix: str = CLUSTER_PREFIX) -> RedisTarget:
        nodes = []
        for item in nodes_csv.split(","):
            host, _, port = item.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"REDIS_CLUSTER_NODES entry {item!r} is not host:port")
            nodes.append((host, int(port)))
        # Each queue's keys must share one slot: a hash-tagged prefix such as {bull}.
        if "{" not in prefix:
            prefix = "{" + prefix + "}"
        return cls(cluster_nodes=tuple(nodes), prefix=prefix)

    @property
    def is_cluster(self) -> bool:
        return bool(self.cluster_nodes)

    def bullmq_connection(self) -> str | RedisCluster:
        """A fresh connection argument for one bullmq Queue or Worker."""
        if self.is_cluster:
            return RedisCluster(
                startup_nodes=[ClusterNode(h, p) for h, p in self.cluster_nodes],
                decode_responses=True,
                socket_timeout=SOCKET_TIMEOUT_S,
            )
        if self.url is None:
            raise RuntimeError("no Redis is configured (REDIS_URL): this process cannot use the queues")
        return with_socket_timeout(self.url)

    def describe(self) -> str:
        """For logs and health: host and port only, never a password."""
        if self.is_cluster:
            return "cluster:" + ",".join(f"{h}:{p}" for h, p in self.cluster_nodes)
        if self.url is None:
            return "none"
        parts = urlsplit(self.url)
        if parts.scheme == "unix":
            return f"unix:{parts.path}"
        return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}"
