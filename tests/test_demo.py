"""`hftel demo` end to end: the engine, the real exporter and the embedded ClickHouse, as a user runs it.

One demo run (module-scoped) serves every test here: it injects shioaji-disconnect, so an intent is
caught in flight by the drop. While it runs, the tests scrape it and make an audited configuration
change linked to that intent's flow; after it stops, they trace the intent with one SQL query.
"""
from __future__ import annotations

import json
import signal

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hftel import catalogue
from hftel_exporter.host import OPTIONAL_FAMILIES
from hftel_exporter.selfmetrics import FAMILIES
from processes import DemoProcess, hftel, wait_until

AUDIT_TABLES = {"audit_orders", "audit_risk_decisions", "audit_guardrail_transitions", "audit_connectivity",
                "audit_config_changes"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    run = DemoProcess(tmp_path_factory.mktemp("demo"), "--scenario", "shioaji-disconnect", "--inject-after", "2",
                      "--clear-after", "5", "--seed", "11").start()
    try:
        run.scrape_text = wait_until(lambda: "hft_shioaji_reconnects_total" in (text := run.scrape()) and text,
                                     "a scrape with the engine's metrics")
        # The session drops at 2 s with an acknowledged order in flight; it is back at 5 s.
        stranded = wait_until(lambda: run.query(
            "SELECT correlation_id FROM hftel.audit_connectivity WHERE event = 'DISCONNECTED' AND correlation_id != 0"),
            "the disconnect, linked to the order it caught, in audit_connectivity", timeout=60)
        run.correlation_id = int(stranded[0]["correlation_id"])
        run.intent_id = int(run.query(f"SELECT intent_id FROM hftel.audit_orders "
                                      f"WHERE correlation_id = {run.correlation_id} LIMIT 1")[0]["intent_id"])
        wait_until(lambda: run.query("SELECT 1 FROM hftel.audit_connectivity WHERE event = 'CONNECTED' "
                                     "GROUP BY event HAVING count() >= 2"), "the reconnect", timeout=60)
        run.scrape_after = run.scrape()
        # The operator's follow-up, through the CLI, referencing the incident's flow.
        run.config_change = hftel("config", "set", "--config", str(run.workdir / "engine.json"), "--segment",
                                  run.segment, "--operator", "ops-oncall", "--correlation-id", str(run.correlation_id),
                                  "strategies.mm.max_position", "15")
        run.exit_status = run.interrupt()
        yield run
    finally:
        run.kill()


def sample_names(text: str) -> set[str]:
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


def exposed_sample(name: str, kind: str) -> str:
    """The sample a family always has: counters' _total, histograms' _count."""
    if kind == "counter":
        return name if name.endswith("_total") else name + "_total"
    return name + "_count" if kind == "histogram" else name


@pytest.mark.parametrize("metric", catalogue.METRICS, ids=lambda metric: metric.name)
def test_every_catalogue_metric_is_in_a_scrape_of_the_demo(demo, metric):
    assert exposed_sample(metric.name, metric.kind) in sample_names(demo.scrape_after)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda family: family[0])
def test_every_exporter_metric_of_the_contract_is_in_a_scrape_of_the_demo(demo, family):
    name, kind, _ = family
    if name in OPTIONAL_FAMILIES and exposed_sample(name, kind) not in sample_names(demo.scrape_after):
        pytest.skip(f"{name}: this machine has nothing it measures (no temperature sensor)")
    assert exposed_sample(name, kind) in sample_names(demo.scrape_after)


def test_the_demo_prints_where_to_look(demo):
    output = demo.output()
    for what in ("metrics   http://127.0.0.1:", "data      ", "hftel audit query --config", "SELECT",
                 "scenario  shioaji-disconnect"):
        assert what in output


def test_the_disconnect_moved_the_connectivity_metrics(demo):
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(demo.scrape_after) for s in family.samples}
    assert samples[("hft_shioaji_reconnects_total", (("engine", "demo.seg"),))] == 1
    assert samples[("hft_shioaji_connected", (("engine", "demo.seg"),))] == 1


def test_no_engine_log_event_broke_its_component_schema(demo):
    violations = [line for line in demo.scrape_after.splitlines()
                  if line.startswith("hftel_ring_violations_total") and float(line.split()[-1])]
    assert not violations


def test_the_config_change_through_the_cli_is_audited(demo):
    assert demo.config_change.returncode == 0, demo.config_change.stderr
    assert "strategies.mm.max_position: 20 -> 15" in demo.config_change.stdout
    rows = demo.query("SELECT operator_id, toString(source) AS source, key, toString(correlation_id) AS "
                      "correlation_id, hex(new_config_hash) AS new_hash FROM hftel.audit_config_changes")
    current = hftel("config", "hash", "--config", str(demo.workdir / "engine.json"), check=True).stdout.strip()
    assert rows == [{"operator_id": "ops-oncall", "source": "CLI", "key": "strategies.mm.max_position",
                     "correlation_id": str(demo.correlation_id), "new_hash": current.upper()}]


def test_ctrl_c_stops_the_demo_after_everything_is_delivered(demo):
    assert demo.exit_status == 0, demo.output()
    assert "every audit row and log event delivered" in demo.output()


def test_one_intent_is_traced_across_the_logs_and_every_audit_table_with_one_query(demo):
    """T7: the intent caught by the drop, from the strategy to its fill after the reconnect."""
    result = hftel("audit", "trace", str(demo.intent_id), "--config", str(demo.workdir / "exporter.toml"),
                   "--format", "JSONEachRow", check=True)
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert {row["source"] for row in rows} == AUDIT_TABLES | {"logs_hft"}
    orders = [row["summary"].split()[0] for row in rows if row["source"] == "audit_orders"]
    assert orders == ["INTENT", "SUBMITTED", "ACK", "FILLED"]
    components = {row["summary"].split()[1] for row in rows if row["source"] == "logs_hft"}
    assert {"strategy_runner", "risk_engine", "order_adapter", "market_data", "execution"} <= components
    assert [row["ts"] for row in rows] == sorted(row["ts"] for row in rows)


def test_sigusr1_and_sigusr2_switch_the_scenarios_on_and_off(tmp_path):
    """What the failure drills rely on: the demo's faults under a signal's control, not only a timer's."""
    def gap(run: DemoProcess) -> float:
        return next(s.value for f in text_string_to_metric_families(run.scrape()) for s in f.samples
                    if s.name == "hft_feed_gap_seconds")

    run = DemoProcess(tmp_path, "--scenario", "feed-gap", "--inject-after", "100000").start()
    try:
        run.process.send_signal(signal.SIGUSR1)
        wait_until(lambda: gap(run) > 1.5, "the feed gap to grow after SIGUSR1")
        run.process.send_signal(signal.SIGUSR2)
        wait_until(lambda: gap(run) < 0.5, "the feed to resume after SIGUSR2")
        assert run.interrupt() == 0
    finally:
        run.kill()
