"""Identity stitching shared by the loader, the gateway and the privacy worker (rules in docs/identity.md).

Pure: the components of merged users (rule 2) and the rows that bring `identity_merges` up to date, and the
SQL text every reader of the graph uses: the join that gives an event its person_id, and "all ids of the
person of X". The warehouse objects they read are created by migration 0030_identity.sql.
"""

from collections.abc import Iterable, Mapping

LINKED_IDS_SQL = (
    "WITH (SELECT if(count() = 0, {subject:String}, any(person_id)) FROM person_overrides "
    "WHERE project_id = {project:String} AND distinct_id = {subject:String}) AS person "
    "SELECT DISTINCT distinct_id FROM ("
    "SELECT {subject:String} AS distinct_id UNION ALL SELECT person "
    "UNION ALL SELECT distinct_id FROM person_overrides "
    "WHERE project_id = {project:String} AND person_id = person"
    ") ORDER BY distinct_id"
)
"""Every id whose person is the person of {subject:String} in {project:String}, the subject and the person id
included, one per row in order; only the subject itself for an id nothing is linked to."""


def person_join(events: str = "e", overrides: str = "po") -> str:
    """The join that gives each row of `events` (aliased `events`) its person; pair with `person_id_sql`.
    `person_overrides` has at most one row per id, so the join never multiplies events."""
    return (
        f"LEFT JOIN person_overrides AS {overrides} "
        f"ON {overrides}.project_id = {events}.project_id AND {overrides}.distinct_id = {events}.distinct_id"
    )


def person_id_sql(events: str = "e", overrides: str = "po") -> str:
    """The person_id of an events row under `person_join` (ids without an override are their own person;
    an unmatched LEFT JOIN gives '' under ClickHouse's default join_use_nulls = 0)."""
    return f"if({overrides}.person_id = '', {events}.distinct_id, {overrides}.person_id)"


def components(edges: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Person of every id on an edge: the smallest id of its connected component (rule 2).

    Union-find whose root is always the smallest id seen in the set, so the result depends only on the set of
    edges, never on their order, and repeated or reversed edges change nothing; a chain of merges that comes
    back to an earlier id closes a cycle in the graph, which union-find absorbs instead of looping on it."""
    parent: dict[str, str] = {}

    def root(node: str) -> str:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]  # path halving keeps later look-ups short
            node = parent[node]
        return node

    for left, right in edges:
        a, b = root(left), root(right)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return {node: root(node) for node in parent}


def merge_rows(
    edges: Iterable[tuple[str, str, str]], current: Mapping[tuple[str, str], str]
) -> list[tuple[str, str, str]]:
    """(project_id, user_id, person_id) rows that make `identity_merges` (now `current`, keyed by
    (project_id, user_id)) say what these alias edges (project_id, user_id, previous_id) say: every member of
    a merged component whose person differs, and a row naming itself for a user no longer in any component
    (its alias was deleted). Empty when the table is already right, so writing them is idempotent."""
    by_project: dict[str, list[tuple[str, str]]] = {}
    for project, user, previous in edges:
        by_project.setdefault(project, []).append((user, previous))
    wanted = {
        (project, user): person
        for project, pairs in by_project.items()
        for user, person in components(pairs).items()
    }
    rows = [
        (project, user, person)
        for (project, user), person in wanted.items()
        if current.get((project, user)) != person
    ]
    rows += [
        (project, user, user)
        for (project, user), person in current.items()
        if (project, user) not in wanted and person != user
    ]
    return sorted(rows)
