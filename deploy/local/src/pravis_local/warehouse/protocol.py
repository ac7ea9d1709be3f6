"""The ClickHouse HTTP interface as the warehouse speaks it, without I/O: the parameters and settings the HTTP
handler consumes, the plain `INSERT ... FORMAT` statements it spools, ClickHouse's error codes and the HTTP
status each maps to, result content types, the X-ClickHouse-Summary numbers and the framing of an error that
comes after a streamed result's first bytes."""

import json
import re
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

DEFAULT_FORMAT = "TabSeparated"

# URL parameters the ClickHouse HTTP handler consumes itself (reserved_param_names in HTTPHandler.cpp).
HTTP_PARAMS = frozenset(
    {"query", "database", "default_format", "compress", "decompress", "user", "password", "quota_key",
     "query_id", "stacktrace", "role", "buffer_size", "wait_end_of_query", "session_id", "session_timeout",
     "session_check", "client_protocol_version", "close_session"}
)  # fmt: skip
# Real ClickHouse settings that only steer the HTTP server: implemented here or meaningless for chdb. readonly
# is in the list because it cannot be lifted again once set, and every connection serves many requests.
HTTP_SETTINGS = frozenset(
    {"enable_http_compression", "http_zlib_compression_level", "send_progress_in_http_headers",
     "http_headers_progress_interval_ms", "cancel_http_readonly_queries_on_client_close",
     "http_response_buffer_size", "http_wait_end_of_query", "add_http_cors_header", "readonly"}
)  # fmt: skip
# Output "formats" of the chdb Python API, not of ClickHouse: they would return Python objects.
PYTHON_FORMATS = frozenset({"dataframe", "arrowtable", "datastore", "debug"})

# exceptionCodeToHTTPStatus.cpp; everything else is 500, READONLY (164) included.
_HTTP_STATUS = {
    194: 401,
    **dict.fromkeys((192, 193, 497, 512, 516), 403),
    **dict.fromkeys((6, 8, 15, 25, 26, 27, 36, 37, 38, 41, 44, 53, 62, 72, 117, 123, 167, 168, 223, 321, 376,
                     427, 441, 675, 676), 400),
    **dict.fromkeys((46, 47, 50, 56, 60, 63, 73, 78, 81, 115, 152, 336, 511), 404),
    229: 413, 48: 501, 76: 503, 209: 503, 439: 503, 381: 411, 159: 408, 779: 415, 291: 403,
}  # fmt: skip
_CONTENT_TYPES = {
    ("tabseparated", "tsv"): "text/tab-separated-values; charset=UTF-8",
    ("csv",): "text/csv; charset=UTF-8; header=absent",
    ("json",): "application/json; charset=UTF-8",
    ("native", "rowbinary", "parquet", "arrow", "orc", "avro", "msgpack"): "application/octet-stream",
}

_IDENT = rb'(?:`(?:[^`\\]|\\.)*`|"(?:[^"\\]|\\.)*"|[A-Za-z_][A-Za-z0-9_]*)'
_VALUE = rb"(?:'(?:[^'\\]|\\.)*'|[\w.+-]+)"
# Deliberately narrow (table, columns, SETTINGS): anything fancier goes through the engine's own parser.
# The tail is ParserInsertQuery's rule: data starts after blanks and at most one newline.
_INSERT_FORMAT = re.compile(
    rb"\s*(INSERT\s+INTO\s+(?:TABLE\s+)?" + _IDENT + rb"(?:\s*\.\s*" + _IDENT + rb")?"
    rb"(?:\s*\(\s*" + _IDENT + rb"(?:\s*,\s*" + _IDENT + rb")*\s*\))?)"
    rb"(\s+SETTINGS\s+\w+\s*=\s*" + _VALUE + rb"(?:\s*,\s*\w+\s*=\s*" + _VALUE + rb")*)?"
    rb"\s+FORMAT\s+(\w+)[ \t\f]*\r?\n?",
    re.IGNORECASE,
)
_FORMAT_TAIL = re.compile(rb"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
_CODE = re.compile(r"Code: (\d+)\.")
READONLY = 164
# What ClickHouse's access check adds to READONLY when the method was GET; the engine here cannot know it.
GET_IMPLIES_READONLY = (
    "For queries over HTTP, method GET implies readonly. You should use method POST for modifying queries"
)


class ClickHouseError(Exception):
    """An error with a ClickHouse exception code, rendered to clients as ClickHouse renders it."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message if message.startswith("Code: ") else f"Code: {code}. DB::Exception: {message}"
        self.status = _HTTP_STATUS.get(code, 500)

    @classmethod
    def wrap(cls, exc: Exception) -> "ClickHouseError":
        # chdb prefixes engine messages ("Streaming query failed: Code: 60. ..."); the code is the engine's.
        match = _CODE.search(text := str(exc))
        return (
            cls(int(match.group(1)), text[match.start() :]) if match else cls(1001, f"{text} (STD_EXCEPTION)")
        )


def media_type(result_format: str) -> str:
    """The Content-Type ClickHouse sends with a result in `result_format`."""
    name = result_format.lower()
    return next(
        (value for prefixes, value in _CONTENT_TYPES.items() if name.startswith(prefixes)), "text/plain"
    )


def exception_frame(message: str, tag: str) -> bytes:
    """An error after a streamed result's status line went out, framed as ClickHouse (25.11+) frames it so
    clients can tell it from data; `tag` is the response's X-ClickHouse-Exception-Tag."""
    text, marker = message.encode(), tag.encode()
    return b"__exception__\r\n%s\r\n%s\n%d %s\r\n__exception__\r\n" % (marker, text, len(text), marker)


def quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def quote_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass
class Summary:
    """The X-ClickHouse-Summary numbers, summed from the counters chdb reports per result block."""

    read_rows: int = 0
    read_bytes: int = 0
    written_rows: int = 0
    written_bytes: int = 0
    result_rows: int = 0
    result_bytes: int = 0
    started_ns: int = field(default_factory=time.perf_counter_ns)

    def add(self, result: Any) -> None:
        self.read_rows += result.storage_rows_read()
        self.read_bytes += result.storage_bytes_read()
        self.written_rows += result.rows_written()
        self.written_bytes += result.bytes_written()
        self.result_rows += result.rows_read()
        self.result_bytes += result.bytes_read()

    def header(self) -> str:
        numbers = {**vars(self), "total_rows_to_read": self.read_rows}
        numbers["elapsed_ns"] = time.perf_counter_ns() - numbers.pop("started_ns")
        return json.dumps({k: str(v) for k, v in numbers.items()}, separators=(",", ":"))


@dataclass(frozen=True)
class InsertPlan:
    target: str
    """`INSERT INTO table (columns)`."""
    settings: str
    """` SETTINGS ...` written in the statement, or empty."""
    format: str

    @classmethod
    def of(cls, statement: bytes) -> "tuple[InsertPlan, int] | None":
        """The plan of a plain `INSERT ... FORMAT` and where its data starts in `statement`, else None."""
        match = _INSERT_FORMAT.match(statement)
        if match is None:
            return None
        target, settings, fmt = (group.decode() if group else "" for group in match.groups())
        return cls(target, settings, fmt), match.end()


@dataclass
class HttpQuery:
    """One request as ClickHouse sees it: the statement is ``head`` (the query parameter) then ``body``; for a
    plain INSERT with data, ``body`` ends where the data starts and the data is in ``spool``."""

    head: bytes
    body: bytes
    database: str
    output_format: str
    query_id: str
    settings: dict[str, str]
    params: dict[str, str]
    buffer_bytes: float
    readonly: bool
    """A GET: runs on a read-only lane."""
    encoding: str | None
    level: int | None
    insert: InsertPlan | None = None
    spool: Any = None
    """The insert's data in a named temporary file, removed by `close`."""

    @cached_property
    def statement(self) -> bytes:
        return self.head + self.body

    def result_format(self) -> str:
        match = _FORMAT_TAIL.search(self.statement[-256:])
        return match.group(1).decode() if match else self.output_format

    def close(self) -> None:
        if self.spool is not None:
            self.spool.close()
