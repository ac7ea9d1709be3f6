"""`GET /api/v1/surveys` for server-rendered pages, shared by `Client.get_surveys` and
`AsyncClient.get_surveys` (each sends the request with its own HTTP client); recording a survey shown,
dismissed or answered is `Tracker.survey_*`, queued like any event."""

from typing import Any

import httpx

SURVEYS_PATH = "/api/v1/surveys"
UNANSWERED = (httpx.HTTPError, ValueError, KeyError)
"""A gateway that cannot answer (unreachable, an error status, a body that is not the answer): no survey."""


def survey_params(
    user_id: str | None, anonymous_id: str | None, default_user_id: str | None, default_anonymous_id: str
) -> dict[str, str]:
    """The ids to ask for: those given, else the client's own visitor (its user id once identified)."""
    if user_id is None and anonymous_id is None:
        user_id, anonymous_id = default_user_id, None if default_user_id else default_anonymous_id
    return {k: v for k, v in (("user_id", user_id), ("anonymous_id", anonymous_id)) if v}


def surveys_in(response: httpx.Response) -> list[dict[str, Any]]:
    """The surveys of a gateway's answer; raises one of `UNANSWERED` when it is not one."""
    response.raise_for_status()
    return response.json()["surveys"]
