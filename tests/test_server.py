"""The exporter's HTTP server: routes, gzip, basic auth, TLS and robustness, against a fake exporter."""
from __future__ import annotations

import base64
import gzip
import http.client
import queue
import socket
import ssl
from pathlib import Path
from typing import Iterator

import bcrypt
import pytest
import trustme

from hftel_exporter.server import (
    OTHER_ROUTE, Endpoints, ListenAddressError, MetricsServer, accepts_gzip, parse_listen_address)
from hftel_exporter.webconfig import WebConfig, load_web_config

BODY = b"# TYPE hft_fills counter\nhft_fills_total 42\n" * 50
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PASSWORD = "scrape-me"
TIMEOUT = 5.0  # a client's bound on any one wait; never reached when the server behaves


class FakeExporter:
    """Endpoints with switches: metrics can fail, health and readiness can be false."""

    def __init__(self) -> None:
        self.fail = False
        self.healthy = True
        self.ready = True
        self.accepts: list[str | None] = []
        self.observed: queue.Queue[tuple[str, int, float]] = queue.Queue()

    def metrics(self, accept: str | None) -> tuple[bytes, str]:
        self.accepts.append(accept)
        if self.fail:
            raise RuntimeError("segment vanished\nsecond line of detail")
        return BODY, CONTENT_TYPE

    def healthz(self) -> tuple[bool, str]:
        return self.healthy, "ok" if self.healthy else "heartbeat stale"

    def readyz(self) -> tuple[bool, str]:
        return self.ready, "ready" if self.ready else "no segment attached"

    def observe(self, path: str, status: int, seconds: float) -> None:
        self.observed.put((path, status, seconds))


@pytest.fixture
def app() -> FakeExporter:
    """A fresh fake exporter."""
    return FakeExporter()


@pytest.fixture
def server(app: FakeExporter) -> Iterator[MetricsServer]:
    """A plain-HTTP server on a free loopback port, shut down after the test."""
    with MetricsServer(("127.0.0.1", 0), app) as running:
        yield running


def request(server: MetricsServer, path: str = "/metrics", method: str = "GET",
            headers: dict[str, str] | None = None,
            context: ssl.SSLContext | None = None) -> tuple[int, http.client.HTTPResponse, bytes]:
    """One request on a new connection: status, response (for headers) and body."""
    connection: http.client.HTTPConnection
    if context is None:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    else:
        connection = http.client.HTTPSConnection("127.0.0.1", server.port, timeout=TIMEOUT,
                                                 context=context)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response, response.read()
    finally:
        connection.close()


def basic(user: str, password: str) -> dict[str, str]:
    """An Authorization header for basic auth."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_metrics_returns_the_body_and_content_type(server: MetricsServer) -> None:
    """GET /metrics answers what metrics() returned."""
    status, response, body = request(server)
    assert (200, CONTENT_TYPE, BODY) == (status, response.getheader("Content-Type"), body)


def test_metrics_gets_the_accept_header(server: MetricsServer, app: FakeExporter) -> None:
    """The format is the exporter's choice: it sees the request's Accept header."""
    request(server, headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert ["application/openmetrics-text; version=1.0.0"] == app.accepts


def test_head_has_headers_but_no_body(server: MetricsServer) -> None:
    """HEAD /metrics gives the length of the body it does not send."""
    status, response, body = request(server, method="HEAD")
    assert (200, str(len(BODY)), b"") == (status, response.getheader("Content-Length"), body)


def test_metrics_are_gzipped_when_accepted(server: MetricsServer) -> None:
    """Accept-Encoding: gzip gets a gzip body that decompresses to the metrics."""
    _, response, body = request(server, headers={"Accept-Encoding": "deflate, gzip;q=0.5"})
    assert ("gzip", "Accept-Encoding") == (response.getheader("Content-Encoding"),
                                          response.getheader("Vary"))
    assert BODY == gzip.decompress(body)


def test_gzip_q0_gets_identity(server: MetricsServer) -> None:
    """gzip;q=0 means gzip is not acceptable."""
    _, response, body = request(server, headers={"Accept-Encoding": "gzip;q=0"})
    assert (None, BODY) == (response.getheader("Content-Encoding"), body)


def test_no_accept_encoding_gets_identity(server: MetricsServer) -> None:
    """A request without Accept-Encoding gets the body as is."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        connection.putrequest("GET", "/metrics", skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        assert (None, BODY) == (response.getheader("Content-Encoding"), response.read())
    finally:
        connection.close()


@pytest.mark.parametrize("value, expected", [
    ("gzip", True), ("x-gzip", True), ("GZIP;Q=0.5", True), ("gzip;q=0", False),
    ("br, gzip;q=0.000", False), ("*", True), ("*;q=0, gzip", True), ("gzip;q=0, *", False),
    ("identity", False), ("", False), (None, False), ("gzip;q=high", False), ("gzip;q=2", False),
])
def test_accepts_gzip_honours_q_values(value: str | None, expected: bool) -> None:
    """Accept-Encoding is parsed with its q-values, a malformed q meaning not acceptable."""
    assert expected == accepts_gzip(value)


@pytest.mark.parametrize("path, attribute, failure", [("/healthz", "healthy", b"heartbeat stale\n"),
                                                     ("/readyz", "ready", b"no segment attached\n")])
def test_health_routes_answer_200_or_503(server: MetricsServer, app: FakeExporter, path: str, attribute: str,
                                         failure: bytes) -> None:
    """/healthz and /readyz are 200 when their check passes and 503 with its text when not."""
    ok_status = request(server, path)[0]
    setattr(app, attribute, False)
    status, _, body = request(server, path)
    assert (200, 503, failure) == (ok_status, status, body)


def test_default_endpoints_are_healthy_and_ready() -> None:
    """An Endpoints given only metrics() reports healthy and ready."""
    with MetricsServer(("127.0.0.1", 0), Endpoints(metrics=lambda accept: (b"", "text/plain"))) as s:
        assert (200, 200) == (request(s, "/healthz")[0], request(s, "/readyz")[0])


def test_unknown_path_is_404_and_observed_as_other(server: MetricsServer, app: FakeExporter) -> None:
    """A path that is not a route is 404 and its label in self-metrics is bounded."""
    status = request(server, "/secret/../etc")[0]
    assert (404, (OTHER_ROUTE, 404)) == (status, app.observed.get(timeout=TIMEOUT)[:2])


def test_other_methods_are_405(server: MetricsServer) -> None:
    """POST /metrics is refused with the methods that are allowed."""
    status, response, _ = request(server, method="POST")
    assert (405, "GET, HEAD") == (status, response.getheader("Allow"))


def test_failing_metrics_is_a_500_with_one_line(server: MetricsServer, app: FakeExporter) -> None:
    """An exception in metrics() is a 500 whose body is a single line naming it."""
    app.fail = True
    status, _, body = request(server)
    assert (500, b"metrics failed: RuntimeError: segment vanished\n") == (status, body)


def test_failing_metrics_is_observed(server: MetricsServer, app: FakeExporter) -> None:
    """The 500 reaches observe() like any other request."""
    app.fail = True
    request(server)
    path, status, seconds = app.observed.get(timeout=TIMEOUT)
    assert ("/metrics", 500, True) == (path, status, seconds >= 0)


def test_server_keeps_serving_after_a_failing_scrape(server: MetricsServer,
                                                     app: FakeExporter) -> None:
    """The request after a failed one is served normally."""
    app.fail = True
    request(server)
    app.fail = False
    assert 200 == request(server)[0]


def test_landing_page_links_the_metrics_path(app: FakeExporter) -> None:
    """/ is an HTML page linking to the configured telemetry path."""
    with MetricsServer(("127.0.0.1", 0), app, telemetry_path="/engine/metrics") as server:
        status, response, body = request(server, "/")
        metrics_status = request(server, "/engine/metrics")[0]
    assert (200, "text/html; charset=utf-8") == (status, response.getheader("Content-Type"))
    assert b'href="/engine/metrics"' in body and 200 == metrics_status


def test_requests_write_nothing_to_stderr(server: MetricsServer,
                                          capfd: pytest.CaptureFixture[str]) -> None:
    """BaseHTTPRequestHandler's per-request log lines are gone; the exporter logs for itself."""
    request(server)
    request(server, "/missing")
    assert "" == capfd.readouterr().err


def test_port_is_the_bound_port_and_shutdown_closes_it(app: FakeExporter) -> None:
    """Port 0 binds a free port, reported by .port; after shutdown nothing listens there."""
    server = MetricsServer(("127.0.0.1", 0), app)
    server.start()
    port = server.port
    assert 200 == request(server)[0]
    server.shutdown()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()


def test_ipv6_loopback_is_served(app: FakeExporter) -> None:
    """A server on [::1] answers there and reports an URL with brackets."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this Python")
    try:
        server = MetricsServer(("::1", 0), app)
        server.start()
    except OSError as exc:
        pytest.skip(f"cannot bind ::1: {exc}")
    try:
        connection = http.client.HTTPConnection("::1", server.port, timeout=TIMEOUT)
        connection.request("GET", "/metrics")
        status = connection.getresponse().status
        connection.close()
        assert (200, f"http://[::1]:{server.port}/metrics") == (status, server.url)
    finally:
        server.shutdown()


def test_idle_connection_is_closed_after_the_timeout(app: FakeExporter) -> None:
    """A client that connects and sends nothing is disconnected when the socket timeout expires."""
    with MetricsServer(("127.0.0.1", 0), app, timeout=0.2) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as idle:
            assert b"" == idle.recv(1)


def test_idle_timeout_is_not_logged_as_an_error(app: FakeExporter) -> None:
    """An idle keep-alive connection timing out is routine: nothing reaches the log."""
    events: list[str] = []
    log = lambda event, fields: events.append(event)  # noqa: E731
    with MetricsServer(("127.0.0.1", 0), app, timeout=0.2, log=log) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as idle:
            idle.recv(1)  # returns once the server has given up on the connection
    assert [] == events


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:9477", ("127.0.0.1", 9477)), ("[::1]:9477", ("::1", 9477)),
    (":9477", ("", 9477)), ("localhost:0", ("localhost", 0)), ("[fe80::1%eth0]:80", ("fe80::1%eth0", 80)),
])
def test_parse_listen_address(text: str, expected: tuple[str, int]) -> None:
    """host:port, [v6]:port and :port (all interfaces) are understood."""
    assert expected == parse_listen_address(text)


@pytest.mark.parametrize("text, message", [
    ("", "empty"), ("127.0.0.1", "no port"), ("::1:9477", "brackets"), ("[::1]9477", "no ']:' after"),
    ("[nothost]:1", "not an IPv6"), ("host:port", "port must be"), ("host:70000", "port must be"),
    ("bad_host!:1", "not a host name"), ("host:-1", "port must be"),
])
def test_parse_listen_address_refuses_bad_input(text: str, message: str) -> None:
    """A bad listen address is a ListenAddressError (a ValueError) saying what is wrong."""
    with pytest.raises(ListenAddressError, match=message.replace("[", r"\[")):
        parse_listen_address(text)


# --- the web config: basic auth, headers, TLS -------------------------------------------------

def web_config(directory: Path, text: str) -> WebConfig:
    """Loads a web config written into directory."""
    path = directory / "web-config.yml"
    path.write_text(text)
    return load_web_config(path)


@pytest.fixture
def auth_server(tmp_path: Path, app: FakeExporter) -> Iterator[MetricsServer]:
    """A server requiring basic auth as user prometheus, password PASSWORD."""
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    web = web_config(tmp_path, f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    with MetricsServer(("127.0.0.1", 0), app, web) as running:
        yield running


@pytest.mark.parametrize("path", ["/metrics", "/healthz", "/readyz", "/", "/missing"])
def test_basic_auth_is_required_on_every_route(auth_server: MetricsServer, path: str) -> None:
    """Without credentials every path is 401 with a Basic challenge."""
    status, response, _ = request(auth_server, path)
    assert (401, 'Basic realm="hftel"') == (status, response.getheader("WWW-Authenticate"))


@pytest.mark.parametrize("headers", [
    basic("prometheus", "wrong"), basic("root", PASSWORD), {"Authorization": "Basic !!notbase64"},
    {"Authorization": "Bearer " + PASSWORD}, {"Authorization": "Basic " + base64.b64encode(
        b"prometheus").decode()},
], ids=["wrong password", "wrong user", "bad base64", "other scheme", "no colon"])
def test_wrong_credentials_are_401(auth_server: MetricsServer, headers: dict[str, str]) -> None:
    """Anything but the right user and password is refused."""
    assert 401 == request(auth_server, headers=headers)[0]


def test_right_credentials_are_served(auth_server: MetricsServer) -> None:
    """The configured user with the right password gets the metrics."""
    status, _, body = request(auth_server, headers=basic("prometheus", PASSWORD))
    assert (200, BODY) == (status, body)


def test_extra_headers_are_sent_on_every_response(tmp_path: Path, app: FakeExporter) -> None:
    """http_server_config.headers appear on metrics, errors and the landing page alike."""
    web = web_config(tmp_path, "http_server_config:\n  headers:\n"
                               "    X-Content-Type-Options: nosniff\n    X-Frame-Options: deny\n")
    with MetricsServer(("127.0.0.1", 0), app, web) as server:
        responses = [request(server, path)[1] for path in ("/metrics", "/missing", "/")]
    assert [("nosniff", "deny")] * 3 == [(r.getheader("X-Content-Type-Options"),
                                          r.getheader("X-Frame-Options")) for r in responses]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """The CA that issues the server's and the client's certificates."""
    return trustme.CA()


TLS = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n"
MTLS = TLS + "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n"


def tls_server(directory: Path, ca: trustme.CA, app: FakeExporter, text: str) -> MetricsServer:
    """A started server with a certificate for 127.0.0.1 issued by ca and the given config."""
    cert = ca.issue_cert("127.0.0.1")
    (directory / "server.pem").write_bytes(b"".join(pem.bytes() for pem in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(directory / "server.key"))
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    server = MetricsServer(("127.0.0.1", 0), app, web_config(directory, text))
    server.start()
    return server


def client_context(ca: trustme.CA, client_ca: trustme.CA | None = None) -> ssl.SSLContext:
    """A client context trusting ca, with a client certificate from client_ca if given."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    if client_ca is not None:
        client_ca.issue_cert("prometheus@hftel.test").configure_cert(context)
    return context


@pytest.fixture
def https_server(tmp_path: Path, ca: trustme.CA, app: FakeExporter) -> Iterator[MetricsServer]:
    """A TLS server without client certificates."""
    server = tls_server(tmp_path, ca, app, TLS)
    yield server
    server.shutdown()


@pytest.fixture
def mtls_server(tmp_path: Path, ca: trustme.CA, app: FakeExporter) -> Iterator[MetricsServer]:
    """A TLS server that requires a client certificate issued by ca."""
    server = tls_server(tmp_path, ca, app, MTLS)
    yield server
    server.shutdown()


def test_https_works_with_the_ca(https_server: MetricsServer, ca: trustme.CA) -> None:
    """A client trusting the CA gets the metrics over TLS."""
    status, _, body = request(https_server, context=client_context(ca))
    assert (200, BODY, "https") == (status, body, https_server.url.split(":")[0])


def test_plain_http_to_the_tls_port_fails(https_server: MetricsServer) -> None:
    """Plain HTTP to a TLS port gets no HTTP answer."""
    with pytest.raises((OSError, http.client.HTTPException)):
        request(https_server)


def test_client_without_certificate_is_refused(mtls_server: MetricsServer, ca: trustme.CA) -> None:
    """RequireAndVerifyClientCert refuses a client that has no certificate."""
    with pytest.raises((OSError, http.client.HTTPException)):
        request(mtls_server, context=client_context(ca))


def test_client_with_certificate_from_another_ca_is_refused(mtls_server: MetricsServer,
                                                            ca: trustme.CA) -> None:
    """A client certificate the configured CA did not issue is refused."""
    with pytest.raises((OSError, http.client.HTTPException)):
        request(mtls_server, context=client_context(ca, client_ca=trustme.CA()))


def test_client_with_certificate_from_the_ca_is_served(mtls_server: MetricsServer,
                                                       ca: trustme.CA) -> None:
    """A client certificate issued by client_ca_file's CA is accepted."""
    assert 200 == request(mtls_server, context=client_context(ca, client_ca=ca))[0]


def test_idle_tls_client_does_not_block_others(https_server: MetricsServer,
                                               ca: trustme.CA) -> None:
    """A client that connects and never starts its handshake does not stop the next one."""
    with socket.create_connection(("127.0.0.1", https_server.port), timeout=TIMEOUT):
        assert 200 == request(https_server, context=client_context(ca))[0]


def test_failed_handshake_is_logged_not_printed(tmp_path: Path, ca: trustme.CA, app: FakeExporter,
                                                capfd: pytest.CaptureFixture[str]) -> None:
    """A bad handshake goes to the log callback, and stderr stays empty."""
    events: queue.Queue[str] = queue.Queue()
    cert = ca.issue_cert("127.0.0.1")
    (tmp_path / "server.pem").write_bytes(cert.cert_chain_pems[0].bytes())
    cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    with MetricsServer(("127.0.0.1", 0), app, web_config(tmp_path, TLS),
                       log=lambda event, fields: events.put(event)) as server:
        with pytest.raises((OSError, http.client.HTTPException)):
            request(server)
        assert ("tls_handshake_failed", "") == (events.get(timeout=TIMEOUT),
                                                capfd.readouterr().err)
