"""A survey's results over all days of `survey_results_daily`, per version and question: what `pravis survey
results` prints and the product dashboard shows. NPS is computed for the questions the version's definition
(table `surveys`) says are NPS questions: 100 x (promoters - detractors) / answers."""

from __future__ import annotations

from typing import Any

from clickhouse_connect.driver.client import Client
from pravis_schemas.surveys import SurveyDefinition

SUMMARY_SQL = """
SELECT survey_version, question_id, sum(shown), sum(dismissed), sum(answered), sum(responses),
       sumIf(avg_value * arraySum(mapValues(value_counts)), avg_value IS NOT NULL)
         / nullIf(sum(arraySum(mapValues(value_counts))), 0),
       sum(promoters), sum(passives), sum(detractors), sum(text_answers)
FROM survey_results_daily
WHERE project_id = {project:String} AND survey_id = {key:String}
GROUP BY survey_version, question_id
ORDER BY survey_version, question_id"""
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
    rows = []
    for version, question, shown, dismissed, answered, responses, avg, pro, pas, det, texts in client.query(
        SUMMARY_SQL, parameters=parameters
    ).result_rows:
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
            }
        )
    return rows
