"""`keep_heap_top` reaches glibc's `mallopt` on the Linux the gateway runs on."""

import platform

import pytest
from pravis_gateway.allocator import keep_heap_top


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="M_TOP_PAD is glibc's")
def test_glibc_accepts_the_heap_top_pad() -> None:
    assert keep_heap_top(16 * 1024 * 1024) is True
