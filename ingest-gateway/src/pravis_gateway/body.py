"""Reading a request body within a byte limit, decompressing gzip/deflate without trusting the ratio."""

import zlib

from fastapi import Request


class BodyTooLarge(Exception):
    pass


class UnsupportedEncoding(Exception):
    pass


_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


async def read_body(request: Request, limit: int) -> bytes:
    """The decompressed body; BodyTooLarge once the wire bytes or the inflated bytes pass `limit`."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "", *_WBITS):
        raise UnsupportedEncoding(encoding)
    inflater = zlib.decompressobj(_WBITS[encoding]) if encoding in _WBITS else None
    chunks: list[bytes] = []
    wire = size = 0
    async for chunk in request.stream():
        wire += len(chunk)
        if wire > limit:
            raise BodyTooLarge
        if inflater is not None:
            # max_length bounds each step, so a zip bomb is refused before it is inflated in memory.
            chunk = inflater.decompress(chunk, limit + 1 - size)
            if inflater.unconsumed_tail:
                raise BodyTooLarge
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    if inflater is not None and not inflater.eof:
        raise zlib.error("truncated compressed body")
    return b"".join(chunks)
