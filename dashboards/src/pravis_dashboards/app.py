"""The dashboards web app: HTML pages, panel data/SQL/CSV from ClickHouse, the live API relayed from the
stream tier (so the browser talks to one origin), the system health summary, health and metrics; optional
credentials on every route but /healthz (PRAVIS_DASHBOARDS_AUTH) and /metrics on a port of its own
(PRAVIS_DASHBOARDS_METRICS_PORT)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from importlib.resources import files
from typing import Any

import httpx
import structlog
from pravis_schemas.clickhouse_url import redacted
from pravis_schemas.funnels import (
    BREAKDOWNS,
    LATEST_FUNNELS_SQL,
    StoredFunnel,
    check_breakdown,
    stored_funnel,
)
from pravis_schemas.http_limits import BodyLimits
from pravis_schemas.read_auth import ReadAuth
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest, start_http_server
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from pravis_dashboards import funnel_panels, opportunity_panels, panels
from pravis_dashboards.clickhouse import ViewQueries, Warehouse
from pravis_dashboards.downloads import attachment
from pravis_dashboards.live import IncompatibleLiveAnswer, LiveApi
from pravis_dashboards.live_view import live_view
from pravis_dashboards.monitor import MonitorReader
from pravis_dashboards.runbooks import runbooks_page
from pravis_dashboards.settings import Settings
from pravis_dashboards.system_health import Live, summarize

log = structlog.get_logger()
PACKAGE = files("pravis_dashboards")
PANEL_SECONDS = Histogram("pravis_dashboards_panel_seconds", "Time to run one panel query", ["panel"])
PANEL_ERRORS = Counter("pravis_dashboards_panel_errors_total", "Panel queries that failed", ["panel"])
HEALTH_SOURCE_ERRORS = Counter(
    "pravis_dashboards_health_source_errors_total",
    "System health summaries built without a source (monitor or live API)",
    ["source"],
)
PROJECT_ID_MAX = 200
"""As `Alert.project_id` and the gateway accept it."""
LIVE_ERRORS = Counter("pravis_dashboards_live_errors_total", "Live API relays that failed")
REFUSED = Counter("pravis_dashboards_refused_total", "Requests refused, by reason", ["reason"])
REFUSAL_REASONS = {400: "bad_parameter", 404: "not_found", 405: "method_not_allowed"}
UNAUTHENTICATED_PATHS = frozenset({"/healthz"})
"""Probes (kubelet, the process runner) carry no credentials and learn nothing but up/down."""


class RequireCredentials:
    """Every request but the probes needs the configured credentials; otherwise 401 with a challenge (for
    basic auth the browser then asks the person and resends, so the pages work unchanged)."""

    def __init__(self, app: ASGIApp, auth: ReadAuth) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNAUTHENTICATED_PATHS:
            await self.app(scope, receive, send)
            return
        refusal = self.auth.check(Headers(scope=scope).get("authorization"))
        if refusal is None:
            await self.app(scope, receive, send)
            return
        REFUSED.labels(refusal).inc()
        response = PlainTextResponse(
            "credentials required", status_code=401, headers={"WWW-Authenticate": self.auth.challenge}
        )
        await response(scope, receive, send)


def _date(request: Request, name: str) -> date | None:
    value = request.query_params.get(name)
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise HTTPException(400, f"{name} must be a date (YYYY-MM-DD)") from exc


async def count_refusal(request: Request, exc: HTTPException) -> Response:
    """Starlette's own answer to an HTTPException (status and detail as text), counted by reason."""
    REFUSED.labels(REFUSAL_REASONS.get(exc.status_code, f"http_{exc.status_code}")).inc()
    return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)


def navigation(active: str) -> str:
    """The header's links: every dashboard, then the runbooks alerts link to."""
    links = {**panels.PAGES, "runbooks": "Runbooks"}
    return "".join(
        f'<a href="/{slug}" class="{"active" if slug == active else ""}" data-nav="{slug}">{title}</a>'
        for slug, title in links.items()
    )


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    warehouse = Warehouse(settings.clickhouse_url)
    live_auth = ReadAuth.parse(settings.stream_live_auth) if settings.stream_live_auth else None
    live_api = LiveApi(settings.stream_url, settings.dashboards_stream_timeout_s, live_auth)
    monitor = httpx.AsyncClient(timeout=settings.dashboards_health_timeout_s)
    monitor_reader = MonitorReader(
        monitor,
        settings.dashboards_monitor_url,
        settings.dashboards_health_monitor_max_age_s,
        HEALTH_SOURCE_ERRORS.labels("monitor").inc,
    )
    thresholds = settings.health_thresholds()
    configured = panels.configured(settings.saturation())
    by_id = {panel.id: panel for panel in configured}
    template = (PACKAGE / "templates" / "page.html").read_text()
    runbooks = runbooks_page(navigation("runbooks"))

    def params(request: Request) -> panels.Params:
        project = request.query_params.get("project") or "default"
        first, last = _date(request, "from"), _date(request, "to")
        if first is None or last is None:
            _, rows = warehouse.query(panels.LATEST_DAY_SQL, {"project": project})
            default_first, default_last = panels.default_range(
                rows[0][0] if rows else None, datetime.now(UTC).date(), settings.dashboards_default_days
            )
            first, last = first or default_first, last or default_last
        if first > last:
            raise HTTPException(400, "from must not be after to")
        return panels.Params(project, first, last)

    def funnels_of(project: str) -> list[StoredFunnel]:
        _, rows = warehouse.query(LATEST_FUNNELS_SQL, {"project": project})
        return sorted((stored_funnel(row) for row in rows), key=lambda s: s.definition.key)

    def funnel_view(request: Request, view: panels.Params, queries: ViewQueries) -> list[panels.Panel]:
        """The funnel panels of the product page: for `?funnel=` (default the project's first saved funnel)
        and `?breakdown=`; none when the project has no funnel. The worst step is read from the steps panel's
        own query, which `queries` then hands to the panels running it again."""
        saved = {s.definition.key: s for s in funnels_of(view.project)}
        key = request.query_params.get("funnel") or next(iter(saved), None)
        if key is None:
            return []
        if key not in saved:
            raise HTTPException(404, f"no funnel {key!r} in project {view.project!r}")
        try:
            breakdown = check_breakdown(request.query_params.get("breakdown") or None)
        except ValueError as exc:
            raise HTTPException(400, f"breakdown: {exc}") from exc
        steps = funnel_panels.steps_panel(saved[key], None)
        columns, rows = queries.query(steps.sql, {**view.as_query(), **steps.parameters})
        worst = funnel_panels.worst_step([dict(zip(columns, row, strict=True)) for row in rows])
        return funnel_panels.funnel_panels(saved[key], breakdown, worst)

    def surveys_of(project: str) -> list[str]:
        _, rows = warehouse.query(panels.SURVEYS_SQL, {"project": project})
        return [row[0] for row in rows]

    def survey_view(request: Request, view: panels.Params, shown: list[panels.Panel]) -> list[panels.Panel]:
        """`shown` with the per_survey panels reading `?survey=` (default the project's first survey by key);
        without them when the project has no survey."""
        if not any(panel.per_survey for panel in shown):
            return shown
        saved = surveys_of(view.project)
        key = request.query_params.get("survey") or next(iter(saved), None)
        if key is not None and key not in saved:
            raise HTTPException(404, f"no survey {key!r} in project {view.project!r}")
        return [
            panels.with_survey(panel, key) if panel.per_survey else panel
            for panel in shown
            if key is not None or not panel.per_survey
        ]

    def opportunity_view(request: Request) -> list[panels.Panel]:
        """The evidence panels of `?opportunity=` (none without it)."""
        try:
            subject = opportunity_panels.subject_of(
                request.query_params.get(opportunity_panels.QUERY_PARAMETER)
            )
        except ValueError as exc:
            raise HTTPException(400, f"{opportunity_panels.QUERY_PARAMETER}: {exc}") from exc
        return [] if subject is None else opportunity_panels.evidence_panels(*subject)

    def run_panel(panel: panels.Panel, view: panels.Params, queries: ViewQueries) -> dict[str, Any]:
        started = time.perf_counter()
        body: dict[str, Any] = {
            "id": panel.id,
            "title": panel.title,
            "description": panel.description,
            "sql": panel.sql,
            "chart": {
                "kind": panel.chart.kind,
                "x": panel.chart.x,
                "percent": panel.chart.percent,
                "bytes": panel.chart.bytes,
                "stacked": panel.chart.stacked,
                "path_separator": panel.chart.path_separator,
                "links": panel.chart.links,
                "percent_columns": panel.chart.percent_columns,
                "secondary": panel.chart.secondary,
            },
        }
        try:
            columns, rows = queries.query(panel.sql, {**view.as_query(), **panel.parameters})
        except Exception as exc:
            PANEL_ERRORS.labels(panel.id).inc()
            log.warning("panel query failed", panel=panel.id, error=str(exc)[:500])
            return body | {"error": str(exc).splitlines()[0][:300], "labels": [], "series": [], "rows": 0}
        finally:
            PANEL_SECONDS.labels(panel.id).observe(time.perf_counter() - started)
        data = panels.chart_data(panel.chart, columns, rows)
        return body | {"labels": data.labels, "series": data.series, "rows": len(rows), "points": data.points}

    def page_html(request: Request) -> Response:
        page = request.path_params["page"]
        if page not in panels.PAGES:
            raise HTTPException(404, "no such dashboard")
        html = (
            template.replace("{{title}}", panels.PAGES[page])
            .replace("{{page}}", page)
            .replace("{{nav}}", navigation(page))
            .replace("{{poll_ms}}", str(int(settings.dashboards_live_poll_s * 1000)))
            .replace("{{health_poll_ms}}", str(int(settings.dashboards_health_poll_s * 1000)))
        )
        return HTMLResponse(html)

    async def meta(request: Request) -> JSONResponse:
        view = await run_in_threadpool(params, request)
        _, rows = await run_in_threadpool(warehouse.query, panels.PROJECTS_SQL)
        projects = [row[0] for row in rows]
        if view.project not in projects:
            projects.append(view.project)
        funnels = await run_in_threadpool(funnels_of, view.project)
        surveys = await run_in_threadpool(surveys_of, view.project)
        return JSONResponse(
            {
                "project": view.project,
                "from": view.date_from.isoformat(),
                "to": view.date_to.isoformat(),
                "projects": sorted(projects),
                "funnels": [s.definition.key for s in funnels],
                "breakdowns": list(BREAKDOWNS),
                "surveys": surveys,
            }
        )

    async def page_data(request: Request) -> JSONResponse:
        page = request.path_params["page"]
        if page not in panels.PAGES:
            raise HTTPException(404, "no such dashboard")
        view = await run_in_threadpool(params, request)
        shown = await run_in_threadpool(survey_view, request, view, panels.page_panels(page, configured))
        queries = ViewQueries(warehouse)
        if page == funnel_panels.PAGE:
            funnel = await run_in_threadpool(funnel_view, request, view, queries)
            shown = shown + funnel + opportunity_view(request)
        results = [await run_in_threadpool(run_panel, panel, view, queries) for panel in shown]
        return JSONResponse(
            {
                "page": page,
                "project": view.project,
                "from": view.date_from.isoformat(),
                "to": view.date_to.isoformat(),
                "panels": results,
            }
        )

    def panel_of(request: Request, view: panels.Params, queries: ViewQueries) -> panels.Panel:
        panel_id = request.path_params["panel"]
        if panel_id in funnel_panels.PANEL_IDS:
            panel = next((p for p in funnel_view(request, view, queries) if p.id == panel_id), None)
        elif panel_id in opportunity_panels.PANEL_IDS:
            shown = opportunity_view(request)
            if not shown:
                raise HTTPException(400, f"{panel_id} needs ?opportunity=feature:<name> or intent:<intent>")
            panel = next(p for p in shown if p.id == panel_id)
        else:
            panel = by_id.get(panel_id)
        if panel is None:
            raise HTTPException(404, "no such panel")
        if panel.per_survey:
            shown = survey_view(request, view, [panel])
            if not shown:
                raise HTTPException(404, f"{panel_id} shows a survey and project {view.project!r} has none")
            panel = shown[0]
        return panel

    async def panel_sql(request: Request) -> Response:
        view = await run_in_threadpool(params, request)
        panel = await run_in_threadpool(panel_of, request, view, ViewQueries(warehouse))
        return PlainTextResponse(
            panels.standalone_sql(panel, view),
            media_type="application/sql",
            headers={"Content-Disposition": attachment(f"{panel.id}.sql")},
        )

    async def panel_csv(request: Request) -> Response:
        view = await run_in_threadpool(params, request)
        queries = ViewQueries(warehouse)
        panel = await run_in_threadpool(panel_of, request, view, queries)
        parameters = {**view.as_query(), **panel.parameters}
        columns, rows = await run_in_threadpool(queries.query, panel.sql, parameters)
        name = f"{panel.id}_{view.project}_{view.date_from}_{view.date_to}.csv"
        return PlainTextResponse(
            panels.to_csv(columns, rows),
            media_type="text/csv",
            headers={"Content-Disposition": attachment(name)},
        )

    async def live(request: Request) -> JSONResponse:
        project = request.path_params["project"]
        try:
            snapshot = await live_api.snapshot(project)
        except (httpx.HTTPError, IncompatibleLiveAnswer) as exc:
            LIVE_ERRORS.inc()
            cause = (
                "stream tier unavailable"
                if isinstance(exc, httpx.HTTPError)
                else "incompatible live API answer"
            )
            return JSONResponse({"ok": False, "error": f"{cause}: {exc}"[:300]}, status_code=502)
        return JSONResponse({"ok": True, "project": project, **live_view(snapshot)})

    async def live_projects(request: Request) -> JSONResponse:
        try:
            return JSONResponse({"ok": True, "projects": await live_api.projects()})
        except (httpx.HTTPError, IncompatibleLiveAnswer) as exc:
            return JSONResponse({"ok": False, "error": str(exc)[:300], "projects": []}, status_code=502)

    async def read_live(project: str) -> Live | None:
        try:
            return await live_api.health_inputs(project)
        except (httpx.HTTPError, IncompatibleLiveAnswer) as exc:
            HEALTH_SOURCE_ERRORS.labels("live").inc()
            log.warning("system health: live API not read", error=str(exc)[:300])
            return None

    async def system_health(request: Request) -> JSONResponse:
        project = request.path_params["project"]
        if len(project) > PROJECT_ID_MAX:
            raise HTTPException(400, f"project must be at most {PROJECT_ID_MAX} characters")
        monitored, answer = await asyncio.gather(monitor_reader.read(), read_live(project))
        statuses = summarize(
            monitored,
            answer,
            thresholds,
            settings.dashboards_health_loader_group,
            settings.dashboards_health_stream_group,
            settings.dashboards_health_monitored_endpoints,
        )
        return JSONResponse(
            {
                "project": project,
                "as_of": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
                "sources": {"monitor": monitored is not None, "live": answer is not None},
                "statuses": [dataclasses.asdict(status) for status in statuses],
            }
        )

    async def healthz(request: Request) -> JSONResponse:
        ok = await run_in_threadpool(warehouse.ping)
        return JSONResponse(
            {"status": "ok" if ok else "warehouse unreachable"}, status_code=200 if ok else 503
        )

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST.split(";")[0])

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        log.info(
            "dashboards starting",
            clickhouse=redacted(settings.clickhouse_url),
            stream=settings.stream_url,
            auth=settings.dashboards_auth is not None,
            metrics_port=settings.dashboards_metrics_port,
        )
        metrics_server = None
        if settings.dashboards_metrics_port is not None:
            metrics_server, _ = start_http_server(settings.dashboards_metrics_port, settings.dashboards_host)
        try:
            yield
        finally:
            if metrics_server is not None:
                metrics_server.shutdown()
                metrics_server.server_close()
            await live_api.aclose()
            await monitor.aclose()

    metrics_routes: list[BaseRoute] = (
        [Route("/metrics", metrics)] if settings.dashboards_metrics_port is None else []
    )
    # Limits first, so a request is bounded before anything else looks at it, credentials check included.
    middleware = [
        Middleware(
            BodyLimits,
            max_body_bytes=settings.dashboards_max_body_bytes,
            timeout_s=settings.body_timeout_s,
            on_refusal=lambda reason: REFUSED.labels(reason).inc(),
        )
    ]
    if settings.dashboards_auth:
        middleware.append(Middleware(RequireCredentials, auth=ReadAuth.parse(settings.dashboards_auth)))
    return Starlette(
        routes=[
            Route("/", lambda request: RedirectResponse("/executive")),
            Route("/healthz", healthz),
            *metrics_routes,
            Route("/runbooks", lambda request: HTMLResponse(runbooks)),
            Route("/api/meta", meta),
            Route("/api/pages/{page}", page_data),
            Route("/api/panels/{panel}.sql", panel_sql),
            Route("/api/panels/{panel}.csv", panel_csv),
            Route("/api/live/projects", live_projects),
            Route("/api/live/{project}", live),
            Route("/api/health/{project}", system_health),
            Mount("/static", StaticFiles(directory=str(PACKAGE / "static")), name="static"),
            Route("/{page}", page_html),
        ],
        middleware=middleware,
        exception_handlers={HTTPException: count_refusal},
        lifespan=lifespan,
    )
