"""What the gateway knows about surveys, in memory (pure, no I/O): the newest definition of every survey,
the segments of every id, every person's survey history as the warehouse last showed it (with the person of
each of their ids that is not its own person), and the survey events this gateway accepted since, so
`GET /api/v1/surveys` answers from dictionaries, as the feature-flag endpoint does. Caps count every id of
the person: a user who logged in is capped by what their anonymous id already saw.

The warehouse's view (`WarehouseView`, built by `pravis_gateway.surveys.store` off the event loop and swapped
in whole by `replace_warehouse_view`, so a request never sees half of a reload) lags by the loader's
delay plus the refresh interval; a survey event this gateway accepted counts at once (`note`) and is kept for
`recent_ttl_s`, so a reload right after answering does not show the survey again. An event seen both ways
counts once (`SurveyHistory.merge` unites timestamps, kept to the millisecond as the warehouse does). The
recent memory is a TTL cache bounded in ids, so it cannot grow with the events processed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cachetools import TTLCache
from pravis_schemas.events import SurveyAnswer
from pravis_schemas.surveys import StoredSurvey, SurveyHistory, answer_errors, surveys_to_show

from pravis_gateway.scrub import scrub_text

KIND_OF_EVENT = {"survey_shown": "shown", "survey_dismissed": "dismissed", "survey_answered": "answered"}
Id = tuple[str, str]
"""(project_id, distinct_id)"""


@dataclass(frozen=True)
class WarehouseView:
    """What the warehouse last showed, read as one piece by a request."""

    segments: Mapping[Id, frozenset[str]] = field(default_factory=dict)
    history: Mapping[Id, Mapping[str, SurveyHistory]] = field(default_factory=dict)
    """(project_id, person_id) -> survey key -> history"""
    person: Mapping[Id, str] = field(default_factory=dict)
    """(project_id, distinct_id) -> person_id, for the ids that are not their own person"""
    ids_of: Mapping[Id, list[str]] = field(default_factory=dict)
    """(project_id, person_id) -> those ids: what this gateway accepted under any of them counts too"""

    @classmethod
    def of(
        cls,
        segments: Mapping[Id, frozenset[str]],
        history: Mapping[Id, Mapping[str, SurveyHistory]],
        persons: Mapping[Id, str],
    ) -> WarehouseView:
        ids_of: dict[Id, list[str]] = {}
        for (project_id, distinct_id), person in persons.items():
            ids_of.setdefault((project_id, person), []).append(distinct_id)
        return cls(segments, history, persons, ids_of)


def answer_of(stored: StoredSurvey) -> dict[str, Any]:
    """A survey as `GET /api/v1/surveys` answers it."""
    definition = stored.definition
    return {
        "id": definition.key,
        "version": stored.version,
        "name": definition.name,
        "questions": [q.model_dump(mode="json") for q in definition.questions],
    }


class SurveyBook:
    def __init__(self, recent_ttl_s: float, recent_ids: int) -> None:
        self._by_key: dict[tuple[str, str], StoredSurvey] = {}
        self._saved: dict[tuple[str, str], StoredSurvey] = {}
        """Definitions saved by this gateway that no reload has shown yet."""
        self._by_project: dict[str, list[StoredSurvey]] = {}
        self._answers: dict[tuple[str, str], dict[str, Any]] = {}
        """(project_id, survey key) -> `answer_of` the survey, made once per definition, not per request"""
        self._view = WarehouseView()
        self._recent: TTLCache[Id, dict[str, SurveyHistory]] = TTLCache(recent_ids, recent_ttl_s)
        self.loaded = False

    def replace_definitions(self, surveys: Iterable[StoredSurvey]) -> None:
        """The newest definitions a reload read, except one this gateway saved since that the reload's read
        may have missed (it ran before the insert): kept until the warehouse shows its version. Without it a
        survey was unknown for a reload's interval after it was created, and its answers refused."""
        loaded = {(s.project_id, s.definition.key): s for s in surveys}
        for key, saved in list(self._saved.items()):
            if key in loaded and loaded[key].version >= saved.version:
                del self._saved[key]
            else:
                loaded[key] = saved
        self._by_key = loaded
        self._index()

    def put_definition(self, stored: StoredSurvey) -> None:
        """A definition this gateway just saved, served before the next reload."""
        key = (stored.project_id, stored.definition.key)
        self._by_key[key] = self._saved[key] = stored
        self._index()

    def _index(self) -> None:
        by_project: dict[str, list[StoredSurvey]] = {}
        for (project_id, _), stored in sorted(self._by_key.items()):
            by_project.setdefault(project_id, []).append(stored)
        self._by_project = by_project
        self._answers = {key: answer_of(stored) for key, stored in self._by_key.items()}

    def replace_warehouse_view(self, view: WarehouseView) -> None:
        self._view = view
        self.loaded = True

    def cached(self, project_id: str, key: str) -> StoredSurvey | None:
        return self._by_key.get((project_id, key))

    def cached_for(self, project_id: str) -> list[StoredSurvey]:
        return list(self._by_project.get(project_id, []))

    def answer(self, stored: StoredSurvey) -> dict[str, Any]:
        return self._answers[(stored.project_id, stored.definition.key)]

    def segments_of(self, project_id: str, ids: Iterable[str]) -> frozenset[str]:
        segments = self._view.segments
        return frozenset().union(*(segments.get((project_id, i), frozenset()) for i in ids))

    def history_of(self, project_id: str, ids: Iterable[str]) -> dict[str, SurveyHistory]:
        """The history of the persons of `ids` (every id of theirs the warehouse knows), plus what this
        gateway accepted since under any of those ids."""
        ids, view = list(ids), self._view
        persons = sorted({view.person.get((project_id, i), i) for i in ids})
        every_id = {*persons, *(i for p in persons for i in view.ids_of.get((project_id, p), ()))}
        sources = [view.history.get((project_id, p), {}) for p in persons]
        sources += [self._recent.get((project_id, i), {}) for i in sorted(every_id | set(ids))]
        merged: dict[str, SurveyHistory] = {}
        for source in sources:
            for key, history in source.items():
                merged[key] = merged.get(key, SurveyHistory()).merge(history)
        return merged

    def for_user(self, project_id: str, ids: list[str], now: datetime) -> list[StoredSurvey]:
        """What the first of `ids` (user_id, else anonymous_id; both when given) should see now."""
        return surveys_to_show(
            self._by_project.get(project_id, []),
            ids[0],
            self.segments_of(project_id, ids),
            self.history_of(project_id, ids),
            now,
        )

    def answer_errors(self, project_id: str, survey_id: str, answers: list[SurveyAnswer]) -> list[str]:
        return answer_errors(self.cached(project_id, survey_id), survey_id, answers)

    @staticmethod
    def scrubbed(answers: list[SurveyAnswer]) -> list[SurveyAnswer]:
        """Open-text answers scrubbed of PII like every free-text field."""
        return [a.model_copy(update={"text": scrub_text(a.text)}) if a.text else a for a in answers]

    def note(
        self, project_id: str, ids: Iterable[str], event_type: str, survey_id: str, at: datetime
    ) -> None:
        """A survey event this gateway accepted: counts for targeting until the warehouse shows it."""
        kind = KIND_OF_EVENT[event_type]
        at = at.replace(microsecond=at.microsecond // 1000 * 1000)  # the warehouse keeps milliseconds
        for distinct_id in ids:
            key = (project_id, distinct_id)
            recent = self._recent.get(key) or {}
            getattr(recent.setdefault(survey_id, SurveyHistory()), kind).append(at)
            self._recent[key] = recent
