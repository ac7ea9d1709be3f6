"""Fill a warehouse with the deterministic synthetic dataset (pravis_local.synthetic), its rollups, a few
alerts, experiment results, exchange rates, resource samples, the survey's definition with its answers'
sentiment and two feature-request statuses: the known answers of the dashboard tests, and
a demo for an empty warehouse.

`pravis demo [--url URL]` loads it into the warehouse (PRAVIS_CLICKHOUSE_URL, or URL).
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pravis_rollups import clickhouse
from pravis_rollups.experiment_results import RESULT_COLUMNS
from pravis_rollups.fx import load_rates, parse_rates
from pravis_rollups.jobs import run_rollups
from pravis_rollups.rollups import RollupOptions
from pravis_schemas.feature_requests import SET_STATUS_SQL
from pravis_schemas.surveys import SurveyDefinition

from pravis_local.synthetic import SURVEY_TEXTS, Dataset, SyntheticConfig, generate, iso, json_rows, parse_iso

DEMO_CONFIG = SyntheticConfig(seed=7, users=40, days=21)


DEMO_PROCESSES = (
    ("shop-api", "web-1", 4101),
    ("shop-api", "web-2", 4102),
    ("pravis-gateway", "ingest-1", 311),
)


def demo_resource_samples(dataset: Dataset) -> list[dict[str, Any]]:
    """An hourly `resource_sample` of each of DEMO_PROCESSES (project `default`), as the SDK middleware and
    the pipeline's services send them (every 15 s in real life); web-2 saturates its core on the period's
    middle day."""
    rng = random.Random(dataset.config.seed)
    start = datetime.combine(dataset.config.start, datetime.min.time(), UTC)
    hot_day = dataset.config.days // 2
    rows = []
    for hour in range(dataset.config.days * 24):
        moment = start + timedelta(hours=hour, minutes=7)
        for service, host, pid in DEMO_PROCESSES:
            hot = host == "web-2" and hour // 24 == hot_day
            rows.append(
                {
                    "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "event_type": "resource_sample",
                    "timestamp": iso(moment),
                    "anonymous_id": f"process:{service}@{host}",
                    "properties": {},
                    "host": host,
                    "service": service,
                    "pid": pid,
                    "cpu_percent": round(rng.uniform(93, 99) if hot else rng.uniform(5, 45), 2),
                    "rss_bytes": rng.randint(150, 400) * 2**20,
                    "open_fds": rng.randint(20, 200),
                    "threads": rng.randint(4, 12),
                    "loop_lag_ms": round(rng.uniform(120, 400) if hot else rng.uniform(0, 8), 3),
                    "in_flight": rng.randint(0, 40),
                    "project_id": "default",
                    "received_at": iso(moment + timedelta(seconds=1)),
                }
            )
    return rows


def demo_alerts(dataset: Dataset) -> list[dict[str, Any]]:
    """Three alerts of project `default` in the period: two fired and resolved, one still firing."""
    start = datetime.combine(dataset.config.start, datetime.min.time(), UTC)
    rows = []
    for n, (day, hour, severity, metric, resolved) in enumerate(
        (
            (2, 9, "warning", "latency_p95_ms", True),
            (2, 15, "critical", "error_rate", True),
            (dataset.config.days - 1, 11, "critical", "error_rate", False),
        )
    ):
        began = start + timedelta(days=day, hours=hour)
        alert = {
            "alert_id": f"demo-alert-{n}",
            "severity": severity,
            "project_id": "default",
            "metric": metric,
            "labels": {"endpoint": "/api/v1/search"},
            "observed": 0.4 + n,
            "expected": 0.05,
            "window_start": began.isoformat(),
            "window_end": (began + timedelta(seconds=5)).isoformat(),
            "started_at": began.isoformat(),
            "message": f"{metric} above its baseline",
        }
        rows.append({**alert, "status": "firing"})
        if resolved:
            ended = (began + timedelta(minutes=20)).isoformat()
            rows.append({**alert, "status": "resolved", "resolved_at": ended})
    return rows


def demo_experiment_results(dataset: Dataset) -> list[list[Any]]:
    """`voice_button`: control and big_button on goal `checkout`; an older computation first (not shown)."""
    computed = datetime.combine(dataset.end, datetime.min.time(), UTC)
    rows = []
    for when, rates in ((computed - timedelta(hours=1), (0.5, 0.5)), (computed, (0.2, 0.25))):
        for variation, (variant, rate) in enumerate(zip(("control", "big_button"), rates, strict=True)):
            row = {
                "project_id": "default",
                "experiment_key": "voice_button",
                "definition_version": 1,
                "variant": variant,
                "variation_id": variation,
                "is_control": variation == 0,
                "weight": 0.5,
                "goal": "checkout",
                "goal_kind": "conversion",
                "users": 100,
                "multi_variant_users": 0,
                "conversions": round(100 * rate),
                "conversion_rate": rate,
                "mean": None,
                "variance": None,
                "currency": None,  # a conversion goal: no money
                "unconverted": None,
                "lift": None if variation == 0 else 0.25,
                "lift_ci_low": None if variation == 0 else -0.1,
                "lift_ci_high": None if variation == 0 else 0.6,
                "p_value": None if variation == 0 else 0.38,
                "confidence_level": 0.95,
                "srm_p_value": 1.0,
                "srm_flag": False,
                "computed_at": when,
            }
            rows.append([row[c] for c in RESULT_COLUMNS])
    return rows


DEMO_RATES = "day,currency,rate\n2024-01-01,USD,0.92\n2024-01-01,GBP,1.17\n"
"""Exchange rates into EUR for the demo's orders (what an operator loads with `pravis fx load`)."""


DEMO_SURVEY = SurveyDefinition.model_validate(
    {
        "key": "ux-quarterly",
        "name": "Quarterly UX survey",
        "status": "running",
        "questions": [
            {"id": "nps", "type": "nps", "text": "How likely are you to recommend the boutique to a friend?"},
            {
                "id": "why",
                "type": "open_text",
                "text": "What is the main reason for your score?",
                "required": False,
            },
        ],
        "schedule": {"recurrence": "quarterly"},
    }
)
"""The definition the synthetic survey events answer (their `nps` and `why` questions)."""
DEMO_TEXT_SENTIMENT = dict(
    zip(SURVEY_TEXTS, ((0.6369, "positive"), (-0.4404, "negative"), (0.3774, "positive")), strict=True)
)
"""VADER's compound score and label of each synthetic answer text, as the stream tier gives them
(pravis_stream.sentiment; a test checks they still agree): the demo runs no stream worker."""
DEMO_REQUEST_STATUSES = (("Dark mode", "planned"), ("Apple Pay", "done"))


def demo_surveys(dataset: Dataset) -> list[dict[str, Any]]:
    """`DEMO_SURVEY` as version 1 in each project holding survey events (as the admin API stores it)."""
    created = datetime.combine(dataset.config.start, datetime.min.time(), UTC)
    projects = sorted({e["project_id"] for e in dataset.all_events() if e["event_type"] == "survey_shown"})
    return [
        {
            "project_id": project,
            "survey_key": DEMO_SURVEY.key,
            "version": 1,
            "status": DEMO_SURVEY.status,
            "definition": DEMO_SURVEY.model_dump_json(),
            "created_at": iso(created),
        }
        for project in projects
    ]


def demo_survey_sentiment(dataset: Dataset) -> list[dict[str, Any]]:
    """The `survey_answer_sentiment` rows the stream tier would write for the open-text answers."""
    rows = []
    for event in dataset.all_events():
        for answer in event.get("survey_answers") or ():
            if not answer.get("text"):
                continue
            score, label = DEMO_TEXT_SENTIMENT[answer["text"]]
            rows.append(
                {
                    **{k: event[k] for k in ("event_id", "project_id", "timestamp") if k in event},
                    **{k: event[k] for k in ("user_id", "anonymous_id") if event.get(k)},
                    "survey_id": event["survey_id"],
                    "survey_version": event["survey_version"],
                    "question_id": answer["question_id"],
                    "sentiment_score": score,
                    "sentiment_label": label,
                    "scored_at": iso(parse_iso(event["received_at"]) + timedelta(seconds=2)),
                }
            )
    return rows


def seed(url: str, config: SyntheticConfig = DEMO_CONFIG) -> Dataset:
    """Migrate `url`, insert the dataset (with its duplicate deliveries and its late events), roll it up."""
    dataset = generate(config)
    clickhouse.migrate(url)
    with clickhouse.connect(url) as client:
        clickhouse.insert_json_rows(client, "events", json_rows(dataset.all_events()))
        clickhouse.insert_json_rows(client, "events", json_rows(demo_resource_samples(dataset)))
        clickhouse.insert_json_rows(client, "events", json_rows(dataset.duplicates))
        clickhouse.refresh_identity_merges(client)  # as the loader does after a batch with aliases
        clickhouse.insert_json_rows(
            client, "feedback_scored", json_rows(dataset.scored_feedback + dataset.late_scored_feedback)
        )
        clickhouse.insert_json_rows(client, "alerts", json_rows(demo_alerts(dataset)))
        client.insert("experiment_results", demo_experiment_results(dataset), column_names=RESULT_COLUMNS)
        clickhouse.insert_json_rows(client, "surveys", json_rows(demo_surveys(dataset)))
        clickhouse.insert_json_rows(
            client, "survey_answer_sentiment", json_rows(demo_survey_sentiment(dataset))
        )
        for title, status in DEMO_REQUEST_STATUSES:
            client.command(
                SET_STATUS_SQL, parameters={"project": "default", "title": title, "status": status}
            )
        rates, _ = parse_rates(DEMO_RATES.splitlines(), "EUR")
        load_rates(client, "EUR", rates)
        run_rollups(client, dataset.config.start, dataset.end, options=RollupOptions(as_of=dataset.end))
    return dataset
