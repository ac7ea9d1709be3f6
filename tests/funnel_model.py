"""An independent pure-Python funnel, drop-off and path model: the expected values of the funnel tests.

Written from docs/funnels.md, not from the SQL: events are plain dicts (`event_id`, `event_type`, `ts` as an
aware datetime, `person`, `session`, `feature_name`, any breakdown column or `properties`), deduplicated by
event_id, grouped per unit, sorted by (timestamp, event_id) and walked in Python.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pravis_schemas.funnels import FunnelDefinition, Matcher

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
AI_REQUESTS = {"voice_request", "transcription", "tts", "conversation"}  # docs/funnels.md, not the code


def _ms(ts: datetime) -> int:
    """Milliseconds since the epoch, truncated as DateTime64(3) stores them (integer arithmetic: no float)."""
    return (ts - EPOCH) // timedelta(milliseconds=1)


def _matches(matcher: Matcher, event: dict[str, Any]) -> bool:
    if event["event_type"] != matcher.event_type:
        return False
    for flt in matcher.filters:
        if flt.property.startswith("properties."):
            value = event.get("properties", {}).get(flt.property.removeprefix("properties."))
        else:
            value = event.get(flt.property)
        if value is None or _text(value) != flt.equals_text:
            return False
    return True


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def label(event: dict[str, Any]) -> str:
    feature = event.get("feature_name") or ""
    return event["event_type"] + (f":{feature}" if feature else "")


def quantile_exact(values: list[float], level: float) -> float | None:
    """ClickHouse's quantileExact: the value at position floor(level * n) of the sorted values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(math.floor(level * len(ordered)), len(ordered) - 1)]


def dedup(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list({e["event_id"]: e for e in events}.values())


def _units(definition: FunnelDefinition, events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    units: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in dedup(events):
        unit = event["person"] if definition.count_by == "person" else event.get("session") or ""
        if unit:
            units[unit].append(event)
    for evs in units.values():
        evs.sort(key=lambda e: (_ms(e["ts"]), e["event_id"]))
    return units


def _walk(definition: FunnelDefinition, evs: list[dict], entry: int) -> list[int | None]:
    """Per step the position in evs of the event reaching it (None if not reached)."""
    deadline = _ms(evs[entry]["ts"]) + definition.window_s * 1000
    steps = definition.steps
    within = [i for i in range(entry + 1, len(evs)) if _ms(evs[i]["ts"]) <= deadline]
    reached: list[int | None] = [entry]
    if definition.order == "any_order":
        firsts = []
        for step in steps[1:]:
            hit = next((i for i in within if _matches(step, evs[i])), None)
            if hit is not None:
                firsts.append(hit)
        firsts.sort()
        return reached + firsts + [None] * (len(steps) - 1 - len(firsts))
    for step in steps[1:]:
        previous = reached[-1]
        if previous is None:
            reached.append(None)
        elif definition.order == "strict":
            following = previous + 1
            ok = following in within and _matches(step, evs[following])
            reached.append(following if ok else None)
        else:
            reached.append(next((i for i in within if i > previous and _matches(step, evs[i])), None))
    return reached


def _excluded(definition: FunnelDefinition, evs: list[dict], reached: list[int | None]) -> bool:
    deadline = _ms(evs[reached[0]]["ts"]) + definition.window_s * 1000
    for exclusion in definition.exclusions:
        start, end = definition.exclusion_span(exclusion)
        begin, finish = reached[start - 1], reached[end - 1]
        if begin is None:
            continue
        for i in range(begin + 1, len(evs)):
            inside = i < finish if finish is not None else _ms(evs[i]["ts"]) <= deadline
            if inside and _matches(exclusion, evs[i]):
                return True
    return False


def walks(
    definition: FunnelDefinition,
    events: list[dict[str, Any]],
    first: date,
    last: date,
    breakdown: str | None = None,
    per_day: bool = False,
    variants: dict[str, str] | None = None,
    since: dict[str, datetime] | None = None,
) -> list[dict[str, Any]]:
    """One walk per unit (and entry day) that entered in [first, last]: period, breakdown, reached, evs. With
    `since`, only its units, each entering at or after its own time (an experiment's exposure)."""
    out = []
    for unit, evs in _units(definition, events).items():
        if since is not None and unit not in since:
            continue
        entries = [
            i
            for i, e in enumerate(evs)
            if first <= e["ts"].date() <= last
            and _matches(definition.steps[0], e)
            and (since is None or e["ts"] >= since[unit])
        ]
        if per_day:
            by_day: dict[date, int] = {}
            for i in entries:
                by_day.setdefault(evs[i]["ts"].date(), i)
            starts = sorted(by_day.items())
        else:
            starts = [(first, entries[0])] if entries else []
        for period, entry in starts:
            reached = _walk(definition, evs, entry)
            if _excluded(definition, evs, reached):
                continue
            entry_event = evs[entry]
            if breakdown is None:
                value = ""
            elif breakdown == "ai_assistant":
                deadline = _ms(entry_event["ts"]) + definition.window_s * 1000
                used = any(e["event_type"] in AI_REQUESTS and _ms(e["ts"]) <= deadline for e in evs[entry:])
                value = "used" if used else "not used"
            elif breakdown.startswith("variant:"):
                value = (variants or {}).get(entry_event["person"], "(not exposed)")
            elif breakdown.startswith("properties."):
                raw = entry_event.get("properties", {}).get(breakdown.removeprefix("properties."))
                value = "(none)" if raw is None else _text(raw)
            else:
                raw = entry_event.get(breakdown)
                value = "(none)" if raw is None else _text(raw)
            out.append({"period": period, "unit": unit, "breakdown": value, "reached": reached, "evs": evs})
    return out


def funnel(walk_rows: list[dict[str, Any]], steps: int) -> list[tuple]:
    """Rows as funnel_sql returns them: (period, breakdown, step, reached, entered, conversion_from_start,
    conversion_from_previous, dropped, median/p90 from previous, median/p90 from start)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for w in walk_rows:
        groups[(w["period"], w["breakdown"])].append(w)
    rows = []
    for (period, value), members in sorted(groups.items()):
        counts = [sum(1 for w in members if w["reached"][k] is not None) for k in range(steps)]
        for k in range(steps):
            times_prev, times_start = [], []
            for w in members:
                r, evs = w["reached"], w["evs"]
                if k > 0 and r[k] is not None:
                    times_prev.append((_ms(evs[r[k]]["ts"]) - _ms(evs[r[k - 1]]["ts"])) / 1000)
                    times_start.append((_ms(evs[r[k]]["ts"]) - _ms(evs[r[0]]["ts"])) / 1000)
            previous = counts[k - 1] if k > 0 else counts[k]
            rows.append(
                (
                    period,
                    value,
                    k + 1,
                    counts[k],
                    counts[0],
                    counts[k] / counts[0] if counts[0] else None,
                    counts[k] / previous if previous else None,
                    previous - counts[k],
                    *(
                        (None, None, None, None)
                        if k == 0
                        else (
                            quantile_exact(times_prev, 0.5),
                            quantile_exact(times_prev, 0.9),
                            quantile_exact(times_start, 0.5),
                            quantile_exact(times_start, 0.9),
                        )
                    ),
                )
            )
    return rows


def dropoff(
    definition: FunnelDefinition, walk_rows: list[dict[str, Any]], step: int, last: date, limit: int = 10
) -> list[tuple]:
    """(kind, event, units) for the units that reached `step` but not the next: next event and exit point (the
    session's last event before the end of `last` plus the window: as far as the query reads)."""
    horizon = (
        _ms(datetime.combine(last, datetime.min.time(), tzinfo=UTC)) + 86_400_000 + definition.window_s * 1000
    )
    counts: dict[str, Counter] = {"exit": Counter(), "next": Counter()}
    for w in walk_rows:
        r, evs = w["reached"], w["evs"]
        at = r[step - 1]
        if at is None or r[step] is not None:
            continue
        deadline = _ms(evs[r[0]]["ts"]) + definition.window_s * 1000
        following = at + 1
        nxt = (
            label(evs[following])
            if following < len(evs) and _ms(evs[following]["ts"]) <= deadline
            else "(none)"
        )
        counts["next"][nxt] += 1
        session = evs[at].get("session") or ""
        exit_at = max(
            i for i, e in enumerate(evs) if (e.get("session") or "") == session and _ms(e["ts"]) < horizon
        )
        counts["exit"][label(evs[exit_at])] += 1
    rows = []
    for kind in ("exit", "next"):
        ranked = sorted(counts[kind].items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        rows += [(kind, event, units) for event, units in ranked]
    return rows


def paths(
    events: list[dict[str, Any]],
    first: date,
    last: date,
    start_event: str,
    depth: int,
    window_s: int,
    limit: int,
) -> list[tuple]:
    """(path, steps, units): each person's first start_event in range and the next `depth` events within the
    window, consecutive repeats collapsed."""
    by_person: dict[str, list[dict]] = defaultdict(list)
    for event in dedup(events):
        by_person[event["person"]].append(event)
    counter: Counter = Counter()
    for evs in by_person.values():
        evs.sort(key=lambda e: (_ms(e["ts"]), e["event_id"]))
        start = next(
            (
                i
                for i, e in enumerate(evs)
                if e["event_type"] == start_event and first <= e["ts"].date() <= last
            ),
            None,
        )
        if start is None:
            continue
        end = _ms(evs[start]["ts"]) + window_s * 1000
        labels: list[str] = []
        for e in evs[start:]:
            if _ms(e["ts"]) > end:
                break
            if not labels or labels[-1] != label(e):
                labels.append(label(e))
        path = labels[: depth + 1]
        counter[tuple(path)] += 1
    ranked = sorted(counter.items(), key=lambda kv: (-kv[1], " → ".join(kv[0])))[:limit]
    return [(" → ".join(p), len(p), units) for p, units in ranked]
