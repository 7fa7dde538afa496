"""Where spooled rows go: a ClickHouse server (clickhouse-connect) or the embedded engine (chdb).

    >>> sink = open_sink(config)                 # from the [clickhouse] settings
    >>> sink.insert_audit(AUDIT_ORDERS, "/spool/…/audit_orders.rows", token="engine1:…:audit_orders")
    >>> sink.query("SELECT count() FROM hftel.audit_orders", "TabSeparated")

Both sinks take a spooled file and a deduplication token: the same token inserted twice leaves one
copy (the tables keep a deduplication window), which is what makes a replay after a crash safe. The
embedded sink reads the file in the engine (`INSERT … SELECT … FROM file()`), with no Python per row;
the server sink sends the rows as compressed columns (Native format, lz4) with the column types
given, so the writer role needs INSERT and nothing else.

Every failure becomes a SinkError that says whether trying again may help (`transient`): a refused
connection or a timeout may; a syntax error or an unknown table will not until someone acts.
"""
from __future__ import annotations

import json
import os
import re
import threading
import time
import urllib.parse
from typing import Any, Protocol

from hftel.errors import HftelError
from hftel.schemas import LOGS_HFT, AuditTable, sql_string
from hftel_exporter import rowformat

#: ClickHouse error codes that retrying cannot fix: syntax, unknown table/column/database, types,
#: access. Anything else (network, timeouts, memory, too many parts) is worth another try.
PERMANENT_CODES = frozenset({16, 44, 47, 53, 60, 62, 70, 81, 164, 192, 193, 194, 195, 497, 516})


class SinkError(HftelError):
    """An insert or query that failed; `transient` says whether retrying may succeed."""

    def __init__(self, message: str, *, transient: bool):
        super().__init__(message)
        self.transient = transient


def _code(message: str) -> int | None:
    found = re.search(r"Code: (\d+)", message)
    return int(found.group(1)) if found else None


def classify(error: BaseException, what: str) -> SinkError:
    """`error` from chdb or clickhouse-connect as a SinkError: its first line, transient unless its
    ClickHouse code says retrying cannot help."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    code = _code(str(error))
    return SinkError(f"{what}: {message}", transient=code is None or code not in PERMANENT_CODES)


class Sink(Protocol):
    """What the drain and `hftel audit` need from a ClickHouse."""

    name: str
    database: str

    def insert_audit(self, table: AuditTable, path: str, token: str, framed: bool = False) -> None: ...
    def insert_logs(self, path: str, token: str) -> None: ...
    def command(self, sql: str) -> None: ...
    def query(self, sql: str, fmt: str = "TabSeparatedWithNames") -> bytes: ...
    def query_rows(self, sql: str) -> list[dict[str, Any]]: ...
    def ping(self) -> bool: ...
    def close(self) -> None: ...


def json_rows(data: bytes) -> list[dict[str, Any]]:
    """A JSONEachRow answer as dicts; SinkError when it is not JSONEachRow."""
    try:
        return [json.loads(line) for line in data.splitlines() if line.strip()]
    except ValueError as error:
        raise SinkError(f"ClickHouse answered something that is not JSONEachRow: {error}: {data[:200]!r}",
                        transient=True) from None


class Queries:
    """query_rows() and ping(), for anything with query(sql, fmt) -> bytes."""

    def query(self, sql: str, fmt: str = "TabSeparatedWithNames") -> bytes:
        raise NotImplementedError

    def query_rows(self, sql: str) -> list[dict[str, Any]]:
        return json_rows(self.query(sql, "JSONEachRow"))

    def ping(self) -> bool:
        try:
            return self.query("SELECT 1", "CSV").strip() == b"1"
        except SinkError:
            return False


def _compression(path: str) -> str:
    return "'lz4'" if path.endswith(".lz4") else "'none'"


#: The embedded engine never JIT-compiles: the systemd unit's MemoryDenyWriteExecute=yes forbids the
#: writable-then-executable pages LLVM needs, and the inserts gain little from it.
NO_JIT = "compile_expressions=0&compile_aggregate_expressions=0&compile_sort_description=0"


class EmbeddedSink(Queries):
    """The ClickHouse engine in this process (chdb), at a data directory only this process opens.

    >>> sink = EmbeddedSink("/var/lib/hftel-exporter/chdb")
    >>> sink.query("SELECT 1", "CSV")
    b'1\\n'
    """

    name = "embedded"

    def __init__(self, path: str, database: str = "hftel"):
        from chdb import session

        os.makedirs(path, mode=0o700, exist_ok=True)
        self.path = path
        self.database = database
        self._lock = threading.Lock()  # one statement at a time through the one session
        try:
            self._session = session.Session(f"{path}?{NO_JIT}")
        except Exception as error:  # chdb raises RuntimeError with the engine's message
            raise SinkError(f"cannot open the embedded ClickHouse at {path}: {error} (is another exporter or "
                            f"`hftel audit` using it?)", transient=False) from None

    def _run(self, sql: str, fmt: str, what: str) -> bytes:
        return self._timed(sql, fmt, what)[0]

    def _timed(self, sql: str, fmt: str, what: str) -> tuple[bytes, float]:
        try:
            with self._lock:
                started = time.perf_counter()  # once the session is ours: the engine's time, not the wait
                answer = bytes(self._session.query(sql, fmt).bytes())
                return answer, time.perf_counter() - started
        except Exception as error:
            raise classify(error, what) from None

    def insert_audit(self, table: AuditTable, path: str, token: str, framed: bool = False) -> None:
        # allow_suspicious_fixed_string_types: the raw structure reads a 1 KiB text field as FixedString(1024).
        self._run(f"INSERT INTO {self.database}.{table.name} SETTINGS insert_deduplication_token = {sql_string(token)}, "
                  f"allow_suspicious_fixed_string_types = 1 "
                  f"SELECT {rowformat.select_list(table)} "
                  f"FROM file({sql_string(path)}, 'RowBinary', {sql_string(rowformat.raw_structure(table, framed))}, "
                  f"{_compression(path)})",
                  "CSV", f"insert into {table.name}")

    def insert_logs(self, path: str, token: str) -> None:
        self._run(f"INSERT INTO {self.database}.{LOGS_HFT.name} SETTINGS insert_deduplication_token = {sql_string(token)} "
                  f"SELECT {rowformat.log_select_list()} "
                  f"FROM file({sql_string(path)}, 'JSONEachRow', {sql_string(rowformat.log_structure())}, {_compression(path)})",
                  "CSV", f"insert into {LOGS_HFT.name}")

    def command(self, sql: str) -> None:
        self._run(sql, "CSV", "statement")

    def query(self, sql: str, fmt: str = "TabSeparatedWithNames") -> bytes:
        return self._run(sql, fmt, "query")

    def query_timed(self, sql: str, fmt: str = "TabSeparatedWithNames") -> tuple[bytes, float]:
        """The answer, and the seconds the engine took to give it (not counting the wait for the session)."""
        return self._timed(sql, fmt, "query")

    def close(self) -> None:
        with self._lock:
            self._session.close()


class ClickHouseSink(Queries):
    """A ClickHouse server over HTTP(S) through clickhouse-connect.

    >>> sink = ClickHouseSink("http://127.0.0.1:8123", user="hftel_writer", password=secret)
    """

    name = "clickhouse"

    def __init__(self, url: str, *, user: str, password: str, database: str = "hftel", timeout: float = 30.0):
        self.url = url
        self.user = user
        self.database = database
        self._password = password
        self._timeout = timeout
        self._client: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the password
        return f"ClickHouseSink({self.url!r}, user={self.user!r}, database={self.database!r})"

    def _connect(self) -> Any:
        if self._client is None:
            import clickhouse_connect

            address = urllib.parse.urlsplit(self.url)
            try:
                self._client = clickhouse_connect.get_client(
                    interface=address.scheme, host=address.hostname,
                    port=address.port or (8443 if address.scheme == "https" else 8123), username=self.user, password=self._password,
                    database="default", compress="lz4", connect_timeout=min(10.0, self._timeout),
                    send_receive_timeout=self._timeout, autogenerate_session_id=False)
            except Exception as error:
                raise classify(error, f"cannot connect to ClickHouse at {self.url}") from None
        return self._client

    def _call(self, what: str, function: Any) -> Any:
        return self._call_timed(what, function)[0]

    def _call_timed(self, what: str, function: Any) -> tuple[Any, float]:
        with self._lock:
            try:
                client = self._connect()
                started = time.perf_counter()  # the round trip, not the wait for the connection or its setup
                result = function(client)
                return result, time.perf_counter() - started
            except SinkError:
                raise
            except Exception as error:
                failure = classify(error, what)
                if failure.transient:
                    self._client = None  # a fresh connection next time
                raise failure from None

    def insert_audit(self, table: AuditTable, path: str, token: str, framed: bool = False) -> None:
        rows = rowformat.read_rows(table, path, framed)
        columns = rowformat.audit_columns(table, rows)
        self._insert(table.name, [column.name for column in table.columns],
                     rowformat.column_types(table.columns), columns, token)

    def insert_logs(self, path: str, token: str) -> None:
        columns = rowformat.log_columns(rowformat.read_file(path).splitlines())
        self._insert(LOGS_HFT.name, [column.name for column in LOGS_HFT.columns],
                     rowformat.column_types(LOGS_HFT.columns), columns, token)

    def _insert(self, table: str, names: list[str], types: list[str], columns: list[Any], token: str) -> None:
        self._call(f"insert into {table}", lambda client: client.insert(
            table, columns, column_names=names, column_type_names=types, column_oriented=True,
            database=self.database, settings={"insert_deduplication_token": token}))

    def command(self, sql: str) -> None:
        self._call("statement", lambda client: client.command(sql))

    def query(self, sql: str, fmt: str = "TabSeparatedWithNames") -> bytes:
        return self._call("query", lambda client: client.raw_query(sql, fmt=fmt))

    def query_timed(self, sql: str, fmt: str = "TabSeparatedWithNames") -> tuple[bytes, float]:
        """The answer, and the seconds of its round trip (not counting the wait for the connection)."""
        return self._call_timed("query", lambda client: client.raw_query(sql, fmt=fmt))

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def read_password(password_file: str, environ: dict[str, str] | None = None) -> str:
    """The ClickHouse password: the configured file, else systemd's credential, else the environment."""
    environ = dict(os.environ if environ is None else environ)
    path = password_file
    if not path and environ.get("CREDENTIALS_DIRECTORY"):
        candidate = os.path.join(environ["CREDENTIALS_DIRECTORY"], "clickhouse-password")
        path = candidate if os.path.exists(candidate) else ""
    if path:
        try:
            with open(path, encoding="utf-8") as file:
                return file.read().rstrip("\r\n")
        except OSError as error:
            raise HftelError(f"cannot read the ClickHouse password file {path}: {error.strerror}") from None
    return environ.get("HFTEL_CLICKHOUSE_PASSWORD", "")


def sink_kind(config: Any) -> str:
    """'clickhouse', 'embedded' or 'off': clickhouse.sink with 'auto' resolved (a url means a server)."""
    kind = config.clickhouse.sink
    if kind == "auto":
        return "clickhouse" if config.clickhouse.url else "embedded"
    return kind


def embedded_path(config: Any, environ: dict[str, str] | None = None) -> str:
    """The embedded engine's data directory: the setting, else chdb/ in the state directory."""
    from hftel_exporter.config import state_path

    return config.clickhouse.embedded_path or state_path("chdb", environ)


def open_sink(config: Any, environ: dict[str, str] | None = None) -> Sink | None:
    """The sink the [clickhouse] settings name (None when the drain is off)."""
    settings = config.clickhouse
    kind = sink_kind(config)
    if kind == "off":
        return None
    if kind == "clickhouse":
        if not settings.url:
            raise HftelError("clickhouse.sink is 'clickhouse' but clickhouse.url is empty")
        return ClickHouseSink(settings.url, user=settings.user, password=read_password(settings.password_file, environ),
                              database=settings.database, timeout=settings.insert_timeout)
    return EmbeddedSink(embedded_path(config, environ), settings.database)
