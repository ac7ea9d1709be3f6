# ruff: noqa: E501 - SQL text stays on the lines it reads best on
"""The weekly feedback report from ClickHouse: refresh `feedback_daily` for the week, query the rest, write
the Markdown and HTML files, and announce them on the webhook."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from clickhouse_connect.driver.client import Client
from pravis_schemas.feature_requests import RANKING_IN_RANGE_SQL, ranking_parameters
from pravis_schemas.feedback_sql import lowest_rated_sql
from pravis_schemas.opportunities import PROJECTS_WITH_SUBJECTS_SQL, ranked_sql

from pravis_rollups import webhook
from pravis_rollups.jobs import run_rollups
from pravis_rollups.report import (
    STOPWORDS,
    DayTrend,
    FeedbackReport,
    LowRated,
    Opportunity,
    ProjectSummary,
    RequestWeek,
    SurveyScore,
    SurveyWeek,
    TextAnswer,
    summary_text,
    to_html,
    to_markdown,
)
from pravis_rollups.rollups import RollupOptions, feedback_daily, funnel_daily, survey_results_daily
from pravis_rollups.survey_results import recent_text_answers, survey_summary

LOWEST_PER_PROJECT = 10
TERMS_PER_PROJECT = 10
OPPORTUNITIES_PER_PROJECT = 5
TEXT_ANSWERS_PER_SURVEY = 5
REQUESTS_PER_PROJECT = 5

_TERMS = """
SELECT project_id, term, count() AS mentions
FROM (
    SELECT f.project_id AS project_id,
           arrayJoin(arrayDistinct(arrayFilter(t -> length(t) >= 3 AND NOT has({stopwords:Array(String)}, t),
                                               splitByNonAlpha(lower(f.comment))))) AS term
    FROM (
        SELECT project_id, event_id, rating, assumeNotNull(comment) AS comment FROM events FINAL
        WHERE event_type = 'feedback' AND comment IS NOT NULL
          AND timestamp >= toDateTime64({week:Date}, 3, 'UTC') AND timestamp < toDateTime64({week:Date} + 7, 3, 'UTC')
    ) AS f
    LEFT JOIN (
        SELECT project_id, event_id, sentiment_label FROM feedback_scored FINAL
        WHERE timestamp >= toDateTime64({week:Date} - 1, 3, 'UTC') AND timestamp < toDateTime64({week:Date} + 8, 3, 'UTC')
    ) AS s ON f.project_id = s.project_id AND f.event_id = s.event_id
    WHERE f.rating <= 2 OR s.sentiment_label = 'negative'
)
GROUP BY project_id, term
ORDER BY project_id, mentions DESC, term
LIMIT {limit:UInt32} BY project_id
"""

_SURVEYS_OF_WEEK = """
SELECT k.project_id AS project_id, k.survey AS survey, d.status AS status, d.newest AS newest
FROM (
    SELECT DISTINCT project_id, survey_id AS survey FROM survey_results_daily
    WHERE day BETWEEN {week:Date} AND {week:Date} + 6
    UNION DISTINCT
    SELECT project_id, survey_key AS survey FROM surveys FINAL
    GROUP BY project_id, survey_key HAVING argMax(status, version) = 'running'
) AS k
LEFT JOIN (
    SELECT project_id, survey_key AS survey, argMax(status, version) AS status, max(version) AS newest
    FROM surveys FINAL GROUP BY project_id, survey_key
) AS d ON d.project_id = k.project_id AND d.survey = k.survey
ORDER BY project_id, survey
"""
"""Surveys running now or with events in the week (so a survey stopped during it is there), with the status of
their newest version (status '' when only events name them)."""


def _surveys_and_requests(client: Client, week_start: date, projects: dict[str, ProjectSummary]) -> None:
    """Issue 23: each project's surveys of the week (results as `pravis survey results` reads them, over the
    week) and the feature requests with the most votes cast in it; a project with either but no feedback
    joins the report."""
    week = {"date_from": week_start, "date_to": week_start + timedelta(days=6)}
    surveys = client.query(_SURVEYS_OF_WEEK, parameters={"week": week_start}).result_rows
    for project_id, survey, status, newest in surveys:
        summary = projects.setdefault(project_id, ProjectSummary(project_id))
        rows = survey_summary(client, project_id, survey, week)
        texts = recent_text_answers(client, project_id, survey, TEXT_ANSWERS_PER_SURVEY, week)
        for row in (r for r in rows if r["question"] == ""):
            version = row["version"]
            summary.surveys.append(
                SurveyWeek(
                    survey,
                    version,
                    status,
                    row["shown"],
                    row["answered"],
                    row["response_rate"],
                    [
                        SurveyScore(r["question"], r["nps"], r["avg_value"], r["responses"])
                        for r in rows
                        if r["version"] == version and r["question"] and r["avg_value"] is not None
                    ],
                    [
                        TextAnswer(
                            t["timestamp"],
                            t["question"],
                            t["text"],
                            t["sentiment_label"],
                            t["sentiment_score"],
                        )
                        for t in texts
                        if t["version"] == version
                    ],
                )
            )
        if not rows:  # running, but not shown in the week
            summary.surveys.append(SurveyWeek(survey, newest, status, 0, 0, None))
    voted = client.query(
        "SELECT DISTINCT project_id FROM events WHERE event_type IN ('feature_request', 'feature_request_vote') "
        "AND timestamp >= {date_from:Date} AND timestamp < {date_to:Date} + 1",
        parameters=week,
    ).result_rows
    for (project_id,) in voted:
        ranked = client.query(
            RANKING_IN_RANGE_SQL, parameters={**ranking_parameters(project_id, REQUESTS_PER_PROJECT), **week}
        )
        projects.setdefault(project_id, ProjectSummary(project_id)).requests = [
            RequestWeek(title, votes, weighted, status)
            for _, title, votes, weighted, status in ranked.result_rows
        ]


@dataclass(frozen=True)
class Written:
    report: FeedbackReport
    markdown: Path
    html: Path
    notified: int | None = None
    """The webhook's HTTP status, when one was configured."""


def build(client: Client, week_start: date, now: datetime | None = None) -> FeedbackReport:
    """The report for the Monday-Sunday week starting `week_start`; refreshes feedback_daily and funnel_daily
    (the opportunities' drop-off) for it and the week before first, so the report never reads a stale
    rollup."""
    if week_start.weekday():
        raise ValueError(f"{week_start} is not a Monday")
    previous = week_start - timedelta(days=7)
    run_rollups(
        client,
        previous,
        week_start + timedelta(days=6),
        [feedback_daily.table, funnel_daily.table, survey_results_daily.table],
        RollupOptions(as_of=week_start),
    )
    report = FeedbackReport(week_start, now or datetime.now(UTC))
    projects: dict[str, ProjectSummary] = {}
    trend = client.query(
        "SELECT project_id, day, feedback, avg_rating, positive, neutral, negative, feedback - scored, "
        "day >= {week:Date} FROM feedback_daily WHERE day >= {previous:Date} AND day < {week:Date} + 7 "
        "ORDER BY project_id, day",
        parameters={"week": week_start, "previous": previous},
    ).result_rows
    previous_totals: dict[str, tuple[int, float]] = {}
    for project_id, day, feedback, avg, positive, neutral, negative, unscored, this_week in trend:
        if this_week:
            summary = projects.setdefault(project_id, ProjectSummary(project_id))
            summary.days.append(DayTrend(day, feedback, avg, positive, neutral, negative, unscored))
        else:
            count, rating_sum = previous_totals.get(project_id, (0, 0.0))
            previous_totals[project_id] = (count + feedback, rating_sum + avg * feedback)
    week_range = {"date_from": week_start, "date_to": week_start + timedelta(days=6)}
    # A project without feedback this week can still have opportunities (failures, repeated commands, funnel
    # drop-off after its features and intents): it gets a section too.
    for (project_id,) in client.query(PROJECTS_WITH_SUBJECTS_SQL, parameters=week_range).result_rows:
        projects.setdefault(project_id, ProjectSummary(project_id))
    for project_id, (count, rating_sum) in previous_totals.items():
        if project_id in projects:
            projects[project_id].previous_feedback = count
            projects[project_id].previous_avg_rating = rating_sum / count if count else None
    lowest, lowest_parameters = lowest_rated_sql()
    for row in client.query(
        lowest, parameters={**lowest_parameters, **week_range, "limit": LOWEST_PER_PROJECT}
    ).result_rows:
        project_id, timestamp, rating, interaction, kinds, model, sentiment, context, comment = row
        if project_id in projects:
            projects[project_id].lowest.append(
                LowRated(timestamp, rating, interaction, kinds, model or None, sentiment, context, comment)
            )
    terms = client.query(
        _TERMS, parameters={"week": week_start, "stopwords": list(STOPWORDS), "limit": TERMS_PER_PROJECT}
    ).result_rows
    for project_id, term, mentions in terms:
        if project_id in projects:
            projects[project_id].terms.append((term, mentions))
    opportunities = ranked_sql()
    fields = Opportunity.__dataclass_fields__
    for project_id, summary in projects.items():
        ranked = client.query(opportunities, parameters={**week_range, "project": project_id})
        for row in ranked.result_rows[:OPPORTUNITIES_PER_PROJECT]:
            named = dict(zip(ranked.column_names, row, strict=True))
            summary.opportunities.append(Opportunity(**{name: named[name] for name in fields}))
    _surveys_and_requests(client, week_start, projects)
    report.projects = [projects[p] for p in sorted(projects)]
    return report


def write(report: FeedbackReport, directory: Path, webhook_url: str | None = None) -> Written:
    """Write `<slug>.md` and `<slug>.html` into `directory`; POST the summary to `webhook_url` if given."""
    directory.mkdir(parents=True, exist_ok=True)
    markdown, page = directory / f"{report.slug}.md", directory / f"{report.slug}.html"
    markdown.write_text(to_markdown(report))
    page.write_text(to_html(report))
    status = None
    if webhook_url:
        status = webhook.notify(
            webhook_url,
            {
                "text": summary_text(report, str(page.resolve())),
                "report": {
                    "week_start": report.week_start.isoformat(),
                    "markdown": str(markdown.resolve()),
                    "html": str(page.resolve()),
                    "projects": [
                        {
                            "project_id": p.project_id,
                            "feedback": p.feedback,
                            "avg_rating": p.avg_rating,
                            "previous_avg_rating": p.previous_avg_rating,
                            "sentiment": p.sentiment(),
                            "top_terms": [term for term, _ in p.terms],
                            "opportunities": [asdict(o) for o in p.opportunities],
                            "surveys": [survey.headline() for survey in p.surveys],
                            "top_requests": [
                                {"title": r.title, "votes": r.votes, "status": r.status} for r in p.requests
                            ],
                        }
                        for p in report.projects
                    ],
                },
            },
        )
    return Written(report, markdown, page, status)
