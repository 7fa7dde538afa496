"""The exposition against the real Prometheus tools: promtool's checker, and a Prometheus server that
scrapes the exporter (plain, and over TLS with basic auth) and answers queries with what the engine
recorded."""
from __future__ import annotations

import subprocess

import bcrypt
import pytest
import trustme
from structlog.testing import CapturingLogger

import hftel
from hftel_exporter.config import load_config
from hftel_exporter.exporter import Exporter
from processes import ExporterProcess, PrometheusServer, require, wait_until

ORDERS = {"buy": 12, "sell": 7}
OPEN_ORDERS = -3
SPREAD = 0.25
LATENCIES_NS = (800, 4_000, 4_000, 90_000)
BOUNDS = [1_000, 10_000, 100_000]


@pytest.fixture
def engine(tmp_path):
    """An engine with one series of every kind, named by the Prometheus conventions (the histogram
    records nanoseconds and, being named *_seconds, is exposed in seconds)."""
    tel = hftel.Telemetry.create(tmp_path / "hftel-e1", capacity=64, values_bytes=1 << 16)
    orders = tel.counter("orders", "Orders sent.", labels=("side",))
    for side, count in ORDERS.items():
        orders.labels(side=side).inc(count)
    tel.gauge("open_orders", "Open orders.", kind="int").set(OPEN_ORDERS)
    tel.gauge("spread_ratio", "Bid-ask spread over mid.").set(SPREAD)
    latency = tel.histogram("order_latency_seconds", "Order round trip.", buckets=BOUNDS)
    for value in LATENCIES_NS:
        latency.observe(value)
    yield tel
    tel.close()


def exposition(tmp_path, accept=None):
    exporter = Exporter(load_config(None, environ={"HFTEL_SEGMENTS_PATHS": f"{tmp_path}/hftel-*"}), CapturingLogger())
    return exporter.metrics(accept)[0]


def test_promtool_check_metrics_passes(tmp_path, engine):
    promtool = require("promtool")
    result = subprocess.run([promtool, "check", "metrics"], input=exposition(tmp_path), capture_output=True,
                            timeout=60)
    assert result.returncode == 0, (result.stdout + result.stderr).decode()


def scalar(prometheus, promql):
    """The single value of `promql`, once Prometheus has one."""
    result = wait_until(lambda: prometheus.query(promql), f"a value for {promql}")
    assert len(result) == 1, result
    return float(result[0]["value"][1])


def test_prometheus_reads_back_what_the_engine_recorded(tmp_path, engine):
    require("prometheus")
    with ExporterProcess(tmp_path, "--segments.paths", f"{tmp_path}/hftel-*") as exporter:
        job = {"job_name": "hftel", "static_configs": [{"targets": [f"127.0.0.1:{exporter.port}"]}]}
        with PrometheusServer(tmp_path, [job]) as prometheus:
            for side, count in ORDERS.items():
                assert scalar(prometheus, f'orders_total{{engine="e1",side="{side}"}}') == count
            assert scalar(prometheus, 'open_orders{engine="e1"}') == OPEN_ORDERS
            assert scalar(prometheus, 'spread_ratio{engine="e1"}') == SPREAD
            assert scalar(prometheus, 'order_latency_seconds_count{engine="e1"}') == len(LATENCIES_NS)
            assert scalar(prometheus, 'order_latency_seconds_sum{engine="e1"}') == sum(LATENCIES_NS) / 1e9
            assert scalar(prometheus, 'order_latency_seconds_bucket{engine="e1",le="1e-05"}') == 3
            assert scalar(prometheus, 'hftel_engine_up{engine="e1"}') == 1
            assert scalar(prometheus, 'up{job="hftel"}') == 1


def test_prometheus_scrapes_over_tls_with_basic_auth(tmp_path, engine):
    require("prometheus")
    authority = trustme.CA()
    authority.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    authority.cert_pem.write_to_path(str(tmp_path / "ca.crt"))
    password_hash = bcrypt.hashpw(b"scrape-secret", bcrypt.gensalt(rounds=4)).decode()
    (tmp_path / "web.yml").write_text(f"tls_server_config:\n  cert_file: server.pem\n  key_file: server.pem\n"
                                      f"basic_auth_users:\n  prometheus: '{password_hash}'\n")
    (tmp_path / "password").write_text("scrape-secret")
    with ExporterProcess(tmp_path, "--segments.paths", f"{tmp_path}/hftel-*",
                         "--web.config-file", str(tmp_path / "web.yml")) as exporter:
        job = {"job_name": "hftel-tls", "scheme": "https",
               "tls_config": {"ca_file": str(tmp_path / "ca.crt")},
               "basic_auth": {"username": "prometheus", "password_file": str(tmp_path / "password")},
               "static_configs": [{"targets": [f"127.0.0.1:{exporter.port}"]}]}
        with PrometheusServer(tmp_path, [job]) as prometheus:
            assert scalar(prometheus, 'orders_total{engine="e1",side="buy",job="hftel-tls"}') == ORDERS["buy"]
