"""A receiver of POSTed alerts on loopback for the sink tests: it takes or refuses each request the way the
real receiver would, by a check of the raw body and headers (a schema, a signature)."""

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Check = Callable[[bytes, dict[str, str]], Any]


class Receiver(ThreadingHTTPServer):
    """Keeps what `check` returns for each request it takes (answered 202); a request `check` raises on is
    refused (400, or 401 for the exception types in `unauthorized`) and its reason kept."""

    def __init__(self, check: Check, unauthorized: tuple[type[Exception], ...] = ()) -> None:
        self.check, self.unauthorized = check, unauthorized
        self.accepted: list[Any] = []
        self.refused: list[str] = []
        super().__init__(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self.serve_forever, args=(0.01,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        try:
            self.server.accepted.append(self.server.check(body, dict(self.headers)))
            status = 202
        except Exception as exc:
            self.server.refused.append(str(exc))
            status = 401 if isinstance(exc, self.server.unauthorized) else 400
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass
