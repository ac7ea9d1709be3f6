"""PRAVIS_CLICKHOUSE_URL parsing and the ClickHouse client made from it, shared by every worker."""

import pytest
from pravis_schemas.clickhouse_url import clickhouse_connect_from_url, client_options, database_of, redacted


def test_full_url_with_percent_encoded_credentials() -> None:
    assert client_options("https://ana%40corp:p%3As%2Fw%40rd@ch.example:9443/analytics") == {
        "host": "ch.example",
        "port": 9443,
        "username": "ana@corp",
        "password": "p:s/w@rd",
        "database": "analytics",
        "secure": True,
    }


def test_defaults_for_a_bare_url() -> None:
    assert client_options("http://127.0.0.1") == {
        "host": "127.0.0.1",
        "port": 8123,
        "username": "default",
        "password": "",
        "database": "default",
        "secure": False,
    }
    assert client_options("https://h/db")["port"] == 8443


def test_database_override_and_database_of() -> None:
    assert client_options("http://u:p@h:1/pravis", database="default")["database"] == "default"
    assert database_of("http://u:p@h:1/pravis/") == "pravis"
    assert database_of("http://h:1") == "default"


def test_other_schemes_are_refused() -> None:
    with pytest.raises(ValueError, match="http"):
        client_options("clickhouse://h:9000/db")


def test_redacted_hides_only_the_password() -> None:
    assert redacted("http://ana:s3cret@h:8123/pravis") == "http://ana:***@h:8123/pravis"
    assert redacted("http://h:8123/pravis") == "http://h:8123/pravis"


def test_client_from_url_gets_the_url_credentials_and_the_callers_options(monkeypatch) -> None:
    import clickhouse_connect

    calls = []
    monkeypatch.setattr(clickhouse_connect, "get_client", lambda **kwargs: calls.append(kwargs) or "client")

    assert clickhouse_connect_from_url("https://ana:p%40ss@ch.example/analytics", compress=False) == "client"
    assert clickhouse_connect_from_url("http://h:1/pravis", database="default") == "client"
    assert calls == [
        {
            "host": "ch.example",
            "port": 8443,
            "username": "ana",
            "password": "p@ss",
            "database": "analytics",
            "secure": True,
            "compress": False,
        },
        {
            "host": "h",
            "port": 1,
            "username": "default",
            "password": "",
            "database": "default",
            "secure": False,
        },
    ]
