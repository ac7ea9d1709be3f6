"""The survey results SQL that `pravis survey results` (pravis_rollups.survey_results), the product
dashboard's survey panels and the weekly feedback report share (pure, no I/O), so a figure reads the same
everywhere.

Every query takes `{project:String}`, `{survey:String}` and an inclusive day range `{date_from:Date}` ..
`{date_to:Date}` (`ALL_TIME` for a survey's whole life). NPS is 100 x (promoters - detractors) / answers over
the questions the survey's definition of that version (table `surveys`) types `nps`; `NPS_QUESTIONS` finds
them in the stored definition JSON, so the SQL needs no value computed outside the warehouse (Grafana runs it
as it is).
"""

from __future__ import annotations

from datetime import date

ALL_TIME = {"date_from": date(1970, 1, 1), "date_to": date(2105, 12, 31)}
"""A range holding every day (`{date_to:Date} + 1` must stay a valid Date, whose last day is 2149-06-06)."""

NPS_QUESTIONS = """(
    SELECT groupArray(concat(toString(version), ':', JSONExtractString(q, 'id')))
    FROM surveys FINAL ARRAY JOIN JSONExtractArrayRaw(definition, 'questions') AS q
    WHERE project_id = {project:String} AND survey_key = {survey:String}
      AND JSONExtractString(q, 'type') = 'nps'
)"""
"""'<version>:<question id>' of every NPS question of the survey, over all its versions."""
IS_NPS_QUESTION = f"has({NPS_QUESTIONS}, concat(toString(survey_version), ':', question_id))"
"""True for a `survey_results_daily` / `survey_answer_sentiment` row of an NPS question."""


def nps(promoters: int, passives: int, detractors: int) -> float | None:
    """Net Promoter Score of counted answers; None without answers."""
    answers = promoters + passives + detractors
    return None if answers == 0 else 100 * (promoters - detractors) / answers


def nps_sql(promoters: str, passives: str, detractors: str) -> str:
    """`nps` as an SQL expression of three count expressions (NULL without answers)."""
    return (
        f"100 * (({promoters}) - ({detractors})) / nullIf(({promoters}) + ({passives}) + ({detractors}), 0)"
    )


SUMMARY_SQL = f"""
SELECT survey_version, question_id, sum(shown), sum(dismissed), sum(answered), sum(responses),
       sumIf(avg_value * arraySum(mapValues(value_counts)), avg_value IS NOT NULL)
         / nullIf(sum(arraySum(mapValues(value_counts))), 0),
       sum(promoters), sum(passives), sum(detractors), sum(text_answers), {IS_NPS_QUESTION}
FROM survey_results_daily
WHERE project_id = {{project:String}} AND survey_id = {{survey:String}}
  AND day BETWEEN {{date_from:Date}} AND {{date_to:Date}}
GROUP BY survey_version, question_id
ORDER BY survey_version, question_id"""
"""Per version: the survey's row (question '': shown, dismissed, answered) and one per question (responses,
average value, NPS bands, open-text answers, whether it is an NPS question)."""
SENTIMENT_SQL = """
SELECT survey_version, question_id, avg(sentiment_score), countIf(sentiment_label = 'positive'),
       countIf(sentiment_label = 'negative')
FROM survey_answer_sentiment FINAL
WHERE project_id = {project:String} AND survey_id = {survey:String}
  AND timestamp >= {date_from:Date} AND timestamp < {date_to:Date} + 1
GROUP BY survey_version, question_id"""
"""Per version and open-text question: average VADER compound score, positive and negative answers."""
RECENT_TEXT_SQL = """
SELECT a.timestamp AS timestamp, a.survey_version AS version, a.question_id AS question, a.text AS text,
       s.sentiment_score AS sentiment_score, s.sentiment_label AS sentiment_label
FROM (
    SELECT event_id, timestamp, assumeNotNull(survey_version) AS survey_version,
           answer.question_id AS question_id, answer.text AS text
    FROM events FINAL ARRAY JOIN survey_answers AS answer
    WHERE project_id = {project:String} AND event_type = 'survey_answered' AND survey_id = {survey:String}
      AND timestamp >= {date_from:Date} AND timestamp < {date_to:Date} + 1
      AND notEmpty(trimBoth(ifNull(answer.text, '')))
    ORDER BY timestamp DESC, event_id LIMIT {limit:UInt32}
) AS a
LEFT JOIN (
    SELECT event_id, question_id, sentiment_score, sentiment_label FROM survey_answer_sentiment FINAL
    WHERE project_id = {project:String} AND survey_id = {survey:String}
) AS s ON s.event_id = a.event_id AND s.question_id = a.question_id
ORDER BY a.timestamp DESC, a.event_id
SETTINGS join_use_nulls = 1"""
"""The newest `{limit:UInt32}` open-text answers of the range; sentiment NULL until the stream tier's score is
loaded."""

DAILY_UP_TO_DAYS = 14
"""Trends over a longer range are drawn per week (Monday): an NPS of a day's handful of answers is noise."""
PERIOD = f"if(dateDiff('day', {{date_from:Date}}, {{date_to:Date}}) < {DAILY_UP_TO_DAYS}, day, toMonday(day))"
_RESULTS_RANGE = (
    "project_id = {project:String} AND survey_id = {survey:String}\n"
    "  AND day BETWEEN {date_from:Date} AND {date_to:Date}"
)
NPS_TREND_SQL = f"""SELECT {PERIOD} AS period, sum(promoters) + sum(passives) + sum(detractors) AS responses,
       sum(promoters) AS promoters_n, sum(passives) AS passives_n, sum(detractors) AS detractors_n,
       {nps_sql("promoters_n", "passives_n", "detractors_n")} AS nps
FROM survey_results_daily
WHERE {_RESULTS_RANGE}
  AND {IS_NPS_QUESTION}
GROUP BY period
ORDER BY period"""
"""Per day (per week over ranges longer than `DAILY_UP_TO_DAYS`): answers to the survey's NPS questions, their
bands and the NPS."""
RESPONSE_RATE_SQL = f"""SELECT {PERIOD} AS period, sum(shown) AS shown_n, sum(dismissed) AS dismissed_n,
       sum(answered) AS answered_n, answered_n / nullIf(shown_n, 0) AS response_rate
FROM survey_results_daily
WHERE {_RESULTS_RANGE}
  AND question_id = ''
GROUP BY period
ORDER BY period"""
"""Per period: survey_shown, survey_dismissed and survey_answered events; response rate = answered / shown."""
VALUE_DISTRIBUTION_SQL = f"""SELECT value, question_id AS question, sum(n) AS answers,
       answers / sum(answers) OVER (PARTITION BY question) AS share
FROM survey_results_daily
ARRAY JOIN mapKeys(value_counts) AS value, mapValues(value_counts) AS n
WHERE {_RESULTS_RANGE}
  AND question_id != ''
GROUP BY question, value
ORDER BY value, question"""
"""Answers per value of each rating and NPS question of the range, and their share of its answers."""
