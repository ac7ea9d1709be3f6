"""A publisher that acknowledges without sending: the gateway's ceiling, measured by `make bench`."""

from collections.abc import Sequence


class NullPublisher:
    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def publish(self, topic: str, records: Sequence[tuple[bytes | None, bytes]]) -> None:
        pass

    async def ping(self) -> bool:
        return True
