"""Who may use the embedded warehouse, and what a statement may reach outside its tables.

A real ClickHouse server authenticates every request, confines ``file()`` to ``user_files_path``, refuses
``INTO OUTFILE`` / ``FROM INFILE`` over HTTP and checks the hosts of ``url()``/``remote()``. chdb runs the
engine as clickhouse-local, which does none of that: local mode reads and writes any path the process can
(measured: ``user_files_path`` and ``remote_url_allow_hosts`` in its config change nothing). So:

- the engine's own access rights take every external source (URL, REMOTE, S3, MYSQL, ...) away from the one
  user chdb runs as (``users.xml`` written by ``write_engine_config``) unless remote hosts are configured;
- FILE stays granted, because the warehouse's own spooled inserts read their data with ``FROM INFILE``; every
  client statement is therefore parsed by the engine (``EXPLAIN AST``) and ``check_statement`` refuses file
  access outside ``user_files`` and any ``INFILE``/``OUTFILE``. The engine's parser, not a regex of ours: it
  sees through comments, quoting, case and nesting exactly as execution will;
- requests are checked before any of that (``check_request``): the Host header (DNS rebinding), the Origin
  of browser requests (cross-site form posts) and, when a password is set, the credentials (Basic auth
  parsed and compared by ``pravis_schemas.read_auth``, as the dashboards and the live API do).
"""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from pravis_schemas.read_auth import basic_credentials, credentials_match

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# Access types of the engine that reach outside the process (ClickHouse's SOURCES group, but FILE).
REMOTE_SOURCES = (
    "URL, REMOTE, MONGO, REDIS, MYSQL, POSTGRES, SQLITE, ODBC, JDBC, HDFS, S3, HIVE, AZURE, KAFKA, NATS, "
    "RABBITMQ, YTSAURUS, ARROW FLIGHT, BIGQUERY"
)
# Table functions, table engines and backup destinations that name a local path as their first argument
# (ENGINE = File: its second). Names as the parse prints them, lowercased: ClickHouse's are case-insensitive.
_FILE_FUNCTIONS = frozenset({"file"})
# Functions, table and database engines that read local paths, programs or the process itself in ways a
# path check cannot follow: refused. `disk(type = 'local', path = ...)` (a table's or a backup's custom disk)
# is among them: the engine makes its directory anywhere before it checks anything.
_LOCAL_SOURCES = frozenset(
    {"disk", "filecluster", "filesystem", "filelog", "sqlite", "deltalakelocal", "iceberglocal",
     "iceberglocalcluster", "paimonlocal", "python", "arrowstream", "executable", "executablepool",
     "embeddedrocksdb"}
)  # fmt: skip
# Those whose first argument is a URL, host[:port] or cluster; checked against the allowed remote hosts.
_REMOTE_FUNCTIONS = frozenset(
    {"url", "urlcluster", "remote", "remotesecure", "cluster", "clusterallreplicas", "distributed", "s3",
     "s3cluster", "s3queue", "gcs", "oss", "cosn", "hdfs", "hdfscluster", "azureblobstorage",
     "azureblobstoragecluster", "azurequeue", "mysql", "materializedmysql", "postgresql",
     "materializedpostgresql", "mongodb", "redis", "jdbc", "odbc", "kafka", "bigquery", "ytsaurus",
     "prometheusquery", "prometheusqueryrange", "datalakecatalog", "iceberg", "icebergs3", "icebergazure",
     "iceberghdfs", "icebergcluster", "icebergs3cluster", "icebergazurecluster", "iceberghdfscluster",
     "deltalake", "deltalakes3", "deltalakeazure", "deltalakecluster", "deltalakes3cluster",
     "deltalakeazurecluster", "hudi", "hudicluster", "paimon", "paimons3", "paimonazure", "paimonhdfs",
     "paimoncluster", "paimons3cluster", "paimonazurecluster", "paimonhdfscluster"}
)  # fmt: skip
_NODE = re.compile(r"^( *)(\S+)(?: +(\S+))?")
_CHILDREN = re.compile(r"\(children (\d+)\)$")
_LITERAL = re.compile(r"^ *Literal \\'(.*)\\'$")
# The roots whose direct Literal children are not a file name: COMMENT of CREATE.
_ROOTS_WITH_LITERALS = frozenset({"CreateQuery"})


class Refused(Exception):
    """A request or statement the warehouse will not serve: a ClickHouse error code, message and a reason
    for the log."""

    def __init__(self, code: int, message: str, reason: str) -> None:
        super().__init__(message)
        self.code, self.message, self.reason = code, message, reason


@dataclass(frozen=True)
class AccessPolicy:
    user: str = "default"
    password: str | None = None
    """None: no check (the loopback development default)."""
    allowed_hosts: frozenset[str] = frozenset()
    """Host names besides the loopback ones that requests may address (Host header) or come from (Origin)."""
    remote_hosts: frozenset[str] = frozenset()
    """Hosts that url(), remote(), s3()... may reach; empty: those functions are off."""
    user_files: Path = Path("user_files")

    def host_allowed(self, host: str) -> bool:
        name = _strip_port(host).lower()
        return name in LOOPBACK_NAMES or name in {h.lower() for h in self.allowed_hosts}

    def remote_allowed(self, host: str) -> bool:
        return _strip_port(host).lower() in {h.lower() for h in self.remote_hosts}


def _strip_port(host: str) -> str:
    if host.startswith("["):  # [::1]:8123
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def check_request(policy: AccessPolicy, headers: Any, params: dict[str, str]) -> None:
    """Refuse a request addressed to a foreign host name, sent by a foreign web page, or without the
    credentials the policy asks for."""
    host = headers.get("host", "")
    if not policy.host_allowed(host):
        # A foreign name resolving to 127.0.0.1 is DNS rebinding: a web page talking to us as its own origin.
        raise Refused(
            497, f"Host '{host}' is not allowed (PRAVIS_WAREHOUSE_ALLOWED_HOSTS). (ACCESS_DENIED)", "host"
        )
    origin = headers.get("origin")
    if origin is not None and not policy.host_allowed(urlsplit(origin).netloc if "://" in origin else ""):
        # Browsers send Origin with every cross-site POST (form or fetch); other clients send none.
        raise Refused(497, f"Requests from web origin '{origin}' are not allowed. (ACCESS_DENIED)", "origin")
    if policy.password is not None:
        _authenticate(policy, headers, params)


def _authenticate(policy: AccessPolicy, headers: Any, params: dict[str, str]) -> None:
    authorization = headers.get("authorization", "")
    header_user, header_key = headers.get("x-clickhouse-user"), headers.get("x-clickhouse-key")
    param_user, param_password = params.get("user"), params.get("password")
    ways = [
        authorization != "",
        header_user is not None or header_key is not None,
        param_user is not None or param_password is not None,
    ]
    if sum(ways) > 1:
        raise Refused(
            516,
            "Invalid authentication: it is not allowed to use several authentication methods at once "
            "(Authorization header, X-ClickHouse-User/Key headers, user/password parameters). "
            "(AUTHENTICATION_FAILED)",
            "auth_mixed",
        )
    user, password = "default", ""
    if authorization:
        credentials = basic_credentials(authorization)
        if credentials is None:
            raise Refused(
                516, "Invalid Authorization header: Basic expected. (AUTHENTICATION_FAILED)", "auth_header"
            )
        user, password = credentials
    elif ways[1]:
        user, password = header_user or "default", header_key or ""
    elif ways[2]:
        user, password = param_user or "default", param_password or ""
    assert policy.password is not None
    if not credentials_match(user, password, policy.user, policy.password):
        raise Refused(
            516,
            f"{user}: Authentication failed: password is incorrect, or there is no user with such name. "
            "(AUTHENTICATION_FAILED)",
            "auth_failed",
        )


def check_statement(ast: str, policy: AccessPolicy) -> str:
    """Refuse a statement, given as the engine's ``EXPLAIN AST`` of it, that reads or writes a file outside
    ``user_files``, reads a file as INFILE or writes one as OUTFILE, or reaches a host not allowed; return the
    kind of statement (the root node: ``SelectWithUnionQuery``, ``Set``...)."""
    # Lines end at "\n" only: the parse prints literals with U+2028, U+2029 or \x1c raw, where splitlines
    # would cut a node in two.
    lines = ast.rstrip("\n").split("\n")
    if not _complete(lines):
        raise Refused(49, "The statement's parse came back incomplete. (LOGICAL_ERROR)", "parse")
    root = _NODE.match(lines[0]).group(2)
    for index, line in enumerate(lines):
        match = _NODE.match(line)
        if match is None:
            continue
        depth, kind, name = len(match.group(1)), match.group(2), (match.group(3) or "").lower()
        if depth == 1 and kind == "Literal" and root not in _ROOTS_WITH_LITERALS:
            # ASTQueryWithOutput's out_file and ASTInsertQuery's infile: the only Literal children of a root.
            raise Refused(
                358,
                "INTO OUTFILE and FROM INFILE are not allowed over HTTP. (INTO_OUTFILE_NOT_ALLOWED)",
                "infile",
            )
        if kind == "FunctionWithKeyValueArguments":
            # A dictionary SOURCE(...): files, URLs, hosts, programs; the parse does not print its keys, so
            # which argument is a host or a path cannot be told. Pravis uses no dictionaries.
            raise Refused(
                497, f"Dictionary sources ({name}) are not allowed here. (ACCESS_DENIED)", "dictionary"
            )
        if kind != "Function":
            continue
        arguments = _arguments(lines, index, depth)
        if name in _LOCAL_SOURCES:
            raise Refused(
                497, f"{name} reaches local files or programs: not allowed here. (ACCESS_DENIED)", "local"
            )
        if name in _FILE_FUNCTIONS:
            engine = index > 0 and lines[index - 1].strip().startswith("Storage definition")
            if not engine:
                _check_path(_string(next(iter(arguments), None)), policy)
            elif len(arguments) > 1:  # ENGINE = File(Format, 'path'); without a path it keeps its own data
                _check_path(_string(arguments[1]), policy)
        elif name in _REMOTE_FUNCTIONS:
            # The engine's grants refuse reading through these, but not creating a table with such an engine.
            _check_remote(name, _string(next(iter(arguments), None)), policy)
    return root


# Storage settings (a table's SETTINGS, ALTER ... MODIFY SETTING) parse to a bare `Set` node: the parse
# does not show `disk = disk(type = 'local', path = ...)`, and the engine makes that directory wherever it
# points before refusing the disk (measured on chdb 26.9, also with custom_local_disks_base_directory and a
# constraint on the setting). So a DDL statement with settings that names a disk at all is refused; Pravis's
# own DDL sets none.
_DDL_ROOTS = frozenset({"CreateQuery", "AlterQuery", "AttachQuery"})
_DISK = re.compile(rb"disk", re.IGNORECASE)


def check_storage_settings(ast: str, statement: bytes) -> None:
    """Refuse a CREATE/ALTER/ATTACH whose settings could name a disk (see `_DDL_ROOTS`); `ast` as for
    `check_statement`, `statement` the text the engine parsed."""
    lines = ast.rstrip("\n").split("\n")
    root = _NODE.match(lines[0]).group(2)
    has_settings = any(line.strip() == "Set" for line in lines[1:])
    if root in _DDL_ROOTS and has_settings and _DISK.search(statement):
        raise Refused(
            497, "Table settings naming a disk are not allowed here. (ACCESS_DENIED)", "storage_disk"
        )


def _complete(lines: list[str]) -> bool:
    """Whether `lines` are one whole tree: a single root, each node with as many children as it announces."""
    open_nodes: list[list[int]] = []  # [depth, children announced, children seen]
    for number, line in enumerate(lines):
        match = _NODE.match(line)
        if match is None:
            return False
        depth = len(match.group(1))
        while open_nodes and open_nodes[-1][0] >= depth:
            node = open_nodes.pop()
            if node[1] != node[2]:
                return False
        if (depth == 0) != (number == 0) or (open_nodes and open_nodes[-1][0] != depth - 1):
            return False
        if open_nodes:
            open_nodes[-1][2] += 1
        announced = _CHILDREN.search(line)
        open_nodes.append([depth, int(announced.group(1)) if announced else 0, 0])
    return bool(lines) and all(node[1] == node[2] for node in open_nodes)


def _arguments(lines: list[str], index: int, depth: int) -> list[str]:
    """The argument nodes of the Function node at `index`, one line each (without their own children)."""
    arguments = []
    for line in lines[index + 1 :]:
        indent = len(line) - len(line.lstrip(" "))
        if indent <= depth:
            break
        if indent == depth + 2:
            arguments.append(line)
    return arguments


def _string(node: str | None) -> str | None:
    """The value of a string Literal node, else None; also None for one with escapes, which the node's text
    shows escaped twice over."""
    match = _LITERAL.match(node or "")
    return match.group(1) if match and "\\" not in match.group(1) else None


def _check_path(path: str | None, policy: AccessPolicy) -> None:
    root = policy.user_files.resolve()
    # Relative names resolve against the working directory, as the engine resolves them. Braces are refused:
    # the engine expands {a,../x} alternatives, which a path resolved as written would hide.
    if path is not None and not {"{", "}"} & set(path) and Path(path).resolve().is_relative_to(root):
        return
    raise Refused(
        291,
        f"File is not inside {root}: file functions, File tables and backups take a string literal path "
        "under user_files. (DATABASE_ACCESS_DENIED)",
        "file",
    )


def _check_remote(function: str, address: str | None, policy: AccessPolicy) -> None:
    if not policy.remote_hosts:
        raise Refused(
            497,
            f"{function}: external sources are off (PRAVIS_WAREHOUSE_REMOTE_HOSTS is empty). (ACCESS_DENIED)",
            "remote",
        )
    host = None
    if address is not None:
        host = urlsplit(address).hostname if "://" in address else _strip_port(address)
    if host is None or not policy.remote_allowed(host):
        raise Refused(
            491,
            f'URL "{address}" is not allowed: its host is not in PRAVIS_WAREHOUSE_REMOTE_HOSTS. '
            "(UNACCEPTABLE_URL)",
            "remote",
        )


def write_engine_config(config_dir: Path, policy: AccessPolicy) -> Path:
    """Write the engine's config.xml and users.xml for `policy` into `config_dir`; return config.xml."""
    config_dir.mkdir(parents=True, exist_ok=True)
    revoke = "" if policy.remote_hosts else f"<query>REVOKE {REMOTE_SOURCES} ON *.*</query>"
    users = config_dir / "users.xml"
    users.write_text(
        "<clickhouse>\n"
        "  <profiles><default/></profiles>\n"
        "  <quotas><default/></quotas>\n"
        "  <users><default>\n"
        "    <password/>\n"
        "    <networks><ip>::1</ip><ip>127.0.0.1</ip></networks>\n"
        "    <profile>default</profile><quota>default</quota>\n"
        f"    <grants><query>GRANT ALL ON *.*</query>{revoke}</grants>\n"
        "  </default></users>\n"
        "</clickhouse>\n"
    )
    config = config_dir / "config.xml"
    config.write_text(
        "<clickhouse>\n"
        f"  <users_config>{escape(str(users.resolve()))}</users_config>\n"
        f"  <user_files_path>{escape(str(policy.user_files.resolve()))}/</user_files_path>\n"
        "</clickhouse>\n"
    )
    return config
