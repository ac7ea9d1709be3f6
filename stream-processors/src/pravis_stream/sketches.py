"""Apache DataSketches wrappers: distinct users (HLL) and latency quantiles (KLL), with their error bounds.

- HLL, lg_k=12 (4096 buckets, HLL_4): relative standard error ~1.3% (`hll_sketch.get_rel_err`), so an
  estimate is within ±2.6% of the true distinct count with ~95% confidence; exact below ~200 distinct values
  (list/set mode). Unions of minute sketches (last hour, today) keep the same bound.
- KLL floats, k=200: normalized rank error ~1.33% (`kll_floats_sketch.get_normalized_rank_error(200, False)`),
  i.e. the reported p95 is the value at a rank within p95 ± 1.33% with 99% confidence; exact below 200 items.

Sketches travel as base64 text inside JSON (table values, bucket summaries).
"""

import base64
from collections.abc import Iterable

from datasketches import hll_sketch, hll_union, kll_floats_sketch, tgt_hll_type

HLL_LG_K = 12
KLL_K = 200
HLL_RELATIVE_ERROR = abs(hll_sketch.get_rel_err(True, False, HLL_LG_K, 1))
"""One standard deviation of the HLL estimate, as a fraction of it (~0.013)."""


def new_hll() -> hll_sketch:
    return hll_sketch(HLL_LG_K, tgt_hll_type.HLL_4)


def new_kll() -> kll_floats_sketch:
    return kll_floats_sketch(KLL_K)


def hll_to_text(sketch: hll_sketch) -> str:
    return base64.b64encode(sketch.serialize_compact()).decode()


def hll_from_text(text: str) -> hll_sketch:
    return hll_sketch.deserialize(base64.b64decode(text))


def kll_to_text(sketch: kll_floats_sketch) -> str:
    return base64.b64encode(sketch.serialize()).decode()


def kll_from_text(text: str) -> kll_floats_sketch:
    return kll_floats_sketch.deserialize(base64.b64decode(text))


def union_hll(sketches: Iterable[hll_sketch]) -> hll_sketch:
    union = hll_union(HLL_LG_K)
    for sketch in sketches:
        union.update(sketch)
    return union.get_result(tgt_hll_type.HLL_4)


def distinct(sketches: Iterable[hll_sketch]) -> int:
    return round(union_hll(sketches).get_estimate())


def quantiles(sketch: kll_floats_sketch, ranks: tuple[float, ...] = (0.5, 0.95, 0.99)) -> list[float] | None:
    if sketch.is_empty():
        return None
    return [round(value, 3) for value in sketch.get_quantiles(list(ranks))]
