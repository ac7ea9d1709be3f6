"""The warehouse server against real clients, run as a subprocess on a free port with a temporary data dir."""

import contextlib
import gzip
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import clickhouse_connect
import httpx
import lz4.frame
import pytest
import zstandard
from clickhouse_connect.driver.exceptions import DatabaseError

from tests.support.services import free_port, wait_for

DATABASE = "pravis"
# The module's server has this many chdb connections ("lanes"); tests that must know which requests share a
# lane hold all but one of them with streamed results.
LANES = 3
ENDLESS = {"query": "SELECT * FROM numbers(1e9)"}


@contextlib.contextmanager
def warehouse(
    data_dir: Path, lanes: int | None = LANES, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen, Path]]:
    port = free_port()
    log_path = data_dir.parent / f"warehouse-{port}.log"
    with log_path.open("wb") as log_file:
        argv = ["-m", "pravis_local.warehouse", "--port", str(port), "--data-dir", str(data_dir)]
        argv += ["--connections", str(lanes)] if lanes is not None else []
        process = subprocess.Popen(
            [sys.executable, *argv],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, log_path.read_text()
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{url}/ping").status_code == 200:
                        break
                assert time.monotonic() < deadline, "warehouse did not start"
                time.sleep(0.1)
            yield url, process, log_path
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, subprocess.Popen]]:
    with warehouse(tmp_path_factory.mktemp("warehouse") / "data") as (url, process, _):
        yield url, process


@pytest.fixture(scope="module")
def server(served: tuple[str, subprocess.Popen]) -> str:
    return served[0]


@pytest.fixture(scope="module")
def http(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=60) as client:
        yield client


def sql(http: httpx.Client, query: str, **params: str) -> str:
    response = http.post("/", params=params, content=query)
    assert response.status_code == 200, response.text
    return response.text


@contextlib.contextmanager
def held_lane(server: str) -> Iterator[None]:
    """Keeps one lane busy: a streamed result the client started reading and then left unread."""
    with (
        httpx.Client(base_url=server, timeout=60) as client,
        client.stream("GET", "/", params=ENDLESS) as response,
    ):
        chunks = response.iter_raw()  # kept: dropping the generator would close the response
        next(chunks)
        yield


def test_ping_and_root(http: httpx.Client) -> None:
    assert http.get("/ping").text == "Ok.\n"
    assert http.get("/").text == "Ok.\n"


def test_get_select_defaults_to_tab_separated_with_clickhouse_headers(http: httpx.Client) -> None:
    response = http.get("/", params={"query": "SELECT 1", "query_id": "q-123"})
    assert response.status_code == 200
    assert response.text == "1\n"
    assert response.headers["X-ClickHouse-Query-Id"] == "q-123"
    assert response.headers["X-ClickHouse-Format"] == "TabSeparated"
    assert response.headers["X-ClickHouse-Timezone"]
    assert response.headers["X-ClickHouse-Server-Display-Name"]
    summary = json.loads(response.headers["X-ClickHouse-Summary"])
    assert summary["result_rows"] == "1"
    assert int(summary["elapsed_ns"]) > 0
    curl = subprocess.run(
        ["curl", "-sS", f"{http.base_url}?query=SELECT%201"], capture_output=True, check=True
    )
    assert curl.stdout == b"1\n"


def test_summary_counts_rows_read(http: httpx.Client) -> None:
    response = http.get("/", params={"query": "SELECT count() FROM numbers(1000)"})
    assert response.text == "1000\n"
    assert json.loads(response.headers["X-ClickHouse-Summary"])["read_rows"] == "1000"


def test_json_via_default_format_and_format_clause(http: httpx.Client) -> None:
    by_param = http.get("/", params={"query": "SELECT 1 AS one", "default_format": "JSON"})
    assert by_param.json()["data"] == [{"one": 1}]
    assert by_param.headers["X-ClickHouse-Format"] == "JSON"
    by_clause = http.get("/", params={"query": "SELECT 2 AS two FORMAT JSON"})
    assert by_clause.json()["data"] == [{"two": 2}]
    assert by_clause.headers["X-ClickHouse-Format"] == "JSON"
    assert by_clause.headers["Content-Type"].startswith("application/json")


def test_database_from_param_or_header_and_default(http: httpx.Client) -> None:
    sql(http, "CREATE DATABASE IF NOT EXISTS other")
    query = {"query": "SELECT currentDatabase()"}
    assert http.get("/", params=query).text == f"{DATABASE}\n"
    assert http.get("/", params={**query, "database": "other"}).text == "other\n"
    assert http.get("/", params=query, headers={"X-ClickHouse-Database": "other"}).text == "other\n"
    assert (
        http.get("/", params={**query, "database": "missing"}).headers["X-ClickHouse-Exception-Code"] == "81"
    )


def test_without_a_password_credentials_are_accepted_not_checked(http: httpx.Client) -> None:
    query = {"query": "SELECT 1"}
    assert http.get("/", params={**query, "user": "default", "password": "x"}).text == "1\n"
    headers = {"X-ClickHouse-User": "alice", "X-ClickHouse-Key": "secret"}
    assert http.get("/", params=query, headers=headers).text == "1\n"
    assert http.get("/", params=query, auth=("bob", "pw")).text == "1\n"


def test_insert_json_each_row_in_body_and_as_query_param_plus_body(http: httpx.Client) -> None:
    sql(http, "CREATE TABLE events_json (id UInt64, name String) ENGINE = MergeTree ORDER BY id")
    sql(http, 'INSERT INTO events_json FORMAT JSONEachRow\n{"id": 1, "name": "a"}\n{"id": 2, "name": "b"}\n')
    response = http.post(
        "/",
        params={"query": "INSERT INTO events_json FORMAT JSONEachRow"},
        content=b'{"id": 3, "name": "c"}\n',
    )
    assert response.status_code == 200
    assert json.loads(response.headers["X-ClickHouse-Summary"])["written_rows"] == "1"
    sql(http, "INSERT INTO events_json (id, name) VALUES (4, 'd')")
    assert sql(http, "SELECT id, name FROM events_json ORDER BY id") == "1\ta\n2\tb\n3\tc\n4\td\n"


def spool_files(pid: int) -> set[Path]:
    """The spool files of the warehouse process `pid` (other warehouses on the machine spool too)."""
    return {
        path
        for folder in ("/dev/shm", tempfile.gettempdir())
        for path in Path(folder).glob(f"pravis-insert-{pid}-*")
    }


def test_big_chunked_insert_streams_through_a_spool_file_that_is_removed(
    http: httpx.Client, served: tuple[str, subprocess.Popen]
) -> None:
    pid = served[1].pid
    sql(http, "CREATE TABLE events_big (id UInt64, name String) ENGINE = MergeTree ORDER BY id")
    before = spool_files(pid)
    rows = [b'{"id": %d, "name": "row %d"}' % (i, i) for i in range(200_000)]

    def body() -> Iterator[bytes]:
        """The statement and the rows in 4 KiB pieces, sent chunked (no Content-Length)."""
        data = b"INSERT INTO events_big FORMAT JSONEachRow\n" + b"\n".join(rows)
        for start in range(0, len(data), 4096):
            yield data[start : start + 4096]

    response = http.post("/", content=body())
    assert response.status_code == 200, response.text
    assert json.loads(response.headers["X-ClickHouse-Summary"])["written_rows"] == str(len(rows))
    assert (
        sql(http, "SELECT count(), sum(id), max(name) FROM events_big") == "200000\t19999900000\trow 99999\n"
    )
    refused = http.post("/", content=b"INSERT INTO events_big FORMAT JSONEachRow\n" + rows[0] + b"\n{oops")
    assert refused.status_code == 400
    assert spool_files(pid) == before


def row_binary(rows: list[tuple[int, bytes]]) -> bytes:
    return b"".join(struct.pack("<Q", i) + bytes([len(s)]) + s for i, s in rows)


def test_binary_insert_reaches_chdb_untouched(http: httpx.Client) -> None:
    sql(http, "CREATE TABLE events_bin (id UInt64, payload String) ENGINE = MergeTree ORDER BY id")
    # Bytes that would not survive text decoding, and ids whose first byte is a newline or a space.
    rows = [(10, b"\x00\xff\n"), (32, b"\r\n\t"), (3, b"\xc3\x28")]
    body = b"INSERT INTO events_bin FORMAT RowBinary\n" + row_binary(rows[:2])
    assert http.post("/", content=body).status_code == 200
    query = {"query": "INSERT INTO events_bin SETTINGS async_insert = 0 FORMAT RowBinary"}
    assert http.post("/", params=query, content=row_binary(rows[2:])).status_code == 200
    expected = "".join(f"{i}\t{s.hex().upper()}\n" for i, s in sorted(rows))
    assert sql(http, "SELECT id, hex(payload) FROM events_bin ORDER BY id") == expected


def test_errors_carry_clickhouse_code_status_and_body(http: httpx.Client) -> None:
    cases = [
        ("SELEC 1", 400, 62),
        ("SELECT * FROM no_such_table", 404, 60),
        ("SELECT throwIf(1)", 500, 395),
        ("", 400, 62),
    ]
    for query, status, code in cases:
        response = http.post("/", content=query)
        assert response.status_code == status, query
        assert response.headers["X-ClickHouse-Exception-Code"] == str(code)
        assert response.text.startswith(f"Code: {code}. DB::Exception:")
    unknown = http.get("/", params={"query": "SELECT 1", "no_such_setting": "1"})
    assert (unknown.status_code, unknown.headers["X-ClickHouse-Exception-Code"]) == (404, "115")
    bad_row = http.post("/", content='INSERT INTO events_json FORMAT JSONEachRow\n{"id": "x"}\n')
    assert bad_row.status_code == 400
    not_utf8 = http.post("/", content=b"INSERT INTO events_json FORMAT JSONEachRow\n\xff\xfe{not json")
    assert not_utf8.headers["X-ClickHouse-Exception-Code"] == "1001"
    assert "codec can't decode" in not_utf8.text
    assert http.get("/", params={"query": "SELECT 1"}).text == "1\n"


def test_rows_refused_while_the_part_is_written_are_an_error_not_a_silent_success(http: httpx.Client) -> None:
    """chdb's streaming insert answers success for rows the engine refuses while writing the part; an insert
    that answers 200 must have stored its rows."""
    sql(
        http,
        "CREATE TABLE checked (id UInt64, day Date, CONSTRAINT positive CHECK id > 0) "
        "ENGINE = MergeTree PARTITION BY day ORDER BY id",
    )
    violation = http.post(
        "/", content='INSERT INTO checked FORMAT JSONEachRow\n{"id": 0, "day": "2024-01-01"}\n'
    )
    assert violation.headers["X-ClickHouse-Exception-Code"] == "469"
    two_days = '{"id": 1, "day": "2024-01-01"}\n{"id": 2, "day": "2024-01-02"}\n'
    too_many = http.post(
        "/",
        params={"max_partitions_per_insert_block": "1"},
        content="INSERT INTO checked FORMAT JSONEachRow\n" + two_days,
    )
    assert too_many.headers["X-ClickHouse-Exception-Code"] == "252"
    inline = http.post(
        "/",
        content="INSERT INTO checked (id, day) SETTINGS max_partitions_per_insert_block = 5 "
        "FORMAT JSONEachRow\n" + two_days,
    )
    assert inline.status_code == 200
    assert json.loads(inline.headers["X-ClickHouse-Summary"])["written_rows"] == "2"
    assert sql(http, "SELECT id FROM checked ORDER BY id") == "1\n2\n"


def test_settings_apply_to_one_request_only(http: httpx.Client) -> None:
    query = "SELECT getSetting('max_result_rows'), getSetting('output_format_json_quote_64bit_integers')"
    default = sql(http, query)
    assert sql(http, query, max_result_rows="7", output_format_json_quote_64bit_integers="0") == "7\tfalse\n"
    assert sql(http, query) == default
    http_only = {
        "wait_end_of_query": "1",
        "send_progress_in_http_headers": "1",
        "http_headers_progress_interval_ms": "1000",
        "session_id": "abc",
        "session_timeout": "60",
        "readonly": "1",
        "enable_http_compression": "0",
    }
    assert sql(http, "SELECT 1", **http_only) == "1\n"
    assert sql(http, "SELECT getSetting('readonly')") == "0\n"
    failed = http.post("/", params={"max_threads": "not-a-number"}, content="SELECT 1")
    assert failed.status_code != 200
    assert sql(http, query) == default


def test_settings_reach_inserts_with_raw_data(http: httpx.Client) -> None:
    sql(http, "CREATE TABLE events_dt (at DateTime) ENGINE = Memory")
    row = '{"at": "2024-01-02T03:04:05Z"}\n'
    rejected = http.post(
        "/",
        params={"date_time_input_format": "basic"},
        content="INSERT INTO events_dt FORMAT JSONEachRow\n" + row,
    )
    assert rejected.status_code != 200
    sql(http, "INSERT INTO events_dt FORMAT JSONEachRow\n" + row, date_time_input_format="best_effort")
    sql(http, "INSERT INTO events_dt FORMAT Values ('2024-01-02 03:04:05')")
    assert sql(http, "SELECT at FROM events_dt") == "2024-01-02 03:04:05\n" * 2


def test_query_parameters_are_bound_by_the_engine(http: httpx.Client) -> None:
    params = {"param_s": "it's\\t'); DROP TABLE events_json; --", "param_n": "41"}
    assert (
        sql(http, "SELECT {s:String}, {n:UInt8} + 1", **params)
        == "it\\'s\\t\\'); DROP TABLE events_json; --\t42\n"
    )
    assert sql(http, "EXISTS TABLE events_json") == "1\n"
    response = http.post("/", params={"param_n": "abc"}, content="SELECT {n:UInt8}")
    assert response.headers["X-ClickHouse-Exception-Code"] == "457"


DECOMPRESS = {
    "gzip": gzip.decompress,
    "deflate": zlib.decompress,
    "zstd": lambda data: zstandard.ZstdDecompressor().decompressobj().decompress(data),
    "lz4": lz4.frame.decompress,
}
COMPRESS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "zstd": zstandard.compress,
    "lz4": lz4.frame.compress,
}


@pytest.mark.parametrize("encoding", sorted(DECOMPRESS))
def test_response_compression(http: httpx.Client, encoding: str) -> None:
    query = {"query": "SELECT number FROM numbers(100000)"}
    expected = "".join(f"{i}\n" for i in range(100000)).encode()
    for compressed in ({**query, "enable_http_compression": "1"}, query):
        with http.stream("GET", "/", params=compressed, headers={"Accept-Encoding": encoding}) as response:
            assert response.headers["Content-Encoding"] == encoding
            assert DECOMPRESS[encoding](b"".join(response.iter_raw())) == expected
    disabled = {**query, "enable_http_compression": "0"}
    off = http.get("/", params=disabled, headers={"Accept-Encoding": encoding})
    assert "Content-Encoding" not in off.headers


@pytest.mark.parametrize("encoding", sorted(COMPRESS))
def test_request_decompression_of_concatenated_frames(http: httpx.Client, encoding: str) -> None:
    table = f"events_{encoding}"
    sql(http, f"CREATE TABLE {table} (id UInt64, payload String) ENGINE = MergeTree ORDER BY id")
    frames = [COMPRESS[encoding](row_binary([(i, b"\x00\xff")])) for i in range(3)]
    if encoding in ("gzip", "deflate"):  # a single stream, as clickhouse-connect sends for these
        frames = [COMPRESS[encoding](row_binary([(i, b"\x00\xff") for i in range(3)]))]
    response = http.post(
        "/",
        params={"query": f"INSERT INTO {table} FORMAT RowBinary"},
        content=b"".join(frames),
        headers={"Content-Encoding": encoding},
    )
    assert response.status_code == 200, response.text
    assert sql(http, f"SELECT count(), countIf(payload = '\\0\\xFF') FROM {table}") == "3\t3\n"


@pytest.mark.parametrize("compress", [False, True, "lz4", "zstd", "gzip"])
def test_clickhouse_connect(server: str, compress: bool | str) -> None:
    port = int(server.rsplit(":", 1)[1])
    client = clickhouse_connect.get_client(host="127.0.0.1", port=port, database=DATABASE, compress=compress)
    table = f"cc_{compress}".lower()
    client.command(
        f"CREATE TABLE {table} (id UInt64, name String, at DateTime) ENGINE = MergeTree ORDER BY id"
    )
    rows = [[i, f"n{i}\x00é", 1_700_000_000 + i] for i in range(5000)]
    summary = client.insert(table, rows, column_names=["id", "name", "at"])
    assert summary.written_rows == 5000
    client.raw_insert(
        table, ["id", "name", "at"], b'{"id": 9999, "name": "raw", "at": 0}\n', fmt="JSONEachRow"
    )
    result = client.query(
        f"SELECT count(), max(id) FROM {table} WHERE id >= {{low:UInt64}}", parameters={"low": 10}
    )
    assert result.result_rows == [(4991, 9999)]
    first = client.query(f"SELECT id, name FROM {table} ORDER BY id LIMIT 2").result_rows
    assert first == [(0, "n0\x00é"), (1, "n1\x00é")]
    assert len(client.query("SELECT number, toString(number) FROM numbers(300000)").result_rows) == 300000
    client.close()


def test_parameters_too_long_for_a_url_travel_as_a_form(server: str) -> None:
    port = int(server.rsplit(":", 1)[1])
    client = clickhouse_connect.get_client(host="127.0.0.1", port=port, database=DATABASE)
    ids = [f"{i:08d}-0000-0000-0000-000000000000" for i in range(3000)]

    result = client.query(
        "SELECT length({ids:Array(UUID)}), {tag:String}", parameters={"ids": ids, "tag": "x'y"}
    )

    assert result.result_rows == [(3000, "x'y")]
    client.close()


def test_large_result_streams_and_late_error_is_framed(server: str, http: httpx.Client) -> None:
    with http.stream("GET", "/", params={"query": "SELECT number FROM numbers(2000000)"}) as response:
        assert "Content-Length" not in response.headers
        assert sum(chunk.count(b"\n") for chunk in response.iter_bytes()) == 2_000_000
    failing = {
        "query": "SELECT throwIf(number = 1500000) FROM numbers(2000000) SETTINGS max_block_size = 65536"
    }
    response = http.get("/", params=failing)
    assert response.status_code == 200  # headers were sent before the error
    tag = response.headers["X-ClickHouse-Exception-Tag"]
    assert f"__exception__\r\n{tag}\r\nCode: 395." in response.text
    client = clickhouse_connect.get_client(host="127.0.0.1", port=int(server.rsplit(":", 1)[1]))
    with pytest.raises(DatabaseError, match="395"):
        client.query(failing["query"])
    assert http.get("/", params={"query": "SELECT 1"}).text == "1\n"


def test_client_gone_mid_stream_releases_its_lane(http: httpx.Client, server: str) -> None:
    for _ in range(LANES + 1):  # a lane kept by a departed client would leave the last request none
        with held_lane(server):
            pass
    assert http.get("/", params={"query": "SELECT 2"}, timeout=10).text == "2\n"


def test_concurrent_requests_keep_their_own_database_and_settings(http: httpx.Client) -> None:
    sql(http, "CREATE DATABASE IF NOT EXISTS other")

    def run(i: int) -> str:
        query = (
            "SELECT currentDatabase(), getSetting('max_result_rows') FROM numbers(3) "
            "WHERE sleepEachRow(0.01) = 0"
        )
        database = "other" if i % 2 else DATABASE
        return http.get(
            "/", params={"query": query, "database": database, "max_result_rows": str(100 + i)}
        ).text

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, range(24)))
    assert results == [f"{'other' if i % 2 else DATABASE}\t{100 + i}\n" * 3 for i in range(24)]


def test_two_inserts_run_at_once_and_both_land(http: httpx.Client) -> None:
    # Each row's default sleeps, so each insert takes about 2 s: long enough to see both running together.
    sql(
        http,
        "CREATE TABLE slow (n UInt64, pause UInt8 DEFAULT sleepEachRow(0.05)) ENGINE = MergeTree ORDER BY n",
    )

    def insert(first: int) -> httpx.Response:
        rows = "".join(f'{{"n": {n}}}\n' for n in range(first, first + 40))
        return http.post("/", content="INSERT INTO slow FORMAT JSONEachRow\n" + rows)

    def both_running() -> bool:
        """two inserts into `slow` run at the same time"""
        running = "SELECT count() FROM system.processes WHERE query LIKE 'INSERT INTO slow %'"
        return sql(http, running) == "2\n"

    with ThreadPoolExecutor(2) as pool:
        inserts = [pool.submit(insert, first) for first in (0, 1000)]
        wait_for(both_running, timeout_s=30, what=both_running.__doc__)
        assert [future.result().status_code for future in inserts] == [200, 200]
    assert sql(http, "SELECT count(), countIf(n >= 1000) FROM slow") == "80\t40\n"


def test_ddl_on_one_lane_is_seen_by_the_next_request_on_another(http: httpx.Client, server: str) -> None:
    holds = [contextlib.ExitStack() for _ in range(LANES)]
    try:
        for hold in holds[:-1]:
            hold.enter_context(held_lane(server))
        # One lane is idle: the DDL runs there; then a stream takes that lane too.
        sql(http, "CREATE DATABASE made_elsewhere")
        sql(http, "CREATE TABLE made_elsewhere.t (n UInt8) ENGINE = MergeTree ORDER BY n")
        holds[-1].enter_context(held_lane(server))
        holds[0].close()
        # The lane freed by the first stream is the only idle one, and the DDL did not run on it.
        sql(http, "INSERT INTO t VALUES (7)", database="made_elsewhere")
        assert sql(http, "SELECT n FROM t", database="made_elsewhere") == "7\n"
    finally:
        for hold in holds:
            hold.close()


def test_connections_default_to_the_warehouse_connections_setting(tmp_path: Path) -> None:
    with warehouse(tmp_path / "data", lanes=None, env={"PRAVIS_WAREHOUSE_CONNECTIONS": "5"}) as (_, _, log):
        assert "connections=5" in log.read_text()


def test_restart_keeps_data_and_stops_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    for signum in (signal.SIGTERM, signal.SIGINT):
        with warehouse(data_dir) as (url, process, log_path):
            httpx.post(url, content="CREATE TABLE IF NOT EXISTS kept (n UInt8) ENGINE = MergeTree ORDER BY n")
            httpx.post(url, content="INSERT INTO kept VALUES (1)")
            process.send_signal(signum)
            assert process.wait(30) in (0, -signum)  # uvicorn re-raises the signal after a clean shutdown
            assert "warehouse.stopped" in log_path.read_text()
    with warehouse(data_dir) as (url, _, _):
        assert httpx.get(url, params={"query": "SELECT count() FROM kept"}).text == "2\n"


def test_stop_during_a_query_answers_it_and_exits_cleanly(tmp_path: Path) -> None:
    slow = "SELECT sleepEachRow(0.5) FROM numbers(4) SETTINGS max_block_size = 1"
    with warehouse(tmp_path / "data") as (url, process, log_path), ThreadPoolExecutor(1) as pool:
        running = pool.submit(httpx.post, url, content=slow, timeout=30)

        def started() -> bool:
            """the slow query runs"""
            processes = "SELECT count() FROM system.processes WHERE query LIKE 'SELECT sleepEachRow(0.5)%'"
            return httpx.post(url, content=processes).text == "1\n"

        wait_for(started, timeout_s=30, what=started.__doc__)
        process.send_signal(signal.SIGTERM)
        assert running.result().text == "0\n" * 4
        assert process.wait(30) in (0, -signal.SIGTERM)
        assert "warehouse.stopped" in log_path.read_text()


def test_insert_data_spools_in_memory_only_when_it_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    from pravis_local.warehouse import server

    with monkeypatch.context() as patch:
        patch.setattr(server.shutil, "disk_usage", lambda path: SimpleNamespace(free=64 << 20))
        assert server.spool_dir(1 << 20) == server.MEMORY_DIR
        assert server.spool_dir(80 << 20) is None  # the temp directory
    monkeypatch.setattr(server, "MEMORY_DIR", "/no/such/dir")
    assert server.spool_dir(1) is None


def test_get_is_read_only_with_clickhouse_code_status_and_message(http: httpx.Client) -> None:
    sql(http, "CREATE TABLE kept_over_get (n UInt8) ENGINE = MergeTree ORDER BY n")
    writes = [
        "INSERT INTO kept_over_get VALUES (1)",
        "DROP TABLE kept_over_get",
        "ALTER TABLE kept_over_get ADD COLUMN m UInt8",
        "CREATE TABLE made_over_get (n UInt8) ENGINE = Memory",
        "SET readonly = 0",
    ]
    for query in writes:
        response = http.get("/", params={"query": query})
        # READONLY is not in ClickHouse's exceptionCodeToHTTPStatus, so a server answers it 500.
        assert (response.status_code, response.headers["X-ClickHouse-Exception-Code"]) == (500, "164"), query
        assert "readonly mode" in response.text
        assert "method GET implies readonly" in response.text or "'readonly' setting" in response.text
    assert sql(http, "SELECT count() FROM kept_over_get") == "0\n"
    assert sql(http, "EXISTS TABLE made_over_get") == "0\n"
    assert sql(http, "DESCRIBE TABLE kept_over_get") == "n\tUInt8\t\t\t\t\t\n"
    # Reads over GET keep their settings (readonly=2, as ClickHouse gives GET), and POST still writes.
    query = {"query": "SELECT getSetting('max_threads')", "max_threads": "1"}
    assert http.get("/", params=query).text == "1\n"
    asked = http.post("/", params={"readonly": "1"}, content="INSERT INTO kept_over_get VALUES (1)")
    assert asked.headers["X-ClickHouse-Exception-Code"] == "164"
    sql(http, "INSERT INTO kept_over_get VALUES (1)")
    assert http.get("/", params={"query": "SELECT count() FROM kept_over_get"}).text == "1\n"


def test_file_access_is_confined_to_user_files(http: httpx.Client, server: str, tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("do not read")
    refused = [
        f"SELECT * FROM file('{outside}', 'LineAsString')",
        f"SELECT file('{outside}')",
        "SELECT * FROM file('../dev_api_key', 'LineAsString')",
        "SELECT * FROM file('{a.tsv,../dev_api_key}', 'LineAsString')",
        f"WITH '{outside}' AS p SELECT * FROM file(p, 'LineAsString')",
        f"CREATE TABLE leak (s String) ENGINE = File(LineAsString, '{outside}')",
        f"INSERT INTO FUNCTION file('{tmp_path}/written.txt', 'LineAsString') SELECT 'x'",
    ]
    for query in refused:
        response = http.post("/", content=query)
        assert (response.status_code, response.headers["X-ClickHouse-Exception-Code"]) == (403, "291"), query
        assert "do not read" not in response.text
    for query in [f"SELECT 1 INTO OUTFILE '{tmp_path}/out.txt'", f"INSERT INTO kept FROM INFILE '{outside}'"]:
        response = http.post("/", content=query)
        assert response.headers["X-ClickHouse-Exception-Code"] == "358", query
    assert not (tmp_path / "written.txt").exists() and not (tmp_path / "out.txt").exists()
    # chdb's query() would run every statement of a multi-statement text: refused as ClickHouse refuses it.
    several = http.post("/", content=f"SELECT 1; SELECT * FROM file('{outside}', 'LineAsString')")
    assert several.headers["X-ClickHouse-Exception-Code"] == "62"
    assert "Multi-statements are not allowed" in several.text
    # Inside user_files (the server's working directory), file() works as on a ClickHouse server.
    sql(http, "INSERT INTO FUNCTION file('shared.tsv', 'TSV', 'n UInt8') VALUES (7)")
    assert sql(http, "SELECT * FROM file('shared.tsv', 'TSV', 'n UInt8')") == "7\n"


def test_result_limits_cannot_hide_a_file_function_from_the_check(http: httpx.Client, tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("do not read")
    limits = {"max_result_rows": "2", "result_overflow_mode": "break", "limit": "1", "offset": "1"}
    response = http.post("/", params=limits, content=f"SELECT * FROM file('{outside}', 'LineAsString')")
    assert response.status_code == 403 and "do not read" not in response.text
    assert sql(http, "SELECT number FROM numbers(10)", limit="2") == "0\n1\n"


def test_remote_sources_are_off_by_default(http: httpx.Client, server: str) -> None:
    for query in [
        f"SELECT * FROM url('{server}/ping', 'LineAsString')",
        f"SELECT * FROM remote('{server.removeprefix('http://')}', system.one)",
        "SELECT * FROM s3('http://127.0.0.1:1/bucket/x.csv', 'LineAsString')",
    ]:
        response = http.post("/", content=query)
        assert (response.status_code, response.headers["X-ClickHouse-Exception-Code"]) == (403, "497"), query


def test_remote_hosts_setting_allows_exactly_those_hosts(tmp_path: Path) -> None:
    with warehouse(tmp_path / "data", env={"PRAVIS_WAREHOUSE_REMOTE_HOSTS": "127.0.0.1"}) as (url, _, _):
        allowed = httpx.post(url, content=f"SELECT * FROM url('{url}/ping', 'LineAsString')")
        assert (allowed.status_code, allowed.text) == (200, "Ok.\n")
        other = url.replace("127.0.0.1", "localhost")
        refused = httpx.post(url, content=f"SELECT * FROM url('{other}/ping', 'LineAsString')")
        assert (refused.status_code, refused.headers["X-ClickHouse-Exception-Code"]) == (500, "491")


def test_foreign_host_and_origin_are_refused_and_no_cors_header_is_sent(http: httpx.Client) -> None:
    sql(http, "CREATE TABLE kept_from_pages (n UInt8) ENGINE = MergeTree ORDER BY n")
    rebinding = http.get("/", params={"query": "SELECT 1"}, headers={"Host": "attacker.example:8123"})
    assert (rebinding.status_code, rebinding.headers["X-ClickHouse-Exception-Code"]) == (403, "497")
    for content_type in ["text/plain", "application/x-www-form-urlencoded"]:
        page = http.post(
            "/",
            content="DROP TABLE kept_from_pages",
            headers={"Origin": "https://attacker.example", "Content-Type": content_type},
        )
        assert page.status_code == 403
    assert sql(http, "EXISTS TABLE kept_from_pages") == "1\n"
    responses = [
        http.get("/", params={"query": "SELECT 1", "add_http_cors_header": "1"}),
        http.post("/", content="SELECT 1", headers={"Origin": "http://localhost:3000"}),
        http.options(
            "/", headers={"Origin": "https://attacker.example", "Access-Control-Request-Method": "POST"}
        ),
        http.get("/ping", headers={"Origin": "https://attacker.example"}),
    ]
    for response in responses:
        assert not [name for name in response.headers if name.lower().startswith("access-control-")]
    assert http.get("/", params={"query": "SELECT 1"}, headers={"Host": "localhost"}).text == "1\n"


def test_allowed_hosts_setting_admits_a_configured_name(tmp_path: Path) -> None:
    with warehouse(tmp_path / "data", env={"PRAVIS_WAREHOUSE_ALLOWED_HOSTS": "warehouse.internal"}) as (
        url,
        _,
        _,
    ):
        named = httpx.get(url, params={"query": "SELECT 1"}, headers={"Host": "warehouse.internal:8123"})
        assert named.text == "1\n"
        assert (
            httpx.get(url, params={"query": "SELECT 1"}, headers={"Host": "other.internal"}).status_code
            == 403
        )


def test_password_required_in_every_form_clickhouse_accepts(tmp_path: Path) -> None:
    env = {"PRAVIS_WAREHOUSE_USER": "analyst", "PRAVIS_WAREHOUSE_PASSWORD": "p@ss:w/rd"}
    with warehouse(tmp_path / "data", env=env) as (url, _, _):
        query = {"query": "SELECT 1"}
        assert httpx.get(f"{url}/ping").text == "Ok.\n"
        for refused in [
            httpx.get(url, params=query),
            httpx.get(url),
            httpx.get(url, params=query, auth=("analyst", "wrong")),
            httpx.get(url, params=query, auth=("default", "p@ss:w/rd")),
            httpx.get(url, params={**query, "user": "analyst", "password": "wrong"}),
            httpx.post(url, content="SELECT 1", headers={"X-ClickHouse-User": "analyst"}),
        ]:
            assert (refused.status_code, refused.headers["X-ClickHouse-Exception-Code"]) == (403, "516")
            assert "Authentication failed" in refused.text
        assert httpx.get(url, params=query, auth=("analyst", "p@ss:w/rd")).text == "1\n"
        headers = {"X-ClickHouse-User": "analyst", "X-ClickHouse-Key": "p@ss:w/rd"}
        assert httpx.post(url, content="SELECT 1", headers=headers).text == "1\n"
        assert httpx.get(url, params={**query, "user": "analyst", "password": "p@ss:w/rd"}).text == "1\n"
        client = clickhouse_connect.get_client(
            host="127.0.0.1", port=int(url.rsplit(":", 1)[1]), username="analyst", password="p@ss:w/rd"
        )
        assert client.command("SELECT 2") == 2
        with pytest.raises(DatabaseError, match="516"):
            clickhouse_connect.get_client(host="127.0.0.1", port=int(url.rsplit(":", 1)[1]), password="x")


def test_binding_beyond_loopback_needs_a_password(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "pravis_local.warehouse", "--host", "0.0.0.0", "--data-dir", str(tmp_path)]
    refused = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "PRAVIS_WAREHOUSE_PASSWORD" in refused.stderr
    assert not (tmp_path / "chdb").exists()


def test_a_set_statement_lasts_only_for_its_own_request(http: httpx.Client) -> None:
    sql(http, "CREATE TABLE IF NOT EXISTS still_writable (n UInt8) ENGINE = MergeTree ORDER BY n")
    # Idle lanes are lent in turn: 2 * LANES statements reach every write lane.
    for _ in range(2 * LANES):
        assert sql(http, "SET readonly = 1, max_result_rows = 1") == ""
    for n in range(2 * LANES):
        sql(http, f"INSERT INTO still_writable VALUES ({n})")
        assert sql(http, "SELECT getSetting('max_result_rows'), getSetting('readonly')") == "0\t0\n"
    unknown = http.post("/", content="SET no_such_setting = 1")
    assert unknown.headers["X-ClickHouse-Exception-Code"] == "115"
