"""The Faust worker: live counters, anomaly alerts and feedback sentiment, wired to Kafka and the web.

Data flow (one process; add workers to split the partitions):

    events ──(EventsReader: aiokafka, the hot path)──▶ LiveState (memory) ──▶ live API (Faust web views)
                 │                     other workers' parts (GET /live/{project}/parts, `peers`) ──┘
                 │ every persist interval: changed windows + cursor ──▶ table `live` (changelog)
                 │ feedback rows ──▶ sentiment ──▶ feedback.scored
                 │ survey_answered rows ──▶ sentiment of open-text answers ──▶ survey_answers.scored
                 └ every closed detection bucket: per-project summary ──▶ topic `<app>-buckets` (key: project)
    `<app>-buckets` ──(Faust agent `detect`, table `detectors` keyed by project)──▶ alerts + alert sinks
    alerts.silences ──(SilencesReader, whole topic)──▶ SilenceBook: silenced alerts reach no sink

Restart/rebalance: Faust assigns the `live` table's partitions (co-partitioned with `events`), recovers them
from the changelog and calls `on_recover`; the hot path then restores those partitions' windows and resumes
each at its persisted cursor. Windows persisted after the cursor skip the events they already hold, so a
kill -9 at any point neither loses nor double-counts (see `partition_state`).

Tansu has no topic auto-creation: Faust creates its internal topics itself (changelogs, `-buckets`, the
assignor's leader topic) with CreateTopics at start-up, which Tansu supports; `events`, `alerts`,
`feedback.scored`, `survey_answers.scored` and `alerts.silences` must exist (the stack and the tests create
them).
"""

import asyncio
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import faust
import orjson
import structlog
from faust.web import Request, Response, View
from pravis_schemas import topics
from pravis_schemas.live_api import SUMMARY_WINDOWS
from pravis_schemas.messages import Alert
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from pravis_stream import alert_sinks, live_parts, views, web
from pravis_stream.alert_sinks import Links, SilenceBook
from pravis_stream.detector import ProjectDetector, Thresholds
from pravis_stream.kafka import EventsReader, SilencesReader, faust_credentials
from pravis_stream.live_parts import MinuteParts, SummaryParts
from pravis_stream.partition_state import LiveState
from pravis_stream.peers import Peers, key_partition, owners, parts_path
from pravis_stream.settings import Settings
from pravis_stream.webhook import AlertSender, Sink, slack_sink

log = structlog.get_logger("pravis_stream")

EVENTS = Counter("pravis_stream_events_total", "Event rows counted into live windows")
DROPPED = Counter(
    "pravis_stream_dropped_total",
    "Event rows not counted: malformed, older than retention, or stamped too far ahead of their arrival",
    ["reason"],
)
SKIPPED = Counter(
    "pravis_stream_skipped_total",
    "Event rows skipped: already counted before a restart (replayed), or a retry of a counted event_id "
    "(duplicate), or counted but too late for their detection bucket",
    ["reason"],
)
LATE = Histogram(
    "pravis_stream_late_events_seconds",
    "How late (received_at - timestamp) events arrived that were counted only in their minute, after their "
    "detection bucket closed (counted=minute), or not live at all, beyond the horizon (counted=no)",
    ["counted"],
    buckets=(1, 5, 30, 60, 300, 900, 3600, 7200, 21600, 86400, float("inf")),
)
DEDUP_EVICTED = Counter(
    "pravis_stream_dedup_evicted_total",
    "Event ids forgotten before the horizon to keep PRAVIS_STREAM_DEDUP_MAX_IDS "
    "(a retry of one counts again)",
)
ALERTS = Counter("pravis_stream_alerts_total", "Alert messages published", ["status", "metric"])
SCORED = Counter("pravis_stream_feedback_scored_total", "Feedback events scored and published")
LAG = Gauge("pravis_stream_lag_records", "Records of `events` not yet read", ["partition"])
DETECT_TICK_S = 0.2
"""How often closed detection buckets are looked for."""
MAX_LOGGED_DROPS = 5
"""Dropped rows logged per batch (all are counted)."""


class Worker:
    """Everything the Faust wiring shares: the live state, the reader, the tables and topics."""

    def __init__(self, settings: Settings, partitions: int) -> None:
        self.settings = settings
        self.partitions = partitions
        self.state = LiveState(
            total_partitions=partitions,
            retention_minutes=settings.stream_retention_minutes,
            detect_interval_s=settings.stream_detect_interval_s,
            detect_grace_s=settings.stream_detect_grace_s,
            now=time.time(),
            horizon_s=settings.stream_horizon_s,
            future_skew_s=settings.stream_future_skew_s,
            dedup_max_ids=settings.stream_dedup_max_ids,
        )
        self.thresholds = Thresholds(
            alpha=settings.stream_ewma_alpha,
            z_threshold=settings.stream_z_threshold,
            z_resolve=settings.stream_z_resolve,
            warmup=settings.stream_warmup_buckets,
            resolve_after=settings.stream_resolve_after_buckets,
            cooldown=settings.stream_cooldown_buckets,
            min_events=settings.stream_min_events_per_bucket,
            seasonal=settings.stream_seasonal,
        )
        self.reader = EventsReader(settings, topics.EVENTS)
        silences = SilenceBook()
        self.silences = SilencesReader(settings, silences)
        self.sender = AlertSender(
            configured_sinks(settings),
            silences,
            lambda: datetime.now(UTC),
            settings.stream_webhook_attempts,
            settings.stream_webhook_timeout_s,
        )
        self.peers = Peers(settings)
        self.detectors: dict[str, ProjectDetector] = {}
        self.ready = False
        self.app = self._build_app()

    # -- Faust app ------------------------------------------------------------------------------------

    def _build_app(self) -> faust.App:
        s = self.settings
        app = faust.App(
            s.stream_app_id,
            broker=[f"kafka://{host.strip()}" for host in s.kafka_bootstrap.split(",")],
            broker_credentials=faust_credentials(s),
            store="memory://",
            datadir=str(s.faust_data_dir),
            topic_partitions=self.partitions,
            web_host=s.stream_web_host,
            web_bind=s.stream_web_host,
            web_port=s.stream_web_port,
            canonical_url=s.stream_canonical_url,
            broker_session_timeout=s.stream_session_timeout_s,
            broker_rebalance_timeout=s.stream_rebalance_timeout_s,
            broker_heartbeat_interval=s.stream_heartbeat_interval_s,
            # Faust's default 1 MiB per-partition fetch halved a Faust consumer's throughput (measured on
            # `events`); recovery reads whole changelogs.
            consumer_max_fetch_size=s.stream_fetch_max_bytes,
            consumer_auto_offset_reset="earliest",
            web_application_options=web.application_options(s),
        )
        web.bound_request_time(app, s)
        raw = {"key_serializer": "raw", "value_serializer": "raw"}
        self.live_table = self._raw_table(app, "live")
        self.detector_table = self._raw_table(app, "detectors")
        self.buckets_topic = app.topic(
            f"{s.stream_app_id}-buckets", internal=True, partitions=self.partitions, **raw
        )
        self.alerts_topic = app.topic(topics.ALERTS, **raw)
        self.scored_topic = app.topic(topics.FEEDBACK_SCORED, **raw)
        self.scored_answers_topic = app.topic(topics.SURVEY_ANSWERS_SCORED, **raw)

        self.live_table.on_recover(self._on_live_recovered)
        self.detector_table.on_recover(self._on_detectors_recovered)
        app.on_partitions_revoked.connect(self._on_revoked)
        app.service(self._service())
        if s.stream_metrics_port is not None:
            app.service(web.MetricsServer(s.stream_web_host, s.stream_metrics_port))
        app.timer(s.stream_persist_interval_s)(self._persist)
        app.timer(DETECT_TICK_S)(self._close_buckets)
        app.agent(self.buckets_topic, name="detect")(self._detect)
        self._add_views(app)
        return app

    def _raw_table(self, app: faust.App, name: str) -> faust.Table:
        """A table of bytes keys and values (we serialise ourselves). Faust derives a table's codec from its
        key/value types and falls back to JSON for bytes, so the changelog topic is given explicitly."""
        changelog = app.topic(
            f"{self.settings.stream_app_id}-{name}-changelog",
            partitions=self.partitions,
            compacting=True,
            internal=True,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )
        table = app.Table(name, partitions=self.partitions, changelog_topic=changelog)
        table.key_serializer = table.value_serializer = "raw"
        return table

    def _service(self) -> Any:
        worker = self

        class HotPath(faust.Service):
            async def on_start(self) -> None:
                await worker.reader.start()
                await worker.silences.start()

            async def on_stop(self) -> None:
                await worker.reader.stop()
                await worker.silences.stop()
                await worker.sender.close()
                await worker.peers.close()

            @faust.Service.task
            async def _consume(self) -> None:
                while not self.should_stop:
                    if not worker.reader.partitions:
                        await self.sleep(0.05)
                        continue
                    worker.consume(await worker.reader.poll())
                    await asyncio.sleep(0)

            @faust.Service.task
            async def _deliver_alerts(self) -> None:
                await worker.sender.run()

            @faust.Service.task
            async def _follow_silences(self) -> None:
                await worker.silences.follow()

            @faust.Service.timer(worker.settings.stream_alertmanager_resend_s)
            async def _resend_firing(self) -> None:
                if not worker.sender.resends:
                    return
                for detector in list(worker.detectors.values()):
                    for firing in list(detector.firing.values()):
                        worker.sender.resend(Alert.model_validate(firing))

            @faust.Service.timer(5.0)
            async def _lag(self) -> None:
                for partition, lag in (await worker.reader.lag()).items():
                    LAG.labels(str(partition)).set(lag)

        return HotPath()

    # -- hot path -------------------------------------------------------------------------------------

    def consume(self, batches: Any) -> None:
        now = datetime.now(UTC)
        for partition, records in batches:
            if partition not in self.state.partitions:
                continue
            result = self.state.add_records(partition, ((r.offset, r.value) for r in records), now)
            for scored in result.scored:
                self.scored_topic.send_soon(
                    key=(scored.user_id or scored.anonymous_id or "").encode(), value=scored.to_json()
                )
            SCORED.inc(len(result.scored))
            for answer in result.scored_answers:
                self.scored_answers_topic.send_soon(
                    key=(answer.user_id or answer.anonymous_id or "").encode(), value=answer.to_json()
                )
            for dropped in result.dropped[:MAX_LOGGED_DROPS]:
                log.warning(
                    "event row dropped",
                    partition=dropped.partition,
                    offset=dropped.offset,
                    reason=dropped.reason,
                )
            DROPPED.labels("malformed").inc(len(result.dropped))
            DROPPED.labels("expired").inc(result.expired)
            DROPPED.labels("future").inc(len(result.too_early))
            SKIPPED.labels("replayed").inc(result.replayed)
            SKIPPED.labels("duplicate").inc(result.duplicates)
            DEDUP_EVICTED.inc(result.evicted)
            SKIPPED.labels("late_for_detection").inc(len(result.late))
            for counted, delays in (("minute", result.late), ("no", result.too_late)):
                histogram = LATE.labels(counted)
                for delay in delays:
                    histogram.observe(delay)
            if result.too_late or result.too_early:
                log.info(
                    "events outside the live horizon not counted live",
                    partition=partition,
                    too_late=len(result.too_late),
                    too_early=len(result.too_early),
                    largest_delay_s=max(result.too_late, default=None),
                )
            if result.replayed:
                log.info(
                    "replayed rows skipped: their windows already count them",
                    partition=partition,
                    count=result.replayed,
                )
            EVENTS.inc(result.counted)

    async def _persist(self) -> None:
        now = datetime.now(UTC)
        for partition in list(self.state.partitions):
            for key, value in self.state.drain_writes(partition, now):
                raw_key = key.encode()
                if value is None:
                    self.live_table.data.pop(raw_key, None)
                else:
                    self.live_table.data[raw_key] = value
                self.live_table.send_changelog(partition, raw_key, value)

    async def _close_buckets(self) -> None:
        for summary in self.state.close_buckets(time.time()):
            await self.buckets_topic.send(key=summary["project_id"].encode(), value=orjson.dumps(summary))

    # -- rebalancing ----------------------------------------------------------------------------------

    def _assigned(self, table: faust.Table) -> set[int]:
        changelog = table.changelog_topic.get_topic_name()
        return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == changelog}

    async def _on_live_recovered(self) -> None:
        assigned = self._assigned(self.live_table)
        for partition in set(self.state.partitions) - assigned:
            self.state.revoke(partition)
        for partition in assigned - set(self.state.partitions):
            prefix = f"{partition}/".encode()
            items = [(k.decode(), v) for k, v in self.live_table.data.items() if k.startswith(prefix)]
            position = self.state.assign(partition, items)
            log.info("partition restored", partition=partition, windows=len(items), position=position)
        await self.reader.assign({p: self.state.partitions[p].position for p in assigned})
        self.ready = True

    async def _on_detectors_recovered(self) -> None:
        self.detectors.clear()

    async def _on_revoked(self, sender: Any, revoked: Any, **kwargs: Any) -> None:
        """Stop reading and persisting revoked partitions at once; their next owner restores them."""
        gone = {
            tp.partition for tp in revoked if tp.topic == self.live_table.changelog_topic.get_topic_name()
        }
        if gone:
            for partition in gone:
                self.state.revoke(partition)
            await self.reader.assign({p: self.state.partitions[p].position for p in self.state.partitions})

    # -- detection ------------------------------------------------------------------------------------

    async def _detect(self, stream: Any) -> None:
        async for value in stream:
            summary = orjson.loads(value)
            project = summary["project_id"]
            detector = self.detectors.get(project)
            if detector is None:
                stored = self.detector_table.get(project.encode())
                detector = (
                    ProjectDetector.from_json(orjson.loads(stored)) if stored else ProjectDetector(project)
                )
                self.detectors[project] = detector
            alerts = detector.add(summary, self.thresholds)
            self.detector_table[project.encode()] = orjson.dumps(detector.to_json())
            for alert in alerts:
                await self.publish_alert(alert)

    async def publish_alert(self, alert: Alert) -> None:
        await self.alerts_topic.send(key=alert.alert_id.encode(), value=alert.to_json())
        ALERTS.labels(alert.status.value, alert.metric).inc()
        log.warning(
            "alert",
            alert_id=alert.alert_id,
            status=alert.status.value,
            project=alert.project_id,
            metric=alert.metric,
            labels=alert.labels,
            observed=alert.observed,
            expected=alert.expected,
        )
        self.sender.submit(alert)

    # -- whole-project answers -------------------------------------------------------------------------

    def owners_of(self, table: faust.Table) -> dict[str, set[int]]:
        topic = table.changelog_topic.get_topic_name()
        return owners(self.app.assignor.table_metadata(topic), topic)

    async def gather(self, project: str, parts: Any, params: dict[str, Any]) -> Any:
        """This worker's parts (`SummaryParts`/`MinuteParts`) merged with those the owners of the other
        partitions answer to `GET /live/{project}/parts?<params>`; partitions nobody answered for stay out of
        `parts.partitions`."""
        wanted = set(range(self.partitions)) - parts.partitions
        if not wanted:
            return parts
        plan = live_parts.plan_requests(
            self.owners_of(self.live_table), str(self.app.conf.canonical_url), wanted
        )
        answers = await asyncio.gather(
            *(
                self.peers.get(
                    url, parts_path(project), {**params, "partitions": ",".join(map(str, sorted(ask)))}
                )
                for url, ask in plan.items()
            )
        )
        for answer in answers:
            if answer is not None:
                parts.merge(type(parts).from_json(answer))
        return parts

    def detector_owner(self, project: str) -> str | None:
        """URL of the member whose `detect` agent judges `project` (None: this one, or no assignment yet)."""
        partition = key_partition(project.encode(), self.partitions)
        own = str(self.app.conf.canonical_url).rstrip("/")
        for url, partitions in self.owners_of(self.detector_table).items():
            if partition in partitions and url.rstrip("/") != own:
                return url
        return None

    # -- live API -------------------------------------------------------------------------------------

    def _add_views(self, app: faust.App) -> None:
        worker = self

        @app.page("/healthz")
        class Health(View):
            async def get(self, request: Request) -> Response:
                body = {
                    "status": "ok" if worker.ready else "starting",
                    "partitions": sorted(worker.state.partitions),
                }
                return self.json(body, status=200 if worker.ready else 503)

        if worker.settings.stream_metrics_port is None:

            @app.page("/metrics")
            class Metrics(View):
                async def get(self, request: Request) -> Response:
                    return self.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

        def refused(view: View, reason: str) -> Response:
            web.REFUSED.labels("bad_parameter").inc()
            return view.json({"error": reason}, status=400)

        @app.page("/live/projects")
        class Projects(View):
            async def get(self, request: Request) -> Response:
                found = set(worker.state.projects())
                plan = live_parts.plan_requests(
                    worker.owners_of(worker.live_table),
                    str(worker.app.conf.canonical_url),
                    set(range(worker.partitions)) - set(worker.state.partitions),
                )
                for url in plan:
                    answer = await worker.peers.get(url, "/live/projects/local", {})
                    if answer is None:
                        return self.json({"error": f"the stream worker at {url} did not answer"}, status=503)
                    found.update(answer["projects"])
                return self.json(views.projects_body(sorted(found)))

        @app.page("/live/projects/local")
        class LocalProjects(View):
            async def get(self, request: Request) -> Response:
                return self.json(views.projects(worker.state))

        @app.page("/live/{project_id}/summary")
        class Summary(View):
            async def get(self, request: Request, project_id: str) -> Response:
                window = request.query.get("window", "5m")
                if window not in SUMMARY_WINDOWS:
                    return refused(
                        self, f"window must be one of {', '.join(SUMMARY_WINDOWS)}; got {window!r}"
                    )
                now = datetime.now(UTC)
                window_start, user_starts = views.summary_starts(window, now)
                parts = worker.state.summary_parts(
                    project_id, window_start, user_starts, worker.state.owned()
                )
                params = {
                    "kind": "summary",
                    "window_start": window_start,
                    "user_starts": ",".join(user_starts),
                }
                parts = await worker.gather(project_id, parts, params)
                return self.json(views.summary_body(parts, worker.partitions, project_id, window, now))

        @app.page("/live/{project_id}/timeseries")
        class Timeseries(View):
            async def get(self, request: Request, project_id: str) -> Response:
                try:
                    minutes = int(request.query.get("minutes", "60"))
                except ValueError:
                    minutes = 0
                if not 1 <= minutes <= worker.settings.stream_retention_minutes:
                    return refused(self, "minutes must be an integer within the retention")
                now = datetime.now(UTC)
                since = views.timeseries_keys(minutes, now)[0]
                parts = worker.state.minute_parts(project_id, since, worker.state.owned())
                parts = await worker.gather(project_id, parts, {"kind": "minutes", "since": since})
                return self.json(views.timeseries_body(parts, project_id, minutes, now))

        @app.page("/live/{project_id}/parts")
        class Parts(View):
            """This worker's parts of an answer, for the worker that answers (see `gather`)."""

            async def get(self, request: Request, project_id: str) -> Response:
                query = request.query
                try:
                    asked = worker.state.owned(
                        live_parts.parse_partitions(query.get("partitions", ""), worker.partitions)
                    )
                    if query.get("kind") == "summary":
                        window_start = live_parts.parse_minute(query.get("window_start"), "window_start")
                        user_starts = [
                            live_parts.parse_minute(start, "user_starts")
                            for start in query.get("user_starts", "").split(",")
                        ]
                        parts: SummaryParts | MinuteParts = worker.state.summary_parts(
                            project_id, window_start, user_starts, asked
                        )
                    elif query.get("kind") == "minutes":
                        since = live_parts.parse_minute(query.get("since"), "since")
                        parts = worker.state.minute_parts(project_id, since, asked)
                    else:
                        raise ValueError(f"kind must be summary or minutes; got {query.get('kind')!r}")
                except ValueError as exc:
                    return refused(self, str(exc))
                return self.json(parts.to_json())

        @app.page("/live/{project_id}/alerts")
        class Firing(View):
            async def get(self, request: Request, project_id: str) -> Response:
                owner = worker.detector_owner(project_id)
                if owner is not None:
                    answer = await worker.peers.get(owner, f"/live/{quote(project_id, safe='')}/alerts", {})
                    if answer is None:
                        return self.json(
                            {"error": f"the stream worker judging {project_id!r} ({owner}) did not answer"},
                            status=503,
                        )
                    return self.json(answer)
                detector = worker.detectors.get(project_id)
                return self.json(
                    views.firing_alerts(project_id, detector.firing.values() if detector else [])
                )


def configured_sinks(settings: Settings) -> list[Sink]:
    """Every alert sink the settings name, any combination of them."""
    links = Links(settings.runbook_url, settings.stream_dashboards_url)
    resend_s = settings.stream_alertmanager_resend_s
    sinks = [slack_sink(url) for url in settings.stream_webhook_urls]
    sinks += [
        Sink(
            "alertmanager",
            url.rstrip("/") + "/api/v2/alerts",
            lambda alert, now: ([alert_sinks.alertmanager_alert(alert, links, now, resend_s)], {}),
            resend_while_firing=True,
        )
        for url in settings.stream_alertmanager_urls
    ]
    if settings.stream_pagerduty_routing_key is not None:
        routing_key = settings.stream_pagerduty_routing_key.get_secret_value()
        sinks.append(
            Sink(
                "pagerduty",
                settings.stream_pagerduty_url,
                lambda alert, now: (alert_sinks.pagerduty_event(alert, routing_key, links), {}),
            )
        )
    if settings.stream_signed_webhook_secret is not None:
        key = alert_sinks.signing_key(settings.stream_signed_webhook_secret.get_secret_value())
        sinks += [
            Sink("signed_webhook", url, lambda alert, now: alert_sinks.signed_request(alert, key, links, now))
            for url in settings.stream_signed_webhook_urls
        ]
    return sinks
