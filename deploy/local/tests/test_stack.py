"""How `make up` wires the services to each other: what each is told by its environment."""

from pathlib import Path

from pravis_local.settings import Settings
from pravis_local.stack import services
from pravis_schemas.clickhouse_url import client_options


def test_without_a_password_workers_get_a_plain_warehouse_url(tmp_path: Path) -> None:
    wired = {s.name: s.env for s in services(Settings(data_dir=tmp_path, warehouse_port=18123))}
    assert wired["loader"]["PRAVIS_CLICKHOUSE_URL"] == "http://127.0.0.1:18123/pravis"
    assert "PRAVIS_WAREHOUSE_PASSWORD" not in wired["warehouse"]


def test_the_warehouse_password_reaches_the_warehouse_and_every_worker(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, warehouse_user="pravis", warehouse_password="p@ss:w/rd%")
    wired = {s.name: s.env for s in services(settings)}
    assert wired["warehouse"]["PRAVIS_WAREHOUSE_USER"] == "pravis"
    assert wired["warehouse"]["PRAVIS_WAREHOUSE_PASSWORD"] == "p@ss:w/rd%"
    for name in ["loader", "scheduler", "privacy", "gateway", "dashboards"]:
        options = client_options(wired[name]["PRAVIS_CLICKHOUSE_URL"])
        assert (options["username"], options["password"], options["database"]) == (
            "pravis",
            "p@ss:w/rd%",
            "pravis",
        )
