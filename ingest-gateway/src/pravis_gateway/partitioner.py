"""Kafka's default partitioner (murmur2 of the key), as the gateway computes it for every `events` key.

aiokafka's `murmur2` is a transcription of the Java client that reads the key byte by byte; this one reads
its 4-byte words in one `struct` call and drops the masks that Python's unbounded ints make redundant: a half
to a third of the CPU per key (docs/scaling.md). A batch of many users computes it once per distinct key.
"""

import struct
from functools import lru_cache

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(key: bytes) -> int:
    """The 32-bit MurmurHash2 Kafka's clients compute of a record key (`Utils.murmur2` in the Java client)."""
    length = len(key)
    h = _SEED ^ length
    for k in struct.unpack_from(f"<{length >> 2}I", key):
        k = (k * _M) & _MASK
        k ^= k >> 24
        h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    if tail := length & 3:
        h = ((h ^ int.from_bytes(key[length - tail :], "little")) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


@lru_cache(maxsize=65536)
def partition_of(key: bytes, partitions: int) -> int:
    """Index of `key`'s partition among `partitions` under Kafka's default partitioner, remembered for the
    most recent keys: a user's key comes back with each of the user's batches."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
