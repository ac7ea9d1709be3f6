import random

import pytest
from pravis_schemas.identity import components, merge_rows, person_id_sql, person_join


def reachable_minimum(edges: list[tuple[str, str]]) -> dict[str, str]:
    """Independent model: breadth-first search from every id; its person is the smallest id it reaches."""
    neighbours: dict[str, set[str]] = {}
    for a, b in edges:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    person = {}
    for start in neighbours:
        seen, frontier = {start}, [start]
        while frontier:
            frontier = [n for node in frontier for n in neighbours[node] if n not in seen]
            seen.update(frontier)
        person[start] = min(seen)
    return person


def test_chain_cycle_and_repeats_end_in_the_smallest_id() -> None:
    edges = [("u-3", "u-2"), ("u-2", "u-5"), ("u-5", "u-3"), ("u-2", "u-3"), ("u-7", "u-8"), ("u-8", "u-7")]

    assert components(edges) == {"u-2": "u-2", "u-3": "u-2", "u-5": "u-2", "u-7": "u-7", "u-8": "u-7"}


@pytest.mark.parametrize("seed", range(20))
def test_any_order_and_direction_of_random_edges_gives_the_model(seed: int) -> None:
    rng = random.Random(seed)
    ids = [f"u-{n}" for n in range(30)]
    edges = [tuple(rng.sample(ids, 2)) for _ in range(25)]
    shuffled = [(b, a) if rng.random() < 0.5 else (a, b) for a, b in rng.sample(edges, len(edges))]

    assert components(edges) == components(shuffled + edges[:5]) == reachable_minimum(edges)


def test_merge_rows_write_only_what_differs_per_project() -> None:
    edges = [("p", "u-2", "u-1"), ("p", "u-3", "u-2"), ("q", "u-2", "u-9")]
    current = {("p", "u-1"): "u-1", ("p", "u-2"): "u-1", ("q", "u-2"): "u-2", ("q", "u-9"): "u-2"}

    assert merge_rows(edges, current) == [("p", "u-3", "u-1")]
    assert merge_rows(edges, {**current, ("p", "u-3"): "u-1"}) == []


def test_merge_rows_give_a_user_whose_alias_is_gone_its_own_id_back() -> None:
    current = {("p", "u-1"): "u-1", ("p", "u-2"): "u-1", ("p", "u-4"): "u-4"}

    assert merge_rows([], current) == [("p", "u-2", "u-2")]


def test_person_snippets_use_the_given_aliases() -> None:
    assert person_join("ev", "o") == (
        "LEFT JOIN person_overrides AS o ON o.project_id = ev.project_id AND o.distinct_id = ev.distinct_id"
    )
    assert person_id_sql("ev", "o") == "if(o.person_id = '', ev.distinct_id, o.person_id)"
