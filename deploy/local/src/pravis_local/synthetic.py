"""Deterministic synthetic product data for tests, benchmarks and `pravis demo` (pure: no I/O).

`generate(SyntheticConfig(...))` returns the flat rows of the `events` topic (as the gateway writes them:
`pravis_schemas.EnrichedEvent.to_json()` field names, datetimes as ISO-8601 UTC strings) and of
`feedback.scored`, shaped like the Pravis boutique: users with a first day and a decaying return rate
(retention), sessions of page views, clicks, feature use, voice flows (voice_request → transcription → tts
sharing an interaction_id, with repeated commands just inside and just outside the 30 s window),
conversations, API calls, errors, experiment exposures, custom events, feedback on AI interactions, survey
answers and feature requests, sessions across midnight, anonymous visitors, two projects. After them come
`journeys` persons per project seen under several ids (docs/identity.md): anonymous browsing, a login in the
middle of a session (voice search before it, checkout after it), logout, a second user on the same device, a
second account merged by an `alias`, and pre-login rows that arrive late. They draw their random numbers after
every other user, so the existing users' rows do not change with them. Shopping, error messages and surveys
draw from random streams of their own, so the rows of every other kind are the ones the same seed gave before
they existed.

Delivery faults are explicit so a test can replay them: `duplicates` are exact copies of on-time rows (a Kafka
redelivery or a client retry), `late_events` are rows of the last `late_days` days held back to be delivered
after a first rollup run. The same seed always gives the same rows.

`events_by_user(config)` yields the same on-time rows one user at a time, for data sets too large to hold
(a benchmark's 10M events take tens of GB as dicts).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

FEATURES = ("wishlist", "size_guide", "voice_search", "outfit_builder", "gift_cards")
INTENTS = ("find red shoes", "add to cart", "track my order", "show similar items", "checkout", "size help")
ENDPOINTS = (("/api/v1/products/{id}", "GET"), ("/api/v1/search", "GET"), ("/api/v1/cart", "POST"))
SPEECH_MODELS = ("whisper-small", "whisper-large", None)
CHAT_MODELS = ("gpt-4o-mini", "llama-3-8b")
PAGES = ("/", "/shoes", "/bags", "/cart", "/p/123", "/p/456")
COMPLAINTS = (
    "too slow to answer",
    "did not understand my command",
    "wrong shoes again, useless search",
    "voice search keeps failing",
    "slow and wrong results",
)
PRAISE = ("great, found it fast", "love the voice search", "helpful suggestions", "quick checkout")
NEUTRAL = ("ok", "fine I guess", None)
SKUS = ("SHOE-RED-38", "SHOE-BLK-41", "BAG-TOTE", "BELT-BRN", "SCARF-SILK")
CURRENCIES = {"default": ("EUR", "EUR", "EUR", "USD"), "shop-b": ("USD", "USD", "GBP")}
"""Order currencies per project (weighted by repetition); any other project pays in EUR."""
APP_VERSIONS = ("2.3.0", "2.4.0", None)
ERROR_MESSAGES = (
    "Cannot read properties of undefined (reading 'price')",
    "Cannot read properties of undefined (reading 'size')",
    "Failed to fetch /api/v1/cart/{n}",
    "Timeout after {n}ms",
    'Product "SHOE-{n}" not found',
    None,
)
"""Error messages, `{n}` replaced by a number: several occurrences of a few patterns."""


@dataclass(frozen=True)
class SyntheticConfig:
    seed: int = 7
    start: date = date(2024, 3, 4)
    days: int = 21
    users: int = 60
    """Users per project; one in `anonymous_every` only ever sends an anonymous_id."""
    projects: tuple[str, ...] = ("default", "shop-b")
    anonymous_every: int = 5
    return_rate: float = 0.55
    """Chance a user comes back on a given day in their first week; decays by `decay` per week."""
    decay: float = 0.8
    max_sessions_per_day: int = 3
    max_events_per_session: int = 14
    duplicate_rate: float = 0.03
    late_rate: float = 0.05
    late_days: int = 3
    """Late rows come from sessions that started in the last `late_days` days of the period."""
    scored_share: float = 0.9
    """Share of feedback events the stream tier scored (feedback_scored rows)."""
    journeys: int = 8
    """Persons per project seen under several ids (`_Generator.journey`); from the fifth on, the alias of
    a second account arrives late."""


@dataclass
class Dataset:
    config: SyntheticConfig
    events: list[dict[str, Any]] = field(default_factory=list)
    """On-time rows, each event_id once."""
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    """Exact copies of some on-time rows."""
    late_events: list[dict[str, Any]] = field(default_factory=list)
    scored_feedback: list[dict[str, Any]] = field(default_factory=list)
    """feedback.scored rows of on-time feedback, some scored twice (the later scored_at wins)."""
    late_scored_feedback: list[dict[str, Any]] = field(default_factory=list)

    @property
    def end(self) -> date:
        """Last day of the period."""
        return self.config.start + timedelta(days=self.config.days - 1)

    def all_events(self) -> list[dict[str, Any]]:
        """Every distinct event once (on time and late): what exact queries must count."""
        return self.events + self.late_events


NPS_VALUES = (0, 3, 5, 6, 7, 8, 8, 9, 9, 10, 10, 10)
SURVEY_TEXTS = ("Love the voice search", "Checkout is slow and frustrating", "More sizes please")
REQUEST_TITLES = ("Dark mode", "dark-mode", "Wishlist sharing", "Apple Pay", "Apple  pay")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def json_rows(rows: list[dict[str, Any]]) -> list[bytes]:
    """Rows as JSON objects, ready for `INSERT ... FORMAT JSONEachRow` or a Kafka topic."""
    return [orjson.dumps(row) for row in rows]


class _Generator:
    def __init__(self, config: SyntheticConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.shop = random.Random(f"{config.seed}:shop")
        self.messages = random.Random(f"{config.seed}:messages")
        self.survey_rng = random.Random(f"surveys-{config.seed}")
        self.dataset = Dataset(config)
        self.late_from = datetime.combine(
            config.start + timedelta(days=config.days - config.late_days), datetime.min.time(), UTC
        )
        self.period_end = datetime.combine(
            config.start + timedelta(days=config.days), datetime.min.time(), UTC
        )

    def uid(self, rng: random.Random | None = None) -> str:
        return str(uuid.UUID(int=(rng or self.rng).getrandbits(128), version=4))

    def run(self) -> Dataset:
        for project in self.config.projects:
            for index in range(self.config.users):
                self.user(project, index, self.dataset.events, self.dataset.late_events)
        for project in self.config.projects:
            for index in range(self.config.journeys):
                self.journey(project, index, self.dataset.events, self.dataset.late_events)
        self.faults()
        return self.dataset

    def by_user(self) -> Iterator[list[dict[str, Any]]]:
        # `late` stays empty (events_by_user requires late_rate=0) but sessions still make the same rng draws
        # for it as in `run`, which keeps the on-time rows identical.
        late: list[dict[str, Any]] = []
        for project in self.config.projects:
            for index in range(self.config.users):
                rows: list[dict[str, Any]] = []
                self.user(project, index, rows, late)
                yield rows
        for project in self.config.projects:
            for index in range(self.config.journeys):
                rows = []
                self.journey(project, index, rows, late)
                yield rows

    def user(
        self, project: str, index: int, on_time: list[dict[str, Any]], late: list[dict[str, Any]]
    ) -> None:
        config, rng = self.config, self.rng
        identity = (
            {"anonymous_id": f"anon-{index:05d}"}
            if index % config.anonymous_every == config.anonymous_every - 1
            else {"user_id": f"u-{index:05d}"}
        )
        first = rng.randrange(0, max(1, config.days * 2 // 3))
        for offset in range(first, config.days):
            weeks = (offset - first) / 7
            if offset != first and rng.random() >= config.return_rate * config.decay**weeks:
                continue
            day = self.day(offset)
            for _ in range(rng.randint(1, config.max_sessions_per_day)):
                self.session(project, identity, day, on_time, late)

    def day(self, offset: int) -> datetime:
        return datetime.combine(self.config.start + timedelta(days=offset), datetime.min.time(), UTC)

    def journey(
        self, project: str, index: int, on_time: list[dict[str, Any]], late: list[dict[str, Any]]
    ) -> None:
        """One person under several ids: anonymous browsing, a login mid-session, returns sending both ids
        (the JS SDK keeps the anonymous id after `identify()`). By `index % 4`, then: nothing more (0); a
        logout, anonymous browsing on a fresh id and a second user logging in on it (1); a second account with
        its own history, merged by an explicit alias (2); no identify at all, only events carrying both ids,
        a second user later logging in on the same device without a reset, and an alias of an anonymous id
        from another device (3). Journey 0 logs in on the last day and its pre-login rows arrive late."""
        config, rng = self.config, self.rng
        last = config.days - 1
        user, anon = f"u-j{index:03d}", f"anon-j{index:03d}a"
        kind = index % 4
        start = max(0, last - 1) if index == 0 else rng.randrange(0, max(1, config.days // 2))
        login = min(last, start + rng.randint(0, 2))
        for offset in range(start, login):
            self.session(project, {"anonymous_id": anon}, self.day(offset), on_time, late)
        if kind == 2:  # the second account's own history, before the login on this device
            for offset in range(max(0, start - 3), start + 1):
                self.session(project, {"user_id": f"{user}w"}, self.day(offset), on_time, late)
        pre_login = late if index == 0 else on_time
        self.login_session(project, user, anon, self.day(login), kind != 3, pre_login, on_time)
        both = {"user_id": user, "anonymous_id": anon}
        visits = [o for o in range(login + 1, config.days) if rng.random() < config.return_rate]
        for offset in visits:
            self.session(project, both, self.day(offset), on_time, late)
        after = min(last, max([login, *visits]) + 1)
        moment = self.day(after) + timedelta(hours=23)
        if kind == 1:
            fresh = f"anon-j{index:03d}b"
            self.session(project, {"anonymous_id": fresh}, self.day(after), on_time, late)
            self.login_session(project, f"{user}s", fresh, self.day(after), True, on_time, on_time)
        elif kind == 2:
            alias_late = index >= 4
            alias = {"project_id": project, "user_id": user, "session_id": None}
            row = self.event(
                alias,
                "alias",
                self.day(last) + timedelta(hours=23) if alias_late else moment,
                previous_id=f"{user}w",
            )
            if alias_late:
                row["received_at"] = iso(parse_iso(row["timestamp"]) + timedelta(days=config.late_days))
            (late if alias_late else on_time).append(row)
        elif kind == 3:
            self.session(
                project, {"user_id": f"{user}t", "anonymous_id": anon}, self.day(after), on_time, late
            )
            other = f"anon-j{index:03d}c"
            self.session(project, {"anonymous_id": other}, self.day(start), on_time, late)
            alias = {"project_id": project, "user_id": user, "session_id": None}
            on_time.append(self.event(alias, "alias", moment, previous_id=other))

    def login_session(
        self,
        project: str,
        user: str,
        anon: str,
        day: datetime,
        identify: bool,
        before: list[dict[str, Any]],
        after: list[dict[str, Any]],
    ) -> None:
        """A session that starts anonymous (a page, a voice search) and goes on logged in (identify, when
        sent, then a checkout carrying both ids): the flow that must count as one person."""
        rng = self.rng
        now = day + timedelta(seconds=rng.randint(0, 80_000), milliseconds=rng.randint(0, 999))
        anonymous = {"project_id": project, "anonymous_id": anon, "session_id": f"s-{self.uid()[:13]}"}
        rows = [
            self.event(anonymous, "page_view", now, page_url=f"https://boutique.example{rng.choice(PAGES)}")
        ]
        self.voice_flow(rows, anonymous, now + timedelta(seconds=rng.uniform(5, 60)), INTENTS[0])
        if before is not after:
            for row in rows:
                row["received_at"] = iso(parse_iso(row["timestamp"]) + timedelta(days=self.config.late_days))
        before.extend(rows)
        known = {**anonymous, "user_id": user}
        now += timedelta(seconds=rng.uniform(90, 300))
        if identify:
            after.append(self.event(known, "identify", now, properties={"plan": rng.choice(("free", "pro"))}))
        after.append(
            self.event(
                known, "button_click", now + timedelta(seconds=rng.uniform(5, 60)), button_id="checkout"
            )
        )
        bought = self.shopping(known, now + timedelta(seconds=90), True)
        after.extend(row for row in bought if parse_iso(row["timestamp"]) < self.period_end)

    def session(
        self,
        project: str,
        identity: dict[str, str],
        day: datetime,
        on_time: list[dict[str, Any]],
        late: list[dict[str, Any]],
    ) -> None:
        rng = self.rng
        if rng.random() < 0.06:  # starts just before midnight, ends on the next day
            start = day + timedelta(seconds=86_400 - rng.randint(30, 600))
        else:
            start = day + timedelta(seconds=rng.randint(0, 86_000 - 3_600), milliseconds=rng.randint(0, 999))
        session_id = None if rng.random() < 0.03 else f"s-{self.uid()[:13]}"
        base = {"project_id": project, **identity, "session_id": session_id}
        rows: list[dict[str, Any]] = []
        now = start
        last_intent: str | None = None
        interactions: list[tuple[str, bool]] = []
        for _ in range(rng.randint(1, self.config.max_events_per_session)):
            kind = rng.choices(
                (
                    "page",
                    "click",
                    "feature",
                    "voice",
                    "conversation",
                    "api",
                    "error",
                    "exposure",
                    "custom",
                    "fb",
                ),
                (26, 10, 14, 16, 5, 14, 3, 3, 2, 7),
            )[0]
            if kind == "voice":
                repeat = last_intent is not None and rng.random() < 0.35
                gap = rng.choice((5.0, 12.5, 29.0, 30.0, 31.0, 45.0)) if repeat else rng.uniform(1, 90)
                now += timedelta(seconds=gap)
                intent = last_intent if repeat else (None if rng.random() < 0.1 else rng.choice(INTENTS))
                interaction, ok = self.voice_flow(rows, base, now, intent)
                interactions.append((interaction, ok))
                last_intent = intent
                continue
            now += timedelta(seconds=rng.uniform(1, 90), milliseconds=rng.randint(0, 999))
            if kind == "page":
                rows.append(
                    self.event(
                        base, "page_view", now, page_url=f"https://boutique.example{rng.choice(PAGES)}"
                    )
                )
            elif kind == "click":
                rows.append(
                    self.event(base, "button_click", now, button_id=rng.choice(("buy", "add", "share")))
                )
            elif kind == "feature":
                rows.append(self.event(base, "feature_use", now, feature_name=rng.choice(FEATURES)))
            elif kind == "conversation":
                interaction = f"i-{self.uid()[:12]}"
                ok = rng.random() < 0.9
                rows.append(
                    self.ai_event(
                        base,
                        "conversation",
                        now,
                        interaction,
                        ok,
                        rng.choice(CHAT_MODELS),
                        completed=rng.choice((True, True, False, None)),
                        follow_up=rng.choice((True, False, False, None)),
                        turn_count=rng.randint(1, 8),
                    )
                )
                interactions.append((interaction, ok))
            elif kind == "api":
                rows.append(self.api_event(base, now))
            elif kind == "error":
                error = self.event(base, "error", now, error_type=rng.choice(("TypeError", "NetworkError")))
                message = self.messages.choice(ERROR_MESSAGES)
                if message is not None:
                    error["error_message"] = message.replace("{n}", str(self.messages.randint(1, 99_999)))
                rows.append(error)
            elif kind == "exposure":
                rows.append(
                    self.event(
                        base,
                        "experiment_exposure",
                        now,
                        experiment_key="voice_button",
                        variant=rng.choice(("control", "big_button")),
                        in_experiment=True,
                    )
                )
            elif kind == "custom":
                rows.append(self.event(base, "wishlist_shared", now, properties={"items": rng.randint(1, 5)}))
            elif kind == "fb" and interactions:
                interaction, ok = rng.choice(interactions)
                rows.append(self.feedback(base, now, interaction, ok))
        if rng.random() < 0.3:  # a server call outside any session, on behalf of the user
            rows.append(
                self.api_event({**base, "session_id": None}, start + timedelta(seconds=rng.uniform(0, 600)))
            )
        used_ai = bool(interactions) or any(row["event_type"] == "voice_request" for row in rows)
        may_be_late = start >= self.late_from
        for row in rows:
            if parse_iso(row["timestamp"]) >= self.period_end:
                continue  # keep the period closed: nothing after its last day
            if may_be_late and self.rng.random() < self.config.late_rate:
                row["received_at"] = iso(parse_iso(row["timestamp"]) + timedelta(days=self.config.late_days))
                late.append(row)
            else:
                on_time.append(row)
        for row in self.shopping(base, now, used_ai):
            if parse_iso(row["timestamp"]) >= self.period_end:
                continue
            if may_be_late and self.shop.random() < self.config.late_rate:
                row["received_at"] = iso(parse_iso(row["timestamp"]) + timedelta(days=self.config.late_days))
                late.append(row)
            else:
                on_time.append(row)

        # Never late and checked without the main stream, so the other rows stay as they were.
        on_time += [r for r in self.survey_rows(base, start) if parse_iso(r["timestamp"]) < self.period_end]

    def shopping(self, base: dict[str, Any], now: datetime, used_ai: bool) -> list[dict[str, Any]]:
        """What a session buys, if anything: views, cart, checkout, the order (sometimes sent twice, the
        second time possibly the next day), sometimes a refund days later. Amounts are decimal strings, as
        the gateway publishes them."""
        shop = self.shop
        if shop.random() >= (0.3 if used_ai else 0.1):
            return []
        currency = shop.choice(CURRENCIES.get(base["project_id"], ("EUR",)))
        version = shop.choice(APP_VERSIONS)
        common = {"currency": currency, "app_version": version}
        items = [
            {
                "sku": sku,
                "quantity": shop.randint(1, 3),
                "price": str(Decimal(shop.randint(500, 20_000)) / 100),
            }
            for sku in shop.sample(SKUS, shop.randint(1, 3))
        ]
        total = sum(Decimal(item["price"]) * item["quantity"] for item in items)
        discount = Decimal(shop.choice((0, 0, 0, 250, 1_000))) / 100
        revenue = str(max(total - discount, Decimal(0)))
        rows = []
        for item in items:
            now += timedelta(seconds=shop.uniform(3, 40))
            rows.append(
                self.shop_event(base, "product_viewed", now, sku=item["sku"], price=item["price"], **common)
            )
        now += timedelta(seconds=shop.uniform(3, 40))
        rows.append(self.shop_event(base, "product_added", now, sku=items[0]["sku"], quantity=1, **common))
        order_id = f"o-{self.shop_uid()[:12]}"
        now += timedelta(seconds=shop.uniform(10, 60))
        rows.append(self.shop_event(base, "checkout_started", now, order_id=order_id, items=items, **common))
        now += timedelta(seconds=shop.uniform(10, 120))
        order = {"order_id": order_id, "revenue": revenue, "items": items, **common}
        if discount:
            order |= {"coupon": "SPRING", "discount": str(discount)}
        rows.append(self.shop_event(base, "order_completed", now, **order))
        if shop.random() < 0.15:  # a retried checkout page or a server confirmation: one order, two events
            later = now + (
                timedelta(days=1) if shop.random() < 0.3 else timedelta(seconds=shop.uniform(1, 30))
            )
            rows.append(self.shop_event(base, "order_completed", later, **order))
        if shop.random() < 0.12:
            refunded = (
                revenue if shop.random() < 0.5 else str((Decimal(revenue) / 3).quantize(Decimal("0.01")))
            )
            refund = {"order_id": order_id, "revenue": refunded, **common}
            when = now + timedelta(days=shop.randint(1, 5), seconds=shop.uniform(0, 3_600))
            rows.append(self.shop_event({**base, "session_id": None}, "order_refunded", when, **refund))
            if shop.random() < 0.3:  # the refund reported by the shop's back office too
                rows.append(self.shop_event({**base, "session_id": None}, "order_refunded", when, **refund))
        return rows

    def shop_uid(self) -> str:
        return str(uuid.UUID(int=self.shop.getrandbits(128), version=4))

    def shop_event(
        self, base: dict[str, Any], event_type: str, moment: datetime, **fields: Any
    ) -> dict[str, Any]:
        return {
            "event_id": self.shop_uid(),
            "event_type": event_type,
            "timestamp": iso(moment),
            **{k: v for k, v in base.items() if v is not None and k != "project_id"},
            "properties": {},
            **{k: v for k, v in fields.items() if v is not None},
            "project_id": base["project_id"],
            "received_at": iso(moment + timedelta(milliseconds=self.shop.randint(20, 900))),
        }

    def event(
        self,
        base: dict[str, Any],
        event_type: str,
        moment: datetime,
        rng: random.Random | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        rng = rng or self.rng
        row = {
            "event_id": self.uid(rng),
            "event_type": event_type,
            "timestamp": iso(moment),
            **{k: v for k, v in base.items() if v is not None and k != "project_id"},
            "properties": fields.pop("properties", {}),
            **{k: v for k, v in fields.items() if v is not None},
            "project_id": base["project_id"],
            "received_at": iso(moment + timedelta(milliseconds=rng.randint(20, 900))),
        }
        return row

    def survey_rows(self, base: dict[str, Any], start: datetime) -> list[dict[str, Any]]:
        """A quarterly NPS survey shown in some sessions (dismissed or answered) and feature requests with
        votes, drawn from a random stream of their own so that adding them changed no other row."""
        rng = self.survey_rng
        rows = []
        at = start + timedelta(seconds=rng.uniform(5, 60))
        if rng.random() < 0.12:
            survey = {"survey_id": "ux-quarterly", "survey_version": 1}
            rows.append(self.event(base, "survey_shown", at, rng, **survey))
            at += timedelta(seconds=rng.uniform(3, 40))
            fate = rng.random()
            if fate < 0.3:
                rows.append(self.event(base, "survey_dismissed", at, rng, **survey))
            elif fate < 0.9:
                answers = [{"question_id": "nps", "value": rng.choice(NPS_VALUES), "choices": []}]
                if rng.random() < 0.6:
                    answers.append({"question_id": "why", "choices": [], "text": rng.choice(SURVEY_TEXTS)})
                rows.append(self.event(base, "survey_answered", at, rng, survey_answers=answers, **survey))
        if rng.random() < 0.05:
            kind = "feature_request" if rng.random() < 0.3 else "feature_request_vote"
            title = rng.choice(REQUEST_TITLES)
            rows.append(self.event(base, kind, at + timedelta(seconds=1), rng, feature_request_title=title))
        return rows

    def ai_event(
        self,
        base: dict[str, Any],
        event_type: str,
        moment: datetime,
        interaction: str,
        ok: bool,
        model: str | None,
        **fields: Any,
    ) -> dict[str, Any]:
        duration = round(self.rng.lognormvariate(6.2, 0.6), 1)
        return self.event(
            base,
            event_type,
            moment,
            interaction_id=interaction,
            success=ok,
            request_duration_ms=min(duration, 60_000.0),
            model_used=model,
            request_size_bytes=self.rng.randint(200, 20_000),
            response_size_bytes=self.rng.randint(200, 40_000),
            error_type=None if ok else "Timeout",
            **fields,
        )

    def voice_flow(
        self, rows: list[dict[str, Any]], base: dict[str, Any], moment: datetime, intent: str | None
    ) -> tuple[str, bool]:
        rng = self.rng
        interaction = f"i-{self.uid()[:12]}"
        ok = rng.random() < 0.88
        model = rng.choice(SPEECH_MODELS)
        rows.append(self.ai_event(base, "voice_request", moment, interaction, ok, model, intent=intent))
        if rng.random() < 0.8:
            rows.append(
                self.ai_event(
                    base,
                    "transcription",
                    moment + timedelta(milliseconds=300),
                    interaction,
                    ok,
                    model,
                    transcription_corrected=rng.choice((True, False, False, False, None)),
                )
            )
        if ok and rng.random() < 0.5:
            rows.append(
                self.ai_event(base, "tts", moment + timedelta(milliseconds=700), interaction, True, "piper")
            )
        return interaction, ok

    def api_event(self, base: dict[str, Any], moment: datetime) -> dict[str, Any]:
        rng = self.rng
        endpoint, method = rng.choice(ENDPOINTS)
        status = rng.choices((200, 201, 304, 404, 429, 500, 503), (70, 5, 5, 8, 2, 6, 4))[0]
        return self.event(
            base,
            "api_request",
            moment,
            endpoint=endpoint,
            method=method,
            status=status,
            duration_ms=round(rng.lognormvariate(4.0, 0.8), 2),
            cache_hit=rng.choice((True, False, False, None)),
        )

    def feedback(self, base: dict[str, Any], moment: datetime, interaction: str, ok: bool) -> dict[str, Any]:
        rng = self.rng
        rating = rng.choices((1, 2, 3, 4, 5), (1, 1, 2, 4, 5) if ok else (5, 4, 2, 1, 1))[0]
        pool = COMPLAINTS if rating <= 2 else PRAISE if rating >= 4 else NEUTRAL
        comment = rng.choice(pool)
        return self.event(
            base,
            "feedback",
            moment,
            interaction_id=interaction,
            rating=rating,
            comment=comment,
            context=rng.choice(("voice_search", "assistant", None)),
        )

    def scored(self, row: dict[str, Any], when: datetime, bias: float = 0.0) -> dict[str, Any]:
        rating = row["rating"]
        score = round(max(-1.0, min(1.0, (rating - 3) / 2 * 0.8 + bias)), 4)
        label = "positive" if score >= 0.05 else "negative" if score <= -0.05 else "neutral"
        fields = (
            "event_id",
            "project_id",
            "timestamp",
            "user_id",
            "anonymous_id",
            "session_id",
            "interaction_id",
        )
        return {
            **{k: row[k] for k in fields if k in row},
            "rating": rating,
            **({"comment": row["comment"]} if "comment" in row else {}),
            "sentiment_score": score,
            "sentiment_label": label,
            "scored_at": iso(when),
        }

    def faults(self) -> None:
        rng, data = self.rng, self.dataset
        data.duplicates = [dict(row) for row in data.events if rng.random() < self.config.duplicate_rate]
        for rows, target in (
            (data.events, data.scored_feedback),
            (data.late_events, data.late_scored_feedback),
        ):
            for row in rows:
                if row["event_type"] != "feedback" or rng.random() >= self.config.scored_share:
                    continue
                scored_at = parse_iso(row["received_at"]) + timedelta(seconds=2)
                target.append(self.scored(row, scored_at))
                if rng.random() < 0.1:  # re-scored later by a newer model: this score must win
                    target.append(self.scored(row, scored_at + timedelta(hours=1), bias=-0.5))


def generate(config: SyntheticConfig | None = None) -> Dataset:
    return _Generator(config or SyntheticConfig()).run()


def events_by_user(config: SyntheticConfig) -> Iterator[list[dict[str, Any]]]:
    """`generate(config).events`, one list per user (every user, in the same order, possibly empty), holding
    only that user's rows.

    Duplicates and late rows need the whole data set (duplicates are drawn after every user), so both rates
    must be 0.
    """
    if config.duplicate_rate or config.late_rate:
        raise ValueError(
            "events_by_user makes on-time rows only: set duplicate_rate=0 and late_rate=0, or use generate()"
        )
    return _Generator(config).by_user()
