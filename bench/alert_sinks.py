"""Alert sinks: what handing an alert over costs the detector, and delivery rates per sink.

`python -m bench.alert_sinks [--alerts 500] [--silences 0,100,1000]`.

1. Hand-off: `AlertSender.submit` per alert (the only work the detector does per alert besides publishing it
   on `alerts`), with that many silences in force for other projects (the book is indexed by series).
2. Delivery: alerts/s from submit to a loopback receiver's 2xx, per sink kind (the payload formatting, the
   signature, the POST), alone and next to a sink that is down (connection refused, retried with backoff):
   the ratio shows whether one sink's outage slows another.
"""

import argparse
import asyncio
import base64
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pravis_schemas.messages import Alert
from pravis_schemas.silences import Silence
from pravis_stream.alert_sinks import SilenceBook
from pravis_stream.app import configured_sinks
from pravis_stream.settings import Settings
from pravis_stream.webhook import QUEUE_LIMIT, AlertSender, Sink, slack_payload
from rich.console import Console
from rich.table import Table

from tests.support import services

console = Console()
SECRET = "whsec_" + base64.b64encode(b"bench-secret-of-24-bytes").decode()


class Counting(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        self.count = 0
        lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real receivers

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with lock:
                    server.count += 1

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, args=(0.01,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: object, client_address: object) -> None:
        """A sender closing its keep-alive connection at the end of a round is no error here."""


def alert(i: int) -> Alert:
    now = datetime.now(UTC)
    return Alert(
        alert_id=f"bench-{i}",
        status="firing",
        severity="warning",
        project_id="bench",
        metric="api_error_rate",
        labels={"endpoint": f"/api/v1/items/{i % 50}"},
        observed=0.3,
        expected=0.01,
        window_start=now,
        window_end=now,
        started_at=now,
        message="bench",
    )


def hand_off_us(alerts: list[Alert], silences: int) -> float:
    book = SilenceBook()
    now = datetime.now(UTC)
    for i in range(silences):
        book.add(
            Silence(
                silence_id=f"s{i}",
                project_id=f"other-{i}",
                metric="error_rate",
                starts_at=now,
                ends_at=now + timedelta(hours=1),
                comment="bench",
            ),
            now,
        )
    sender = AlertSender([Sink("slack", "http://127.0.0.1:9/", lambda a, t: (slack_payload(a), {}))], book,
                         lambda: now, attempts=1, timeout_s=1)  # fmt: skip
    sender.submit(alerts[0])  # the first hand-off creates the sink's metric children
    began = time.perf_counter()
    for a in alerts:
        sender.submit(a)
    return (time.perf_counter() - began) / len(alerts) * 1e6


async def delivery_rate(sinks: list[Sink], receiver: Counting, alerts: list[Alert]) -> float:
    sender = AlertSender(sinks, SilenceBook(), lambda: datetime.now(UTC), attempts=5, timeout_s=5)
    task = asyncio.create_task(sender.run())
    start_count = receiver.count
    began = time.perf_counter()
    for a in alerts:
        sender.submit(a)
    while receiver.count - start_count < len(alerts):
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - began
    task.cancel()
    await sender.close()
    return len(alerts) / elapsed


def sinks_of(kind: str, url: str) -> list[Sink]:
    settings = {
        "slack": Settings(stream_webhook_urls=[url]),
        "alertmanager": Settings(stream_alertmanager_urls=[url]),
        "pagerduty": Settings(stream_pagerduty_routing_key="R" * 32, stream_pagerduty_url=url),
        "signed_webhook": Settings(stream_signed_webhook_urls=[url], stream_signed_webhook_secret=SECRET),
    }[kind]
    return configured_sinks(settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=500, help=f"at most {QUEUE_LIMIT} (one sink's queue)")
    parser.add_argument("--silences", default="0,100,1000")
    args = parser.parse_args()
    if not 0 < args.alerts <= QUEUE_LIMIT:
        parser.error(
            f"--alerts must be 1..{QUEUE_LIMIT}: beyond a sink's queue the oldest alerts are dropped"
        )
    alerts = [alert(i) for i in range(args.alerts)]

    table = Table("silences in force (other series)", "hand-off µs/alert")
    for silences in (int(n) for n in args.silences.split(",")):
        table.add_row(str(silences), f"{hand_off_us(alerts, silences):.1f}")
    console.print(table)

    receiver = Counting()
    down = Sink("slack", f"http://127.0.0.1:{services.free_port()}/down", lambda a, t: (slack_payload(a), {}))
    table = Table("sink", "alerts/s alone", "alerts/s beside a down sink", "ratio")
    for kind in ("slack", "alertmanager", "pagerduty", "signed_webhook"):
        alone = asyncio.run(delivery_rate(sinks_of(kind, receiver.url), receiver, alerts))
        beside = asyncio.run(delivery_rate([down, *sinks_of(kind, receiver.url)], receiver, alerts))
        table.add_row(kind, f"{alone:,.0f}", f"{beside:,.0f}", f"{beside / alone:.2f}")
    console.print(table)
    receiver.shutdown()


if __name__ == "__main__":
    main()
