"""The exporter's HTTP server: /metrics, /healthz, /readyz and a landing page, standard library only.

It knows HTTP and the web config (TLS, basic auth, headers), not metric formats: `Endpoints.metrics` returns
the body and its Content-Type. Each connection gets a daemon thread, which also does the TLS handshake, and
every socket has a timeout: a slow or idle client holds one thread for a bounded time, never the accept loop.
Nothing goes to stderr: events go to the optional `log(event, fields)`.
"""
from __future__ import annotations

import base64
import binascii
import html
import ipaddress
import re
import selectors
import socket
import socketserver
import ssl
import sys
import threading
import time
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import urlsplit

from hftel.errors import HftelError
from hftel_exporter.webconfig import WebConfig

Log = Callable[[str, dict[str, Any]], None]  # log(event, fields): what cannot be said in a response

TEXT = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"
OTHER_ROUTE = "other"  # what observe() gets for a path that is not a route: the label set stays small
GZIP_LEVEL = 1  # speed over ratio: a scrape body is compressed on every request
_QVALUE = re.compile(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?")
_PORT = re.compile(r"[0-9]{1,5}")


class ListenAddressError(HftelError, ValueError):
    """A listen address that is not `host:port`, `[v6]:port` or `:port`."""


def parse_listen_address(text: str) -> tuple[str, int]:
    """`"127.0.0.1:9477"` -> `("127.0.0.1", 9477)`; `"[::1]:9477"`; `":9477"` is every interface (`""`)."""
    problem = _listen_address_problem(text)
    if problem:
        raise ListenAddressError(f"listen address {text!r}: {problem}; expected host:port, [IPv6]:port or "
                                 ":port (every interface)")
    host, _, port = text.rpartition(":")
    return host.strip("[]") if host.startswith("[") else host, int(port)


def _listen_address_problem(text: str) -> str | None:
    if not isinstance(text, str) or not text:
        return "empty"
    host, colon, port = text.rpartition(":")
    if host.startswith("["):
        if not host.endswith("]"):
            return "no ']:' after the IPv6 address"
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return f"{host[1:-1]!r} is not an IPv6 address"
    elif not colon or "]" in port:
        return "no port"
    elif ":" in host:
        return "an IPv6 address needs brackets, as in [::1]:9477"
    elif host and not _HOSTNAME.fullmatch(host):
        return f"{host!r} is not a host name or IP address"
    if not _PORT.fullmatch(port) or int(port) > 65535:
        return "the port must be a number from 0 to 65535"
    return None


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an Accept-Encoding value allows gzip, q-values honoured: `gzip;q=0` means no."""
    best: dict[str, float] = {}
    for item in (accept_encoding or "").split(","):
        coding, *params = (part.strip().lower() for part in item.split(";"))
        q = 1.0
        for name, _, value in (param.partition("=") for param in params):
            if name.strip() == "q":  # a malformed q-value makes the coding unacceptable
                q = float(value.strip()) if _QVALUE.fullmatch(value.strip()) else 0.0
        coding = "gzip" if coding == "x-gzip" else coding
        best[coding] = max(best.get(coding, 0.0), q)
    return best.get("gzip", best.get("*", 0.0)) > 0


def _always_ok() -> tuple[bool, str]:
    return True, "ok"


@dataclass(frozen=True)
class Endpoints:
    """What the exporter supplies to the server: the metrics body, health, readiness, self-metrics.

        app = Endpoints(metrics=lambda accept: (b"up 1\\n", "text/plain; version=0.0.4"),
                        readyz=lambda: (reader.status() == "LIVE", "engine segment"))
        with MetricsServer(("127.0.0.1", 9477), app) as server:
            ...

    `metrics(accept)` gets the request's Accept header (or None) and returns (body, Content-Type); an
    exception becomes a 500. `healthz` and `readyz` return (ok, a short text): 200 or 503. `observe(route,
    status, seconds)` is called after each request, `route` being the telemetry path, `/healthz`, `/readyz`,
    `/` or `"other"`. Any object with these methods will do; all are called from the server's threads.
    """

    metrics: Callable[[str | None], tuple[bytes, str]]
    healthz: Callable[[], tuple[bool, str]] = _always_ok
    readyz: Callable[[], tuple[bool, str]] = _always_ok
    observe: Callable[[str, int, float], None] | None = None


class MetricsServer:
    """Serves an `Endpoints` over HTTP or HTTPS, with basic auth, in a background thread.

        web = load_web_config("/etc/hftel/web-config.yml")
        server = MetricsServer(parse_listen_address("127.0.0.1:9477"), app, web)
        server.start()              # listening when it returns; port 0 picks one: server.port
        ...
        server.shutdown()

    `start` and `shutdown` are for one controlling thread; the endpoints run in request threads.
    """

    def __init__(self, address: tuple[str, int], app: Endpoints, web: WebConfig | None = None, *,
                 telemetry_path: str = "/metrics", timeout: float = 10.0, log: Log | None = None) -> None:
        if not telemetry_path.startswith("/") or telemetry_path in ("/", "/healthz", "/readyz"):
            raise ValueError(f"telemetry_path {telemetry_path!r} must start with / and not be /, /healthz "
                             "or /readyz")
        self.app = app
        self.web = web
        self.telemetry_path = telemetry_path
        self.timeout = timeout
        self.routes = frozenset((telemetry_path, "/healthz", "/readyz", "/"))
        self.extra_headers = tuple(web.headers.items()) if web is not None else ()
        self.landing_page = _landing_page(telemetry_path)
        self._requested = address
        self._log_function = log
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._bound: tuple[str, int] | None = None

    def start(self) -> None:
        """Binds, listens and serves in a daemon thread; returns once the socket is listening."""
        if self._httpd is not None:
            raise RuntimeError("the server is already started")
        context = self.web.ssl_context() if self.web is not None else None
        host, port = self._requested
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        if host == "":  # every interface: IPv6 and IPv4 on one socket where the system can
            family = socket.AF_INET6 if socket.has_dualstack_ipv6() else socket.AF_INET
            host = "::" if family == socket.AF_INET6 else "0.0.0.0"
        self._httpd = _HTTPServer((host, port), family, context, self)
        self._bound = (host, self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_until_stopped, name=f"hftel-http-{self.port}",
                                        daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        """The port bound by `start` (the real one when 0 was asked for)."""
        return self._started()[1]

    @property
    def url(self) -> str:
        """The metrics URL, for logs: `https://[::1]:9477/metrics`."""
        host = self._started()[0]
        scheme = "https" if self.web is not None and self.web.tls is not None else "http"
        return f"{scheme}://{f'[{host}]' if ':' in host else host}:{self.port}{self.telemetry_path}"

    def shutdown(self) -> None:
        """Stops accepting, waits for the serving thread and closes the socket; idempotent."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.stop()
        if self._thread is not None:
            self._thread.join()
        httpd.server_close()

    close = shutdown

    def __enter__(self) -> MetricsServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def log(self, event: str, fields: dict[str, Any]) -> None:
        """Reports through the `log` given at construction; a failing logger is ignored."""
        try:
            if self._log_function is not None:
                self._log_function(event, fields)
        except Exception:  # noqa: BLE001, S110 - the logger must never take a request down
            pass

    def observe(self, route: str, status: int, seconds: float) -> None:
        """Calls the endpoints' `observe`, if any; its failure is logged, never raised."""
        observe = getattr(self.app, "observe", None)
        try:
            if observe is not None:
                observe(route, status, seconds)
        except Exception as exc:  # noqa: BLE001 - self-metrics must not break serving
            self.log("observe_failed", {"error": _one_line(exc)})

    def _started(self) -> tuple[str, int]:
        if self._bound is None:
            raise RuntimeError("the server is not started")
        return self._bound


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a stuck client never delays exit; its socket timeout frees the thread

    def __init__(self, address: tuple[str, int], family: socket.AddressFamily, context: ssl.SSLContext | None,
                 owner: MetricsServer) -> None:
        self.address_family = family
        self.context = context
        self.owner = owner
        self._stopping = False
        self._wake_reader, self._wake_writer = socket.socketpair()  # closed by server_close,
        super().__init__(address, _Handler)                          # which a failed bind calls

    def serve_until_stopped(self) -> None:
        """serve_forever without its poll timer: an idle exporter never wakes up; stop() wakes it."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while not self._stopping:
                for key, _ in selector.select():
                    if key.fileobj is self.socket and not self._stopping:
                        self._handle_request_noblock()  # accept, then a thread per connection

    def stop(self) -> None:
        """Makes serve_until_stopped return; safe from any thread."""
        self._stopping = True
        self._wake_writer.send(b"\0")

    def server_close(self) -> None:
        super().server_close()
        self._wake_reader.close()
        self._wake_writer.close()

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6 and self.server_address[0] == "::":
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        socketserver.TCPServer.server_bind(self)  # not HTTPServer's: its getfqdn DNS lookup can stall start
        self.server_name, self.server_port = self.server_address[0], self.server_address[1]

    def server_activate(self) -> None:
        super().server_activate()
        if self.context is not None:  # accepted sockets come back before the handshake: the handler does it
            self.socket = self.context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = _one_line(sys.exc_info()[1])  # a client gone mid-response, mostly
        self.owner.log("http_request_failed", {"client": client_address[0], "error": error})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: Prometheus reuses its connection every scrape
    server: _HTTPServer

    def setup(self) -> None:
        self.timeout = self.server.owner.timeout  # StreamRequestHandler.setup applies it to the socket
        super().setup()

    def handle(self) -> None:
        if isinstance(self.connection, ssl.SSLSocket):
            try:
                self.connection.do_handshake()
            except OSError as exc:  # ssl.SSLError, a timeout or a reset
                self.server.owner.log("tls_handshake_failed", {"client": self.client_address[0],
                                                               "error": _one_line(exc)})
                self.close_connection = True
                return
        super().handle()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):  # every method, do_GET too: _route answers 405 to all but GET and HEAD
            return self._dispatch
        raise AttributeError(name)

    def version_string(self) -> str:
        return "hftel-exporter"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # no per-request log: observe() counts requests

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
        if not format.startswith("Request timed out"):  # an idle keep-alive connection closing: normal
            self.log_message(format, *args)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
        message = _one_line(format % args)
        self.server.owner.log("http_error", {"client": self.client_address[0], "message": message})

    def end_headers(self) -> None:
        for name, value in self.server.owner.extra_headers:
            self.send_header(name, value)
        super().end_headers()

    def _dispatch(self) -> None:
        started = time.perf_counter()
        owner = self.server.owner
        path = urlsplit(self.path).path
        status = 500
        if self.headers.get("Content-Length", "0") != "0" or "Transfer-Encoding" in self.headers:
            self.close_connection = True  # a request body is never read: it must not be parsed as a request
        try:
            status = self._route(owner, path)
        finally:
            owner.observe(path if path in owner.routes else OTHER_ROUTE, status, time.perf_counter() - started)

    def _route(self, owner: MetricsServer, path: str) -> int:
        web = owner.web
        if web is not None and web.auth_required and not self._authorized(web):
            return self._reply(401, b"unauthorized\n", TEXT, {"WWW-Authenticate": 'Basic realm="hftel"'})
        if self.command not in ("GET", "HEAD"):
            self.close_connection = True
            return self._reply(405, b"method not allowed\n", TEXT, {"Allow": "GET, HEAD"})
        if path == owner.telemetry_path:
            return self._metrics(owner)
        if path in ("/healthz", "/readyz"):
            check = owner.app.healthz if path == "/healthz" else owner.app.readyz
            try:
                ok, message = check()
            except Exception as exc:  # noqa: BLE001 - a failing check is an unhealthy answer
                ok, message = False, f"check failed: {_one_line(exc)}"
            return self._reply(200 if ok else 503, f"{_one_line(message)}\n".encode(), TEXT)
        if path == "/":
            return self._reply(200, owner.landing_page, HTML)
        return self._reply(404, b"not found\n", TEXT)

    def _metrics(self, owner: MetricsServer) -> int:
        try:
            body, content_type = owner.app.metrics(self.headers.get("Accept"))
            if not isinstance(body, (bytes, bytearray)) or not isinstance(content_type, str):
                raise TypeError("metrics() must return (bytes, str)")
        except Exception as exc:  # noqa: BLE001 - one bad scrape must not stop the server
            owner.log("metrics_failed", {"error": _one_line(exc)})
            return self._reply(500, f"metrics failed: {_one_line(exc)}\n".encode(), TEXT)
        headers = {"Vary": "Accept-Encoding"}
        if accepts_gzip(self.headers.get("Accept-Encoding")):
            compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # wbits 31: the gzip format
            body = compressor.compress(body) + compressor.flush()
            headers["Content-Encoding"] = "gzip"
        return self._reply(200, bytes(body), content_type, headers)

    def _authorized(self, web: WebConfig) -> bool:
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, colon, password = base64.b64decode(token.strip(), validate=True).partition(b":")
            return bool(colon) and web.authenticate(user.decode("utf-8"), password)
        except (binascii.Error, UnicodeDecodeError):
            return False

    def _reply(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> int:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        return status


def _one_line(value: object) -> str:
    """An exception or message as one short line, fit for a response body or a log field."""
    text = f"{type(value).__name__}: {value}" if isinstance(value, BaseException) else str(value)
    return (text.strip().splitlines() or [""])[0][:200]


def _landing_page(telemetry_path: str) -> bytes:
    link = html.escape(telemetry_path, quote=True)
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>hftel exporter</title></head>\n"
            f"<body><h1>hftel exporter</h1>\n<ul><li><a href=\"{link}\">Metrics</a></li>"
            "<li><a href=\"/healthz\">Health</a></li><li><a href=\"/readyz\">Readiness</a></li></ul>\n"
            "</body></html>\n").encode()
