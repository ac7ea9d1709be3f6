"""The settings base: PRAVIS_ variables and .env, empty and foreign variables, comma-separated lists."""

import pytest
from pravis_schemas.settings import CommaSeparatedList, CommaSeparatedSet, PravisSettings


class Example(PravisSettings):
    origins: CommaSeparatedList[str] = []
    hosts: CommaSeparatedSet[str] = frozenset()
    limit: int = 5


@pytest.fixture(autouse=True)
def no_dotenv_here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def test_comma_separated_variables_are_split_and_trimmed(monkeypatch):
    monkeypatch.setenv("PRAVIS_ORIGINS", " https://a.example , https://b.example,, ")
    monkeypatch.setenv("PRAVIS_HOSTS", "a.example,b.example, a.example")
    settings = Example()
    assert settings.origins == ["https://a.example", "https://b.example"]
    assert settings.hosts == frozenset({"a.example", "b.example"})


def test_lists_given_in_code_are_taken_as_they_are():
    assert Example(origins=["x, y"]).origins == ["x, y"]
    assert Example(hosts=["x"]).hosts == frozenset({"x"})


def test_an_empty_variable_counts_as_unset(monkeypatch):
    monkeypatch.setenv("PRAVIS_LIMIT", "")
    monkeypatch.setenv("PRAVIS_ORIGINS", "")
    settings = Example()
    assert settings.limit == 5
    assert settings.origins == []


def test_other_workers_variables_are_ignored(monkeypatch):
    monkeypatch.setenv("PRAVIS_SOMEONE_ELSES_SETTING", "1")
    assert Example().limit == 5


def test_dotenv_is_read_and_the_environment_wins(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("PRAVIS_LIMIT=7\nPRAVIS_ORIGINS=https://a.example,https://b.example\n")
    assert Example().origins == ["https://a.example", "https://b.example"]
    assert Example().limit == 7
    monkeypatch.setenv("PRAVIS_LIMIT", "9")
    assert Example().limit == 9
