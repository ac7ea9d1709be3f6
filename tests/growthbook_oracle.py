"""GrowthBook's own Python SDK (the `growthbook` dev dependency) as the oracle for experiment assignment.

Pravis hashes, buckets and assigns as GrowthBook's v2 hashing does; these helpers ask GrowthBook itself,
through its public `GrowthBook.run`, so a test's expected variant never comes from the code under test.
`python -m tests.growthbook_oracle` recomputes every vector in `schemas/experiments/assignment_vectors.json`
that is not one of GrowthBook's published cases, and adds ids from many scripts (the JS SDK reads the same
file, so it is held to the same oracle).
"""

import json
import random
from pathlib import Path
from typing import Any

import growthbook
from growthbook import Experiment, GrowthBook
from growthbook.core import gbhash

VECTORS_PATH = Path(__file__).parents[1] / "schemas" / "experiments" / "assignment_vectors.json"
SDK_SOURCE = f"growthbook-python {growthbook.__version__}"

# Ids across scripts and planes: Latin with diacritics (precomposed and combining), Cyrillic, Greek, Arabic
# (right to left), Hebrew, Devanagari, CJK, Hangul, emoji outside the BMP (surrogate pairs in UTF-16, where
# hashing per code point and per code unit differ), a ZWJ sequence, and ASCII punctuation.
SCRIPTS = (
    "é",
    "e\u0301",
    "ñandú",
    "пользователь",
    "χρήστης",
    "مستخدم",
    "משתמש",
    "उपयोगकर्ता",
    "用户",
    "ユーザー",
    "사용자",
    "😀",
    "👩\u200d💻",
    "\U0001d518\U0001d530\U0001d522\U0001d52f",  # "User" in mathematical Fraktur, outside the BMP
    "a b\tc",
    "'\"\\;",
)


def growthbook_hash(seed: str, unit_id: str) -> float:
    value = gbhash(seed, unit_id, 2)
    assert value is not None
    return value


def growthbook_assignment(experiment: dict[str, Any], unit_id: str) -> dict[str, Any]:
    """`{variant, variation_id, in_experiment}` as GrowthBook assigns `unit_id` to a Pravis definition."""
    result = GrowthBook(attributes={"id": unit_id}).run(
        Experiment(
            key=experiment["key"],
            variations=[v["key"] for v in experiment["variants"]],
            weights=[v["weight"] for v in experiment["variants"]],
            coverage=experiment.get("coverage", 1.0),
            seed=experiment.get("seed") or experiment["key"],
            status=experiment.get("status", "running"),
            hashVersion=2,
        )
    )
    return {"variant": result.value, "variation_id": result.variationId, "in_experiment": result.inExperiment}


def unit_ids(count: int, seed: int) -> list[str]:
    """`count` ids mixing plain ASCII with every script above, reproducible from `seed`."""
    rng = random.Random(seed)
    ids = []
    for i in range(count):
        parts = [rng.choice(SCRIPTS) for _ in range(rng.randint(0, 3))]
        ids.append(f"{''.join(parts)}-{i}" if parts else f"user-{i}")
    return ids


def experiment(key: str, weights: list[float], coverage: float = 1.0, seed: str | None = None) -> dict:
    definition = {
        "key": key,
        "status": "running",
        "coverage": coverage,
        "variants": [{"key": f"v{i}", "weight": w} for i, w in enumerate(weights)],
    }
    return {**definition, "seed": seed} if seed else definition


# Shapes the oracle tests and the vectors cover: even and uneven weights, partial coverage, a custom seed.
EXPERIMENTS = (
    experiment("checkout-button", [0.5, 0.5]),
    experiment("three-way", [0.2, 0.3, 0.5], coverage=0.4),
    experiment("pricing", [0.1, 0.9], coverage=0.75, seed="pricing-v2"),
    experiment("four-way", [0.25, 0.25, 0.25, 0.25], coverage=0.05),
)


def regenerate() -> None:
    vectors = json.loads(VECTORS_PATH.read_text())
    for case in vectors["hash"]:
        if case["source"] != "growthbook":
            case.update(expected=growthbook_hash(case["seed"], case["value"]), source=SDK_SOURCE)
    for case in vectors["assignments"]:
        if case["source"] != "growthbook":
            expected = growthbook_assignment(case["experiment"], case["user_id"])
            case.update(expected=expected, source=SDK_SOURCE)
    published = [c for c in vectors["hash"] if c["source"] == "growthbook"]
    ours = [c for c in vectors["hash"] if c["source"] != "growthbook" and c["value"] not in SCRIPTS]
    vectors["hash"] = published + ours
    vectors["hash"] += [
        {"seed": seed, "value": value, "expected": growthbook_hash(seed, value), "source": SDK_SOURCE}
        for seed in ("checkout-button", "用户-seed")
        for value in SCRIPTS
    ]
    vectors["description"] = (
        "Shared assignment vectors: the Python assignment the gateway and the Python SDK share "
        "(pravis_schemas.assignment) and the JS SDK (sdks/js/src/experiments.js) must both reproduce "
        "every case. "
        "Entries with source 'growthbook' are GrowthBook's published SDK test cases (tests/cases.json, spec "
        "0.7.1); entries with source 'growthbook-python ...' were computed by GrowthBook's own Python SDK "
        "(`python -m tests.growthbook_oracle` recomputes them). None pins Pravis' own output. hash: exact; "
        "bucket_ranges: within 1e-9."
    )
    VECTORS_PATH.write_text(json.dumps(vectors, ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__":
    regenerate()
