"""A survey's results over all days of `survey_results_daily`, per version and question: what `pravis survey
results` prints and the product dashboard shows. NPS is computed for the questions the version's definition
(table `surveys`) says are NPS questions: 100 x (promoters - detractors) / answers. Open-text questions carry
the VADER sentiment the stream tier gave their answers (`survey_answer_sentiment`): the average compound score
and the positive / negative counts; `recent_text_answers` lists the newest answers with theirs, and
`segment_results` breaks a question's figures down per segment and version."""

from __future__ import annotations

from typing import Any

from clickhouse_connect.driver.client import Client
from pravis_schemas.surveys import NPS_DETRACTOR_MAX, NPS_PROMOTER_MIN, SurveyDefinition

SUMMARY_SQL = """
SELECT survey_version, question_id, sum(shown), sum(dismissed), sum(answered), sum(responses),
       sumIf(avg_value * arraySum(mapValues(value_counts)), avg_value IS NOT NULL)
         / nullIf(sum(arraySum(mapValues(value_counts))), 0),
       sum(promoters), sum(passives), sum(detractors), sum(text_answers)
FROM survey_results_daily
WHERE project_id = {project:String} AND survey_id = {key:String}
GROUP BY survey_version, question_id
ORDER BY survey_version, question_id"""
SENTIMENT_SQL = """
SELECT survey_version, question_id, avg(sentiment_score), countIf(sentiment_label = 'positive'),
       countIf(sentiment_label = 'negative')
FROM survey_answer_sentiment FINAL
WHERE project_id = {project:String} AND survey_id = {key:String}
GROUP BY survey_version, question_id"""
RECENT_TEXT_SQL = """
SELECT a.timestamp AS timestamp, a.survey_version AS version, a.question_id AS question, a.text AS text,
       s.sentiment_score AS sentiment_score, s.sentiment_label AS sentiment_label
FROM (
    SELECT event_id, timestamp, assumeNotNull(survey_version) AS survey_version,
           answer.question_id AS question_id, answer.text AS text
    FROM events FINAL ARRAY JOIN survey_answers AS answer
    WHERE project_id = {project:String} AND event_type = 'survey_answered' AND survey_id = {key:String}
      AND notEmpty(trimBoth(ifNull(answer.text, '')))
    ORDER BY timestamp DESC LIMIT {limit:UInt32}
) AS a
LEFT JOIN (
    SELECT event_id, question_id, sentiment_score, sentiment_label FROM survey_answer_sentiment FINAL
    WHERE project_id = {project:String} AND survey_id = {key:String}
) AS s ON s.event_id = a.event_id AND s.question_id = a.question_id
ORDER BY a.timestamp DESC"""
"""The newest open-text answers; sentiment NULL until the stream tier's score is loaded (join_use_nulls)."""
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
DEFINITIONS_SQL = (
    "SELECT version, definition FROM surveys FINAL "
    "WHERE project_id = {project:String} AND survey_key = {key:String}"
)


def nps(promoters: int, passives: int, detractors: int) -> float | None:
    answers = promoters + passives + detractors
    return None if answers == 0 else 100 * (promoters - detractors) / answers


def survey_summary(client: Client, project_id: str, key: str) -> list[dict[str, Any]]:
    """One row per version ('' question: shown/dismissed/answered and the response rate) and per question."""
    parameters = {"project": project_id, "key": key}
    nps_questions = {
        version: {q.id for q in SurveyDefinition.model_validate_json(text).questions if q.type == "nps"}
        for version, text in client.query(DEFINITIONS_SQL, parameters=parameters).result_rows
    }
    sentiment = {
        (version, question): (avg, positive, negative)
        for version, question, avg, positive, negative in client.query(
            SENTIMENT_SQL, parameters=parameters
        ).result_rows
    }
    rows = []
    for version, question, shown, dismissed, answered, responses, avg, pro, pas, det, texts in client.query(
        SUMMARY_SQL, parameters=parameters
    ).result_rows:
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
                "nps": nps(pro, pas, det) if question in nps_questions.get(version, ()) else None,
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


def recent_text_answers(client: Client, project_id: str, key: str, limit: int = 20) -> list[dict[str, Any]]:
    """The newest `limit` open-text answers of a survey with their sentiment (None until scored)."""
    result = client.query(
        RECENT_TEXT_SQL,
        parameters={"project": project_id, "key": key, "limit": limit},
        settings={"join_use_nulls": 1},
    )
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]
