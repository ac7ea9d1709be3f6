"""The persons of a set of event rows, by the rules of docs/identity.md, in plain Python: the independent
model the tests of rollups, panels and ready queries compare the warehouse's person counts with. It reads the
rules, not pravis_schemas.identity or the SQL."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

EXPLICIT_LINKS = ("identify", "alias")


def persons(events: Iterable[dict[str, Any]]) -> Callable[[dict[str, Any]], str]:
    """`person(row)`: the person_id of an event row's `coalesce(user_id, anonymous_id)` ('' for neither)."""
    events = list(events)
    identified = {(e["project_id"], e["user_id"]) for e in events if e.get("user_id")}
    # Rule 1: each anonymous id's candidate users, explicit links before implicit ones, then the earliest,
    # then the smallest user id. Timestamps are ISO strings of one width, so they sort as times.
    owner: dict[tuple[str, str], tuple[int, str, str]] = {}
    merged: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for e in events:
        project, user = e["project_id"], e.get("user_id")
        if not user:
            continue
        links = []
        if e.get("anonymous_id") and e["anonymous_id"] != user:
            links.append((e["anonymous_id"], 0 if e["event_type"] in EXPLICIT_LINKS else 1))
        if e["event_type"] == "alias":
            links.append((e["previous_id"], 0))
            if (project, e["previous_id"]) in identified:  # rule 2: only an alias merges two users
                a, b = (project, user), (project, e["previous_id"])
                merged.setdefault(a, set()).add(b)
                merged.setdefault(b, set()).add(a)
        for linked, priority in links:
            candidate = (priority, e["timestamp"], user)
            if (project, linked) not in owner or candidate < owner[(project, linked)]:
                owner[(project, linked)] = candidate

    component: dict[tuple[str, str], str] = {}
    for start in merged:
        if start in component:
            continue
        seen, todo = {start}, [start]
        while todo:
            for neighbour in merged[todo.pop()]:
                if neighbour not in seen:
                    seen.add(neighbour)
                    todo.append(neighbour)
        smallest = min(user for _, user in seen)
        component.update(dict.fromkeys(seen, smallest))

    def person_of(project: str, some_id: str) -> str:
        if (project, some_id) in identified:
            return component.get((project, some_id), some_id)
        if (project, some_id) in owner:
            return person_of(project, owner[(project, some_id)][2])
        return some_id

    def person(row: dict[str, Any]) -> str:
        some_id = row.get("user_id") or row.get("anonymous_id") or ""
        return person_of(row["project_id"], some_id) if some_id else ""

    return person
