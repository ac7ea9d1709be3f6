"""The gateway's murmur2 against aiokafka's transcription of the Java client and the Java client's output."""

import os

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from pravis_gateway.partitioner import murmur2, partition_of


def test_murmur2_equals_aiokafkas_on_every_length_and_id_shape() -> None:
    keys = [os.urandom(length) for length in range(70) for _ in range(50)]
    keys += [f"anon-{n:08x}".encode() for n in range(2000)] + [b"\xff" * n for n in range(9)]
    assert [murmur2(k) for k in keys] == [aiokafka_murmur2(k) for k in keys]


# Partitions among 1000 that the Java client's default partitioner gives these keys (the vectors kafka-python
# checks its partitioner against).
@pytest.mark.parametrize(
    ("key", "partition"),
    [(b"", 681), (b"a", 524), (b"ab", 434), (b"abc", 107), (b"123456789", 566), (b"\x00 ", 742)],
)
def test_partition_of_matches_the_java_client(key: bytes, partition: int) -> None:
    assert partition_of(key, 1000) == partition
