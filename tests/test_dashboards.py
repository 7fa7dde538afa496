"""The Grafana dashboards are generated from dashboards/generate.py and read only the contract's metrics."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from hftel import catalogue
from hftel_exporter import selfmetrics
from scripts import load_script

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = ROOT / "dashboards"


generate = load_script("dashboards/generate.py", "hftel_dashboards_generate")

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

#: The plan's dashboards (seed 000, section 3): uid -> (seed name, file).
SEED_DASHBOARDS = {
    "hftel-feed-gateway": ("Feed & Gateway Health", "feed-gateway-health.json"),
    "hftel-strategy-order": ("Strategy & Order Path", "strategy-order-path.json"),
    "hftel-pnl-exposure": ("PnL & Exposure", "pnl-exposure.json"),
    "hftel-recorder-clickhouse": ("Recorder/ClickHouse", "recorder-clickhouse.json"),
    "hftel-system-health": ("System Health", "system-health.json"),
}

#: The plan's panels (seed 000, section 3), each -> the panel that shows it: (uid, title).
SEED_PANELS = {
    ("hftel-feed-gateway", "connection status"): "Shioaji connection",
    ("hftel-feed-gateway", "feed rates"): "Feed event rate by type",
    ("hftel-feed-gateway", "feed gap"): "Feed gap",
    ("hftel-feed-gateway", "latency histogram"): "Feed latency p50/p95/p99",
    ("hftel-feed-gateway", "API usage vs limits"): "Broker API usage vs limit",
    ("hftel-feed-gateway", "event bus occupancy"): "Event bus occupancy",
    ("hftel-feed-gateway", "event bus overflow"): "Event bus overflow",
    ("hftel-feed-gateway", "reconnect counts"): "Reconnects in range",
    ("hftel-strategy-order", "strategy latency histograms"): "Strategy latency p50/p95/p99",
    ("hftel-strategy-order", "intents/sec"): "Intents per second by strategy",
    ("hftel-strategy-order", "risk rejects (stacked)"): "Risk rejects by reason",
    ("hftel-strategy-order", "StormGuard state timeline"): "StormGuard mode by strategy",
    ("hftel-strategy-order", "order submission/ACK/reject series"): "Order submissions, ACKs and rejects",
    ("hftel-strategy-order", "order latency"): "Order latency p50/p95/p99",
    ("hftel-strategy-order", "order rate vs limit"): "Order rate vs limit",
    ("hftel-strategy-order", "event bus health"): "Event bus health",
    ("hftel-pnl-exposure", "realized PnL (global & top strategies)"): "Realised PnL by strategy",
    ("hftel-pnl-exposure", "unrealized PnL (global & top strategies)"): "Unrealised PnL by strategy",
    ("hftel-pnl-exposure", "drawdown"): "Drawdown vs limit",
    ("hftel-pnl-exposure", "gross/long/short exposure"): "Exposure: gross, long, short",
    ("hftel-pnl-exposure", "leverage ratio"): "Leverage ratio",
    ("hftel-pnl-exposure", "top position table"): "Top positions",
    ("hftel-recorder-clickhouse", "recorder write success rate"): "Recorder write success rate",
    ("hftel-recorder-clickhouse", "latency"): "Recorder write latency p50/p95/p99",
    ("hftel-recorder-clickhouse", "ClickHouse availability"): "ClickHouse availability",
    ("hftel-recorder-clickhouse", "ingestion queue depth"): "Ingestion queue depth",
    ("hftel-recorder-clickhouse", "v2: ClickHouse exporter metrics"): "Active parts per partition (largest)",
    ("hftel-system-health", "Python process RSS"): "Engine resident memory and threads",
    ("hftel-system-health", "v2: node exporter host metrics"): "CPU busy per core",
}

#: Grafana unit ids the dashboards may use (Grafana's valueFormats), besides custom `suffix:` units.
GRAFANA_UNITS = {"none", "short", "percentunit", "percent", "s", "ms", "bytes", "bool_on_off", "bool", "ops",
                 "reqps", "eps", "wps", "rowsps", "recps", "cps", "Bps", "pps"}

#: Series Prometheus itself adds to every scrape, which a dashboard may read besides the contract's.
PROMETHEUS_SERIES = {"up"}

#: PromQL words that are not metric names.
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right",
            "inf", "nan"}


@pytest.fixture(scope="module")
def models() -> dict[str, dict[str, Any]]:
    """The committed dashboards: file name -> JSON model."""
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in sorted(DASHBOARDS.glob("*.json"))}


def panels(model: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel of a dashboard, rows included, and the panels inside collapsed rows."""
    for item in model["panels"]:
        yield item
        yield from item.get("panels", ())


def content_panels(model: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The panels that show something: every panel but the row headers."""
    return (item for item in panels(model) if item["type"] != "row")


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression reads (strings, matchers, ranges and grouping removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = re.findall(r"(?<![\w.$])([A-Za-z_:][\w:]*)\b(?!\s*\()", text)
    return {name for name in names if name.lower() not in KEYWORDS}


def sample_names(name: str, kind: str, *, counter_suffix: str) -> set[str]:
    if kind == "histogram":
        return {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return {name + counter_suffix if kind == "counter" else name}


def contract_series() -> dict[str, str]:
    """Every series name the contract lets a query read -> the family it belongs to."""
    series = {}
    for metric in catalogue.METRICS:  # exposed names: counters already end in _total
        series.update(dict.fromkeys(sample_names(metric.name, metric.kind, counter_suffix=""), metric.name))
    for name, kind, _ in selfmetrics.FAMILIES:  # family names: counters are exposed with _total
        series.update(dict.fromkeys(sample_names(name, kind, counter_suffix="_total"), name))
    series.update({name: name for name in PROMETHEUS_SERIES})
    return series


def test_metric_names_reads_series_and_not_functions_labels_or_numbers():
    """The test's PromQL reader finds the series of an expression and nothing else."""
    expr = ('histogram_quantile(0.99, sum by (le, strategy) (rate(a_bucket{engine=~"$engine", x="y z"}'
            '[$__rate_interval]))) / on(engine) group_left b > 1e9 and c offset 5m')
    assert {"a_bucket", "b", "c"} == metric_names(expr)


# -- the committed files --------------------------------------------------------------------------------

def test_committed_dashboards_are_what_the_generator_writes():
    """Every dashboards/*.json equals the generator's output, and there is no other; regenerate after a change."""
    assert {} == generate.stale(DASHBOARDS), f"dashboards are stale: run `{generate.COMMAND}`"


def test_check_names_each_stale_file_and_fails(tmp_path):
    """`generate.py --check` exits 1 naming a changed, a missing and a stray file; 0 when all are current."""
    script = [sys.executable, str(DASHBOARDS / "generate.py"), "--directory", str(tmp_path)]
    subprocess.run(script, check=True, capture_output=True)
    assert 0 == subprocess.run(script + ["--check"], capture_output=True).returncode
    (tmp_path / "pnl-exposure.json").write_text("{}\n")
    (tmp_path / "system-health.json").unlink()
    shutil.copy(DASHBOARDS / "pnl-exposure.json", tmp_path / "hand-made.json")
    result = subprocess.run(script + ["--check"], capture_output=True, text=True)
    assert 1 == result.returncode
    stale = sorted(line.split()[0].rsplit("/", 1)[-1] for line in result.stderr.splitlines())
    assert ["hand-made.json", "pnl-exposure.json", "system-health.json"] == stale
    assert f"run `{generate.COMMAND}`" in result.stderr


def test_the_plan_s_dashboards_exist_with_stable_uids(models):
    """One file per dashboard of the plan, each with its fixed uid."""
    assert {file: uid for uid, (_, file) in SEED_DASHBOARDS.items()} == {
        name: model["uid"] for name, model in models.items()}


def test_every_dashboard_is_tagged_refreshes_every_5s_and_shows_the_last_hour(models):
    """Tag hftel, refresh 5s, now-1h to now, a Grafana 10 schema version."""
    for name, model in models.items():
        assert (["hftel"], "5s", {"from": "now-1h", "to": "now"}) == (
            model["tags"], model["refresh"], model["time"]), name
        assert model["schemaVersion"] in (38, 39), name


# -- variables, data source, units -----------------------------------------------------------------------

def test_every_dashboard_has_the_datasource_and_engine_variables(models):
    """A Prometheus data source variable, and a multi-value engine variable with All from hftel_engine_up."""
    for name, model in models.items():
        variables = {v["name"]: v for v in model["templating"]["list"]}
        datasource, engine = variables["datasource"], variables["engine"]
        assert ("datasource", "prometheus") == (datasource["type"], datasource["query"]), name
        assert "label_values(hftel_engine_up, engine)" == engine["definition"], name
        assert (True, True, DATASOURCE) == (engine["multi"], engine["includeAll"], engine["datasource"]), name


def test_every_panel_has_a_title_a_description_and_a_unit(models):
    """Row headers have a title; every other panel a title, a description and fieldConfig.defaults.unit."""
    for name, model in models.items():
        for item in panels(model):
            assert item["title"], f"{name}: panel {item['id']} has no title"
            if item["type"] != "row":
                assert item["description"], f"{name}: {item['title']!r} has no description"
                assert item["fieldConfig"]["defaults"]["unit"], f"{name}: {item['title']!r} has no unit"


def test_every_unit_is_a_grafana_unit(models):
    """Units are Grafana unit ids (or custom suffixes), so Grafana formats values rather than showing raw ids."""
    for name, model in models.items():
        for item in content_panels(model):
            units = [item["fieldConfig"]["defaults"]["unit"]] + [
                prop["value"] for o in item["fieldConfig"]["overrides"] for prop in o["properties"]
                if prop["id"] == "unit"]
            for unit in units:
                assert unit in GRAFANA_UNITS or unit.startswith("suffix:"), f"{name}: {item['title']!r}: {unit}"


def test_every_panel_and_target_reads_the_datasource_variable(models):
    """Every panel, and every query of every panel, names the data source `${datasource}`."""
    for name, model in models.items():
        for item in content_panels(model):
            assert DATASOURCE == item["datasource"], f"{name}: {item['title']!r}"
            for query in item.get("targets", ()):
                assert DATASOURCE == query["datasource"], f"{name}: {item['title']!r} {query['refId']}"
            assert item["type"] == "text" or item["targets"], f"{name}: {item['title']!r} has no query"


def test_every_engine_series_is_filtered_by_the_engine_variable(models):
    """Each selector of an hft_ metric, and of an exporter series with an engine label, has engine=~"$engine"."""
    with_engine_label = {"hftel_engine_up", "hftel_engine_heartbeat_age_seconds", "hftel_drain_rows_spooled_total"}
    for uid, title, expr in generate.queries():
        for selector in re.finditer(r"\b([A-Za-z_:][\w:]*)(\{[^}]*\})?", expr):
            metric, matchers = selector.groups()
            if metric.startswith(("hft_", "hftel_ring_")) or metric in with_engine_label:
                assert matchers and 'engine=~"$engine"' in matchers, f"{uid}: {title!r}: {expr}"


def test_the_strategy_variable_filters_the_strategy_dashboards(models):
    """Where a strategy variable exists, every query of a metric with a strategy label uses it."""
    by_strategy = {metric.name for metric in catalogue.METRICS if "strategy" in metric.label_names}
    for name, model in models.items():
        if "strategy" not in {v["name"] for v in model["templating"]["list"]}:
            continue
        for item in content_panels(model):
            for query in item.get("targets", ()):
                for metric in re.findall(r"\b(hft_\w+?)(?:_bucket)?\{([^}]*)\}", query["expr"]):
                    if metric[0] in by_strategy:
                        assert 'strategy=~"$strategy"' in metric[1], f"{name}: {item['title']!r}"


# -- queries ---------------------------------------------------------------------------------------------

def test_queries_lists_every_target_of_every_panel(models):
    """generate.queries() is every (uid, panel title, expr) in the committed JSON, for the Prometheus test."""
    committed = [(model["uid"], item["title"], query["expr"]) for model in models.values()
                 for item in content_panels(model) for query in item.get("targets", ())]
    assert sorted(committed) == sorted(generate.queries())


def test_concrete_leaves_no_template_variable_in_any_query():
    """concrete() replaces $engine, $strategy, $__rate_interval and $__range with values Prometheus takes."""
    assert 'rate(x{engine=~".*", strategy=~".*"}[1m]) + increase(y[5m])' == generate.concrete(
        'rate(x{engine=~"$engine", strategy=~"${strategy}"}[$__rate_interval]) + increase(y[$__range])')
    for uid, title, expr in generate.queries():
        assert "$" not in generate.concrete(expr), f"{uid}: {title!r}: {expr}"


def test_every_metric_a_query_reads_is_in_the_contract():
    """Queries read only the catalogue's series, the exporter's FAMILIES (process_* included) and `up`."""
    known = contract_series()
    for uid, title, expr in generate.queries():
        names = metric_names(expr)
        assert names, f"{uid}: {title!r}: no metric found in {expr}"
        assert names <= known.keys(), f"{uid}: {title!r} reads {sorted(names - known.keys())}, not in the contract"


def test_every_catalogue_metric_is_on_a_dashboard():
    """Nothing the engine records is invisible: each catalogue metric is read by at least one query."""
    known = contract_series()
    shown = {known[name] for _, _, expr in generate.queries() for name in metric_names(expr) if name in known}
    assert [] == [metric.name for metric in catalogue.METRICS if metric.name not in shown]


def test_every_quantile_panel_shows_p50_p95_and_p99_over_buckets_by_le(models):
    """A panel with histogram_quantile has three queries, 0.5, 0.95 and 0.99, each of a _bucket rate summed by le."""
    quantile_panels = 0
    for name, model in models.items():
        for item in content_panels(model):
            exprs = [query["expr"] for query in item.get("targets", ())]
            if not any("histogram_quantile" in expr for expr in exprs):
                continue
            quantile_panels += 1
            where = f"{name}: {item['title']!r}"
            levels = [re.match(r"histogram_quantile\(([\d.]+),", expr) for expr in exprs]
            assert ["0.5", "0.95", "0.99"] == [level and level.group(1) for level in levels], where
            assert ["p50", "p95", "p99"] == [q["legendFormat"].split()[0] for q in item["targets"]], where
            for expr in exprs:
                grouping = re.search(r"sum by \(([^)]*)\) \(rate\(\w+_bucket\b", expr)
                labels = [label.strip() for label in grouping.group(1).split(",")] if grouping else []
                assert "le" in labels, f"{where}: {expr}"
            assert "p50/p95/p99" in item["title"], where
    histograms = [m for m in catalogue.METRICS if m.kind == "histogram"]
    assert quantile_panels >= len(histograms)


# -- the plan's panels -----------------------------------------------------------------------------------

def test_the_seed_panels_exist_on_their_dashboards(models):
    """Every panel section 3 of the plan asks for is on its dashboard, under the title in SEED_PANELS."""
    titles = {model["uid"]: {item["title"] for item in panels(model)} for model in models.values()}
    missing = [(uid, seed, title) for (uid, seed), title in SEED_PANELS.items() if title not in titles[uid]]
    assert [] == missing


def test_the_stormguard_timeline_maps_0_to_3_to_normal_warm_storm_halt(models):
    """The StormGuard panel is a state timeline of hft_stormguard_mode coloured green, yellow, orange, red."""
    model = models["strategy-order-path.json"]
    (item,) = [p for p in panels(model) if p["title"] == "StormGuard mode by strategy"]
    assert "state-timeline" == item["type"]
    assert "hft_stormguard_mode" in item["targets"][0]["expr"]
    (mapping,) = item["fieldConfig"]["defaults"]["mappings"]
    assert {"0": ("NORMAL", "green"), "1": ("WARM", "yellow"), "2": ("STORM", "orange"), "3": ("HALT", "red")} == {
        value: (m["text"], m["color"]) for value, m in mapping["options"].items()}


def test_the_top_position_table_is_an_instant_query_sorted_by_size(models):
    """Top positions: hft_position by symbol, instant, signed and absolute, sorted by the absolute value."""
    (item,) = [p for p in panels(models["pnl-exposure.json"]) if p["title"] == "Top positions"]
    assert "table" == item["type"]
    assert all(q["instant"] and "hft_position" in q["expr"] for q in item["targets"])
    assert item["targets"][1]["expr"].startswith("abs(")
    assert [{"desc": True, "displayName": "Size"}] == item["options"]["sortBy"]


#: The v2 rows and what issue 9 asks them to show, by panel title.
V2_ROWS = {
    ("recorder-clickhouse.json", "ClickHouse server (v2)"): [
        "ClickHouse health readable", "ClickHouse disk usage", "ClickHouse disk free",
        "Active parts per partition (largest)", "Merges and mutations", "ClickHouse query latency p50/p95/p99"],
    ("system-health.json", "Host (v2)"): [
        "CPU busy per core", "Load average", "Memory and swap", "Network throughput", "Network errors and drops",
        "Filesystem usage", "Disk IO latency", "Disk utilisation"],
    ("system-health.json", "Engine processes (v2)"): [
        "Engine process CPU", "Engine resident memory and threads", "Engine context switches",
        "Python GC collections", "Python GC pause p50/p95/p99"],
}


@pytest.mark.parametrize("name, row_title", list(V2_ROWS), ids=lambda value: str(value))
def test_the_v2_rows_show_the_clickhouse_server_host_and_engine_processes(models, name, row_title):
    """ClickHouse's parts, merges, mutations, disks and query latency; the host's CPU, load, memory, NICs,
    disks and filesystems; each engine process's CPU, memory, threads, context switches and GC."""
    items = models[name]["panels"]
    start = next(i for i, item in enumerate(items) if item["type"] == "row" and item["title"] == row_title)
    end = next((i for i, item in enumerate(items[start + 1:], start + 1) if item["type"] == "row"), len(items))
    assert V2_ROWS[(name, row_title)] == [item["title"] for item in items[start + 1:end]]


# -- layout ----------------------------------------------------------------------------------------------

def test_panel_ids_are_unique_and_panels_tile_the_grid_without_overlap(models):
    """Ids 1..n in order; every gridPos within 24 columns; no two panels share a cell."""
    for name, model in models.items():
        items = list(panels(model))
        assert list(range(1, len(items) + 1)) == [item["id"] for item in items], name
        cells: dict[tuple[int, int], str] = {}
        for item in items:
            pos = item["gridPos"]
            assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, f"{name}: {item['title']!r}"
            for x in range(pos["x"], pos["x"] + pos["w"]):
                for y in range(pos["y"], pos["y"] + pos["h"]):
                    assert (x, y) not in cells, f"{name}: {item['title']!r} overlaps {cells[(x, y)]!r}"
                    cells[(x, y)] = item["title"]


def test_panel_descriptions_name_the_alerts_that_watch_them(models):
    """A panel description may end with `Alerts: ...`; each name is one of the alert rules'."""
    named = set()
    for model in models.values():
        for item in content_panels(model):
            found = re.search(r"Alerts: ([\w, ]+)\.$", item["description"])
            if found:
                named |= set(found.group(1).split(", "))
    assert named and named <= generate.ALERTS
