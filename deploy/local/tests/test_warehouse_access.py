"""The warehouse's access rules as pure logic: requests (Host, Origin, credentials) and statements given as
the text chdb's EXPLAIN AST prints for them (copied from chdb 26.9's output)."""

import base64
from pathlib import Path

import pytest
from pravis_local.warehouse.access import (
    AccessPolicy,
    Refused,
    check_request,
    check_statement,
    check_storage_settings,
)

FILE_OUTSIDE = """SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 2)
   ExpressionList (children 1)
    Asterisk
   TablesInSelectQuery (children 1)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      Function file (children 1)
       ExpressionList (children 2)
        Literal \\'{path}\\'
        Literal \\'LineAsString\\'
"""
OUTFILE = """SelectWithUnionQuery (children 2)
 ExpressionList (children 1)
  SelectQuery (children 1)
   ExpressionList (children 1)
    Literal UInt64_1
 Literal \\'/tmp/x\\'
"""
INFILE = """InsertQuery   (children 2)
 Literal \\'/etc/passwd\\'
 Identifier t
"""
CREATE_WITH_COMMENT = """CreateQuery x (children 4)
 Identifier x
 Columns definition (children 1)
  ExpressionList (children 1)
   ColumnDeclaration a (children 2)
    DataType Int8
    Literal \\'x\\'
 Storage definition (children 2)
  Function MergeTree
  Identifier a
 Literal \\'hello\\'
"""
FILE_ENGINE = """CreateQuery y (children 3)
 Identifier y
 Columns definition (children 1)
  ExpressionList (children 1)
   ColumnDeclaration a (children 1)
    DataType String
 Storage definition (children 1)
  Function File (children 1)
   ExpressionList (children {count})
    Identifier TSV{path}
"""
FILE_OF_IDENTIFIER = """SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 3)
   ExpressionList (children 1)
    Literal \\'/etc/passwd\\' (alias p)
   ExpressionList (children 1)
    Asterisk
   TablesInSelectQuery (children 1)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      Function file (children 1)
       ExpressionList (children 2)
        Identifier p
        Literal \\'LineAsString\\'
"""
URL = """SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 2)
   ExpressionList (children 1)
    Asterisk
   TablesInSelectQuery (children 1)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      Function url (children 1)
       ExpressionList (children 2)
        Literal \\'{url}\\'
        Literal \\'LineAsString\\'
"""
DICTIONARY_FILE = """CreateQuery d (children 3)
 Identifier d
 ExpressionList (children 1)
  DictionaryAttributeDeclaration a (children 1)
   DataType UInt64
 Dictionary definition (children 4)
  ExpressionList (children 1)
   Identifier a
  FunctionWithKeyValueArguments  file (children 1)
   ExpressionList (children 2)
    pair (children 1)
     Literal \\'/etc/passwd\\'
    pair (children 1)
     Literal \\'TSV\\'
  Dictionary lifetime
  Dictionary layout (children 1)
   ExpressionList
"""


@pytest.fixture
def policy(tmp_path: Path) -> AccessPolicy:
    (tmp_path / "user_files").mkdir()
    return AccessPolicy(user_files=tmp_path / "user_files")


def reason(ast: str, policy: AccessPolicy) -> str | None:
    try:
        check_statement(ast, policy)
        return None
    except Refused as exc:
        return exc.reason


def test_file_inside_user_files_is_allowed_outside_refused(policy: AccessPolicy) -> None:
    inside = policy.user_files.resolve()
    assert reason(FILE_OUTSIDE.format(path=f"{inside}/a.csv"), policy) is None
    assert reason(FILE_OUTSIDE.format(path=f"{inside}/*.csv"), policy) is None
    assert reason(FILE_OUTSIDE.format(path="/etc/hostname"), policy) == "file"
    assert reason(FILE_OUTSIDE.format(path=f"{inside}/../dev_api_key"), policy) == "file"
    # The engine expands braces into alternatives, one of which may climb out.
    assert reason(FILE_OUTSIDE.format(path=f"{inside}/{{a.csv,../dev_api_key}}"), policy) == "file"
    # A path the check cannot read as a plain literal is refused, not guessed.
    assert reason(FILE_OF_IDENTIFIER, policy) == "file"


def test_relative_file_names_resolve_against_the_working_directory(
    policy: AccessPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    relative = FILE_OUTSIDE.format(path="a.csv")
    assert reason(relative, policy) == "file"
    monkeypatch.chdir(policy.user_files)
    assert reason(relative, policy) is None


def test_file_engine_path_is_checked_and_a_file_engine_without_path_allowed(policy: AccessPolicy) -> None:
    literal = "\n    Literal \\'{}\\'"
    assert reason(FILE_ENGINE.format(count=2, path=literal.format("/etc/passwd")), policy) == "file"
    inside = f"{policy.user_files.resolve()}/y.tsv"
    assert reason(FILE_ENGINE.format(count=2, path=literal.format(inside)), policy) is None
    assert reason(FILE_ENGINE.format(count=1, path=""), policy) is None
    assert reason(DICTIONARY_FILE, policy) == "dictionary"


def test_infile_and_outfile_refused_comment_of_create_is_not_one(policy: AccessPolicy) -> None:
    assert reason(OUTFILE, policy) == "infile"
    assert reason(INFILE, policy) == "infile"
    assert reason(CREATE_WITH_COMMENT, policy) is None


def test_a_parse_cut_short_is_refused(policy: AccessPolicy) -> None:
    whole = FILE_OUTSIDE.format(path="/etc/hostname").splitlines()
    # What max_result_rows with result_overflow_mode=break would leave: the file() node is gone.
    assert reason("\n".join(whole[:8]), policy) == "parse"
    assert reason("\n".join(whole[1:]), policy) == "parse"
    assert reason("", policy) == "parse"


def test_remote_sources_are_off_unless_their_host_is_configured(policy: AccessPolicy) -> None:
    assert reason(URL.format(url="http://127.0.0.1:8000/"), policy) == "remote"
    allowing = AccessPolicy(user_files=policy.user_files, remote_hosts=frozenset({"data.example"}))
    assert reason(URL.format(url="https://data.example/x.csv"), allowing) is None
    assert reason(URL.format(url="http://127.0.0.1:8000/"), allowing) == "remote"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("headers", "params"),
    [
        ({"authorization": basic("default", "pw")}, {}),
        ({"x-clickhouse-user": "default", "x-clickhouse-key": "pw"}, {}),
        ({"x-clickhouse-key": "pw"}, {}),
        ({}, {"user": "default", "password": "pw"}),
        ({}, {"password": "pw"}),
    ],
)
def test_each_clickhouse_credential_form_is_accepted(headers: dict, params: dict) -> None:
    check_request(AccessPolicy(password="pw"), {"host": "127.0.0.1:8123", **headers}, params)


@pytest.mark.parametrize(
    ("headers", "params"),
    [
        ({}, {}),
        ({"authorization": basic("default", "wrong")}, {}),
        ({"authorization": basic("alice", "pw")}, {}),
        ({"authorization": "Bearer pw"}, {}),
        ({"authorization": "Basic !!!"}, {}),
        ({"x-clickhouse-user": "default"}, {}),
        ({}, {"user": "default", "password": "pw "}),
        ({"authorization": basic("default", "pw")}, {"password": "pw"}),
    ],
)
def test_missing_wrong_or_mixed_credentials_are_refused(headers: dict, params: dict) -> None:
    with pytest.raises(Refused) as refused:
        check_request(AccessPolicy(password="pw"), {"host": "localhost", **headers}, params)
    assert refused.value.code == 516
    assert refused.value.message.endswith("(AUTHENTICATION_FAILED)")


def test_no_password_means_no_check() -> None:
    check_request(AccessPolicy(), {"host": "localhost"}, {"user": "anyone", "password": "anything"})


@pytest.mark.parametrize("host", ["localhost", "localhost:8123", "127.0.0.1:1", "[::1]:8123", "LOCALHOST"])
def test_loopback_hosts_are_allowed(host: str) -> None:
    check_request(AccessPolicy(), {"host": host}, {})


@pytest.mark.parametrize(
    ("host", "name"),
    [
        ("evil.example", "evil.example"),
        ("evil.example:8123", "evil.example"),
        ("127.0.0.1.nip.io", "127.0.0.1.nip.io"),
        ("[::2]:1", "::2"),
    ],
)
def test_foreign_hosts_are_refused_unless_configured(host: str, name: str) -> None:
    with pytest.raises(Refused) as refused:
        check_request(AccessPolicy(), {"host": host}, {})
    assert (refused.value.code, refused.value.reason) == (497, "host")
    check_request(AccessPolicy(allowed_hosts=frozenset({name})), {"host": host}, {})


def test_a_request_without_host_is_refused() -> None:
    with pytest.raises(Refused):
        check_request(AccessPolicy(), {}, {})


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1.evil.example"])
def test_foreign_web_origins_are_refused(origin: str) -> None:
    with pytest.raises(Refused) as refused:
        check_request(AccessPolicy(), {"host": "127.0.0.1:8123", "origin": origin}, {})
    assert refused.value.reason == "origin"


def test_loopback_origins_are_allowed() -> None:
    check_request(AccessPolicy(), {"host": "127.0.0.1:8123", "origin": "http://localhost:3000"}, {})


def test_sources_a_path_check_cannot_follow_are_refused(policy: AccessPolicy) -> None:
    inside = f"{policy.user_files.resolve()}/db.sqlite"
    for function in ["sqlite", "filesystem", "icebergLocal", "python", "executable", "disk"]:
        ast = FILE_OUTSIDE.format(path=inside).replace("Function file", f"Function {function}")
        assert reason(ast, policy) == "local", function


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x1c", "\x85"])
def test_a_literal_holding_a_unicode_line_separator_is_one_node(policy: AccessPolicy, separator: str) -> None:
    inside = f"{policy.user_files.resolve()}/a{separator}b.csv"
    assert check_statement(FILE_OUTSIDE.format(path=inside), policy) == "SelectWithUnionQuery"


STORAGE_SETTINGS = """CreateQuery t (children 3)
 Identifier t
 Columns definition (children 1)
  ExpressionList (children 1)
   ColumnDeclaration s (children 1)
    DataType String
 Storage definition (children 3)
  Function MergeTree
  Identifier s
  Set
"""
MODIFY_SETTING = """AlterQuery  t (children 2)
 ExpressionList (children 1)
  AlterCommand MODIFY_SETTING (children 1)
   Set
 Identifier t
"""


@pytest.mark.parametrize(
    ("ast", "statement"),
    [
        (
            STORAGE_SETTINGS,
            b"CREATE TABLE t (s String) ENGINE = MergeTree ORDER BY s SETTINGS disk = "
            b"disk(type = 'local', path = '/tmp/x/')",
        ),
        (MODIFY_SETTING, b"ALTER TABLE t MODIFY SETTING `DISK` = Disk(type = local, path = '/tmp/x/')"),
    ],
)
def test_table_settings_naming_a_disk_are_refused(ast: str, statement: bytes) -> None:
    with pytest.raises(Refused) as refused:
        check_storage_settings(ast, statement)
    assert refused.value.reason == "storage_disk"


def test_table_settings_without_a_disk_pass() -> None:
    check_storage_settings(
        STORAGE_SETTINGS,
        b"CREATE TABLE t (s String) ENGINE = MergeTree ORDER BY s SETTINGS index_granularity = 8192",
    )
    check_storage_settings(
        FILE_OUTSIDE.format(path="x"), b"SELECT * FROM file('disk') SETTINGS max_threads=1"
    )
