"""The other stream workers, over HTTP: where each partition's state lives and asking its owner for its
parts of an answer (scatter-gather), so that any worker answers for the whole project.

Who owns what comes from Faust's partition assignor: every member publishes its live API URL
(`canonical_url`) in the consumer group's metadata and the leader hands every member the map of URLs to
changelog partitions (`table_metadata`). So membership, failover and discovery are Kafka's group protocol;
this module adds only the GET. Alternatives weighed in docs/scaling.md ("N stream workers").

A member that does not answer within `stream_peer_timeout_s` (killed, not yet rebalanced away) is logged and
counted; its partitions are then missing from the answer's `partitions`, never silently merged as zero.
"""

from typing import Any
from urllib.parse import quote

import httpx
import structlog
from aiokafka.partitioner import DefaultPartitioner
from pravis_schemas.read_auth import ReadAuth
from prometheus_client import Counter

from pravis_stream.settings import Settings

log = structlog.get_logger("pravis_stream.peers")

PEER_FAILURES = Counter(
    "pravis_stream_peer_failures_total",
    "Requests to another stream worker for its parts of an answer that failed or timed out",
    ["reason"],
)


def owners(metadata: dict[str, dict[str, set[int]]], topic: str) -> dict[str, set[int]]:
    """URL -> partitions of `topic`, from the assignor's `table_metadata` (URL -> topic -> partitions)."""
    return {url: set(topics.get(topic, ())) for url, topics in metadata.items()}


def key_partition(key: bytes, partitions: int) -> int:
    """The partition the producer's default partitioner (murmur2, as Faust's sends use) gives `key`."""
    every = list(range(partitions))
    return DefaultPartitioner()(key, every, every)


class Peers:
    def __init__(self, settings: Settings) -> None:
        auth = ReadAuth.parse(settings.stream_live_auth) if settings.stream_live_auth else None
        self._client = httpx.AsyncClient(
            timeout=settings.stream_peer_timeout_s,
            headers={"Authorization": auth.authorization()} if auth else {},
        )

    async def get(self, url: str, path: str, params: dict[str, Any]) -> Any | None:
        """The JSON a peer answers at `path`, or None (logged and counted) when it fails or is late."""
        try:
            response = await self._client.get(url.rstrip("/") + path, params=params)
        except httpx.HTTPError as exc:
            PEER_FAILURES.labels(type(exc).__name__).inc()
            log.warning("peer did not answer", url=url, path=path, error=repr(exc))
            return None
        if response.status_code != 200:
            PEER_FAILURES.labels(f"http_{response.status_code}").inc()
            log.warning("peer refused", url=url, path=path, status=response.status_code)
            return None
        return response.json()

    async def close(self) -> None:
        await self._client.aclose()


def parts_path(project: str) -> str:
    return f"/live/{quote(project, safe='')}/parts"
