"""Reading a request body, decompressing gzip/deflate without trusting the ratio.

How many bytes a client may send, and how slowly, is bounded for every endpoint by `BodyLimits` in front of
the app (see `pravis_schemas.http_limits`); this module bounds what those bytes inflate to.
"""

import zlib

from fastapi import Request


class BodyTooLarge(Exception):
    pass


class UnsupportedEncoding(Exception):
    pass


_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


async def read_body(request: Request, limit: int) -> bytes:
    """The decompressed body; BodyTooLarge once the inflated bytes pass `limit`; zlib.error for a compressed
    body that is broken, truncated, or followed by other bytes (a second gzip member is not read: refusing it
    beats dropping the events it holds)."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "", *_WBITS):
        raise UnsupportedEncoding(encoding)
    inflater = zlib.decompressobj(_WBITS[encoding]) if encoding in _WBITS else None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        if inflater is not None:
            # max_length bounds each step, so a zip bomb is refused before it is inflated in memory.
            chunk = inflater.decompress(chunk, limit + 1 - size)
            if inflater.unconsumed_tail:
                raise BodyTooLarge
            if inflater.unused_data:
                raise zlib.error("bytes follow the end of the compressed body")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    if inflater is not None and not inflater.eof:
        raise zlib.error("truncated compressed body")
    return b"".join(chunks)
