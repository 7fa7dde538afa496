"""`hftel exporter` as a process: the command line, HTTP, TLS and basic auth, and the systemd protocol."""
from __future__ import annotations

import gzip
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
import base64

import bcrypt
import pytest
import trustme
from prometheus_client.parser import text_string_to_metric_families

import hftel
from processes import ExporterProcess


@pytest.fixture
def engine(tmp_path):
    tel = hftel.Telemetry.create(tmp_path / "hftel-e1", capacity=64, values_bytes=1 << 16)
    tel.counter("orders", "Orders sent.", labels=("side",)).labels(side="buy").inc(12)
    tel.gauge("open_orders", "Open orders.", kind="int").set(3)
    yield tel
    tel.close()


def segments(tmp_path):
    return ("--segments.paths", f"{tmp_path}/hftel-*")


def get(url, headers=None, context=None):
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10, context=context) as response:
        return response.status, dict(response.headers), response.read()


def sample(body, name, **labels):
    for family in text_string_to_metric_families(body.decode()):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return found.value
    return None


def test_serves_the_engine_metrics_once_ready(tmp_path, engine):
    with ExporterProcess(tmp_path, *segments(tmp_path)) as exporter:
        status, headers, body = get(exporter.url + "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert sample(body, "orders_total", engine="e1", side="buy") == 12
    assert sample(body, "open_orders", engine="e1") == 3


def test_serves_openmetrics_when_asked(tmp_path, engine):
    with ExporterProcess(tmp_path, *segments(tmp_path)) as exporter:
        _, headers, body = get(exporter.url + "/metrics", {"Accept": "application/openmetrics-text;version=1.0.0"})
    assert headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert body.endswith(b"# EOF\n")


def test_gzips_when_the_scraper_accepts_it(tmp_path, engine):
    with ExporterProcess(tmp_path, *segments(tmp_path)) as exporter:
        _, headers, body = get(exporter.url + "/metrics", {"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip"
    assert sample(gzip.decompress(body), "orders_total", engine="e1", side="buy") == 12


def test_ready_only_once_a_segment_is_attached(tmp_path):
    with ExporterProcess(tmp_path, *segments(tmp_path)) as exporter:
        with pytest.raises(urllib.error.HTTPError) as refused:
            get(exporter.url + "/readyz")
        assert refused.value.code == 503
        tel = hftel.Telemetry.create(tmp_path / "hftel-late", capacity=16, values_bytes=1 << 16)
        get(exporter.url + "/metrics")  # a scrape scans
        assert get(exporter.url + "/readyz")[0] == 200
        assert get(exporter.url + "/healthz")[0] == 200
        tel.close()


def test_tells_systemd_it_is_ready_and_stopping(tmp_path, engine):
    with ExporterProcess(tmp_path, *segments(tmp_path)) as exporter:
        assert "STATUS=1 segment(s) attached" in exporter.messages[0].splitlines()
        assert exporter.stop() == 0
        exporter.wait_for_message("STOPPING=1")


def test_feeds_the_watchdog_when_systemd_asks_for_one(tmp_path, engine):
    with ExporterProcess(tmp_path, *segments(tmp_path), environ={"WATCHDOG_USEC": "400000"}) as exporter:
        exporter.wait_for_message("WATCHDOG=1")
        exporter.wait_for_message("WATCHDOG=1")


def test_bad_config_key_stops_the_start_with_the_key_named(tmp_path):
    config = tmp_path / "exporter.toml"
    config.write_text("[segments]\nscan_intervall = 1\n")
    result = subprocess.run([sys.executable, "-m", "hftel", "exporter", "--config", str(config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "unknown key segments.scan_intervall (did you mean segments.scan_interval?)" in result.stderr


@pytest.fixture
def tls_files(tmp_path):
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    certificate.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    certificate.cert_chain_pems[0].write_to_path(str(tmp_path / "server.crt"))
    authority.cert_pem.write_to_path(str(tmp_path / "ca.crt"))
    password_hash = bcrypt.hashpw(b"scrape-secret", bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yml"
    web.write_text(f"tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
                   f"basic_auth_users:\n  prometheus: '{password_hash}'\n")
    return web, tmp_path / "ca.crt"


def test_tls_and_basic_auth_from_the_web_config_file(tmp_path, engine, tls_files):
    web, ca = tls_files
    context = ssl.create_default_context(cafile=str(ca))
    credentials = base64.b64encode(b"prometheus:scrape-secret").decode()
    with ExporterProcess(tmp_path, *segments(tmp_path), "--web.config-file", str(web)) as exporter:
        url = f"https://127.0.0.1:{exporter.port}/metrics"
        with pytest.raises(urllib.error.HTTPError) as refused:
            get(url, context=context)
        assert refused.value.code == 401
        _, _, body = get(url, {"Authorization": f"Basic {credentials}"}, context=context)
        assert sample(body, "orders_total", engine="e1", side="buy") == 12
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            get(exporter.url + "/metrics")  # plain HTTP to the TLS port: closed without an answer
    assert "scrape-secret" not in exporter.stderr()


def test_follows_an_engine_restart_and_deletion_without_restarting(tmp_path, engine):
    with ExporterProcess(tmp_path, *segments(tmp_path)) as exporter:
        assert sample(get(exporter.url + "/metrics")[2], "orders_total", engine="e1", side="buy") == 12
        engine.close()
        restarted = hftel.Telemetry.create(tmp_path / "hftel-e1", capacity=64, values_bytes=1 << 16)
        restarted.counter("orders", "Orders sent.", labels=("side",)).labels(side="buy").inc(1)
        body = get(exporter.url + "/metrics")[2]
        assert sample(body, "orders_total", engine="e1", side="buy") == 1
        assert sample(body, "hftel_exporter_reattachments_total", engine="e1") == 1
        restarted.close()
        (tmp_path / "hftel-e1").unlink()
        body = get(exporter.url + "/metrics")[2]
        assert sample(body, "orders_total", engine="e1", side="buy") is None
        assert sample(body, "hftel_exporter_segments_attached") == 0
        assert exporter.process.poll() is None
