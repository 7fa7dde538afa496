"""A ClickHouse HTTP endpoint in front of chdb, for the tests only, with fault switches.

Debian's own `clickhouse-server` package is version 18.16 and clickhouse-connect cannot talk to it,
so the tests that run the real clickhouse-connect client end to end talk to this instead: a small
HTTP server on 127.0.0.1 that hands each request to chdb (the ClickHouse engine as a library) and
answers the way a ClickHouse server does. It handles what clickhouse-connect 1.12 sends and little
else; it is not a ClickHouse server, and nothing outside the tests may use it.

    >>> with ClickHouseEndpoint(tmp_path / "clickhouse") as endpoint:  # doctest: +SKIP
    ...     client = endpoint.client()
    ...     client.command("CREATE TABLE t (n UInt64) ENGINE = MergeTree ORDER BY n")
    ...     endpoint.fault("refuse")    # ClickHouse is down: connections are refused
    ...     endpoint.fault("none")      # and back on the same port

What it understands, as seen from clickhouse-connect:

- The SQL is the `query` URL parameter, the request body, or both (parameter, newline, body).
  Without a FORMAT clause a result is TabSeparated (`SELECT version(), timezone()` at connect);
  `... FORMAT Native` answers Native bytes.
- `INSERT INTO t (cols) FORMAT Native` leads the body up to its first newline and the data follows;
  the body may be chunked and compressed (Content-Encoding lz4, zstd, gzip or deflate). The data
  goes to a file and chdb runs `INSERT INTO t (cols) SETTINGS ... SELECT * FROM file(path, Native)`,
  so `insert_deduplication_token` deduplicates as on a server (and, with
  `deduplicate_insert_select = 'enable_even_for_bad_queries'`, so do identical blocks without one,
  on tables with `non_replicated_deduplication_window`).
- URL parameters: `database` (the current database), `readonly` (and GET, as on a server, refuse
  writes), `param_*` (query parameters), `query_id` (echoed). Settings chdb knows go into an
  INSERT's SETTINGS clause; settings that only matter to a server (sessions, progress headers,
  HTTP compression, output formats, ...) and settings chdb does not know are ignored, as are
  settings on other statements. Multipart forms (external data) are refused.
- Any user is accepted (Basic auth, X-ClickHouse-User or `user`); chdb cannot enforce grants, so
  the endpoint only records who connected (`stats`).
- A chdb error is HTTP 500 with the ClickHouse message as the body and X-ClickHouse-Exception-Code,
  which clickhouse-connect raises as a DatabaseError carrying the message.

Run as its own process, since a process holds one chdb data directory and a directory is held by
one process: `python clickhouse_endpoint.py --data DIR --port PORT` (0 picks a free port) prints
`listening 127.0.0.1 PORT` and then reads one command a line on stdin, answering `ok COMMAND` on
stdout (and nothing else goes to stdout; the log goes to stderr):

    fault none                  answer normally (reopens the port after `fault refuse`)
    fault refuse                close the listening socket and open connections: connections are refused
    fault 500                   every request answers HTTP 500 with a ClickHouse-like exception; nothing applied
    fault stall SECONDS         hold every request that long, then handle it normally
    fault garbage               every request answers HTTP 200 with bytes that are no ClickHouse answer; nothing applied
    fault drop-after-apply      apply each INSERT, then close the connection without an answer
    stats                       `ok stats {json}`: requests, users seen, inserts applied, responses dropped
    quit                        stop serving, close chdb and exit

`ClickHouseEndpoint` runs that process for a test.
"""
from __future__ import annotations

import argparse
import base64
import gzip
import http.server
import json
import logging
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import uuid
import zlib
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl, urlsplit

log = logging.getLogger("clickhouse-endpoint")

HOST = "127.0.0.1"

# URL parameters that are not settings of the query, or that only a server acts on; never passed to chdb.
SERVER_ONLY_PARAMETERS = frozenset({
    "query", "database", "user", "password", "quota_key", "query_id", "default_format", "readonly",
    "session_id", "session_timeout", "session_check", "client_protocol_version",
    "wait_end_of_query", "buffer_size", "compress", "decompress", "enable_http_compression",
    "send_progress_in_http_headers", "http_headers_progress_interval_ms", "http_zlib_compression_level",
    "cancel_http_readonly_queries_on_client_close", "max_execution_time",
})
SERVER_ONLY_PREFIXES = ("output_format_", "http_", "param_")

# First keywords of statements that answer with a result set (X-ClickHouse-Format) and may run read-only.
RESULT_STATEMENTS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN", "CHECK"})

FIRST_KEYWORD = re.compile(r"\s*(?:(?:--[^\n]*(?:\n|$)|/\*.*?\*/)\s*)*\(?\s*([A-Za-z]+)", re.S)
TRAILING_FORMAT = re.compile(r"\bFORMAT\s+([A-Za-z0-9_]+)\s*;?\s*$", re.I)
INSERT_WITH_FORMAT = re.compile(
    r"\s*INSERT\s+INTO\s+(?P<target>(?:`[^`]*`|\"[^\"]*\"|[^\s(`\"])+(?:\s*\([^)]*\))?)"
    r"(?:\s+SETTINGS\s+(?P<settings>.+?))?\s+FORMAT\s+(?P<format>[A-Za-z0-9_]+)\s*$",
    re.I | re.S)
EXCEPTION_CODE = re.compile(r"Code: (\d+)\.")
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")

# What `fault garbage` answers: something in front of ClickHouse that is not ClickHouse (a captive portal).
GARBAGE = b"<html><body>\x00\xff not a ClickHouse answer</body></html>\n"

# Error codes the endpoint raises itself, as ClickHouse numbers them.
SYNTAX_ERROR = 62
READONLY = 164
NOT_IMPLEMENTED = 48
UNKNOWN_EXCEPTION = 1002

CONTENT_TYPES = {"TabSeparated": "text/tab-separated-values; charset=UTF-8", "TSV": "text/tab-separated-values; charset=UTF-8",
                 "CSV": "text/csv; charset=UTF-8", "JSON": "application/json; charset=UTF-8"}


class EndpointError(Exception):
    """A ClickHouse-style failure the endpoint raises itself: `Code: N. DB::Exception: ... (NAME)`."""

    def __init__(self, code: int, name: str, message: str):
        super().__init__(f"Code: {code}. DB::Exception: {message}. ({name})")


def quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def quote_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def first_keyword(sql: str) -> str:
    match = FIRST_KEYWORD.match(sql)
    return match.group(1).upper() if match else ""


def decompress(body: bytes, encoding: str | None) -> bytes:
    """The request body as sent before compression; a body may hold several frames (one per block)."""
    encoding = (encoding or "").strip().lower()
    if not encoding or encoding == "identity" or not body:
        return body
    if encoding == "lz4":
        import lz4.frame
        out = []
        while body:
            decompressor = lz4.frame.LZ4FrameDecompressor()
            out.append(decompressor.decompress(body))
            body = decompressor.unused_data
        return b"".join(out)
    if encoding == "zstd":
        return _zstd().decompress(body)
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    raise EndpointError(NOT_IMPLEMENTED, "NOT_IMPLEMENTED", f"Content-Encoding {encoding} is not supported by the test endpoint")


def compress(body: bytes, encoding: str) -> bytes:
    if encoding == "lz4":
        import lz4.frame
        return lz4.frame.compress(body)
    if encoding == "zstd":
        return _zstd().compress(body)
    if encoding == "gzip":
        return gzip.compress(body)
    return zlib.compress(body)


def _zstd() -> Any:
    """The zstd module clickhouse-connect itself uses (compression.zstd on 3.14, else backports.zstd)."""
    try:
        from compression import zstd  # type: ignore[import-not-found]
    except ImportError:
        from backports import zstd  # type: ignore[import-not-found,no-redef]
    return zstd


class Engine:
    """chdb with its data directory, one query at a time (a chdb session is not for concurrent use)."""

    def __init__(self, data_dir: Path):
        from chdb import session

        data_dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.session = session.Session(str(data_dir))
        self.closed = False
        self.insert_dir = data_dir / ".endpoint-inserts"
        shutil.rmtree(self.insert_dir, ignore_errors=True)
        self.insert_dir.mkdir()
        self.timezone = self.session.query("SELECT timezone()", "TabSeparated").bytes().decode().strip()
        names = self.session.query("SELECT name FROM system.settings", "TabSeparated").bytes().decode()
        self.known_settings = frozenset(names.split())

    def run(self, sql: str, fmt: str, database: str, params: dict[str, str] | None = None) -> Any:
        """Runs one statement in `database`; raises chdb's error carrying the ClickHouse message."""
        with self.lock:
            if self.closed:
                raise EndpointError(UNKNOWN_EXCEPTION, "UNKNOWN_EXCEPTION", "the test endpoint is shutting down")
            self.session.query(f"USE {quote_identifier(database)}")
            return self.session.query(sql, fmt, params=params or None)

    def insert_file(self, target: str, fmt: str, data: bytes, settings: dict[str, str], database: str) -> Any:
        """`INSERT INTO target SETTINGS ... SELECT * FROM file(data, fmt)`, the data written to a file first."""
        path = self.insert_dir / f"{uuid.uuid4().hex}.{fmt.lower()}"
        path.write_bytes(data)
        try:
            clause = ", ".join(f"{name} = {value if NUMBER.fullmatch(value) else quote_literal(value)}"
                               for name, value in settings.items())
            sql = (f"INSERT INTO {target} {'SETTINGS ' + clause + ' ' if clause else ''}"
                   f"SELECT * FROM file({quote_literal(str(path))}, {quote_literal(fmt)})")
            return self.run(sql, "TabSeparated", database)
        finally:
            path.unlink(missing_ok=True)

    def close(self) -> None:
        with self.lock:
            if not self.closed:
                self.closed = True
                self.session.close()
                shutil.rmtree(self.insert_dir, ignore_errors=True)


class Endpoint:
    """The state the HTTP handlers share: chdb, the fault switch, the listener and the counts."""

    def __init__(self, engine: Engine, port: int, verbose: bool = False):
        self.engine = engine
        self.port = port
        self.verbose = verbose
        self.mode = "none"
        self.stall_seconds = 0.0
        self.stopping = threading.Event()
        self.server: _Server | None = None
        self.connections: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.requests = 0
        self.users: dict[str, int] = {}
        self.inserts_applied = 0
        self.tokens: list[str] = []  # the insert_deduplication_token of every insert applied, in order
        self.dropped = 0

    # The listener: open unless the fault is `refuse`.

    def open(self) -> None:
        if self.server is not None:
            return
        server = _Server((HOST, self.port), Handler)
        server.endpoint = self
        self.port = server.server_address[1]
        self.server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         name="clickhouse-endpoint-http", daemon=True).start()

    def close(self) -> None:
        """Stops accepting, closes the listening socket and cuts the open connections."""
        server, self.server = self.server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        with self.lock:
            connections = list(self.connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # Commands from stdin.

    def command(self, line: str) -> str:
        """Carries out one stdin command; returns what follows `ok COMMAND` on the answer line."""
        words = line.split()
        if words[:1] == ["stats"] and len(words) == 1:
            return json.dumps(self.stats(), separators=(",", ":"))
        if words[:1] != ["fault"] or len(words) < 2:
            raise ValueError("expected `fault MODE [ARG]`, `stats` or `quit`")
        mode, args = words[1], words[2:]
        if mode == "stall":
            if len(args) != 1:
                raise ValueError("`fault stall` takes the seconds to hold each request")
            self.stall_seconds = float(args[0])
        elif mode not in ("none", "refuse", "500", "garbage", "drop-after-apply") or args:
            raise ValueError(f"unknown fault {' '.join(words[1:])!r}")
        self.mode = mode
        if mode == "refuse":
            self.close()
        else:
            self.open()
        return ""

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {"port": self.port, "fault": self.mode, "requests": self.requests, "users": dict(self.users),
                    "inserts_applied": self.inserts_applied, "tokens": list(self.tokens), "dropped": self.dropped}

    def shutdown(self) -> None:
        self.stopping.set()
        self.close()
        self.engine.close()

    # Bookkeeping from the handlers.

    def record_request(self, user: str) -> None:
        with self.lock:
            self.requests += 1
            self.users[user] = self.users.get(user, 0) + 1

    def count(self, what: str) -> None:
        with self.lock:
            setattr(self, what, getattr(self, what) + 1)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    endpoint: Endpoint

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.info("connection from %s ended: %s", client_address, sys.exc_info()[1])


class Handler(http.server.BaseHTTPRequestHandler):
    """One connection; requests are answered in turn (HTTP/1.1 keep-alive, as urllib3 pools them)."""

    protocol_version = "HTTP/1.1"
    server_version = "chdb-test-endpoint"
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.endpoint.lock:
            self.server.endpoint.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.endpoint.lock:
            self.server.endpoint.connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the name BaseHTTPRequestHandler uses
        if self.server.endpoint.verbose:
            log.info("%s " + format, self.client_address[0], *args)

    def do_GET(self) -> None:
        self.handle_request()

    def do_POST(self) -> None:
        self.handle_request()

    def handle_request(self) -> None:
        endpoint = self.server.endpoint
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        body = self.read_body()
        user = self.user_name(params)
        endpoint.record_request(user)
        if endpoint.verbose:
            log.info("%s %s user=%s headers=%s body[:300]=%r", self.command, self.path, user,
                     dict(self.headers), body[:300])
        if endpoint.mode == "stall":
            endpoint.stopping.wait(endpoint.stall_seconds)
        if endpoint.stopping.is_set():
            self.drop()
            return
        query_id = params.get("query_id") or str(uuid.uuid4())
        if endpoint.mode == "500":
            self.answer_error(EndpointError(UNKNOWN_EXCEPTION, "UNKNOWN_EXCEPTION",
                                            "fault 500 injected by the test ClickHouse endpoint"), query_id)
            return
        if endpoint.mode == "garbage":
            self.answer(200, GARBAGE, {"Content-Type": "text/html; charset=UTF-8"})
            return
        if url.path.rstrip("/") == "/ping":
            self.answer(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
            return
        try:
            self.execute(params, body, query_id, user)
        except ConnectionError:
            raise  # the client went away: nobody to answer
        except Exception as error:  # chdb raises ChdbError/RuntimeError; anything else is answered the same way
            self.answer_error(error, query_id)

    def execute(self, params: dict[str, str], body: bytes, query_id: str, user: str) -> None:
        endpoint = self.server.endpoint
        if self.headers.get_content_type() == "multipart/form-data":
            raise EndpointError(NOT_IMPLEMENTED, "NOT_IMPLEMENTED",
                                "multipart forms (external data, form-encoded queries) are not supported by the test endpoint")
        body = decompress(body, self.headers.get("Content-Encoding"))
        # As a server: the SQL starts in the `query` parameter and goes on in the body.
        query = params.get("query", "").encode()
        text = query + b"\n" + body if query and body else query or body
        database = params.get("database") or "default"
        read_only = self.command == "GET" or params.get("readonly", "0") not in ("", "0")
        head, _, data = text.partition(b"\n")
        insert = INSERT_WITH_FORMAT.fullmatch(head.decode("utf-8", "replace"))
        if insert is not None:
            statement = "INSERT"
        else:
            sql = text.decode("utf-8")
            if not sql.strip():
                raise EndpointError(SYNTAX_ERROR, "SYNTAX_ERROR", "Empty query")
            statement = first_keyword(sql)
        if read_only and statement not in RESULT_STATEMENTS:
            raise EndpointError(READONLY, "READONLY", f"{user}: Cannot execute query in readonly mode")
        log.info("user=%s database=%s %s", user, database, head[:120].decode("utf-8", "replace"))

        if insert is not None:
            settings = self.insert_settings(params)
            if insert.group("settings"):
                for item in insert.group("settings").split(","):
                    name, _, value = item.partition("=")
                    settings[name.strip()] = value.strip().strip("'")
            result = endpoint.engine.insert_file(insert.group("target"), insert.group("format"), data, settings, database)
            with endpoint.lock:
                endpoint.tokens.append(settings.get("insert_deduplication_token", ""))
            fmt = None
        else:
            match = TRAILING_FORMAT.search(sql)
            fmt = match.group(1) if match else params.get("default_format") or "TabSeparated"
            query_parameters = {name[len("param_"):]: value for name, value in params.items() if name.startswith("param_")}
            result = endpoint.engine.run(sql, fmt, database, query_parameters)
            if statement not in RESULT_STATEMENTS:
                fmt = None
        output = result.bytes() or b""
        if statement == "INSERT":
            endpoint.count("inserts_applied")
            if endpoint.mode == "drop-after-apply":
                log.info("fault drop-after-apply: the insert is applied, the connection closes unanswered")
                endpoint.count("dropped")
                self.drop()
                return
        elapsed = result.elapsed()
        summary = {"read_rows": str(result.rows_read()), "read_bytes": str(result.bytes_read()),
                   "written_rows": str(result.rows_written()), "written_bytes": str(result.bytes_written()),
                   "total_rows_to_read": str(result.rows_read()), "result_bytes": str(len(output)),
                   "elapsed_ns": str(int(elapsed * 1e9))}
        if statement == "INSERT":
            summary["result_rows"] = summary["written_rows"]  # as a server reports an insert
        headers = {"Content-Type": CONTENT_TYPES.get(fmt or "", "application/octet-stream" if fmt else "text/plain; charset=UTF-8"),
                   "X-ClickHouse-Query-Id": query_id, "X-ClickHouse-Timezone": endpoint.engine.timezone,
                   "X-ClickHouse-Summary": json.dumps(summary, separators=(",", ":")),
                   "X-ClickHouse-Server-Display-Name": "chdb-test-endpoint"}
        if fmt is not None:
            headers["X-ClickHouse-Format"] = fmt
        encoding = self.response_encoding(params)
        if encoding and output:
            output = compress(output, encoding)
            headers["Content-Encoding"] = encoding
        self.answer(200, output, headers)

    def insert_settings(self, params: dict[str, str]) -> dict[str, str]:
        """The URL parameters that go into an INSERT's SETTINGS clause: settings chdb knows, less the server's."""
        known = self.server.endpoint.engine.known_settings
        settings = {}
        for name, value in params.items():
            if name in SERVER_ONLY_PARAMETERS or name.startswith(SERVER_ONLY_PREFIXES):
                continue
            if name not in known:
                log.info("ignoring setting %s=%s: chdb does not know it", name, value)
                continue
            settings[name] = value
        if "deduplicate_insert_select" in known:
            # A server deduplicates `INSERT ... FORMAT Native` blocks by their data; chdb's INSERT SELECT
            # only does when told to (or given a token), since it cannot know that file() is stable.
            settings.setdefault("deduplicate_insert_select", "enable_even_for_bad_queries")
        return settings

    def response_encoding(self, params: dict[str, str]) -> str | None:
        """As a server: compress the answer for an Accept-Encoding offer unless enable_http_compression=0.

        chdb's system.settings (which the client reads at connect) has enable_http_compression = 1, so
        clickhouse-connect only sends Accept-Encoding and expects a compressed answer.
        """
        if params.get("enable_http_compression", "1") == "0":
            return None
        for offer in self.headers.get("Accept-Encoding", "").split(","):
            encoding = offer.split(";")[0].strip().lower()
            if encoding in ("lz4", "zstd", "gzip", "deflate"):
                return encoding
        return None

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline(65537).split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def user_name(self, params: dict[str, str]) -> str:
        authorization = self.headers.get("Authorization", "")
        if authorization.lower().startswith("basic "):
            try:
                return base64.b64decode(authorization[6:].strip()).decode().partition(":")[0] or "default"
            except ValueError:
                pass
        return self.headers.get("X-ClickHouse-User") or params.get("user") or "default"

    def answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def answer_error(self, error: Exception, query_id: str) -> None:
        message = str(error).strip() or type(error).__name__
        match = EXCEPTION_CODE.search(message)
        code = match.group(1) if match else str(UNKNOWN_EXCEPTION)
        if not match:
            message = f"Code: {code}. DB::Exception: {message}. (UNKNOWN_EXCEPTION)"
        log.info("answering 500: %s", message)
        self.answer(500, (message + "\n").encode(), {
            "Content-Type": "text/plain; charset=UTF-8", "X-ClickHouse-Exception-Code": code,
            "X-ClickHouse-Query-Id": query_id, "X-ClickHouse-Server-Display-Name": "chdb-test-endpoint"})

    def drop(self) -> None:
        """Closes the connection without an answer, as a server that died mid-request."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A ClickHouse HTTP endpoint in front of chdb, for tests only.")
    parser.add_argument("--data", required=True, type=Path, help="chdb data directory (held by this process only)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1; 0 picks a free one")
    parser.add_argument("--verbose", action="store_true", help="log every request's URL, headers and body start")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="clickhouse-endpoint: %(message)s")

    # Only the protocol lines may reach the test's stdout pipe: keep it on a private descriptor and
    # point descriptor 1 at stderr, so nothing chdb (or anything else) prints can be read as an answer.
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    protocol_lock = threading.Lock()

    def say(line: str) -> None:
        with protocol_lock:
            protocol.write(line + "\n")
            protocol.flush()

    endpoint = Endpoint(Engine(args.data), args.port, verbose=args.verbose)
    endpoint.open()
    say(f"listening {HOST} {endpoint.port}")
    for raw in sys.stdin:
        line = " ".join(raw.split())
        if not line:
            continue
        if line == "quit":
            endpoint.shutdown()
            say("ok quit")
            return 0
        try:
            extra = endpoint.command(line)
        except Exception as error:
            log.info("command %r failed: %s", line, error)
            say(f"error {line}: {error}")
        else:
            say(f"ok {line}" + (f" {extra}" if extra else ""))
    endpoint.shutdown()  # stdin closed: the test process is gone
    return 0


class ClickHouseEndpoint:
    """Runs the endpoint as a subprocess for a test; restartable on the same port and data directory.

    >>> endpoint = ClickHouseEndpoint(tmp_path / "clickhouse").start()  # doctest: +SKIP
    >>> endpoint.client().command("SELECT 1")                           # doctest: +SKIP
    1
    >>> endpoint.kill(); endpoint.start()                               # doctest: +SKIP

    One test thread drives it; `fault` and `stats` wait for the process to answer.
    """

    def __init__(self, data_dir: str | os.PathLike[str], port: int = 0, *, verbose: bool = False,
                 stderr: IO[Any] | None = None, timeout: float = 60.0):
        self.data_dir = Path(data_dir)
        self.port = port
        self.verbose = verbose
        self.stderr = stderr
        self.timeout = timeout
        self.process: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> "ClickHouseEndpoint":
        """Starts the process (on the port of the last run, if any) and waits until it listens."""
        if self.running:
            raise RuntimeError("the endpoint is already running")
        command = [sys.executable, str(Path(__file__).resolve()), "--data", str(self.data_dir), "--port", str(self.port)]
        if self.verbose:
            command.append("--verbose")
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                        text=True, bufsize=1)
        self._lines = queue.Queue()
        threading.Thread(target=self._read_stdout, args=(self.process.stdout, self._lines),
                         name="clickhouse-endpoint-stdout", daemon=True).start()
        try:
            line = self._next_line(self.timeout, "the `listening` line")
        except BaseException:
            self.kill()
            raise
        if line is None or not line.startswith("listening "):
            self.kill()
            raise RuntimeError(f"the endpoint did not start (exit code {self.process.returncode}, said {line!r}); "
                               "its stderr says why")
        self.port = int(line.split()[2])
        return self

    def fault(self, mode: str, *args: object) -> None:
        """Switches the fault: none, refuse, 500, stall SECONDS, garbage, drop-after-apply."""
        self._command(" ".join(["fault", mode, *(str(arg) for arg in args)]))

    def stats(self) -> dict[str, Any]:
        """Requests, users (name: requests), inserts_applied, tokens (of the inserts applied), dropped,
        port and fault of this run."""
        return json.loads(self._command("stats"))

    @property
    def users(self) -> list[str]:
        """The user names the requests of this run came as, first seen first."""
        return list(self.stats()["users"])

    def stop(self, timeout: float = 10.0) -> None:
        """Asks the process to quit and waits; kills it if it has not gone in `timeout` seconds."""
        if self.process is None:
            return
        if self.running:
            try:
                self._command("quit", timeout)
            except (OSError, RuntimeError, TimeoutError):
                pass
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._close_pipes()

    def kill(self) -> None:
        """SIGKILL, as a crash: nothing is flushed or closed by the endpoint."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self._close_pipes()

    def client(self, **kwargs: Any) -> Any:
        """A clickhouse-connect client for this endpoint with short timeouts; keyword arguments override."""
        import clickhouse_connect

        options: dict[str, Any] = {"host": HOST, "port": self.port, "username": "default", "password": "",
                                   "connect_timeout": 2, "send_receive_timeout": 10}
        options.update(kwargs)
        return clickhouse_connect.get_client(**options)

    def __enter__(self) -> "ClickHouseEndpoint":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _command(self, command: str, timeout: float | None = None) -> str:
        if not self.running:
            raise RuntimeError(f"the endpoint is not running; cannot send {command!r}")
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        line = self._next_line(timeout or self.timeout, f"the answer to {command!r}")
        if line is None:
            raise RuntimeError(f"the endpoint exited (code {self.process.wait()}) before answering {command!r}")
        if line != f"ok {command}" and not line.startswith(f"ok {command} "):
            raise RuntimeError(f"the endpoint answered {command!r} with {line!r}")
        return line[len(f"ok {command}"):].strip()

    def _next_line(self, timeout: float, what: str) -> str | None:
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"the endpoint did not send {what} within {timeout:.0f} s") from None

    @staticmethod
    def _read_stdout(stdout: IO[str], lines: "queue.Queue[str | None]") -> None:
        try:
            for line in stdout:
                lines.put(line.rstrip("\n"))
        finally:
            stdout.close()
            lines.put(None)

    def _close_pipes(self) -> None:
        """Closes stdin; the reader thread closes stdout when it reads the end."""
        assert self.process is not None
        if self.process.stdin is not None:
            try:
                self.process.stdin.close()
            except OSError:
                pass


if __name__ == "__main__":
    sys.exit(main())
