"""contracts/observability.md is generated from the declarations in code; code and contract must agree."""
from __future__ import annotations

import dataclasses
import datetime
import json
from pathlib import Path
from typing import Any, Iterator

import pytest
import structlog

import hftel
import hftel.logs
from hftel import catalogue, schemas
from hftel.rings import LogConsumer
from hftel_exporter import selfmetrics
from hftel_exporter.logfiles import LOGS_COLUMNS, log_line, log_row
from scripts import load_script

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = ROOT / "contracts" / "observability.md"


generate = load_script("contracts/generate.py", "hftel_contract_generate")


@pytest.fixture(scope="module")
def contract() -> str:
    return CONTRACT.read_text(encoding="utf-8")


@pytest.fixture
def reset_structlog() -> Iterator[None]:
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


def row(text: str, first_cell: str) -> str:
    """The one table row of `text` whose first cell is `first_cell`."""
    rows = [line for line in text.splitlines() if line.startswith(f"| {first_cell} |")]
    assert len(rows) == 1, f"expected one row for {first_cell}, found {len(rows)}"
    return rows[0]


def section(text: str, heading: str) -> str:
    """The text under `heading` up to the next heading."""
    start = text.index(f"\n{heading}\n") + len(heading) + 2
    end = text.find("\n#", start)
    return text[start:] if end < 0 else text[start:end]


def rendered_events(tmp_path: Path, strict: bool, log: Any) -> list[dict[str, Any]]:
    """The JSON lines the exporter writes for what `log(get_logger)` logs into a fresh segment."""
    tel = hftel.Telemetry.create(str(tmp_path / "seg"), heartbeat_interval=None)
    try:
        hftel.logs.configure(tel, strict=strict)
        log(hftel.logs.get_logger)
        events = LogConsumer(tel.path).poll().events
    finally:
        tel.close()
    return events


# -- the committed file ------------------------------------------------------------------------------

def test_committed_contract_is_what_the_generator_writes(contract):
    """contracts/observability.md equals markdown(); after changing a declaration, regenerate it."""
    assert contract == generate.markdown(), f"contracts/observability.md is stale: run `{generate.COMMAND}`"


def test_check_exits_1_with_a_diff_when_the_contract_is_stale(tmp_path, monkeypatch, capsys):
    """--check exits 0 on an up-to-date file, and 1 with a unified diff naming the line on a stale one."""
    stale = tmp_path / "observability.md"
    stale.write_text(generate.markdown().replace("# Observability contract", "# Old contract"), encoding="utf-8")
    monkeypatch.setattr(generate, "CONTRACT", stale)
    assert generate.main(["--check"]) == 1
    output = capsys.readouterr()
    assert "-# Old contract\n+# Observability contract\n" in output.out
    assert generate.COMMAND in output.err
    stale.write_text(generate.markdown(), encoding="utf-8")
    assert generate.main(["--check"]) == 0


def test_a_changed_catalogue_declaration_changes_the_contract(contract, monkeypatch):
    """Renaming a catalogue metric in the generator's view makes markdown() differ from the committed file."""
    mapped = {target for targets, _ in generate.SEED_NAMES.values() for target in targets}
    index, metric = next((i, m) for i, m in enumerate(catalogue.METRICS) if m.name not in mapped)
    renamed = dataclasses.replace(metric, name=metric.name.replace("hft_", "hft_renamed_", 1))
    monkeypatch.setattr(generate, "METRICS", catalogue.METRICS[:index] + (renamed,) + catalogue.METRICS[index + 1:])
    text = generate.markdown()
    assert text != contract
    assert f"\n| `{renamed.name}` |" in text and f"\n| `{metric.name}` |" not in text


# -- metrics -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("metric", catalogue.METRICS, ids=lambda m: m.name)
def test_every_catalogue_metric_appears_with_its_type_and_labels(contract, metric):
    """Each catalogue metric has a row under its component with its type, unit, every label and its values."""
    line = row(section(contract, f"### {metric.component}"), f"`{metric.name}`")
    assert f"| {metric.kind}" in line and f"| {metric.unit} |" in line
    for label in metric.labels:
        assert f"`{label.name}`: " in line
        if label.configured:
            assert f"`{label.name}`: configured: {label.doc}" in line
        else:
            assert f"`{label.name}`: {', '.join(label.values)}" in line


@pytest.mark.parametrize("metric", [m for m in catalogue.METRICS if m.kind == "histogram"], ids=lambda m: m.name)
def test_every_histogram_lists_its_buckets_in_seconds(contract, metric):
    """A histogram's buckets are listed in seconds: its nanosecond bounds divided by 1e9, then +Inf."""
    prefix = f"Buckets of `{metric.name}` (seconds): "
    (line,) = [line for line in contract.splitlines() if line.startswith(prefix)]
    listed = line[len(prefix):].rstrip(".").split(", ")
    assert listed[-1] == "+Inf"
    assert [float(bound) for bound in listed[:-1]] == [bound / 1e9 for bound in metric.buckets]


def test_stormguard_mode_values_are_listed(contract):
    """The contract spells out which number hft_stormguard_mode holds for each StormGuard mode."""
    values = ", ".join(f"{code} {mode}" for mode, code in catalogue.STORMGUARD_MODE_VALUES.items())
    assert f"Values of `hft_stormguard_mode`: {values}." in contract


@pytest.mark.parametrize("family", selfmetrics.FAMILIES, ids=lambda f: f[0])
def test_every_exporter_family_appears(contract, family):
    """Each of the exporter's own families has a row with its type, by the name it is queried by."""
    name, kind, text = family
    exposed = f"{name}_total" if kind == "counter" else name
    line = row(section(contract, "## Exporter metrics"), f"`{exposed}`")
    assert f"| {kind}" in line and text in line


@pytest.mark.parametrize("seed", generate.SEED_NAMES)
def test_every_plan_name_maps_to_a_declared_metric(contract, seed):
    """Each of the plan's metric names maps to metrics the catalogue or the exporter really declares."""
    declared = {m.name for m in catalogue.METRICS} | {
        f"{name}_total" if kind == "counter" else name for name, kind, _ in selfmetrics.FAMILIES}
    targets, _ = generate.SEED_NAMES[seed]
    assert set(targets) <= declared
    line = row(section(contract, "## Names in the plan"), f"`{seed}`" if " " not in seed else seed)
    assert all(f"`{target}`" in line for target in targets)


# -- logs --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("component", hftel.logs.COMPONENT_FIELDS)
def test_every_component_appears_with_its_required_fields(contract, component):
    """Each component of the log schema has a row listing exactly its required fields."""
    line = row(section(contract, "### Fields each component requires"), f"`{component}`")
    fields = ", ".join(f"`{name}`" for name in hftel.logs.COMPONENT_FIELDS[component])
    assert line == f"| `{component}` | {fields} |"


def test_common_log_fields_are_the_keys_of_a_rendered_line(tmp_path, reset_structlog):
    """A real event, logged through structlog and rendered by the exporter, has exactly the common
    fields plus its component's required fields."""
    (event,) = rendered_events(tmp_path, True, lambda get_logger: get_logger(
        component="risk_engine", strategy="mm", intent_id=1, risk_mode="NORMAL").info("x"))
    line = json.loads(log_line(event, "engine1"))
    common = [key for key, _, _ in generate.COMMON_FIELDS]
    assert sorted(line) == sorted(common + list(hftel.logs.COMPONENT_FIELDS["risk_engine"]))


def test_common_log_fields_land_in_their_logs_hft_columns(tmp_path, reset_structlog):
    """Each common field's declared logs_hft column exists and holds the line's value."""
    (event,) = rendered_events(tmp_path, True, lambda get_logger: get_logger(
        component="monitor", check="heartbeat").warning("late"))
    line, stored = json.loads(log_line(event, "engine1")), log_row(event, "engine1")
    for key, _, column in generate.COMMON_FIELDS:
        assert column in LOGS_COLUMNS
        if key != "timestamp":
            assert stored[column] == line[key]
    moment = datetime.datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00"))
    assert abs(moment.timestamp() - stored["ts"] / 1e9) < 1e-6


def test_flag_fields_are_the_keys_a_line_gains_when_they_apply(tmp_path, reset_structlog):
    """An event missing a field, one logging an exception and one too large gain exactly the flag fields."""

    def log(get_logger: Any) -> None:
        logger = get_logger(component="risk_engine", strategy="mm")
        try:
            raise ZeroDivisionError("boom")
        except ZeroDivisionError:
            logger.exception("failed")
        logger.info("large", big="x" * 1_000_000)

    keys = set()
    for event in rendered_events(tmp_path, False, log):
        keys |= set(json.loads(log_line(event, "engine1")))
    plain = {key for key, _, _ in generate.COMMON_FIELDS} | {"strategy", "big"}
    assert sorted(keys - plain) == sorted(key for key, _ in generate.FLAG_FIELDS)


# -- tables ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("table", schemas.CLICKHOUSE_TABLES, ids=lambda t: t.name)
def test_every_clickhouse_column_appears_in_its_table_with_its_type(contract, table):
    """Each column of each table has a row with its ClickHouse type, in the table's section or, when
    several audit tables share it, in the shared table and the section's list of shared columns."""
    own = section(contract, f"### `{table.name}`")
    shared = section(contract, "### Columns shared by audit tables")
    listed = own.split(" Shared columns: ", 1)[1].split("\n", 1)[0] if " Shared columns: " in own else ""
    for column in table.columns:
        expected = f"| `{column.name}` | `{column.clickhouse_type}` |"
        where = shared if f"`{column.name}`" in listed else own
        assert row(where, f"`{column.name}`").startswith(expected)
    assert f"TTL `{table.retention}` by default" in own
