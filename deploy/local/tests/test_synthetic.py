"""The streamed synthetic data (`events_by_user`) against the in-memory `generate`."""

import itertools
from dataclasses import replace
from datetime import date

import pytest
from pravis_local.synthetic import SyntheticConfig, events_by_user, generate, json_rows

ON_TIME = SyntheticConfig(seed=3, start=date(2024, 3, 4), days=30, users=40, duplicate_rate=0, late_rate=0)


def identity(row: dict) -> tuple[str, str | None, str | None]:
    return row["project_id"], row.get("user_id"), row.get("anonymous_id")


@pytest.mark.parametrize(
    "config", [ON_TIME, replace(ON_TIME, seed=11, days=7, users=9, max_sessions_per_day=2)]
)
def test_streamed_rows_are_the_generated_events_in_order(config: SyntheticConfig) -> None:
    streamed = list(events_by_user(config))
    expected = generate(config).events

    # JSON bytes, not dict equality: the field order of a row is part of what a topic or insert receives.
    assert json_rows([row for rows in streamed for row in rows]) == json_rows(expected)
    plain_users = config.users * len(config.projects)
    assert len(streamed) == plain_users + config.journeys * len(config.projects)
    for rows in streamed[:plain_users]:
        assert len({identity(row) for row in rows}) <= 1


def test_streaming_is_lazy() -> None:
    # A billion users per project can only be read lazily; the first users of the first project draw the same
    # random numbers whatever the user count.
    first = list(itertools.islice(events_by_user(replace(ON_TIME, users=10**9)), 3))
    small = generate(replace(ON_TIME, users=3, journeys=0)).events

    assert json_rows([row for rows in first for row in rows]) == json_rows(
        [row for row in small if row["project_id"] == ON_TIME.projects[0]]
    )


@pytest.mark.parametrize("rates", [{"duplicate_rate": 0.03}, {"late_rate": 0.05}])
def test_faults_need_the_whole_data_set(rates: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="generate"):
        events_by_user(replace(ON_TIME, **rates))


def test_journeys_add_persons_without_changing_the_other_users_rows() -> None:
    config = replace(ON_TIME, late_rate=0.05, days=12)
    with_journeys, without = generate(config), generate(replace(config, journeys=0))

    def plain(rows: list[dict]) -> list[dict]:
        return [row for row in rows if (row.get("user_id") or row["anonymous_id"]).split("-")[1][0] != "j"]

    assert plain(with_journeys.events) == without.events
    assert plain(with_journeys.late_events) == without.late_events
    kinds = {row["event_type"] for row in with_journeys.all_events()}
    assert {"identify", "alias"} <= kinds
    crossing = [row for row in with_journeys.events if row.get("user_id") and row.get("anonymous_id")]
    assert crossing
    assert any(row["event_type"] == "voice_request" for row in with_journeys.late_events)
