"""A tiny local HTTP server for SDK tests: serves static files and pages, forwards POSTs and `GET /api/...`
(the surveys the SDK fetches) to the gateway.

Forwarding keeps a browser page and the gateway on one origin, and `script` lets a test make the next
POSTs fail like a gateway whose Kafka is down ("503": not forwarded, answered 503 + Retry-After) or like a
response lost on the way back ("forward_then_503": the gateway stored the batch, the client sees a 503).
"""

import gzip
import json
import mimetypes
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

FORWARDED_HEADERS = ("content-type", "content-encoding", "x-api-key")


@dataclass(frozen=True)
class Post:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    batch: dict[str, Any]
    answered: int

    @property
    def event_ids(self) -> list[str]:
        return [e["event_id"] for e in self.batch.get("events", [])]


class Site:
    def __init__(
        self,
        gateway_url: str,
        static: dict[str, Path] | None = None,
        pages: dict[str, str] | None = None,
        retry_after: str = "1",
    ) -> None:
        self.gateway_url = gateway_url
        self.static = static or {}
        self.pages = pages or {}
        self.retry_after = retry_after
        self.script: list[str] = []
        self.posts: list[Post] = []
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "Site":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def posted_ids(self) -> list[str]:
        with self.lock:
            return [i for post in self.posts if post.answered == 200 for i in post.event_ids]

    def _next_action(self) -> str:
        with self.lock:
            return self.script.pop(0) if self.script else "forward"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                if path.startswith("/api/"):
                    headers = {k.lower(): v for k, v in self.headers.items() if k.lower() == "x-api-key"}
                    response = httpx.get(site.gateway_url + self.path, headers=headers, timeout=30)
                    return self._answer(response.status_code, response.content, "application/json")
                if path in site.pages:
                    return self._answer(200, site.pages[path].encode(), "text/html; charset=utf-8")
                for prefix, root in site.static.items():
                    if path.startswith(prefix):
                        file = (root / path[len(prefix) :]).resolve()
                        if file.is_file() and file.is_relative_to(root.resolve()):
                            kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
                            if file.suffix == ".js":
                                kind = "text/javascript"
                            return self._answer(200, file.read_bytes(), kind)
                return self._answer(404, b"not found", "text/plain")

            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items() if k.lower() in FORWARDED_HEADERS}
                action = site._next_action()
                if action == "503":
                    status, content, extra = 503, b'{"status":"error","error":"scripted"}', {}
                else:
                    response = httpx.post(
                        site.gateway_url + self.path, content=body, headers=headers, timeout=30
                    )
                    status, content = response.status_code, response.content
                    extra = (
                        {"retry-after": response.headers["retry-after"]}
                        if "retry-after" in response.headers
                        else {}
                    )
                    if action == "forward_then_503":
                        status, content = 503, b'{"status":"error","error":"response lost"}'
                if status == 503:
                    extra = {"retry-after": site.retry_after}
                raw = gzip.decompress(body) if headers.get("content-encoding") == "gzip" else body
                try:
                    batch = json.loads(raw)
                except ValueError:
                    batch = {}
                with site.lock:
                    site.posts.append(Post(parts.path, parse_qs(parts.query), headers, batch, status))
                self._answer(status, content, "application/json", extra)

            def _answer(
                self, status: int, body: bytes, kind: str, extra: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                for name, value in (extra or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        return Handler
