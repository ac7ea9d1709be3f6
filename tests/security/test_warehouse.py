"""Finding 1 of issue 17 replayed against a running embedded warehouse: what any web page or local process
could do to it (write over GET, drop from a form post, rebind DNS, read local files, reach other services),
and credentials from PRAVIS_CLICKHOUSE_URL working for every worker's client once a password is set.

Each test asserts the refusal and that nothing changed: the row is not there, the table still is, the
file's content is not in the answer.
"""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from pravis_local.settings import Settings
from pravis_local.stack import dev_api_key

from tests.support import services

PASSWORD = "s3cret:/@pw"


@pytest.fixture(scope="module")
def warehouse_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A data dir as `make up` leaves it: the dev write key in a file next to the warehouse's data."""
    data_dir = tmp_path_factory.mktemp("warehouse-security")
    return data_dir, dev_api_key(Settings(data_dir=data_dir))


@pytest.fixture(scope="module")
def warehouse(warehouse_data: tuple[Path, str], log_dir: Path) -> Iterator[str]:
    """The embedded warehouse as `make up` runs it: loopback, no password."""
    with services.embedded_warehouse(warehouse_data[0], log_dir, name="warehouse-security") as url:
        httpx.post(url, content="CREATE TABLE IF NOT EXISTS victim (n UInt8) ENGINE = MergeTree ORDER BY n")
        yield url


@pytest.fixture(scope="module")
def locked_warehouse(tmp_path_factory: pytest.TempPathFactory, log_dir: Path) -> Iterator[str]:
    env = {"PRAVIS_WAREHOUSE_USER": "pravis", "PRAVIS_WAREHOUSE_PASSWORD": PASSWORD}
    data_dir = tmp_path_factory.mktemp("warehouse-locked")
    with services.embedded_warehouse(data_dir, log_dir, env, name="warehouse-locked") as url:
        yield url


def count(url: str, table: str = "victim") -> str:
    return httpx.post(url, content=f"SELECT count() FROM {table}").text


def code(response: httpx.Response) -> tuple[int, str | None]:
    return response.status_code, response.headers.get("X-ClickHouse-Exception-Code")


def test_insert_over_get_is_refused_and_the_row_is_not_there(warehouse: str) -> None:
    before = count(warehouse)
    # What <img src="http://127.0.0.1:8123/?query=INSERT..."> sends.
    response = httpx.get(warehouse, params={"query": "INSERT INTO victim VALUES (1)"})
    assert code(response) == (500, "164")
    assert "method GET implies readonly" in response.text
    assert count(warehouse) == before


def test_drop_over_get_is_refused_and_the_table_is_still_there(warehouse: str) -> None:
    for statement in ["DROP TABLE victim", "TRUNCATE TABLE victim", "ALTER TABLE victim DELETE WHERE 1"]:
        assert code(httpx.get(warehouse, params={"query": statement})) == (500, "164"), statement
    assert httpx.post(warehouse, content="EXISTS TABLE victim").text == "1\n"


def test_cross_site_form_post_cannot_write(warehouse: str) -> None:
    httpx.post(warehouse, content="INSERT INTO victim VALUES (2)")
    before = count(warehouse)
    # A <form method=post enctype=text/plain> or a no-cors fetch: the browser adds the page's Origin.
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ]:
        response = httpx.post(
            warehouse,
            params={"query": "DROP TABLE victim"},
            content="",
            headers={"Origin": "https://attacker.example", "Content-Type": content_type},
        )
        assert code(response) == (403, "497"), content_type
    assert count(warehouse) == before


def test_dns_rebinding_host_is_refused(warehouse: str) -> None:
    port = warehouse.rsplit(":", 1)[1]
    for host in [f"attacker.example:{port}", f"127.0.0.1.attacker.example:{port}"]:
        response = httpx.get(
            warehouse, params={"query": "SELECT count() FROM victim"}, headers={"Host": host}
        )
        assert code(response) == (403, "497")
        assert "Host" in response.text


def test_no_cors_headers_ever(warehouse: str) -> None:
    origin = {"Origin": "https://attacker.example"}
    for response in [
        httpx.get(warehouse, params={"query": "SELECT 1", "add_http_cors_header": "1"}),
        httpx.get(warehouse, params={"query": "SELECT 1"}, headers=origin),
        httpx.options(warehouse, headers={**origin, "Access-Control-Request-Method": "POST"}),
        httpx.get(f"{warehouse}/ping", headers=origin),
    ]:
        assert not [name for name in response.headers if name.lower().startswith("access-control-")]


def test_local_files_and_the_dev_key_are_not_read(warehouse: str, warehouse_data: tuple[Path, str]) -> None:
    data_dir, key = warehouse_data
    hostname = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else None
    statements = [
        "SELECT * FROM file('/etc/hostname', 'LineAsString')",
        "SELECT file('/etc/hostname')",
        f"SELECT * FROM file('{data_dir / 'dev_api_key'}', 'LineAsString')",
        "SELECT * FROM file('../dev_api_key', 'LineAsString')",
        f"SELECT * FROM file('{data_dir}/*', 'LineAsString')",
    ]
    for method in ("GET", "POST"):
        for statement in statements:
            if method == "GET":
                response = httpx.get(warehouse, params={"query": statement})
            else:
                response = httpx.post(warehouse, content=statement)
            assert code(response) == (403, "291"), statement
            assert key not in response.text and (hostname is None or hostname not in response.text)
    custom_disk = data_dir.parent / f"{data_dir.name}-disk"
    for statement in [
        f"CREATE DATABASE exposed ENGINE = Filesystem('{data_dir}')",
        f"SELECT * FROM sqlite('{data_dir / 'keys.json'}', 'keys')",
        "CREATE TABLE on_custom_disk (s String) ENGINE = MergeTree ORDER BY s "
        f"SETTINGS disk = disk(type = 'local', path = '{custom_disk}/')",
        f"BACKUP TABLE victim TO Disk('default', '{custom_disk}/backup')",
        f"ALTER TABLE victim MODIFY SETTING disk = disk(type = 'local', path = '{custom_disk}/')",
    ]:
        assert code(httpx.post(warehouse, content=statement)) == (403, "497"), statement
    assert not custom_disk.exists()
    assert httpx.post(warehouse, content="EXISTS DATABASE exposed").text == "0\n"
    loaded = httpx.post(
        warehouse, content=f"INSERT INTO victim FROM INFILE '{data_dir / 'dev_api_key'}' FORMAT LineAsString"
    )
    assert code(loaded) == (500, "358")
    written = httpx.post(warehouse, content=f"SELECT 'owned' INTO OUTFILE '{data_dir / 'owned.txt'}'")
    assert code(written) == (500, "358")
    assert not (data_dir / "owned.txt").exists()


def test_other_local_services_are_not_reachable(warehouse: str, gateway_url: str) -> None:
    for statement in [
        f"SELECT * FROM url('{gateway_url}/readyz', 'LineAsString')",
        f"SELECT * FROM remote('{gateway_url.removeprefix('http://')}', system.one)",
        f"CREATE TABLE proxy (s String) ENGINE = URL('{gateway_url}/readyz', LineAsString)",
        f"CREATE DICTIONARY proxy (s String) PRIMARY KEY s SOURCE(HTTP(url '{gateway_url}/readyz' "
        "format 'LineAsString')) LAYOUT(COMPLEX_KEY_HASHED()) LIFETIME(0)",
    ]:
        response = httpx.post(warehouse, content=statement)
        assert code(response) == (403, "497"), statement
    assert httpx.post(warehouse, content="EXISTS TABLE proxy").text == "0\n"


def test_with_a_password_missing_or_wrong_credentials_are_refused(locked_warehouse: str) -> None:
    query = {"query": "SELECT 1"}
    assert httpx.get(f"{locked_warehouse}/ping").text == "Ok.\n"
    for response in [
        httpx.get(locked_warehouse, params=query),
        httpx.post(locked_warehouse, content="CREATE TABLE sneaked (n UInt8) ENGINE = Memory"),
        httpx.get(locked_warehouse, params=query, auth=("pravis", "wrong")),
        httpx.get(locked_warehouse, params={**query, "user": "pravis", "password": "wrong"}),
        httpx.get(
            locked_warehouse, params=query, headers={"X-ClickHouse-User": "pravis", "X-ClickHouse-Key": ""}
        ),
    ]:
        assert code(response) == (403, "516")
        assert "Authentication failed" in response.text
    authed = httpx.post(locked_warehouse, content="EXISTS TABLE sneaked", auth=("pravis", PASSWORD))
    assert authed.text == "0\n"


def test_with_a_password_each_clickhouse_form_is_accepted(locked_warehouse: str) -> None:
    query = {"query": "SELECT 1"}
    assert httpx.get(locked_warehouse, params=query, auth=("pravis", PASSWORD)).text == "1\n"
    headers = {"X-ClickHouse-User": "pravis", "X-ClickHouse-Key": PASSWORD}
    assert httpx.get(locked_warehouse, params=query, headers=headers).text == "1\n"
    assert httpx.get(locked_warehouse, params={**query, "user": "pravis", "password": PASSWORD}).text == "1\n"


def with_credentials(url: str, password: str = PASSWORD) -> str:
    return url.replace("http://", f"http://pravis:{quote(password, safe='')}@") + "/pravis"


def test_every_worker_client_authenticates_from_the_clickhouse_url(locked_warehouse: str) -> None:
    from pravis_dashboards.clickhouse import Warehouse
    from pravis_gateway.clickhouse import connect as gateway_connect
    from pravis_rollups.clickhouse import connect as rollups_connect
    from pravis_rollups.clickhouse import migrate

    url = with_credentials(locked_warehouse)
    assert migrate(url)  # the loader's start: creates the database and its tables
    with rollups_connect(url) as client:
        assert client.command("SELECT currentDatabase()") == "pravis"
    assert gateway_connect(url).command("SELECT count() FROM privacy_requests") == 0
    assert Warehouse(url).query("SELECT {n:UInt8} + 1 AS two", {"n": 1}) == (["two"], [(2,)])
    assert not Warehouse(with_credentials(locked_warehouse, "wrong")).ping()


def test_pravis_sql_uses_the_url_credentials_and_fails_cleanly_without(locked_warehouse: str) -> None:
    def pravis_sql(url: str) -> subprocess.CompletedProcess[str]:
        pravis = str(Path(sys.executable).with_name("pravis"))  # the console script of this venv
        argv = [pravis, "sql", "SELECT 40 + 2", "--format", "TSV", "--url", url]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60)

    ok = pravis_sql(with_credentials(locked_warehouse))
    assert (ok.returncode, ok.stdout) == (0, "42\n"), ok.stderr
    refused = pravis_sql(locked_warehouse + "/pravis")
    assert refused.returncode == 1
    assert "AUTHENTICATION_FAILED" in refused.stderr and "Traceback" not in refused.stderr
