"""Read-only queries of the embedded ClickHouse while the exporter holds its data directory.

A chdb data directory is opened by one process at a time, so while the exporter runs with the
embedded sink, `hftel audit query` cannot open it. The exporter serves read-only queries on a Unix
socket beside the data directory instead (`<state directory>/query.sock` for
`<state directory>/chdb`), mode 0660: the exporter's user and the members of its group may query.

    >>> server = QueryServer(default_socket_path(sink.path), sink)     # sink: an EmbeddedSink
    >>> server.start()
    >>> SocketSink(server.path).query("SELECT count() FROM hftel.audit_orders", "CSV")
    b'1042\\n'
    >>> server.stop()

The protocol is one request per connection: a JSON line `{"sql": "...", "format": "CSV"}` (at most
`max_request_bytes`), answered by a JSON line `{"ok": true, "bytes": N}` and the N bytes of the
result as the engine wrote them, or by `{"ok": false, "error": "..."}` carrying the engine's
message.

Read-only is enforced twice. The engine enforces it: queries run in a chdb session of their own on
the same data directory, opened with `readonly=1` (a per-connection setting; the exporter's own
session is unaffected), so an INSERT, ALTER, DROP, CREATE, OPTIMIZE, SYSTEM, a settings change or a
table function that reaches outside (file, url, s3, remote, executable) fails with ClickHouse's
`Code: 164 ... Cannot execute query in readonly mode`. Before that, the statement is parsed by the
engine (`formatQuery`, which also refuses several statements in one request) and only SELECT,
WITH, SHOW, DESCRIBE, EXPLAIN and EXISTS go on, without INTO OUTFILE: readonly=1 does not cover
KILL QUERY, USE or chdb's INTO OUTFILE (written by the exporter's process), and the parse refuses
them. Each query is also bounded by the engine: `max_execution_time` (the server's timeout) and
`max_result_bytes`.
"""
from __future__ import annotations

import json
import os
import re
import socket
import stat
import threading
from typing import Any

from hftel.errors import HftelError
from hftel.schemas import sql_string
from hftel_exporter.sinks import NO_JIT, Queries, SinkError, classify

SOCKET_NAME = "query.sock"
SOCKET_MODE = 0o660
MAX_REQUEST_BYTES = 1 << 20  # one JSON line: the SQL and the format
QUERY_TIMEOUT = 60.0  # seconds: the engine's max_execution_time, and the socket's read/write timeout
MAX_RESULT_BYTES = 256 << 20  # the engine's max_result_bytes: a result is built in the exporter's memory
MAX_CLIENTS = 4  # queries served at once; more are answered "busy"

#: The statements a read-only query may be (the first keyword of the engine's formatting of it).
READ_STATEMENTS = ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS")
_FORMAT = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_INTO_OUTFILE = re.compile(r"^\s*INTO\s+OUTFILE\b", re.MULTILINE)


def default_socket_path(data_path: str) -> str:
    """The query socket of the embedded data directory `data_path`: beside it, in the state directory."""
    return os.path.join(os.path.dirname(os.path.normpath(os.path.abspath(data_path))), SOCKET_NAME)


def checked_format(fmt: str) -> str:
    """`fmt` if it is a ClickHouse format name, else SinkError."""
    if not isinstance(fmt, str) or not _FORMAT.match(fmt):
        raise SinkError(f"query: {fmt!r} is not a ClickHouse output format name", transient=False)
    return fmt


class ReadOnlyEmbedded(Queries):
    """Read-only queries of a chdb data directory: a session of its own opened with readonly=1.

    In the exporter's process it shares the engine the EmbeddedSink started (same data directory);
    elsewhere it opens the directory itself, which fails while another process holds it.
    `timeout` and `max_result_bytes` become the session's max_execution_time and max_result_bytes.
    """

    name = "embedded"

    def __init__(self, path: str, database: str = "hftel", *, timeout: float | None = None,
                 max_result_bytes: int | None = None):
        from chdb import session

        self.path = path
        self.database = database
        settings = ["readonly=1", NO_JIT]
        if timeout is not None:
            settings.append(f"max_execution_time={max(1, int(timeout))}")
        if max_result_bytes is not None:
            settings.append(f"max_result_bytes={int(max_result_bytes)}")
        try:
            self._session = session.Session(f"{path}?{'&'.join(settings)}")
        except Exception as error:  # chdb raises RuntimeError with the engine's message
            raise SinkError(f"cannot open the embedded ClickHouse at {path}: {error}", transient=False) from None

    def _run(self, sql: str, fmt: str) -> bytes:
        try:
            return bytes(self._session.query(sql, fmt).bytes())
        except Exception as error:
            raise classify(error, "query") from None

    def check(self, sql: str) -> str:
        """The statement's kind (SELECT, SHOW, ...) when it may run here, else SinkError saying why.
        The engine parses it: a syntax error is ClickHouse's message."""
        if not isinstance(sql, str) or not sql.strip():
            raise SinkError("query: empty query", transient=False)
        try:
            formatted = bytes(self._session.query(f"SELECT formatQuery({sql_string(sql)})", "JSONEachRow").bytes())
        except Exception as error:  # the engine's message, without the formatQuery() wrapped around the SQL
            text = str(error)
            cut = text.find(": In scope SELECT formatQuery(")
            if cut >= 0:
                code = re.search(r"\(([A-Z_]+)\)\s*$", text)
                text = text[:cut].rstrip(". ") + (f". ({code.group(1)})" if code else "")
            raise classify(RuntimeError(text), "query") from None
        text = str(next(iter(json.loads(formatted).values())))
        kind = text.lstrip("( \n").split(None, 1)[0].upper() if text.strip("( \n") else ""
        if kind not in READ_STATEMENTS:
            raise SinkError(f"query: read-only: only {', '.join(READ_STATEMENTS)} statements may run here, "
                            f"not {kind or 'this statement'}", transient=False)
        if _INTO_OUTFILE.search(text):
            raise SinkError("query: read-only: INTO OUTFILE is not allowed here; redirect the output instead",
                            transient=False)
        return kind

    def query(self, sql: str, fmt: str = "TabSeparatedWithNames") -> bytes:
        checked_format(fmt)
        self.check(sql)
        return self._run(sql, fmt)

    def command(self, sql: str) -> None:
        raise SinkError("statement: this connection is read-only", transient=False)

    def close(self) -> None:
        self._session.close()


# -- the server ------------------------------------------------------------------------------------

def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def in_use(data_path: str) -> bool:
    """Whether a process holds the chdb data directory `data_path`: the engine keeps an exclusive
    flock on its `status` file while it has the directory open (and removes the file on close)."""
    import fcntl

    try:
        descriptor = os.open(os.path.join(data_path, "status"), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(descriptor)  # releases the probe's lock
    return False


def answering(path: str, timeout: float = 2.0) -> bool:
    """Whether a process accepts connections on the Unix socket at `path`."""
    if not _is_socket(path):
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(timeout)
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            return False
        except (socket.timeout, PermissionError):
            return True  # a server too busy to accept, or not for us to talk to, is still a server
    return True


class QueryServer:
    """Serves read-only queries of an embedded sink's data directory on a Unix socket, one thread
    per connection (at most `max_clients` at once).

    `start()` refuses (HftelError) when `path` exists and is not a socket, or when another process
    answers on it; a socket nobody answers on is stale and replaced. `stop()` removes the socket.
    """

    def __init__(self, path: str, sink: Any, *, max_request_bytes: int = MAX_REQUEST_BYTES,
                 timeout: float = QUERY_TIMEOUT, max_result_bytes: int = MAX_RESULT_BYTES,
                 max_clients: int = MAX_CLIENTS, log: Any = None):
        self.path = path
        self.sink = sink
        self.max_request_bytes = max_request_bytes
        self.timeout = timeout
        self.max_result_bytes = max_result_bytes
        self.log = log
        self._slots = threading.BoundedSemaphore(max_clients)
        self._listener: socket.socket | None = None
        self._engine: ReadOnlyEmbedded | None = None
        self._accepting: threading.Thread | None = None
        self._handlers: set[threading.Thread] = set()
        self._handlers_lock = threading.Lock()
        self._stopping = threading.Event()
        self._inode: int | None = None

    def __enter__(self) -> "QueryServer":
        self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def start(self) -> None:
        if os.path.lexists(self.path):
            if not _is_socket(self.path):
                raise HftelError(f"query socket: {self.path} exists and is not a socket; remove it or move it away")
            if answering(self.path):
                raise HftelError(f"query socket: another process already serves queries on {self.path}")
            os.unlink(self.path)  # stale: left by a process that did not stop cleanly
        self._engine = ReadOnlyEmbedded(self.sink.path, self.sink.database, timeout=self.timeout,
                                        max_result_bytes=self.max_result_bytes)
        # Bound under a temporary name, given its mode, then renamed into place: never reachable
        # with the mode the umask would have given it.
        temporary = f"{self.path}.{os.getpid()}.tmp"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            if os.path.lexists(temporary):
                os.unlink(temporary)
            listener.bind(temporary)
            os.chmod(temporary, SOCKET_MODE)
            os.rename(temporary, self.path)
            listener.listen(16)
        except OSError:
            listener.close()
            self._engine.close()
            self._engine = None
            if os.path.lexists(temporary):
                os.unlink(temporary)
            raise
        self._inode = os.lstat(self.path).st_ino
        self._listener = listener
        self._accepting = threading.Thread(target=self._accept, name="hftel-query-socket", daemon=True)
        self._accepting.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stops accepting, removes the socket, waits up to `timeout` for queries being served, and
        closes the read-only session (left open if a query is still running: the process is leaving)."""
        if self._listener is None:
            return
        self._stopping.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        except OSError:
            pass
        self._listener.close()
        if self._accepting is not None:
            self._accepting.join(timeout)
        try:
            if os.lstat(self.path).st_ino == self._inode:
                os.unlink(self.path)
        except FileNotFoundError:
            pass
        with self._handlers_lock:
            handlers = list(self._handlers)
        for handler in handlers:
            handler.join(timeout)
        if self._engine is not None and not any(handler.is_alive() for handler in handlers):
            self._engine.close()
        self._engine = None
        self._listener = None

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                if self._stopping.is_set():
                    return
                continue
            handler = threading.Thread(target=self._serve, args=(connection,), name="hftel-query", daemon=True)
            with self._handlers_lock:
                self._handlers.add(handler)
            handler.start()

    def _serve(self, connection: socket.socket) -> None:
        try:
            with connection:
                connection.settimeout(self.timeout)
                self._answer(connection)
        except OSError:
            pass  # the client went away or timed out: nothing to answer to
        finally:
            with self._handlers_lock:
                self._handlers.discard(threading.current_thread())

    def _answer(self, connection: socket.socket) -> None:
        request = self._read_request(connection)
        if request is None:
            return
        if isinstance(request, str):
            _send(connection, {"ok": False, "error": request})
            return
        if not self._slots.acquire(blocking=False):
            _send(connection, {"ok": False, "error": "busy: other queries are running, try again"})
            return
        try:
            assert self._engine is not None
            result = self._engine.query(request["sql"], request.get("format") or "TabSeparatedWithNames")
        except SinkError as error:
            _send(connection, {"ok": False, "error": str(error)})
            return
        except Exception as error:  # noqa: BLE001 - the client hears of it rather than a closed socket
            _send(connection, {"ok": False, "error": f"query failed: {type(error).__name__}: {error}"})
            return
        finally:
            self._slots.release()
        if self.log is not None:
            self.log.debug("query served", bytes=len(result))
        _send(connection, {"ok": True, "bytes": len(result)}, result)

    def _read_request(self, connection: socket.socket) -> dict[str, Any] | str | None:
        """The request, a string saying what is wrong with it, or None when the client sent nothing."""
        buffer = b""
        while b"\n" not in buffer:
            if len(buffer) > self.max_request_bytes:
                break
            chunk = connection.recv(65536)
            if not chunk:
                if not buffer:
                    return None
                break
            buffer += chunk
        line = buffer.split(b"\n", 1)[0]
        if len(line) > self.max_request_bytes:
            return f"request larger than {self.max_request_bytes} bytes"
        try:
            request = json.loads(line)
        except ValueError as error:
            return f"request is not a JSON line: {error}"
        if not isinstance(request, dict) or not isinstance(request.get("sql"), str) or not isinstance(
                request.get("format", ""), (str, type(None))):
            return 'request must be {"sql": "...", "format": "..."}'
        return request


def _send(connection: socket.socket, header: dict[str, Any], body: bytes = b"") -> None:
    connection.sendall(json.dumps(header).encode() + b"\n" + body)


# -- the client ------------------------------------------------------------------------------------

class SocketUnavailable(SinkError):
    """Nobody answers on the query socket (no exporter, or one that stopped)."""


class SocketSink(Queries):
    """Read-only queries through a QueryServer's socket; the query and query_rows of a Sink."""

    name = "embedded (query socket)"

    def __init__(self, path: str, database: str = "hftel", timeout: float = QUERY_TIMEOUT + 10.0):
        self.path = path
        self.database = database
        self.timeout = timeout

    def query(self, sql: str, fmt: str = "TabSeparatedWithNames") -> bytes:
        request = json.dumps({"sql": sql, "format": fmt}).encode() + b"\n"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(self.timeout)
            try:
                connection.connect(self.path)
            except (ConnectionRefusedError, FileNotFoundError):
                raise SocketUnavailable(f"nobody answers on the query socket {self.path}", transient=True) from None
            except PermissionError:
                raise SinkError(f"cannot connect to the query socket {self.path}: permission denied (queries "
                                f"are for the exporter's user and the members of its group)", transient=False) from None
            try:
                connection.sendall(request)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server refused the request early; its answer says why
            try:
                return _read_answer(connection, self.path)
            except socket.timeout:
                raise SinkError(f"query: no answer on {self.path} within {self.timeout:.0f} s", transient=True) from None

    def command(self, sql: str) -> None:
        raise SinkError("statement: the query socket is read-only", transient=False)

    def close(self) -> None:
        pass


def _read_answer(connection: socket.socket, path: str) -> bytes:
    file = connection.makefile("rb")
    header_line = file.readline(65536)
    try:
        header = json.loads(header_line)
    except ValueError:
        raise SinkError(f"query: the query socket {path} answered something that is not a header: "
                        f"{header_line[:200]!r}", transient=True) from None
    if not header.get("ok"):
        raise SinkError(str(header.get("error", "query failed")), transient=False)
    size = int(header["bytes"])
    body = file.read(size)
    if len(body) != size:
        raise SinkError(f"query: the answer on {path} ended after {len(body)} of {size} bytes", transient=True)
    return body


def serve_embedded(drain: Any, log: Any) -> QueryServer | None:
    """The exporter's query server when its drain's sink is the embedded engine, started; None
    otherwise, or when it cannot start (logged: the exporter runs on without it)."""
    from hftel_exporter.sinks import EmbeddedSink

    sink = getattr(drain, "sink", None)
    if not isinstance(sink, EmbeddedSink):
        return None
    server = QueryServer(default_socket_path(sink.path), sink, log=log)
    try:
        server.start()
    except (HftelError, OSError) as error:
        log.error("cannot serve audit queries", socket=server.path, error=str(error))
        return None
    log.info("serving audit queries", socket=server.path)
    return server
