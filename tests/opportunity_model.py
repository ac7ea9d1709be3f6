"""A dataset built to have a known worst feature, and an independent pure-Python model of the improvement
opportunities (written from docs/queries.md "Improvement opportunities", not from the SQL): the expected
values of tests/test_opportunities.py.

The dataset: one week of sessions of 30 persons (one of them first anonymous, then identified) using two
features and two voice intents. `size_guide` is built to be the worst: low ratings with negative sentiment,
an API failure after most uses, and a saved funnel whose step on it loses most units. Around it: failures
just inside and just outside the attribution window, a failure after two uses (the later one owns it),
repeated commands just inside and outside the repeat window, a repeat, a failure and feedback across the
midnight before the range's last day, uses the day after the range, redelivered events, and a feature whose
name is an SQL injection attempt.
"""

from __future__ import annotations

import math
import random
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pravis_local.synthetic import iso, parse_iso
from pravis_schemas.funnels import FunnelDefinition

from tests import funnel_model
from tests.support.persons import persons

PROJECT = "opp-test"
FIRST, LAST = date(2024, 5, 6), date(2024, 5, 12)  # a Monday-Sunday week
WORST = ("feature", "size_guide")
INJECTION = "x'); DROP TABLE events; --"
FUNNEL = FunnelDefinition(
    key="sizes",
    steps=[
        {"event_type": "page_view"},
        {"event_type": "feature_use", "filters": [{"property": "feature_name", "equals": "size_guide"}]},
        {"event_type": "button_click", "filters": [{"property": "button_id", "equals": "buy"}]},
    ],
    window_s=3600,
)
# Written from the documented formula (docs/queries.md), not imported.
WEIGHTS = {"low": 0.25, "negative": 0.20, "failure": 0.25, "repeat": 0.15, "dropoff": 0.15}
DAMPING = 5
LOW_RATING_MAX = 2
ATTRIBUTION_MS = 60_000
REPEAT_MS = 30_000
AI_TYPES = {"voice_request", "transcription", "tts", "conversation"}


class Builder:
    def __init__(self) -> None:
        self.rng = random.Random(24)
        self.events: list[dict[str, Any]] = []
        self.scored: list[dict[str, Any]] = []

    def add(self, event_type: str, who: dict[str, str], at: datetime, session: str | None, **fields) -> dict:
        row = {
            "event_id": str(uuid.UUID(int=self.rng.getrandbits(128))),
            "event_type": event_type,
            "timestamp": iso(at),
            **who,
            **({"session_id": session} if session else {}),
            "properties": {},
            **fields,
            "project_id": PROJECT,
            "received_at": iso(at + timedelta(seconds=1)),
        }
        self.events.append(row)
        return row

    def voice(self, who, at, session, intent: str | None, ok: bool) -> dict:
        return self.add(
            "voice_request",
            who,
            at,
            session,
            interaction_id=f"i-{self.rng.getrandbits(48):012x}",
            intent=intent,
            request_duration_ms=800.0,
            success=ok,
            model_used="whisper-small",
            **({} if ok else {"error_type": "Timeout"}),
        )

    def feedback(self, who, at, session, rating: int, comment: str, *, context=None, interaction=None):
        row = self.add(
            "feedback",
            who,
            at,
            session,
            rating=rating,
            comment=comment,
            **({"context": context} if context else {}),
            **({"interaction_id": interaction} if interaction else {}),
        )
        if self.rng.random() < 0.8:
            label = "negative" if rating <= 2 else "positive" if rating >= 4 else "neutral"
            self.scored.append(
                {
                    **{k: row[k] for k in ("event_id", "project_id", "timestamp", "session_id") if k in row},
                    **who,
                    "rating": rating,
                    "comment": comment,
                    "sentiment_score": {"negative": -0.6, "positive": 0.6, "neutral": 0.0}[label],
                    "sentiment_label": label,
                    "scored_at": iso(at + timedelta(seconds=2)),
                }
            )

    def api(self, who, at, session, status: int, endpoint: str) -> None:
        self.add(
            "api_request", who, at, session, endpoint=endpoint, method="GET", status=status, duration_ms=40.0
        )


def build() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(events, redelivered copies, feedback_scored rows)."""
    b, rng = Builder(), random.Random(7)
    for day in range(-1, 8):  # the day before and the day after the range too
        midnight = datetime.combine(FIRST + timedelta(days=day), datetime.min.time(), UTC)
        for i in range(30):
            if rng.random() < 0.4:
                continue
            who = {"anonymous_id": "anon-5"} if i == 5 and day < 3 else {"user_id": f"u-{i}"}
            if i == 5 and day == 3:
                b.add("identify", {"user_id": "u-5", "anonymous_id": "anon-5"}, midnight, None)
            session = f"s-{day}-{i}"
            t = midnight + timedelta(hours=1 + i % 20, seconds=i)
            b.add("page_view", who, t, session, page_url="https://boutique.example/")
            if i < 18:
                b.add("feature_use", who, t + timedelta(seconds=10), session, feature_name="size_guide")
                if rng.random() < 0.7:
                    b.api(who, t + timedelta(seconds=15), session, 500, "/api/v1/sizes")
                if rng.random() < 0.3:
                    b.add("button_click", who, t + timedelta(seconds=40), session, button_id="buy")
                if rng.random() < 0.6:
                    b.feedback(
                        who,
                        t + timedelta(seconds=50),
                        session,
                        rng.choice((1, 1, 2, 2, 3)),
                        rng.choice(("sizes are wrong", "size chart useless", "")),
                        context="size_guide",
                    )
            if i % 2 == 0:
                b.add("feature_use", who, t + timedelta(seconds=100), session, feature_name="wishlist")
                if rng.random() < 0.8:
                    b.add("button_click", who, t + timedelta(seconds=110), session, button_id="buy")
                if rng.random() < 0.1:
                    b.api(who, t + timedelta(seconds=130), session, 503, "/api/v1/wishlist")
                if rng.random() < 0.5:
                    b.feedback(
                        who,
                        t + timedelta(seconds=140),
                        session,
                        rng.choice((3, 4, 5, 5)),
                        rng.choice(("love it", "handy", "")),
                        context="wishlist",
                    )
            if i % 3 == 0:
                first = b.voice(
                    who, t + timedelta(seconds=300), session, "track my order", rng.random() < 0.7
                )
                gap = rng.choice((10, 29, 31))
                if rng.random() < 0.5:
                    b.voice(who, t + timedelta(seconds=300 + gap), session, "track my order", True)
                if rng.random() < 0.5:
                    rating = rng.choice((1, 2, 4))
                    b.feedback(
                        who,
                        t + timedelta(seconds=360),
                        session,
                        rating,
                        "did not understand" if rating < 3 else "fine",
                        interaction=first["interaction_id"],
                    )
            if i % 4 == 1:
                b.voice(who, t + timedelta(seconds=500), session, "find red shoes", rng.random() < 0.95)
    # Attribution edges, on the range's second day: a failure 59 s after a use counts, one 61 s after does
    # not; after two uses the later one owns the failure.
    edge = datetime.combine(FIRST + timedelta(days=1), datetime.min.time(), UTC) + timedelta(hours=22)
    who = {"user_id": "u-edge"}
    b.add("feature_use", who, edge, "s-edge-1", feature_name="wishlist")
    b.add(
        "error", who, edge + timedelta(seconds=59), "s-edge-1", error_type="TypeError", error_message="x is 3"
    )
    b.add("feature_use", who, edge + timedelta(minutes=10), "s-edge-2", feature_name="wishlist")
    b.add("error", who, edge + timedelta(minutes=10, seconds=61), "s-edge-2", error_type="TypeError")
    b.add("feature_use", who, edge + timedelta(minutes=20), "s-edge-3", feature_name="wishlist")
    b.add("feature_use", who, edge + timedelta(minutes=20, seconds=5), "s-edge-3", feature_name="size_guide")
    b.api(who, edge + timedelta(minutes=20, seconds=9), "s-edge-3", 502, "/api/v1/sizes")
    b.add("feature_use", who, edge, "s-edge-4", feature_name=INJECTION)
    b.feedback(who, edge + timedelta(seconds=3), "s-edge-4", 1, "it's 'broken'", context=INJECTION)
    # The range's last use of size_guide, its failure after midnight: still counted.
    late = datetime.combine(LAST, datetime.min.time(), UTC) + timedelta(hours=23, minutes=59, seconds=50)
    b.add("feature_use", who, late, "s-edge-5", feature_name="size_guide")
    b.api(who, late + timedelta(seconds=20), "s-edge-5", 500, "/api/v1/sizes")
    # Across a midnight (the mixed path of tests/test_opportunities.py rolls up the days before it and reads
    # the rest raw): a command repeated after midnight, a failure after midnight owned by the use before it,
    # and feedback on the interaction after midnight (its intent counts) and two days later (it does not).
    midnight = datetime.combine(LAST - timedelta(days=1), datetime.min.time(), UTC)
    asked = b.voice(who, midnight - timedelta(seconds=10), "s-edge-6", "find red shoes", True)
    b.voice(who, midnight + timedelta(seconds=10), "s-edge-6", "find red shoes", True)
    b.add("error", who, midnight + timedelta(seconds=5), "s-edge-6", error_type="KeyError")
    b.feedback(
        who, midnight + timedelta(seconds=20), "s-edge-6", 1, "no red", interaction=asked["interaction_id"]
    )
    b.feedback(
        who, midnight + timedelta(days=1, hours=1), "s-edge-7", 2, "late", interaction=asked["interaction_id"]
    )
    # The anonymous visitor logs in on the range's last day: their anonymous uses are the user's.
    b.add("identify", {"user_id": "u-5", "anonymous_id": "anon-5"}, late - timedelta(hours=1), None)
    copies = [dict(row) for row in b.events[::9]]
    return b.events, copies, b.scored


def _ms(text: str) -> int:
    return (parse_iso(text) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def _failure(e: dict[str, Any]) -> str | None:
    """The label `place · type` of a failure (docs/queries.md: errors, 5xx API requests, failed AI
    requests)."""
    if e["event_type"] == "error":
        return e["error_type"]
    if e["event_type"] == "api_request" and e["status"] >= 500:
        return f"{e['method']} {e['endpoint']} · {e.get('error_type') or 'HTTP ' + str(e['status'])}"
    if e["event_type"] in AI_TYPES and e["success"] is False:
        return f"{e['event_type']} {e.get('model_used') or ''} · {e.get('error_type') or 'failure'}"
    return None


def expected(events: list[dict[str, Any]], scored: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every row of the ranked list, worst first, as the model computes it."""
    rows = list({e["event_id"]: e for e in events}.values())
    person = persons(rows)
    start = _ms(iso(datetime.combine(FIRST, datetime.min.time(), UTC)))
    end = _ms(iso(datetime.combine(LAST + timedelta(days=1), datetime.min.time(), UTC)))

    def subject(e: dict[str, Any]) -> tuple[str, str] | None:
        if e["event_type"] == "feature_use":
            return "feature", e["feature_name"]
        if e["event_type"] == "voice_request" and e.get("intent"):
            return "intent", e["intent"]
        return None

    figures: dict[tuple[str, str], dict[str, Any]] = defaultdict(lambda: defaultdict(int))
    users: dict[tuple[str, str], set[str]] = defaultdict(set)
    for e in rows:
        key = subject(e)
        if key and start <= _ms(e["timestamp"]) < end:
            figures[key]["uses"] += 1
            users[key].add(person(e))

    # An interaction's intent: its voice_request's, sent on the feedback's day or the day before.
    voices_of: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for e in rows:
        if e["event_type"] == "voice_request" and e.get("intent"):
            voices_of[e["interaction_id"]].append((e["timestamp"][:10], e["intent"]))
    label_of = {s["event_id"]: s["sentiment_label"] for s in scored}
    worst: dict[tuple[str, str], tuple] = {}
    for e in rows:
        if e["event_type"] != "feedback" or not start <= _ms(e["timestamp"]) < end:
            continue
        about = []
        if e.get("context"):
            about.append(("feature", e["context"]))
        day = date.fromisoformat(e["timestamp"][:10])
        intents = [
            intent
            for sent, intent in voices_of.get(e.get("interaction_id"), [])
            if day - timedelta(days=1) <= date.fromisoformat(sent) <= day
        ]
        if intents:
            about.append(("intent", intents[0]))
        for key in about:
            f = figures[key]
            f["feedback"] += 1
            f["low_rated"] += e["rating"] <= LOW_RATING_MAX
            f["scored"] += e["event_id"] in label_of
            f["negative"] += label_of.get(e["event_id"]) == "negative"
            if e["comment"]:
                candidate = (
                    e["rating"],
                    _ms(e["timestamp"]),
                    e["event_id"],
                    f"({e['rating']}) {e['comment']}",
                )
                worst[key] = min(worst.get(key, candidate), candidate)

    voice = defaultdict(list)
    for e in rows:
        if e["event_type"] == "voice_request" and start - REPEAT_MS <= _ms(e["timestamp"]) < end:
            voice[e.get("session_id")].append(e)
    for session, requests in voice.items():
        requests.sort(key=lambda e: (_ms(e["timestamp"]), e["event_id"]))
        for before, e in zip([None, *requests], requests, strict=False):
            if not e.get("intent") or _ms(e["timestamp"]) < start:
                continue
            f = figures[("intent", e["intent"])]
            f["commands"] += 1
            f["repeated_commands"] += bool(
                session
                and before is not None
                and before.get("intent") == e["intent"]
                and _ms(e["timestamp"]) - _ms(before["timestamp"]) <= REPEAT_MS
            )

    uses_by_session = defaultdict(list)
    for e in rows:
        if subject(e) and e.get("session_id") and start <= _ms(e["timestamp"]) < end + ATTRIBUTION_MS:
            uses_by_session[e["session_id"]].append(e)
    failed_uses: dict[tuple[str, str], set[str]] = defaultdict(set)
    failure_labels: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for e in rows:
        label = _failure(e)
        if (
            label is None
            or not e.get("session_id")
            or not start <= _ms(e["timestamp"]) < end + ATTRIBUTION_MS
        ):
            continue
        before = [u for u in uses_by_session[e["session_id"]] if _ms(u["timestamp"]) <= _ms(e["timestamp"])]
        if not before:
            continue
        use = max(before, key=lambda u: _ms(u["timestamp"]))
        if _ms(e["timestamp"]) - _ms(use["timestamp"]) > ATTRIBUTION_MS or _ms(use["timestamp"]) >= end:
            continue
        key = subject(use)
        figures[key]["failures"] += 1
        failed_uses[key].add(use["event_id"])
        failure_labels[key][label] += 1

    funnel_events = [
        {**e, "ts": parse_iso(e["timestamp"]), "person": person(e), "session": e.get("session_id")}
        for e in rows
    ]
    walks = funnel_model.walks(FUNNEL, funnel_events, FIRST, LAST, per_day=True)
    reached = [sum(1 for w in walks if w["reached"][k] is not None) for k in range(len(FUNNEL.steps))]
    figures[WORST]["funnel_reached"] = reached[1]
    figures[WORST]["funnel_dropped"] = reached[1] - reached[2]

    out = []
    for key, f in figures.items():
        if not f["uses"]:
            continue
        f["failed_uses"] = len(failed_uses[key])
        inputs = [
            ("low", f["low_rated"], f["feedback"]),
            ("negative", f["negative"], f["scored"]),
            ("failure", f["failed_uses"], f["uses"]),
            ("repeat", f["repeated_commands"], f["commands"]),
            ("dropoff", f["funnel_dropped"], f["funnel_reached"]),
        ]
        present = [(WEIGHTS[name], bad / (n + DAMPING)) for name, bad, n in inputs if n > 0]
        severity = sum(w * s for w, s in present) / sum(w for w, _ in present)
        labels = failure_labels[key]
        out.append(
            {
                "kind": key[0],
                "subject": key[1],
                "score": severity * math.log(1 + len(users[key])),
                "users": len(users[key]),
                **{
                    name: f[name]
                    for name in (
                        "uses",
                        "feedback",
                        "low_rated",
                        "scored",
                        "negative",
                        "commands",
                        "repeated_commands",
                        "failed_uses",
                        "failures",
                        "funnel_reached",
                        "funnel_dropped",
                    )
                },
                "worst_comment": worst[key][3] if key in worst else "",
                "top_failure": min(labels, key=lambda label: (-labels[label], label)) if labels else "",
                "failure_labels": dict(labels),
            }
        )
    return sorted(out, key=lambda r: (-round(r["score"], 4), r["kind"], r["subject"]))
