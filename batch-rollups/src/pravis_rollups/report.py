"""The weekly feedback summary: its data model and its Markdown, HTML and chat renderings (pure, no I/O).

`pravis_rollups.feedback_report` fills a `FeedbackReport` from ClickHouse; this module only formats it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from pravis_schemas.opportunities import SCORE_FORMULA

from pravis_rollups.rollups import monday

STOPWORDS = (
    "the",
    "and",
    "for",
    "you",
    "your",
    "are",
    "was",
    "were",
    "not",
    "but",
    "with",
    "this",
    "that",
    "too",
    "very",
    "again",
    "just",
    "its",
    "it's",
    "did",
    "does",
    "didn",
    "doesn",
    "don",
    "can",
    "cannot",
    "could",
    "would",
    "all",
    "any",
    "had",
    "has",
    "have",
    "how",
    "what",
    "when",
    "why",
    "who",
    "out",
    "get",
    "got",
    "keeps",
    "then",
    "than",
    "there",
    "they",
    "them",
    "from",
    "into",
    "about",
    "after",
    "before",
    "some",
    "only",
    "also",
    "will",
)
"""Words too common to be a complaint; complaint terms are the other words of low-rated or negative
feedback."""


@dataclass(frozen=True)
class DayTrend:
    day: date
    feedback: int
    avg_rating: float | None
    positive: int
    neutral: int
    negative: int
    unscored: int


@dataclass(frozen=True)
class LowRated:
    timestamp: datetime
    rating: int
    interaction_id: str | None
    ai_event_types: str
    model_used: str | None
    sentiment: str | None
    context: str | None
    comment: str | None


@dataclass(frozen=True)
class Opportunity:
    """One row of the improvement opportunities (pravis_schemas.opportunities.ranked_sql)."""

    kind: str
    subject: str
    score: float
    users: int
    low_rating_share: float | None
    negative_share: float | None
    repeated_command_rate: float | None
    failure_rate: float
    funnel_dropoff: float | None
    worst_comment: str
    top_failure: str
    funnel_step: str


# Issue 23: the week's surveys and feature requests.
@dataclass(frozen=True)
class SurveyScore:
    """One rating or NPS question's week: NPS for an NPS question, else its average answer."""

    question: str
    nps: float | None
    average: float | None
    responses: int

    def text(self) -> str:
        figure = f"NPS {self.nps:+.0f}" if self.nps is not None else f"average {_rating(self.average)}"
        return f"{self.question}: {figure} ({self.responses} answers)"


@dataclass(frozen=True)
class TextAnswer:
    timestamp: datetime
    question: str
    text: str
    sentiment_label: str | None
    sentiment_score: float | None

    def sentiment(self) -> str:
        if self.sentiment_label is None or self.sentiment_score is None:
            return "not scored"
        return f"{self.sentiment_label} {self.sentiment_score:+.2f}"


@dataclass
class SurveyWeek:
    """One version of a survey running in the week or stopped with answers in it."""

    survey: str
    version: int
    status: str
    shown: int
    answered: int
    response_rate: float | None
    scores: list[SurveyScore] = field(default_factory=list)
    texts: list[TextAnswer] = field(default_factory=list)

    def headline(self) -> str:
        return f"{self.survey} v{self.version}: " + (
            "; ".join(score.text() for score in self.scores) or f"{self.answered} answered"
        )


@dataclass(frozen=True)
class RequestWeek:
    """A feature request ranked by the votes cast in the week (pravis_schemas.feature_requests)."""

    title: str
    votes: int
    weighted_votes: int
    status: str


def _survey_markdown(project: ProjectSummary) -> list[str]:
    lines = ["### Surveys", ""]
    if project.surveys:
        lines += [
            "| survey | version | status | shown | answered | response rate | scores |",
            "|---|---:|---|---:|---:|---:|---|",
            *(
                f"| {_cell(s.survey)} | {s.version} | {s.status or '-'} | {s.shown} | {s.answered} | "
                f"{_percent(s.response_rate)} | {_cell('; '.join(c.text() for c in s.scores) or '-', 300)} |"
                for s in project.surveys
            ),
        ]
        texts = [(s, t) for s in project.surveys for t in s.texts]
        if texts:
            lines += ["", "Open-text answers, newest first:", ""]
            lines += [
                f"- {t.timestamp:%Y-%m-%d %H:%M} · {_cell(s.survey)} v{s.version} {_cell(t.question)} · "
                f"{t.sentiment()}: {_cell(t.text, 300)}"
                for s, t in texts
            ]
    else:
        lines.append("None.")
    lines += ["", "### Top feature requests of the week", ""]
    if project.requests:
        lines += [
            "| # | request | votes | weighted votes | status |",
            "|---:|---|---:|---:|---|",
            *(
                f"| {rank} | {_cell(r.title)} | {r.votes} | {r.weighted_votes} | {r.status} |"
                for rank, r in enumerate(project.requests, 1)
            ),
        ]
    else:
        lines.append("None.")
    return [*lines, ""]


def _survey_html(project: ProjectSummary) -> list[str]:
    e = html.escape
    parts = ["<h3>Surveys</h3>"]
    if project.surveys:
        parts.append(
            "<table><tr><th>survey</th><th>version</th><th>status</th><th>shown</th><th>answered</th>"
            "<th>response rate</th><th>scores</th></tr>"
        )
        parts += [
            f"<tr><td>{e(s.survey)}</td><td class=n>{s.version}</td><td>{e(s.status or '-')}</td>"
            f"<td class=n>{s.shown}</td><td class=n>{s.answered}</td>"
            f"<td class=n>{_percent(s.response_rate)}</td>"
            f"<td>{e('; '.join(c.text() for c in s.scores) or '-')}</td></tr>"
            for s in project.surveys
        ]
        parts.append("</table>")
        texts = [(s, t) for s in project.surveys for t in s.texts]
        if texts:
            parts.append("<p>Open-text answers, newest first:</p><ul>")
            parts += [
                f"<li>{t.timestamp:%Y-%m-%d %H:%M} · {e(s.survey)} v{s.version} {e(t.question)} · "
                f"{e(t.sentiment())}: {e(t.text)}</li>"
                for s, t in texts
            ]
            parts.append("</ul>")
    else:
        parts.append("<p>None.</p>")
    parts.append("<h3>Top feature requests of the week</h3>")
    if project.requests:
        parts.append(
            "<table><tr><th>#</th><th>request</th><th>votes</th><th>weighted votes</th><th>status</th></tr>"
        )
        parts += [
            f"<tr><td class=n>{rank}</td><td>{e(r.title)}</td><td class=n>{r.votes}</td>"
            f"<td class=n>{r.weighted_votes}</td><td>{e(r.status)}</td></tr>"
            for rank, r in enumerate(project.requests, 1)
        ]
        parts.append("</table>")
    else:
        parts.append("<p>None.</p>")
    return parts


def _survey_summary(project: ProjectSummary) -> str:
    """The chat message's survey and request clause of a project ('' when it has neither)."""
    text = "; surveys: " + ", ".join(s.headline() for s in project.surveys) if project.surveys else ""
    if project.requests:
        top = project.requests[0]
        text += f"; top request: {top.title} ({top.votes} votes, {top.status})"
    return text


@dataclass
class ProjectSummary:
    project_id: str
    days: list[DayTrend] = field(default_factory=list)
    previous_feedback: int = 0
    previous_avg_rating: float | None = None
    lowest: list[LowRated] = field(default_factory=list)
    terms: list[tuple[str, int]] = field(default_factory=list)
    opportunities: list[Opportunity] = field(default_factory=list)
    surveys: list[SurveyWeek] = field(default_factory=list)
    requests: list[RequestWeek] = field(default_factory=list)

    @property
    def feedback(self) -> int:
        return sum(d.feedback for d in self.days)

    @property
    def avg_rating(self) -> float | None:
        rated = [(d.avg_rating, d.feedback) for d in self.days if d.avg_rating is not None and d.feedback]
        total = sum(n for _, n in rated)
        return sum(avg * n for avg, n in rated) / total if total else None

    def sentiment(self) -> dict[str, int]:
        return {
            "positive": sum(d.positive for d in self.days),
            "neutral": sum(d.neutral for d in self.days),
            "negative": sum(d.negative for d in self.days),
            "unscored": sum(d.unscored for d in self.days),
        }


@dataclass
class FeedbackReport:
    week_start: date
    generated_at: datetime
    projects: list[ProjectSummary] = field(default_factory=list)

    @property
    def week_end(self) -> date:
        return self.week_start + timedelta(days=6)

    @property
    def title(self) -> str:
        year, week, _ = self.week_start.isocalendar()
        return f"Feedback summary {year}-W{week:02d} ({self.week_start} to {self.week_end})"

    @property
    def slug(self) -> str:
        year, week, _ = self.week_start.isocalendar()
        return f"feedback-{year}-W{week:02d}"


def _rating(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _change(now: float | None, before: float | None) -> str:
    if now is None or before is None:
        return ""
    delta = now - before
    return f" ({'+' if delta >= 0 else ''}{delta:.2f} vs previous week)"


def _share(part: int, whole: int) -> str:
    return f"{part} ({part / whole:.0%})" if whole else str(part)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _opportunity_figures(o: Opportunity) -> list[str]:
    """Score, users and the inputs of one opportunity, as the report's table cells show them."""
    return [
        f"{o.score:.3f}",
        str(o.users),
        _percent(o.low_rating_share),
        _percent(o.negative_share),
        _percent(o.repeated_command_rate),
        _percent(o.failure_rate),
        _percent(o.funnel_dropoff),
    ]


OPPORTUNITY_HEADINGS = (
    "#",
    "kind",
    "subject",
    "score",
    "users",
    "low ratings",
    "negative",
    "repeated",
    "failures",
    "funnel drop-off",
    "lowest-rated comment",
    "top failure",
    "funnel step",
)


def _cell(text: str | None, limit: int = 120) -> str:
    text = " ".join((text or "").split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("|", "\\|")


def to_markdown(report: FeedbackReport) -> str:
    lines = [f"# {report.title}", "", f"Generated {report.generated_at:%Y-%m-%d %H:%M} UTC.", ""]
    if not report.projects:
        lines.append("No feedback this week.")
    for project in report.projects:
        mix = project.sentiment()
        lines += [
            f"## Project `{project.project_id}`",
            "",
            f"- Feedback: **{project.feedback}** (previous week {project.previous_feedback})",
            f"- Average rating: **{_rating(project.avg_rating)}**"
            f"{_change(project.avg_rating, project.previous_avg_rating)}",
            "- Sentiment: " + ", ".join(f"{k} {_share(v, project.feedback)}" for k, v in mix.items()),
            "",
            "### Ratings trend",
            "",
            "| day | feedback | avg rating | positive | neutral | negative | unscored |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *(
                f"| {d.day} | {d.feedback} | {_rating(d.avg_rating)} | {d.positive} | {d.neutral} "
                f"| {d.negative} | {d.unscored} |"
                for d in project.days
            ),
            "",
            "### Lowest-rated interactions",
            "",
        ]
        if project.lowest:
            lines += [
                "| time | rating | interaction | AI request | model | sentiment | context | comment |",
                "|---|---:|---|---|---|---|---|---|",
                *(
                    f"| {r.timestamp:%Y-%m-%d %H:%M} | {r.rating} | {_cell(r.interaction_id)} | "
                    f"{_cell(r.ai_event_types)} | {_cell(r.model_used)} | {_cell(r.sentiment)} | "
                    f"{_cell(r.context)} | {_cell(r.comment)} |"
                    for r in project.lowest
                ),
            ]
        else:
            lines.append("None.")
        lines += ["", "### Top complaint terms", ""]
        lines.append(
            ", ".join(f"**{term}** ({count})" for term, count in project.terms) if project.terms else "None."
        )
        lines += ["", "### Improvement opportunities", "", f"{SCORE_FORMULA}.", ""]
        if project.opportunities:
            lines += [
                "| " + " | ".join(OPPORTUNITY_HEADINGS) + " |",
                "|"
                + "|".join("---:" if h in ("#", "score", "users") else "---" for h in OPPORTUNITY_HEADINGS)
                + "|",
                *(
                    f"| {rank} | {o.kind} | {_cell(o.subject)} | "
                    + " | ".join(_opportunity_figures(o))
                    + f" | {_cell(o.worst_comment)} | {_cell(o.top_failure)} | {_cell(o.funnel_step)} |"
                    for rank, o in enumerate(project.opportunities, 1)
                ),
            ]
        else:
            lines.append("None.")
        lines.append("")
        lines += _survey_markdown(project)
    return "\n".join(lines)


def to_html(report: FeedbackReport) -> str:
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{e(report.title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em}"
        "td.n{text-align:right}th{background:#f3f3f3}</style></head><body>",
        f"<h1>{e(report.title)}</h1><p>Generated {report.generated_at:%Y-%m-%d %H:%M} UTC.</p>",
    ]
    if not report.projects:
        parts.append("<p>No feedback this week.</p>")
    for project in report.projects:
        mix = project.sentiment()
        parts += [
            f"<h2>Project <code>{e(project.project_id)}</code></h2><ul>",
            f"<li>Feedback: <b>{project.feedback}</b> (previous week {project.previous_feedback})</li>",
            f"<li>Average rating: <b>{_rating(project.avg_rating)}</b>"
            f"{e(_change(project.avg_rating, project.previous_avg_rating))}</li>",
            "<li>Sentiment: " + e(", ".join(f"{k} {_share(v, project.feedback)}" for k, v in mix.items())),
            "</li></ul><h3>Ratings trend</h3><table><tr><th>day</th><th>feedback</th><th>avg rating</th>"
            "<th>positive</th><th>neutral</th><th>negative</th><th>unscored</th></tr>",
            *(
                f"<tr><td>{d.day}</td><td class=n>{d.feedback}</td><td class=n>{_rating(d.avg_rating)}</td>"
                f"<td class=n>{d.positive}</td><td class=n>{d.neutral}</td><td class=n>{d.negative}</td>"
                f"<td class=n>{d.unscored}</td></tr>"
                for d in project.days
            ),
            "</table><h3>Lowest-rated interactions</h3>",
        ]
        if project.lowest:
            parts.append(
                "<table><tr><th>time</th><th>rating</th><th>interaction</th><th>AI request</th><th>model</th>"
                "<th>sentiment</th><th>context</th><th>comment</th></tr>"
            )
            parts += [
                f"<tr><td>{r.timestamp:%Y-%m-%d %H:%M}</td><td class=n>{r.rating}</td>"
                f"<td>{e(r.interaction_id or '')}</td><td>{e(r.ai_event_types)}</td>"
                f"<td>{e(r.model_used or '')}</td><td>{e(r.sentiment or '')}</td>"
                f"<td>{e(r.context or '')}</td>"
                f"<td>{e(r.comment or '')}</td></tr>"
                for r in project.lowest
            ]
            parts.append("</table>")
        else:
            parts.append("<p>None.</p>")
        terms = ", ".join(f"<b>{e(term)}</b> ({count})" for term, count in project.terms)
        parts.append(f"<h3>Top complaint terms</h3><p>{terms or 'None.'}</p>")
        parts.append(f"<h3>Improvement opportunities</h3><p>{e(SCORE_FORMULA)}.</p>")
        if project.opportunities:
            parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in OPPORTUNITY_HEADINGS) + "</tr>")
            parts += [
                f"<tr><td class=n>{rank}</td><td>{e(o.kind)}</td><td>{e(o.subject)}</td>"
                + "".join(f"<td class=n>{e(cell)}</td>" for cell in _opportunity_figures(o))
                + f"<td>{e(o.worst_comment)}</td><td>{e(o.top_failure)}</td><td>{e(o.funnel_step)}</td></tr>"
                for rank, o in enumerate(project.opportunities, 1)
            ]
            parts.append("</table>")
        else:
            parts.append("<p>None.</p>")
        parts += _survey_html(project)
    parts.append("</body></html>")
    return "\n".join(parts)


SUMMARY_OPPORTUNITIES = 3
"""Opportunities per project in the chat message (the report and the webhook's JSON have them all)."""


def summary_text(report: FeedbackReport, location: str) -> str:
    """One chat message (Slack-compatible `text`) announcing the report."""
    lines = [f"*{report.title}*"]
    for project in report.projects:
        mix = project.sentiment()
        terms = ", ".join(term for term, _ in project.terms[:5]) or "none"
        lines.append(
            f"• {project.project_id}: {project.feedback} feedback, avg rating {_rating(project.avg_rating)}"
            f"{_change(project.avg_rating, project.previous_avg_rating)}, "
            f"negative {_share(mix['negative'], project.feedback)}; "
            f"top complaints: {terms}" + _survey_summary(project)
        )
        if project.opportunities:
            lines.append(
                "  top opportunities: "
                + ", ".join(
                    f"{o.kind} {o.subject} (score {o.score:.3f})"
                    for o in project.opportunities[:SUMMARY_OPPORTUNITIES]
                )
            )
    if not report.projects:
        lines.append("No feedback this week.")
    lines.append(f"Report: {location}")
    return "\n".join(lines)


def last_complete_week(today: date) -> date:
    """Monday of the last Monday-Sunday week that ended before `today`."""
    return monday(today) - timedelta(days=7)
