"""A survey's results from `survey_results_daily` (all days, or a range), per version and question: what
`pravis survey results` prints and the weekly feedback report lists (SQL in pravis_schemas.survey_sql, which
the product dashboard's survey panels read too). NPS is computed for the questions the version's definition
(table `surveys`) says are NPS questions: 100 x (promoters - detractors) / answers. Open-text questions carry
the VADER sentiment the stream tier gave their answers (`survey_answer_sentiment`): the average compound score
and the positive / negative counts; `recent_text_answers` lists the newest answers with theirs, and
`segment_results` breaks a question's figures down per segment and version."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from clickhouse_connect.driver.client import Client
from pravis_schemas.survey_sql import ALL_TIME, RECENT_TEXT_SQL, SENTIMENT_SQL, SUMMARY_SQL, nps
from pravis_schemas.surveys import NPS_DETRACTOR_MAX, NPS_PROMOTER_MIN

SEGMENT_RESULTS_SQL = """
SELECT m.segment_key AS segment, a.version AS version, count() AS answered, uniqExact(a.distinct_id) AS ids,
       countIf(a.value IS NOT NULL) AS responses, avg(a.value) AS avg_value,
       countIf(a.value >= {promoter_min:Int16}) AS promoters,
       countIf(a.value > {detractor_max:Int16} AND a.value < {promoter_min:Int16}) AS passives,
       countIf(a.value <= {detractor_max:Int16}) AS detractors
FROM (
    SELECT distinct_id, assumeNotNull(survey_version) AS version,
           arrayFirst(x -> x.question_id = {question:String}, survey_answers).value AS value
    FROM events FINAL
    WHERE project_id = {project:String} AND event_type = 'survey_answered' AND survey_id = {key:String}
) AS a
INNER JOIN (
    SELECT distinct_id, segment_key FROM segment_members
    WHERE project_id = {project:String} AND refresh_id = (SELECT max(refresh_id) FROM segment_refreshes)
) AS m ON m.distinct_id = a.distinct_id
GROUP BY segment, version
ORDER BY segment, version"""
"""Answers of a survey per segment (members of the newest refresh, every id of a member person listed) and
version, with the figures of one rating/NPS question."""


def survey_summary(
    client: Client, project_id: str, key: str, days: Mapping[str, date] = ALL_TIME
) -> list[dict[str, Any]]:
    """One row per version ('' question: shown/dismissed/answered and the response rate) and per question,
    over `days` (`date_from`, `date_to`; default all)."""
    parameters = {"project": project_id, "survey": key, **days}
    sentiment = {
        (version, question): (avg, positive, negative)
        for version, question, avg, positive, negative in client.query(
            SENTIMENT_SQL, parameters=parameters
        ).result_rows
    }
    rows = []
    for row in client.query(SUMMARY_SQL, parameters=parameters).result_rows:
        version, question, shown, dismissed, answered, responses, avg, pro, pas, det, texts, is_nps = row
        avg_sentiment, positive, negative = sentiment.get((version, question), (None, None, None))
        rows.append(
            {
                "version": version,
                "question": question,
                "shown": shown if question == "" else None,
                "dismissed": dismissed if question == "" else None,
                "answered": answered if question == "" else None,
                "response_rate": answered / shown if question == "" and shown else None,
                "responses": responses if question else None,
                "avg_value": avg,
                "nps": nps(pro, pas, det) if is_nps else None,
                "text_answers": texts if question else None,
                "avg_sentiment": avg_sentiment,
                "positive": positive,
                "negative": negative,
            }
        )
    return rows


def segment_results(client: Client, project_id: str, key: str, question: str) -> list[dict[str, Any]]:
    """Per segment and version: answered events, responses to `question`, its average, and NPS (meaningful
    when `question` is an NPS question)."""
    parameters = {
        "project": project_id,
        "key": key,
        "question": question,
        "promoter_min": NPS_PROMOTER_MIN,
        "detractor_max": NPS_DETRACTOR_MAX,
    }
    result = client.query(SEGMENT_RESULTS_SQL, parameters=parameters)
    rows = [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]
    for row in rows:
        row["nps"] = nps(row.pop("promoters"), row.pop("passives"), row.pop("detractors"))
    return rows


def recent_text_answers(
    client: Client, project_id: str, key: str, limit: int = 20, days: Mapping[str, date] = ALL_TIME
) -> list[dict[str, Any]]:
    """The newest `limit` open-text answers of a survey in `days` with their sentiment (None until scored)."""
    result = client.query(
        RECENT_TEXT_SQL, parameters={"project": project_id, "survey": key, "limit": limit, **days}
    )
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]
