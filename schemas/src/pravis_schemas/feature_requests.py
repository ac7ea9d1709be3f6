"""The feature-request board: a request is its title normalised (lower case, runs of anything but letters
and digits as one space, trimmed), a person's votes on it count once (the person who asks is its first
voter), and an operator sets its status (open/planned/done) with the secret key. Pure: the model of a status
change and the SQL the gateway, the CLI and the dashboards share, so the board reads the same everywhere.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

RequestStatus = Literal["open", "planned", "done"]
DEFAULT_STATUS: RequestStatus = "open"
"""A request nobody set a status on."""
WEIGHT_DAYS = 30
"""A voter weighs their active days in this many days before the ranking (at least 1)."""


class StatusChange(BaseModel):
    """What `PUT /api/v1/feature-requests/status` takes: the title as users wrote it (any spelling that
    normalises to the request's) and the new status."""

    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, Field(min_length=1, max_length=200, pattern=r"[\w]")]
    status: RequestStatus


def normalised_sql(expression: str) -> str:
    """The request an SQL title expression names (ClickHouse regex, Unicode letters and digits)."""
    return "trim(replaceRegexpAll(lower(" + expression + r"), '[^\\p{L}\\p{N}]+', ' '))"


SET_STATUS_SQL = (
    "INSERT INTO feature_request_status (project_id, request, title, status, changed_at) "
    "SELECT {project:String}, " + normalised_sql("{title:String}") + ", {title:String}, {status:String}, "
    "now64(3)"
)
"""Records a status change; the newest change of a request wins (`RANKING_SQL`)."""


def _ranking_sql(votes_in_range: bool) -> str:
    in_range = (
        "\n          AND e.timestamp >= {date_from:Date} AND e.timestamp < {date_to:Date} + 1"
        if votes_in_range
        else ""
    )
    return (
        """
SELECT r.request AS request, r.title AS title, r.votes AS votes, r.weighted_votes AS weighted_votes,
       if(s.status = '', {default_status:String}, s.status) AS status
FROM (
    SELECT v.request AS request, any(v.title) AS title, uniqExact(v.person_id) AS votes,
           sum(greatest(1, ifNull(a.active_days, 0))) AS weighted_votes
    FROM (
        SELECT """
        + normalised_sql("e.feature_request_title")
        + """ AS request,
               any(e.feature_request_title) AS title,
               if(po.person_id = '', e.distinct_id, po.person_id) AS person_id
        FROM events AS e FINAL
        LEFT JOIN person_overrides AS po ON po.project_id = e.project_id AND po.distinct_id = e.distinct_id
        WHERE e.project_id = {project:String}
          AND e.event_type IN ('feature_request', 'feature_request_vote')"""
        + in_range
        + """
        GROUP BY request, person_id
    ) AS v
    LEFT JOIN (
        SELECT person_id, count() AS active_days FROM user_activity_daily
        WHERE project_id = {project:String} AND day >= today() - {weight_days:UInt16}
        GROUP BY person_id
    ) AS a ON a.person_id = v.person_id
    GROUP BY request
) AS r
LEFT JOIN (
    SELECT request, argMax(status, changed_at) AS status FROM feature_request_status
    WHERE project_id = {project:String} GROUP BY request
) AS s ON s.request = r.request
ORDER BY votes DESC, weighted_votes DESC, request
LIMIT {limit:UInt32}"""
    )


RANKING_SQL = _ranking_sql(votes_in_range=False)
"""The board of {project:String}: request, a title as written, votes (persons), weighted_votes (each voter
by their active days in the last `WEIGHT_DAYS`, at least 1) and status; `ranking_parameters` fills it in."""
RANKING_IN_RANGE_SQL = _ranking_sql(votes_in_range=True)
"""The board of the votes cast (and requests made) from {date_from:Date} to {date_to:Date}, both inclusive,
ranked as `RANKING_SQL` ranks all of them: the weekly feedback report's top requests of the week."""


def ranking_parameters(project_id: str, limit: int = 50) -> dict[str, object]:
    return {
        "project": project_id,
        "limit": limit,
        "weight_days": WEIGHT_DAYS,
        "default_status": DEFAULT_STATUS,
    }
