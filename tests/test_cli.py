"""The operator CLI as an operator runs it (the installed `pravis` executable, a process of its own):
`pravis migrate`, `sql`, `retention`, `keys`, `report feedback` and `demo` against a warehouse database and a
data directory of this module's own, each checked from outside the CLI (the warehouse's system tables, the key
store, the files written)."""

import os
import secrets
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from pravis_gateway.keys import KeyStore
from pravis_rollups.clickhouse import connect

PRAVIS = str(Path(sys.executable).with_name("pravis"))


def pravis(*args: str, env: dict[str, str] | None = None, ok: bool = True) -> subprocess.CompletedProcess:
    # A wide terminal, so rich prints whole table cells; the timeout only bounds a hang.
    environment = {**os.environ, "COLUMNS": "200", **(env or {})}
    done = subprocess.run([PRAVIS, *args], capture_output=True, text=True, env=environment, timeout=120)
    if ok:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return {
        "PRAVIS_DATA_DIR": str(tmp_path_factory.mktemp("cli-data")),
    }


@pytest.fixture(scope="module")
def url(clickhouse_server: str) -> str:
    return f"{clickhouse_server}/pravis_cli_{secrets.token_hex(4)}"


def test_migrate_applies_once_then_reports_up_to_date(
    clickhouse_server: str, cli_env: dict[str, str]
) -> None:
    url = f"{clickhouse_server}/pravis_cli_migrate_{secrets.token_hex(4)}"  # a database no test migrated
    first = pravis("migrate", "--url", url, env=cli_env).stdout
    again = pravis("migrate", "--url", url, env=cli_env).stdout

    with connect(url) as client:
        tables = {row[0] for row in client.query("SHOW TABLES").result_rows}
        recorded = [
            row[0] for row in client.query("SELECT name FROM schema_migrations ORDER BY version").result_rows
        ]
    assert first.startswith("applied: ") and recorded and all(name in first for name in recorded)
    assert {"events", "daily_active_users", "feedback_daily"} <= tables
    assert "nothing (up to date)" in again


def insert_events(url: str, project: str, days_ago: list[int]) -> list[str]:
    """Page views of `project`, one per entry, timestamped that many days before now; their event_ids."""
    ids = [str(uuid.uuid4()) for _ in days_ago]
    now = datetime.now(UTC)
    rows = [
        [i, "page_view", project, now - timedelta(days=d), now, "anon-cli"]
        for i, d in zip(ids, days_ago, strict=True)
    ]
    with connect(url) as client:
        client.insert(
            "events",
            rows,
            column_names=["event_id", "event_type", "project_id", "timestamp", "received_at", "anonymous_id"],
        )
    return ids


def test_sql_prints_results_in_any_format_and_server_errors_without_a_traceback(
    url: str, cli_env: dict[str, str]
) -> None:
    pravis("migrate", "--url", url, env=cli_env)
    insert_events(url, "cli", [0, 0])

    tsv = pravis(
        "sql",
        "SELECT count() FROM events WHERE project_id = 'cli'",
        "--url",
        url,
        "--format",
        "TabSeparated",
        env=cli_env,
    ).stdout
    table = pravis("sql", "SELECT 'pravis' AS word, 6 * 7 AS answer", "--url", url, env=cli_env).stdout
    bad = pravis("sql", "SELEC 1", "--url", url, env=cli_env, ok=False)

    assert int(tsv) >= 2
    assert "word" in table and "answer" in table and "pravis" in table and "42" in table
    assert bad.returncode == 1 and "Syntax error" in bad.stderr and "Traceback" not in bad.stderr


def events_line(report: str) -> list[str]:
    """The cells of the `events` row of `pravis retention`'s table."""
    line = next(line for line in report.splitlines() if line.strip("│┃ ").startswith("events "))
    return [cell.strip() for cell in line.strip().strip("│").split("│")]


def test_retention_reports_what_expires_and_a_shortened_ttl_removes_it(
    clickhouse_server: str, cli_env: dict[str, str]
) -> None:
    url = f"{clickhouse_server}/pravis_cli_ttl_{secrets.token_hex(4)}"  # its retention changes below
    month, short = (
        {**cli_env, "PRAVIS_RETENTION_RAW_DAYS": "30"},
        {**cli_env, "PRAVIS_RETENTION_RAW_DAYS": "3"},
    )
    pravis("migrate", "--url", url, env=month)
    _, recent = insert_events(url, "ttl", [10, 0])
    ten_days_ago = (datetime.now(UTC) - timedelta(days=10)).date().isoformat()

    kept = events_line(pravis("retention", "--url", url, "--horizon-days", "1", env=month).stdout)
    assert kept[2:] == ["30", ten_days_ago, "0"]

    # Shortening the retention changes the TTL at the next start without rewriting the table; the report
    # already counts the old row as expiring.
    pravis("migrate", "--url", url, env=short)
    expiring = events_line(pravis("retention", "--url", url, "--horizon-days", "1", env=short).stdout)
    assert expiring[2:] == ["3", ten_days_ago, "1"]

    def stored() -> list[str]:
        with connect(url) as client:
            return sorted(row[0] for row in client.query("SELECT toString(event_id) FROM events").result_rows)

    # A merge alone keeps rows written under the old TTL; materializing the new one removes what it expires,
    # and a row already past it is never stored.
    pravis("sql", "OPTIMIZE TABLE events FINAL", "--url", url, env=short)
    assert len(stored()) == 2
    pravis("sql", "ALTER TABLE events MATERIALIZE TTL SETTINGS mutations_sync = 2", "--url", url, env=short)
    assert stored() == [recent]
    insert_events(url, "ttl", [4])
    assert stored() == [recent]


def test_keys_create_list_and_revoke(cli_env: dict[str, str]) -> None:
    store = KeyStore(Path(cli_env["PRAVIS_DATA_DIR"]) / "keys.json")

    created = pravis("keys", "create", "--project", "shop", "--kind", "secret", env=cli_env).stdout
    key = created.split()[0]
    record = store.verify(key, "secret")
    assert record is not None and record.project_id == "shop"
    assert store.verify(key, "write") is None
    assert record.key_id in created and key not in store.path.read_text()  # only its hash is stored

    listed = pravis("keys", "list", env=cli_env).stdout
    assert record.key_id in listed and "shop" in listed

    pravis("keys", "revoke", record.key_id, env=cli_env)
    assert store.verify(key, "secret") is None
    again = pravis("keys", "revoke", record.key_id, env=cli_env, ok=False)
    assert again.returncode == 1 and "no active key" in again.stdout

    refused = pravis("keys", "create", "--kind", "admin", env=cli_env, ok=False)
    assert refused.returncode != 0
    assert [k.kind for k in store.list()] == ["secret"]


def test_report_feedback_covers_the_monday_to_sunday_week_of_the_day_given(
    url: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    printed = pravis(
        "report", "feedback", "--week", "2024-03-09", "--url", url, "--out", str(tmp_path), env=cli_env
    )

    assert "(2024-03-04 to 2024-03-10)" in printed.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feedback-2024-W10.html", "feedback-2024-W10.md"]


def test_demo_fills_an_empty_warehouse_with_the_dataset_its_rollups_and_alerts(
    clickhouse_server: str, cli_env: dict[str, str]
) -> None:
    url = f"{clickhouse_server}/pravis_cli_demo_{secrets.token_hex(4)}"
    said = pravis("demo", "--url", url, env=cli_env).stdout

    with connect(url) as client:
        distinct = client.query("SELECT count() FROM events FINAL").result_rows[0][0]
        days = client.query("SELECT min(toDate(timestamp)), max(toDate(timestamp)) FROM events").result_rows
        rollup_days = client.query("SELECT count() FROM daily_active_users").result_rows[0][0]
        alerts = client.query("SELECT DISTINCT alert_id FROM alerts ORDER BY alert_id").result_rows

    # The demo is three weeks of March 2024 (README) for two projects, with three alerts of project `default`.
    assert said.startswith(f"loaded {distinct} events, 2024-03-04 to 2024-03-24, into ")
    assert days == [(date(2024, 3, 4), date(2024, 3, 24))]
    assert rollup_days == 21 * 2
    assert [a for (a,) in alerts] == ["demo-alert-0", "demo-alert-1", "demo-alert-2"]


def test_fx_load_stores_the_rates_and_refuses_a_file_with_a_bad_line(
    url: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    pravis("migrate", "--url", url, env=cli_env)
    good = tmp_path / "rates.csv"
    good.write_text(
        "day,currency,rate\n2024-03-01,usd,0.91234567\n2024-03-20,USD,0.93\n\n2024-03-14,GBP,1.1712\n"
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("day,currency,rate\n2024-03-01,USD,0.9\n2024-03-02,XYZ,1\n2024-13-01,GBP,1.2\n")

    printed = pravis("fx", "load", str(good), "--reporting", "eur", "--url", url, env=cli_env).stdout
    refused = pravis("fx", "load", str(bad), "--url", url, env=cli_env, ok=False)

    assert "USD" in printed and "GBP" in printed
    assert refused.returncode == 1
    assert "line 3: 'XYZ' is not an ISO 4217 currency code" in refused.stdout
    assert "line 4: day '2024-13-01' is not an ISO date" in refused.stdout
    with connect(url) as client:
        rows = client.query(
            "SELECT reporting_currency, currency, toString(day), toString(rate) FROM fx_rates FINAL "
            "ORDER BY currency, day"
        ).result_rows
    assert rows == [
        ("EUR", "GBP", "2024-03-14", "1.1712"),
        ("EUR", "USD", "2024-03-01", "0.91234567"),
        ("EUR", "USD", "2024-03-20", "0.93"),
    ]
