"""HTTP content codings of the ClickHouse HTTP interface: request bodies in, response bodies out.

ClickHouse uses the standard codings (gzip, deflate = zlib, zstd, lz4 = lz4 frame format). Clients such as
clickhouse-connect compress every insert block separately, so a request body is a run of concatenated frames.
"""

import zlib
from collections.abc import Callable
from typing import Protocol

import lz4.frame
import zstandard


class _Decompressor(Protocol):
    eof: bool
    unused_data: bytes

    def decompress(self, data: bytes) -> bytes: ...


_DECOMPRESSORS: dict[str, Callable[[], _Decompressor]] = {
    "gzip": lambda: zlib.decompressobj(16 + zlib.MAX_WBITS),
    "x-gzip": lambda: zlib.decompressobj(16 + zlib.MAX_WBITS),
    "deflate": lambda: zlib.decompressobj(zlib.MAX_WBITS),
    "zstd": lambda: zstandard.ZstdDecompressor().decompressobj(),
    "lz4": lz4.frame.LZ4FrameDecompressor,
}

# brotli is not installed here, so "br" is never chosen for responses.
RESPONSE_ENCODINGS = frozenset({"zstd", "lz4", "gzip", "deflate"})


class UnsupportedEncodingError(ValueError):
    """The client used a Content-Encoding this server cannot decode."""


class BodyDecoder:
    """Incrementally decodes a request body that may consist of several concatenated compressed frames."""

    def __init__(self, encoding: str | None) -> None:
        encoding = (encoding or "identity").strip().lower()
        if encoding not in _DECOMPRESSORS and encoding != "identity":
            raise UnsupportedEncodingError(f"Unknown Content-Encoding: {encoding}")
        self._factory = _DECOMPRESSORS.get(encoding)
        self._current = self._factory() if self._factory else None

    def feed(self, data: bytes) -> bytes:
        if self._current is None or not data:
            return data
        out = []
        while data:
            if self._current.eof:
                self._current = self._factory()  # type: ignore[misc]
            out.append(self._current.decompress(data))
            data = self._current.unused_data if self._current.eof else b""
        return b"".join(out)


class BodyEncoder:
    """Streaming compressor for one response body in the given coding."""

    def __init__(self, encoding: str, level: int | None = None) -> None:
        self.encoding = encoding
        if encoding == "gzip":
            self._obj = zlib.compressobj(level or 3, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
            self._head = b""
        elif encoding == "deflate":
            self._obj = zlib.compressobj(level or 3)
            self._head = b""
        elif encoding == "zstd":
            self._obj = zstandard.ZstdCompressor(level=level or 3).compressobj()
            self._head = b""
        elif encoding == "lz4":
            self._obj = lz4.frame.LZ4FrameCompressor()
            self._head = self._obj.begin()
        else:
            raise UnsupportedEncodingError(encoding)

    def compress(self, data: bytes) -> bytes:
        head, self._head = self._head, b""
        return head + self._obj.compress(data)

    def finish(self) -> bytes:
        head, self._head = self._head, b""
        return head + self._obj.flush()


def negotiate(accept_encoding: str | None) -> str | None:
    """Pick the first coding the client lists that we support (clients list their preference first)."""
    for item in (accept_encoding or "").lower().split(","):
        name, _, params = item.strip().partition(";")
        if name in RESPONSE_ENCODINGS and params.replace(" ", "") not in ("q=0", "q=0.0"):
            return name
    return None
