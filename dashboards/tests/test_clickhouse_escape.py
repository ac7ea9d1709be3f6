"""The SQL download's escaper against ClickHouse's own rules: each value of the table, escaped by us, must
read back from the real engine as exactly that value, as a string literal, as a query parameter's text, and
through the `SET param_x = ...` statement the downloaded file uses."""

import chdb
import httpx
import orjson
import pytest
from pravis_dashboards import panels

VALUES = [
    "default",
    "",
    "x\nDROP TABLE pravis.events;\n--",
    "it's",
    "'; SELECT 1; --",
    "back\\slash",
    "a\\'b",
    "\\N",
    "ends with a backslash\\",
    "tab\there",
    "cr\rlf\nnul\x00",
    "\x01\x08\x0c\x1b\x1f\x7f",
    "ünïcødé 日本語 😀",
    "rtl\u202eevil\u200b",
    "line\u2028para\u2029",
    "{project:String}",
]


def select_one(server: str, sql: str, **params: str) -> str:
    response = httpx.post(server, params={"default_format": "JSONEachRow", **params}, content=sql.encode())
    assert response.status_code == 200, response.text
    return orjson.loads(response.content)["v"]


@pytest.mark.parametrize("value", VALUES)
def test_a_string_literal_reads_back_as_the_value(clickhouse_server: str, value: str) -> None:
    assert select_one(clickhouse_server, f"SELECT {panels.clickhouse_string(value)} AS v") == value


@pytest.mark.parametrize("value", VALUES)
def test_escaped_text_is_the_query_parameter_format(clickhouse_server: str, value: str) -> None:
    sql = "SELECT {p:String} AS v"
    assert select_one(clickhouse_server, sql, param_p=panels.clickhouse_escape(value)) == value


def test_set_param_binds_exactly_the_value() -> None:
    # SET lasts for a session; the embedded warehouse's HTTP interface has none: the engine runs in-process.
    connection = chdb.connect(":memory:")
    try:
        for value in VALUES:
            sql = f"SET param_p = {panels.parameter_literal(value)};\nSELECT {{p:String}} AS v"
            assert orjson.loads(connection.query(sql, "JSONEachRow").bytes())["v"] == value, value
    finally:
        connection.close()
