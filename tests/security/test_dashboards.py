"""Findings 5, 6, 7 (live API) and 8 replayed against a running dashboards process and stream worker, both
with credentials and a separate metrics port set as a deployment beyond loopback would:

- 5: the `.sql` download for a project such as `x<newline>DROP TABLE pravis.events;<newline>--`, run the way
  clickhouse-client --queries-file runs it, returns that panel's rows for exactly that project, drops nothing;
- 6: non-ASCII and quote-laden project names give 200 and one well-formed Content-Disposition;
- 7: the live API closes a connection whose request head or body never finishes arriving;
- 8: every route but /healthz answers 401 with a challenge without the credentials, 200 with them (the
  dashboards' relay to the live API included), each refusal counted; /metrics only on the metrics port.
"""

import re
import secrets
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import unquote

import chdb
import httpx
import orjson
import pytest
import yaml
from pravis_dashboards.settings import Settings as DashboardsSettings
from pravis_rollups.clickhouse import connect, migrate, migration_files
from pravis_stream.settings import Settings as StreamSettings

from tests.support import services

HOSTILE = "x\nDROP TABLE pravis.events;\n--"
PROJECTS = [
    HOSTILE,
    "x",
    "it's a \\ back'slash\\' \"quoted\"",
    "ünïcødé 日本語 😀",
    "x\"; filename*=UTF-8''evil.exe; a=\"",
    "tab\there\r\nSet-Cookie: a=b",
]
FIRST = date(2024, 3, 1)
DAYS = 3
DAU_COLUMNS = ["project_id", "day", "dau", "wau", "mau", "new_users", "stickiness"]
REQUEST_TIMEOUT_S = 2.0


def dau_rows() -> list[list]:
    """Distinct numbers per project and day, so rows of a wrong project would not pass for the right ones."""
    return [
        [project, FIRST + timedelta(days=d), 100 * i + d, 200 * i + d, 300 * i + d, d, 0.5]
        for i, project in enumerate(PROJECTS)
        for d in range(DAYS)
    ]


def expected_panel_rows(project: str) -> list[list]:
    """The active_users panel's columns (day, dau, wau, mau) of `project`, from the inserted rows."""
    return [[str(r[1]), r[2], r[3], r[4]] for r in dau_rows() if r[0] == project]


@dataclass
class Service:
    url: str
    metrics_url: str
    headers: dict[str, str]
    process: services.Process


@pytest.fixture(scope="module")
def warehouse_url(clickhouse_server: str) -> str:
    url = f"{clickhouse_server}/pravis_sec_dash_{secrets.token_hex(4)}"
    migrate(url)
    with connect(url) as client:
        client.insert("daily_active_users", dau_rows(), column_names=DAU_COLUMNS)
    return url


@pytest.fixture(scope="module")
def stream(worker_env: dict[str, str], log_dir: Path) -> Iterator[Service]:
    port, metrics_port, token = services.free_port(), services.free_port(), secrets.token_urlsafe(24)
    env = {
        **worker_env,
        "PRAVIS_STREAM_APP_ID": f"pravis-stream-sec-{secrets.token_hex(4)}",
        "PRAVIS_STREAM_WEB_PORT": str(port),
        "PRAVIS_STREAM_METRICS_PORT": str(metrics_port),
        "PRAVIS_STREAM_LIVE_AUTH": f"token:{token}",
        "PRAVIS_STREAM_WEB_REQUEST_TIMEOUT_S": str(REQUEST_TIMEOUT_S),
        "PRAVIS_STREAM_SESSION_TIMEOUT_S": "6",
        "PRAVIS_STREAM_REBALANCE_TIMEOUT_S": "3",
    }
    process = services.Process("stream-security", [sys.executable, "-m", "pravis_stream"], log_dir, env)
    process.start()
    try:
        services.wait_for_http(f"http://127.0.0.1:{port}/healthz", process.popen, timeout_s=90)
        yield Service(
            f"http://127.0.0.1:{port}",
            f"http://127.0.0.1:{metrics_port}",
            {"Authorization": f"Bearer {token}"},
            process,
        )
    finally:
        process.stop()


@pytest.fixture(scope="module")
def dashboards(warehouse_url: str, stream: Service, log_dir: Path) -> Iterator[Service]:
    port, metrics_port, password = services.free_port(), services.free_port(), secrets.token_urlsafe(16)
    env = {
        "PRAVIS_CLICKHOUSE_URL": warehouse_url,
        "PRAVIS_STREAM_URL": stream.url,
        "PRAVIS_STREAM_LIVE_AUTH": "token:" + stream.headers["Authorization"].removeprefix("Bearer "),
        "PRAVIS_DASHBOARDS_AUTH": f"basic:analyst:{password}",
        "PRAVIS_DASHBOARDS_METRICS_PORT": str(metrics_port),
    }
    argv = [sys.executable, "-m", "pravis_dashboards", "--port", str(port)]
    process = services.Process("dashboards-security", argv, log_dir, env).start()
    try:
        services.wait_for_http(f"http://127.0.0.1:{port}/healthz", process.popen)
        auth = httpx.BasicAuth("analyst", password)
        headers = {"Authorization": auth._auth_header}
        yield Service(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}", headers, process)
    finally:
        process.stop()


def download(dashboards: Service, kind: str, project: str) -> httpx.Response:
    params = {"project": project, "from": str(FIRST), "to": str(FIRST + timedelta(days=DAYS - 1))}
    return httpx.get(
        f"{dashboards.url}/api/panels/active_users.{kind}", params=params, headers=dashboards.headers
    )


def engine_with_the_schema() -> chdb.state.sqlitelike.Connection:
    """A ClickHouse engine of our own (in this process) with the project's migrations and the same rows: the
    file needs one session for its SET statements, which the embedded warehouse's HTTP interface lacks."""
    connection = chdb.connect(":memory:")
    connection.query("CREATE DATABASE pravis")
    connection.query("USE pravis")
    for _, _, sql in migration_files():
        connection.query(sql)
    rows = b"\n".join(orjson.dumps(dict(zip(DAU_COLUMNS, row, strict=True))) for row in dau_rows())
    connection.query("INSERT INTO pravis.daily_active_users FORMAT JSONEachRow " + rows.decode())
    return connection


def tables(connection: chdb.state.sqlitelike.Connection) -> list[str]:
    out = connection.query("SELECT name FROM system.tables WHERE database = 'pravis' ORDER BY name", "CSV")
    return out.bytes().decode().split()


def test_sql_download_runs_the_panel_for_exactly_that_project_and_drops_nothing(dashboards: Service) -> None:
    connection = engine_with_the_schema()
    try:
        before = tables(connection)
        assert '"events"' in before
        for project in PROJECTS:
            response = download(dashboards, "sql", project)
            assert response.status_code == 200, response.text
            text = response.text
            assert not any(line.lstrip().upper().startswith("DROP") for line in text.split("\n"))
            # As clickhouse-client --queries-file: every statement of the file, in order, in one session.
            output = connection.query(text, "JSONCompactEachRow").bytes().decode()
            rows = [orjson.loads(line) for line in output.splitlines()]
            assert rows == expected_panel_rows(project), project
            assert tables(connection) == before
            count = connection.query("SELECT count() FROM pravis.daily_active_users", "CSV").bytes()
            assert int(count) == len(dau_rows())
    finally:
        connection.close()


ATTACHMENT = re.compile(
    r"attachment; filename=\"(?P<fallback>[A-Za-z0-9._-]+)\"; "
    r"filename\*=UTF-8''(?P<encoded>(?:[A-Za-z0-9!#$&+\-.^_`|~]|%[0-9A-F]{2})+)"
)


@pytest.mark.parametrize("kind", ["csv", "sql"])
def test_downloads_name_the_file_in_one_well_formed_header(dashboards: Service, kind: str) -> None:
    for project in PROJECTS:
        response = download(dashboards, kind, project)
        assert response.status_code == 200, (project, response.text)
        dispositions = response.headers.get_list("content-disposition")
        assert len(dispositions) == 1 and "set-cookie" not in response.headers
        match = ATTACHMENT.fullmatch(dispositions[0])
        assert match, dispositions[0]
        name = unquote(match["encoded"], errors="strict")
        assert name.endswith(f".{kind}") and not any(c in name for c in '"/\\\r\n\t')
        if kind == "csv":
            assert name.startswith("active_users_") and name.endswith(f"_{FIRST}_{FIRST + timedelta(2)}.csv")
            lines = response.text.splitlines()
            assert lines[0] == "day,dau,wau,mau"
            assert [line.split(",") for line in lines[1:]] == [
                [str(v) for v in row] for row in expected_panel_rows(project)
            ]


def metric(metrics_url: str, name: str, reason: str) -> float:
    text = httpx.get(f"{metrics_url}/metrics").text
    found = re.search(rf'^{name}\{{reason="{reason}"\}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


DASHBOARD_PATHS = [
    "/",
    "/executive",
    "/api/meta",
    "/api/pages/executive?project=x",
    "/api/panels/active_users.csv?project=x",
    "/api/panels/active_users.sql?project=x",
    "/api/live/projects",
    "/api/live/x",
    "/static/dashboards.js",
    "/static/../settings.py",
]


def test_dashboards_need_credentials_on_every_route_but_healthz(dashboards: Service) -> None:
    missing = metric(dashboards.metrics_url, "pravis_dashboards_refused_total", "missing_credentials")
    wrong = metric(dashboards.metrics_url, "pravis_dashboards_refused_total", "wrong_credentials")
    wrong_headers = [
        {"Authorization": httpx.BasicAuth("analyst", "guess")._auth_header},
        {"Authorization": httpx.BasicAuth("admin", "")._auth_header},
        {"Authorization": "Basic !!!"},
        {"Authorization": dashboards.headers["Authorization"].replace("Basic", "Bearer")},
    ]
    with httpx.Client(base_url=dashboards.url, follow_redirects=False) as client:
        for path in DASHBOARD_PATHS:
            refused = client.get(path)
            assert refused.status_code == 401, path
            assert refused.headers["www-authenticate"] == 'Basic realm="pravis", charset="UTF-8"'
            assert "dau" not in refused.text and "<html" not in refused.text.lower()
            for headers in wrong_headers:
                assert client.get(path, headers=headers).status_code == 401, (path, headers)
            allowed = client.get(path, headers=dashboards.headers)
            assert allowed.status_code != 401, path
        assert client.get("/healthz").status_code == 200
        assert client.get("/executive", headers=dashboards.headers).status_code == 200
    after_missing = metric(dashboards.metrics_url, "pravis_dashboards_refused_total", "missing_credentials")
    after_wrong = metric(dashboards.metrics_url, "pravis_dashboards_refused_total", "wrong_credentials")
    assert after_missing - missing == len(DASHBOARD_PATHS)
    assert after_wrong - wrong == len(DASHBOARD_PATHS) * len(wrong_headers)


def test_the_live_relay_sends_the_live_api_credentials(dashboards: Service, stream: Service) -> None:
    relayed = httpx.get(f"{dashboards.url}/api/live/projects", headers=dashboards.headers)
    assert relayed.status_code == 200 and relayed.json()["ok"] is True, relayed.text
    snapshot = httpx.get(f"{dashboards.url}/api/live/sec-project", headers=dashboards.headers)
    assert snapshot.status_code == 200 and snapshot.json()["events"] == 0, snapshot.text


LIVE_PATHS = ["/live/projects", "/live/x/summary", "/live/x/timeseries", "/live/x/alerts", "/", "/stats/"]


def test_live_api_needs_credentials_on_every_route_but_healthz(stream: Service) -> None:
    before = metric(stream.metrics_url, "pravis_stream_web_refused_total", "missing_credentials")
    wrong_before = metric(stream.metrics_url, "pravis_stream_web_refused_total", "wrong_credentials")
    for path in LIVE_PATHS:
        refused = httpx.get(stream.url + path)
        assert refused.status_code == 401, path
        assert refused.headers["www-authenticate"] == 'Bearer realm="pravis"'
        wrong = httpx.get(stream.url + path, headers={"Authorization": "Bearer not-the-token"})
        assert wrong.status_code == 401, path
    # The right token is let through (which projects it lists depends on what earlier tests sent).
    answered = httpx.get(stream.url + "/live/projects", headers=stream.headers)
    assert answered.status_code == 200 and isinstance(answered.json()["projects"], list)
    assert httpx.get(stream.url + "/healthz").status_code == 200
    after = metric(stream.metrics_url, "pravis_stream_web_refused_total", "missing_credentials")
    wrong_after = metric(stream.metrics_url, "pravis_stream_web_refused_total", "wrong_credentials")
    assert (after - before, wrong_after - wrong_before) == (len(LIVE_PATHS), len(LIVE_PATHS))


def test_other_refusals_are_counted_by_reason(dashboards: Service, stream: Service) -> None:
    cases = [
        (
            dashboards,
            "/api/pages/executive?from=yesterday",
            400,
            "pravis_dashboards_refused_total",
            "bad_parameter",
        ),
        (dashboards, "/api/panels/no_such_panel.csv", 404, "pravis_dashboards_refused_total", "not_found"),
        (stream, "/live/x/summary?window=7d", 400, "pravis_stream_web_refused_total", "bad_parameter"),
        (stream, "/live/x/timeseries?minutes=0", 400, "pravis_stream_web_refused_total", "bad_parameter"),
    ]
    for service, path, status, name, reason in cases:
        before = metric(service.metrics_url, name, reason)
        assert httpx.get(service.url + path, headers=service.headers).status_code == status, path
        assert metric(service.metrics_url, name, reason) == before + 1, path


def test_metrics_only_on_the_metrics_port(dashboards: Service, stream: Service) -> None:
    assert httpx.get(f"{dashboards.url}/metrics", headers=dashboards.headers).status_code == 404
    assert "pravis_dashboards_refused_total" in httpx.get(f"{dashboards.metrics_url}/metrics").text
    assert httpx.get(f"{stream.url}/metrics", headers=stream.headers).status_code == 404
    assert "pravis_stream_events_total" in httpx.get(f"{stream.metrics_url}/metrics").text


def test_dashboards_refuse_a_big_body_before_reading_it(dashboards: Service) -> None:
    """Finding 7 for the dashboards: a declared 30 MB body is answered 413 from the headers alone, before the
    credentials are looked at, and the connection is closed with most of the body never sent."""
    before = metric(dashboards.metrics_url, "pravis_dashboards_refused_total", "body_too_large")
    port = int(dashboards.url.rsplit(":", 1)[1])
    head = b"POST /api/pages/executive HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 31457280\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head + b"x" * 1000)
        received = read_until_closed(sock, deadline_s=30)
    assert received.startswith(b"HTTP/1.1 413"), received[:100]
    assert b'"status": "error"' in received
    assert metric(dashboards.metrics_url, "pravis_dashboards_refused_total", "body_too_large") == before + 1


def read_until_closed(sock: socket.socket, deadline_s: float) -> bytes:
    """Everything the server sends until it closes the connection; raises if still open at the deadline."""
    received = b""
    sock.settimeout(deadline_s)
    while chunk := sock.recv(65536):
        received += chunk
    return received


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(b"GET /live/projects HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthoriz", id="half-head"),
        pytest.param(b"GET /live/projects HTTP/1.1\r\n", id="request-line-only"),
        pytest.param(
            b"POST /live/projects HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n" + b"x" * 500,
            id="half-body",
        ),
    ],
)
def test_live_api_closes_requests_that_never_finish(stream: Service, request_bytes: bytes) -> None:
    port = int(stream.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request_bytes)
        # Far more than the configured timeout, far less than aiohttp's 3630 s default the finding is about.
        received = read_until_closed(sock, deadline_s=REQUEST_TIMEOUT_S * 10)
    if request_bytes.startswith(b"POST"):
        assert received.startswith(b"HTTP/1.1 401"), received[:100]
    else:
        assert received == b""


K8S = Path(__file__).parents[2] / "deploy" / "k8s"


@pytest.mark.parametrize(
    ("manifest", "settings_class"),
    [("dashboards.yaml", DashboardsSettings), ("stream.yaml", StreamSettings)],
)
def test_k8s_sets_credentials_from_the_secret_and_scrapes_the_metrics_port(
    manifest: str, settings_class
) -> None:
    secrets_by_name = {
        doc["metadata"]["name"]: doc["stringData"]
        for doc in yaml.safe_load_all((K8S / "config.yaml").read_text())
        if doc and doc["kind"] == "Secret"
    }
    deployment, service = [doc for doc in yaml.safe_load_all((K8S / manifest).read_text()) if doc]
    template = deployment["spec"]["template"]
    container = template["spec"]["containers"][0]
    env = {}
    for item in container["env"]:
        source = item.get("valueFrom", {})
        if ref := source.get("secretKeyRef"):
            env[item["name"]] = secrets_by_name[ref["name"]][ref["key"]]
        elif "fieldRef" in source:
            env[item["name"]] = "10.1.2.3"  # what the kubelet fills in (the pod's IP)
        else:
            # Kubernetes expands $(NAME) of variables defined above in the same container.
            env[item["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], item["value"])
    settings = settings_class(
        **{k.removeprefix("PRAVIS_").lower(): v for k, v in env.items() if k.startswith("PRAVIS_")}
    )
    worker = "dashboards" if settings_class is DashboardsSettings else "stream"
    metrics_port = getattr(settings, f"{worker}_metrics_port")
    assert settings.stream_live_auth is not None
    assert worker == "stream" or settings.dashboards_auth is not None
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports["metrics"] == metrics_port != ports["http"]
    assert template["metadata"]["annotations"]["prometheus.io/port"] == str(metrics_port)
    assert {"name": "metrics", "port": metrics_port, "targetPort": "metrics"} in service["spec"]["ports"]
    assert all(
        probe["httpGet"]["path"] == "/healthz"
        for probe in (container["readinessProbe"], container["livenessProbe"])
    )
