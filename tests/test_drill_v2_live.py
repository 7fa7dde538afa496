"""The v2 ClickHouse alerts drilled end to end with hftel_drill's runner: a ClickHouse server's disk
filled and a mutation that keeps failing make the exporter's health metrics move, the project's rules
fire on a real Prometheus, and a real Alertmanager tells exactly the alert's receivers; clearing the
condition resolves it.

The server is the chdb-backed test endpoint (tests/clickhouse_endpoint.py) with its data on a small
tmpfs mounted for the test (root only: skipped, saying so, where mounting is not allowed). Durations
are the drills' test override (x0.1), as in tests/test_drill_live.py.
"""
from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import pytest
import yaml

import hftel
from hftel_drill import timing
from hftel_drill.plan import RECEIVERS, Drill
from hftel_drill.runner import Progress, run_drill, wait_quiet
from hftel_drill.servers import scrape_config
from processes import AlertmanagerServer, ExporterProcess, PrometheusServer, WebhookReceiver, wait_until

pytest.importorskip("clickhouse_connect", reason="the clickhouse sink needs clickhouse-connect")
from tests.clickhouse_endpoint import ClickHouseEndpoint  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SCALE = 0.1
DISK_BYTES = 64 << 20
FILLER = "filler"
FAILING_MUTATION = ("ALTER TABLE hftel.audit_orders UPDATE price = throwIf(1) WHERE 1 "
                    "SETTINGS mutations_sync = 0")


class PipelineStack:
    """What hftel_drill's runner drives (rules, routing, webhook, alerts(), inject(), clear()), around an
    exporter whose sink is a ClickHouse server, instead of the demo."""

    def __init__(self, disk: Path, clickhouse: ClickHouseEndpoint, webhook: WebhookReceiver,
                 prometheus: PrometheusServer, rules: dict, routing: dict):
        self.disk, self.clickhouse, self.webhook, self.prometheus = disk, clickhouse, webhook, prometheus
        self.rules, self.routing = rules, routing

    def alerts(self) -> list[dict]:
        return self.prometheus.alerts()

    def count(self, sql: str) -> int:  # the v2 drills declare no audit evidence
        raise AssertionError(f"no evidence query expected: {sql}")

    def inject(self, scenario: str) -> None:
        if scenario == "clickhouse-disk-full":  # leave 2 % of the filesystem free
            free = os.statvfs(self.disk).f_bavail * os.statvfs(self.disk).f_frsize
            with open(self.disk / FILLER, "wb") as filler:
                filler.truncate(0)
                filler.write(b"\0" * max(0, free - DISK_BYTES // 50))
        else:
            self.clickhouse.client().command(FAILING_MUTATION)

    def clear(self, scenario: str) -> None:
        if scenario == "clickhouse-disk-full":
            (self.disk / FILLER).unlink()
        else:
            self.clickhouse.client().command("KILL MUTATION WHERE database = 'hftel' AND table = 'audit_orders'")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    directory = tmp_path_factory.mktemp("v2drill")
    disk = directory / "clickhouse-disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES},mode=0700", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the ClickHouse disk (needs root and CAP_SYS_ADMIN): "
                    f"{mounted.stderr.strip()}")
    rules = timing.scale_rules(yaml.safe_load((ROOT / "alerts" / "hftel.rules.yml").read_text()), SCALE)
    (directory / "rules.yml").write_text(yaml.safe_dump(rules))
    telemetry = hftel.Telemetry.create(str(directory / "hftel-engine"), capacity=16, values_bytes=1 << 12,
                                       audit_ring_bytes=1 << 16, log_ring_bytes=1 << 16)
    try:
        telemetry.audit.order(intent_id=1, strategy="mm", symbol="2330", side="BUY", quantity=1, price=600.5)
        with ClickHouseEndpoint(str(disk / "data")) as clickhouse, WebhookReceiver() as webhook:
            routing = timing.scale_routing(yaml.safe_load((ROOT / "alerts" / "alertmanager.test.yml").read_text()),
                                           SCALE, webhook.url)
            with AlertmanagerServer(directory / "alertmanager", yaml.safe_dump(routing)) as alertmanager, \
                    ExporterProcess(directory, "--segments.paths", f"{directory}/hftel-*", "--clickhouse.url",
                                    clickhouse.url, "--clickhouse.user", "default",
                                    "--clickhouse.health-interval", "0.5",
                                    environ={"HFTEL_CLICKHOUSE_PASSWORD": ""}) as exporter:
                prometheus = PrometheusServer(
                    directory / "prometheus", [scrape_config("hftel", [f"127.0.0.1:{exporter.port}"])],
                    rule_files=[str(directory / "rules.yml")], alertmanagers=[alertmanager.address])
                with prometheus:
                    wait_until(lambda: prometheus.query('hftel_clickhouse_parts{table="audit_orders"}'),
                               "the exporter's first health reading of the server", timeout=60)
                    yield PipelineStack(disk, clickhouse, webhook, prometheus, rules, routing)
    finally:
        telemetry.close()
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


@pytest.mark.parametrize("scenario, alert", [("clickhouse-disk-full", "ClickHouseDiskFullCritical"),
                                             ("clickhouse-mutation-failed", "ClickHouseMutationFailed")])
def test_the_v2_alert_fires_reaches_its_receivers_and_resolves(stack, scenario, alert):
    output = io.StringIO()
    progress = Progress(output)
    wait_quiet(stack, progress, timeout=120)
    outcome = run_drill(stack, Drill(scenario, alert, ()), progress)
    assert outcome.passed, output.getvalue()
    assert RECEIVERS[outcome.severity] == outcome.receivers == outcome.resolved_receivers
