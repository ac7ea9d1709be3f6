"""Funnel definitions (the reasons a bad one is refused) and the SQL the funnel builders emit."""

import pytest
from pravis_schemas.funnel_sql import dropoff_sql, funnel_sql, paths_sql, walks_sql
from pravis_schemas.funnels import MAX_STEPS, FunnelDefinition, check_breakdown
from pydantic import ValidationError

STEPS = [
    {"event_type": "voice_request", "filters": [{"property": "intent", "equals": "checkout"}]},
    {"event_type": "order_completed", "filters": [{"property": "properties.currency", "equals": "EUR"}]},
]


def funnel(**overrides) -> FunnelDefinition:
    return FunnelDefinition.model_validate({"key": "checkout", "steps": STEPS, **overrides})


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"steps": []}, "at least 2 items"),
        ({"steps": STEPS[:1]}, "at least 2 items"),
        ({"steps": STEPS * 11}, f"at most {MAX_STEPS} items"),
        ({"window_s": 0}, "greater than 0"),
        ({"window_s": -5}, "greater than 0"),
        (
            {
                "steps": [
                    {"event_type": "page_view", "filters": [{"property": "colour", "equals": "red"}]},
                    *STEPS,
                ]
            },
            "neither an events column",
        ),
        ({"steps": [{"event_type": "bad type!"}, *STEPS]}, "pattern"),
        ({"exclusions": [{"event_type": "error", "from_step": 3}]}, "names step 3"),
        ({"exclusions": [{"event_type": "error", "from_step": 2, "to_step": 2}]}, "is not before step 2"),
        ({"order": "random"}, "'ordered', 'strict' or 'any_order'"),
        ({"count_by": "device"}, "'person' or 'session'"),
    ],
)
def test_bad_definitions_are_refused_with_a_reason(overrides: dict, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        funnel(**overrides)
    assert reason in str(info.value)


def test_breakdowns() -> None:
    assert check_breakdown("app_version") == "app_version"
    assert check_breakdown("variant:checkout-test") == "variant:checkout-test"
    assert check_breakdown("properties.plan") == "properties.plan"
    assert check_breakdown("ai_assistant") == "ai_assistant"
    for bad in ("user_id", "ai_assistant ", "variant:", "properties.a'b", "app_version; DROP"):
        with pytest.raises(ValueError):
            check_breakdown(bad)


def test_values_reach_the_sql_as_parameters_only() -> None:
    hostile = "x' OR 1=1 --"
    definition = funnel(
        steps=[{"event_type": "page_view", "filters": [{"property": "page_url", "equals": hostile}]}, *STEPS]
    )
    sql, params = funnel_sql(definition, "proj'ect", "properties.plan")
    assert hostile not in sql and "proj'ect" not in sql and "plan" not in sql
    assert hostile in params.values() and "proj'ect" in params.values() and "plan" in params.values()
    assert "{s0_p0:Identifier}" in sql and params["s0_p0"] == "page_url"


def test_strict_order_reads_every_event_and_the_others_only_their_types() -> None:
    ordered, params = walks_sql(funnel(), "p")
    assert "event_type IN {types:Array(String)}" in ordered
    assert params["types"] == ["order_completed", "voice_request"]
    strict, params = walks_sql(funnel(order="strict"), "p")
    assert "types" not in params and "ev[i1 + 1]" in strict


def test_per_day_entries_and_prefixes() -> None:
    sql, params = funnel_sql(funnel(), "p", per_day=True, prefix="f3_")
    assert "AS period" in sql and "= period" in sql
    assert {"f3_project", "f3_window_s", "f3_s0_type", "f3_s1_type"} <= set(params)


def test_dropoff_and_paths_bounds() -> None:
    with pytest.raises(ValueError, match=r"steps 1\.\.2"):
        dropoff_sql(funnel(), "p", 2)
    with pytest.raises(ValueError, match="1 to 4"):
        paths_sql("p", "page_view", depth=5)
    sql, params = paths_sql("p", "page_view'", depth=4)
    assert "page_view'" not in sql and params["start_event"] == "page_view'"
