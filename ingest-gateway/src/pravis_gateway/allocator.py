"""glibc's allocator kept from shrinking the heap after every request (the gateway's largest single saving).

Each request allocates and frees a few hundred small buffers (its events' rows, orjson's output buffers).
glibc returns the freed top of the heap to the kernel as soon as it passes 128 KiB and grows it again on the
next request, two system calls and page faults per request; with `M_TOP_PAD` it keeps that much spare heap
instead. Measured figures are in docs/scaling.md. Other C libraries (musl, macOS) are left as they are.
"""

import ctypes

M_TOP_PAD = -2  # glibc's <malloc.h>
TOP_PAD_BYTES = 16 * 1024 * 1024


def keep_heap_top(pad_bytes: int = TOP_PAD_BYTES) -> bool:
    """Ask glibc to keep `pad_bytes` of spare heap; False where the C library has no `mallopt`."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return mallopt(M_TOP_PAD, pad_bytes) == 1
