"""Generates contracts/observability.md from the declarations in code: nothing in it is written by hand.

    python contracts/generate.py > contracts/observability.md   # regenerate after changing a declaration
    python contracts/generate.py --check                        # exit 1 with a diff when the file is stale

The sources: the metric catalogue (hftel.catalogue), the exporter's own families
(hftel_exporter.selfmetrics), the log schema (hftel.logs), the table declarations (hftel.schemas),
the exporter's settings (hftel_exporter.config) and roles (hftel_exporter.ddl). The generator lives
here, not in src/hftel, because it reads the exporter too and the engine package never imports it.
What no module declares (the fields every log line carries, the seed's metric names, Prometheus's own
retention) is declared below, once, and tests/test_contract.py proves it against the code.
"""
from __future__ import annotations

import argparse
import difflib
import inspect
import sys
from pathlib import Path
from typing import Iterable

from hftel import catalogue, logs, schemas
from hftel_exporter import config, ddl, selfmetrics
from hftel_exporter.exposition import bucket_bound
from hftel_exporter.logfiles import LogFile

CONTRACT = Path(__file__).resolve().parent / "observability.md"
COMMAND = "python contracts/generate.py > contracts/observability.md"

# The declarations rendered; module attributes so that a test can substitute a changed copy.
METRICS = catalogue.METRICS
FAMILIES = selfmetrics.FAMILIES
COMPONENT_FIELDS = logs.COMPONENT_FIELDS
TABLES = schemas.CLICKHOUSE_TABLES

#: The keys of every JSON log line, in the order a line has them: (key, meaning, logs_hft column).
#: Nothing in the code lists them together (hftel.rings.decode_log_event and
#: hftel_exporter.logfiles.log_line add them); tests/test_contract.py checks them against a real line.
COMMON_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("event", "The event name: the logger call's first argument.", "event"),
    ("component", "The component the logger is bound to (one of those below).", "component"),
    ("level", f"One of {', '.join(logs.LEVELS)}.", "level"),
    ("pid", "The process id of the logging process.", "pid"),
    ("engine", "The engine: its segment's name, added by the exporter.", "engine"),
    ("timestamp", "When the engine logged it: ISO 8601 UTC, microseconds, `Z` (structlog's TimeStamper).", "ts"),
)

#: Keys a line carries only when they apply; they go to logs_hft's `fields` JSON.
FLAG_FIELDS: tuple[tuple[str, str], ...] = (
    ("schema_violation", "`true` when the event lacked a field its component requires (non-strict mode)."),
    ("truncated", "`true` when the event was cut short to fit the log ring's largest record."),
    ("exception", "the formatted traceback, for `log.exception()` or `exc_info=True`."),
)

#: The metric names the plan (seeds 000 and 001) uses -> the metrics that implement them, and why
#: they differ when they do.
SEED_NAMES: dict[str, tuple[tuple[str, ...], str]] = {
    "feed_events_total": (("hft_feed_events_total",), ""),
    "feed_gap_seconds": (("hft_feed_gap_seconds",), ""),
    "shioaji_connected": (("hft_shioaji_connected",), ""),
    "bus_occupancy_ratio": (("hft_bus_occupancy_ratio",), ""),
    "bus_overflow_total": (("hft_bus_overflow_total",), ""),
    "strategy_latency_ns": (("hft_strategy_latency_seconds",),
                            "base units: recorded in integer ns, exposed in seconds"),
    "stormguard_mode": (("hft_stormguard_mode",), ""),
    "order_actions_total": (("hft_order_actions_total",), ""),
    "order_reject_total": (("hft_order_rejects_total",), "plural, like every other counter of events"),
    "order_latency_ns": (("hft_order_latency_seconds",), "base units: recorded in integer ns, exposed in seconds"),
    "recorder_write_failures_total": (("hft_recorder_write_failures_total", "hftel_recorder_write_failures_total"),
                                      "the engine's own recorder; the exporter's drain into ClickHouse"),
    "clickhouse_up": (("hftel_clickhouse_up",), "the exporter, which writes to ClickHouse, probes it"),
    "process_uptime_seconds": (("hft_process_uptime_seconds",), ""),
    "ingestion queue depth": (("hft_recorder_queue_depth", "hftel_spool_batches"),
                              "the engine's recorder queue; batches waiting for ClickHouse"),
}

#: Prometheus keeps the series; its retention is the cluster's policy (plan, section 5).
PROMETHEUS_RETENTION = "15 to 30 days (`--storage.tsdb.retention.time`), per cluster policy; remote storage optional"


def exposed_name(name: str, kind: str) -> str:
    """The name a family is queried by: exporter counters are declared without `_total`."""
    return f"{name}_total" if kind == "counter" and not name.endswith("_total") else name


def _family(name: str) -> str:
    """The exposed name of one of the exporter's families; KeyError when it is gone."""
    return {family: exposed_name(family, kind) for family, kind, _ in FAMILIES}[name]


def metric_names() -> set[str]:
    """Every exposed metric name: the catalogue's and the exporter's own."""
    return {m.name for m in METRICS} | {exposed_name(name, kind) for name, kind, _ in FAMILIES}


# -- rendering helpers -------------------------------------------------------------------------------

def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _code(names: Iterable[str]) -> str:
    return ", ".join(f"`{name}`" for name in names)


def _table(header: tuple[str, ...], rows: Iterable[Iterable[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(_cell(str(cell)) for cell in row) + " |" for row in rows]
    return lines + [""]


def _setting(key: str) -> str:
    """An exporter setting with the environment variable that also sets it."""
    return f"`{key}` (`{config.BY_KEY[key].env}`)"


def _bytes(count: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if count >= 1 << shift and count % (1 << shift) == 0:
            return f"{count >> shift} {unit}"
    return f"{count} bytes"


def _seconds(count: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if count >= size and count % size == 0:
            number = int(count // size)
            return f"{number} {unit}{'s' if number > 1 else ''}"
    return f"{count:g} s"


# -- sections ------------------------------------------------------------------------------------------

def _header() -> list[str]:
    return [
        "# Observability contract",
        "",
        f"Generated by `{COMMAND}`; do not edit by hand.",
        "",
        "What an hftel engine and the hftel exporter publish, and what may rely on it: every Prometheus "
        "metric (name, type, labels, unit, buckets), the fields of every log event, the ClickHouse audit "
        "tables and `logs_hft`, how long each is kept and who may read or write it. Dashboards, alert "
        "rules and runbooks use these names and nothing else. Ops and risk review it: every declaration "
        "below lives once in code (`hftel.catalogue`, `hftel.logs`, `hftel.schemas`, "
        "`hftel_exporter.selfmetrics`, `hftel_exporter.config`, `hftel_exporter.ddl`), a change to one "
        "changes this file in the same commit (tests/test_contract.py fails until it is regenerated), so "
        "the diff of this file is what they review.",
        "",
    ]


def _rules() -> list[str]:
    label = config.BY_KEY["segments.engine_label"]
    return [
        "## Naming and cardinality rules",
        "",
        "The catalogue refuses a declaration that breaks these (`hftel.catalogue.Metric`):",
        "",
        "- Engine metrics carry the `hft_` prefix; the exporter's own carry `hftel_` (and `process_`).",
        "- Counters, and only counters, end in `_total`.",
        "- Histograms are named `*_seconds`: the engine records integer nanoseconds, the exporter exposes "
        "seconds (Prometheus base units). Buckets are the `le` values as exposed.",
        "- Labels take values from a closed set declared in the catalogue, or from the engine's curated "
        "configuration (strategies, symbols, sinks: tens, never order or intent ids).",
        "- Every declared series exists, at zero, from the engine's start, so dashboards and alerts see it "
        "before its first event.",
        f"- The exporter adds `{label.default}=\"<segment name>\"` to every engine series "
        f"(setting `{label.key}`); a series with a label of that name keeps it as `exported_{label.default}`.",
        "",
    ]


def _label(label: catalogue.Label) -> str:
    if label.configured:
        return f"`{label.name}`: configured: {label.doc}"
    text = f"`{label.name}`: {', '.join(label.values)}"
    return f"{text} ({label.doc})" if label.doc else text


def _engine_metrics() -> list[str]:
    lines = ["## Engine metrics", "",
             "Recorded by the engine into its segment, exposed by the exporter at `/metrics`. One table per "
             "component, in the order of `hftel.catalogue.COMPONENTS`.", ""]
    for component in catalogue.COMPONENTS:
        metrics = [m for m in METRICS if m.component == component]
        if not metrics:
            continue
        lines += [f"### {component}", ""]
        rows = []
        for m in metrics:
            kind = f"{m.kind} (integer)" if m.kind == "gauge" and m.gauge_kind == "int" else m.kind
            rows.append((f"`{m.name}`", kind, "; ".join(_label(label) for label in m.labels) or "none",
                         m.unit, m.help))
        lines += _table(("name", "type", "labels", "unit", "meaning"), rows)
        for m in metrics:
            if m.buckets:
                bounds = ", ".join(bucket_bound(bound, True) for bound in m.buckets)
                lines += [f"Buckets of `{m.name}` (seconds): {bounds}, +Inf.", ""]
            if m.name == "hft_stormguard_mode":
                values = ", ".join(f"{value} {mode}" for mode, value in catalogue.STORMGUARD_MODE_VALUES.items())
                lines += [f"Values of `{m.name}`: {values}.", ""]
    return lines


def _exporter_metrics() -> list[str]:
    drain, host = config.BY_KEY["clickhouse.sink"], config.BY_KEY["host.enabled"]
    health = config.BY_KEY["clickhouse.health_interval"]
    lines = ["## Exporter metrics", "",
             "The exporter's own families (`hftel_exporter.selfmetrics.FAMILIES`), by the name they are "
             f"queried by. Those marked drain exist only while the exporter drains (`{drain.key}` is not "
             f"`off`); those marked health only while it drains and reads ClickHouse's system tables "
             f"(`{health.key}` is not 0); those marked host only while it collects host metrics (`{host.key}`).", ""]

    def where(name: str) -> str:
        if name in selfmetrics.CLICKHOUSE_HEALTH_NAMES:
            return ", health"
        return ", drain" if name in selfmetrics.DRAIN_FAMILIES else ", host" if name in selfmetrics.HOST_NAMES else ""

    rows = [(f"`{exposed_name(name, kind)}`", kind + where(name), text) for name, kind, text in FAMILIES]
    return lines + _table(("name", "type", "meaning"), rows)


def _seed_names() -> list[str]:
    unknown = sorted({target for targets, _ in SEED_NAMES.values() for target in targets} - metric_names())
    if unknown:
        raise ValueError(f"SEED_NAMES maps to metrics nothing declares: {', '.join(unknown)}")
    rows = [(f"`{seed}`" if " " not in seed else seed, _code(targets), why or "the `hft_` prefix")
            for seed, (targets, why) in SEED_NAMES.items()]
    return (["## Names in the plan", "", "The plan's metric names, and the metrics that implement them.", ""]
            + _table(("plan", "metric", "why the name differs"), rows))


def _logs() -> list[str]:
    table = schemas.LOGS_HFT
    lines = ["## Log events", "",
             "Engines log through the structlog API (`hftel.logs`); the exporter renders each event as one "
             "JSON line, as structlog's JSONRenderer after `TimeStamper(fmt=\"iso\", utc=True)` would, into "
             f"its log file for shippers, and as one row of `{table.name}`.", "",
             "### Fields of every event", ""]
    lines += _table(("key", "meaning", f"{table.name} column"),
                    ((f"`{key}`", text, f"`{column}`") for key, text, column in COMMON_FIELDS))
    lines += ["Only when they apply:", ""]
    lines += [f"- `{key}`: {text}" for key, text in FLAG_FIELDS]
    lines += ["", f"Every other key goes to `{table.name}.fields`, a JSON object.", "",
              "### Fields each component requires", "",
              "Declared in `hftel.logs.COMPONENT_FIELDS`. A logger bound to `component=` checks them on "
              "every call: strict (tests: `HFTEL_LOG_STRICT=1`) raises `LogSchemaError`; otherwise the "
              f"event is written flagged `schema_violation` and counted in `{_family('hftel_ring_violations')}`.", ""]
    lines += _table(("component", "required fields"),
                    ((f"`{component}`", _code(fields)) for component, fields in COMPONENT_FIELDS.items()))
    lines += ["### Correlation ids", "",
              "Propagated from the strategy's intent through risk, order and execution; carried by log "
              "events and audit rows alike. Each table that has one has a bloom-filter index on it.", ""]
    rows = []
    for name in schemas.CORRELATION_IDS:
        column = table.column(name)
        audit = [t.name for t in TABLES if t is not table and any(c.name == name for c in t.columns)]
        audit_type = next(t.column(name).clickhouse_type for t in TABLES if t.name in audit)
        rows.append((f"`{name}`", f"`{column.clickhouse_type}`: {column.doc}", f"`{audit_type}` in {_code(audit)}"))
    lines += _table(("id", f"{table.name} column", "audit column"), rows)
    lines += ["In a log event `trace_id` is 32 hex digits; a correlation id whose value does not fit its "
              f"column stays in `{table.name}.fields` rather than being lost.", ""]
    return lines


def _tables() -> list[str]:
    audit = [t for t in TABLES if isinstance(t, schemas.AuditTable)]
    shared: list[schemas.Column] = []
    for index, table in enumerate(audit):
        for column in table.columns:
            if column not in shared and any(column in other.columns for other in audit[index + 1:]):
                shared.append(column)
    database = config.BY_KEY["clickhouse.database"]
    lines = ["## ClickHouse tables", "",
             f"In database `{database.default}` (setting `{database.key}`), from `hftel.schemas`. Every "
             "table is a MergeTree partitioned by month of `ts`; a row is deleted its table's TTL after "
             "its `ts`. The DDL is `exporter/clickhouse/schema.sql`. Audit rows are append-only.", "",
             "### Columns shared by audit tables", ""]
    lines += _table(("column", "ClickHouse type", "meaning"),
                    ((f"`{c.name}`", f"`{c.clickhouse_type}`", c.doc) for c in shared))
    for table in TABLES:
        if isinstance(table, schemas.AuditTable):
            where = f"Record type {table.type_id}, written by `tel.audit.{table.writer}(...)`"
        else:
            where = "Rendered by the exporter from the log ring"
        common = [c.name for c in table.columns if c in shared]
        own = [c for c in table.columns if c not in shared]
        lines += [f"### `{table.name}`", "", table.doc, "",
                  f"{where}. Ordered by `{', '.join(table.order_by)}`; TTL `{table.retention}` by default."
                  + (f" Shared columns: {_code(common)}." if common else ""), ""]
        lines += _table(("column", "ClickHouse type", "meaning"),
                        ((f"`{c.name}`", f"`{c.clickhouse_type}`", c.doc) for c in own))
    return lines


def _retention() -> list[str]:
    audit = sorted({t.retention for t in TABLES if isinstance(t, schemas.AuditTable)})
    logfile = {name: config.BY_KEY[f"logfile.{name}"] for name in ("max_bytes", "rotate_interval", "backups")}
    spool = config.BY_KEY["spool.max_bytes"]
    rows = [
        ("audit tables", f"`{' / '.join(audit)}` after `ts`", _setting("clickhouse.audit_ttl")),
        (f"`{schemas.LOGS_HFT.name}`", f"`{schemas.LOGS_HFT.retention}` after `ts`", _setting("clickhouse.logs_ttl")),
        ("engine JSON log file", f"rotated at {_bytes(logfile['max_bytes'].default)} or after "
         f"{_seconds(logfile['rotate_interval'].default)}, {logfile['backups'].default} rotated files kept",
         ", ".join(_setting(s.key) for s in logfile.values())),
        ("exporter spool", f"until inserted into ClickHouse; capped at {_bytes(spool.default)}", _setting(spool.key)),
        ("Prometheus series", PROMETHEUS_RETENTION, "the Prometheus server"),
    ]
    return (["## Retention", "",
             "A TTL is set when its table is created (`hftel migrate`, or the exporter's own migrate with the "
             "embedded engine); changing it later is an administrator's `ALTER TABLE ... MODIFY TTL` "
             "(docs/clickhouse.md). ClickHouse deletes expired rows in background merges. The log file is "
             "for shippers; "
             f"`{schemas.LOGS_HFT.name}` is the durable copy.", ""]
            + _table(("data", "kept", "set by"), rows))


def _access() -> list[str]:
    mode = inspect.signature(LogFile).parameters["mode"].default
    user = config.BY_KEY["clickhouse.user"]
    return [
        "## Access", "",
        f"- `{ddl.WRITER_ROLE}` may only INSERT into {_code(ddl.written_tables())}: the exporter's role "
        f"(setting `{user.key}`, default `{user.default}`).",
        f"- `{ddl.READER_ROLE}` may only SELECT from {_code(ddl.read_tables())}: dashboards, `hftel audit query`.",
        "- Neither may ALTER, DELETE, TRUNCATE or DROP; rows leave only by TTL. The grants are "
        "`exporter/clickhouse/roles.sql` (`python -m hftel_exporter.ddl roles`).",
        f"- The engine JSON log file is created with mode `{mode:04o}`.",
        "",
    ]


def markdown() -> str:
    """The contract, as committed in contracts/observability.md."""
    sections = (_header(), _rules(), _engine_metrics(), _exporter_metrics(), _seed_names(), _logs(), _tables(),
                _retention(), _access())
    text = "\n".join(line for section in sections for line in section)
    return text.rstrip("\n") + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 with a unified diff when contracts/observability.md is not what this generates")
    args = parser.parse_args(argv)
    text = markdown()
    if not args.check:
        sys.stdout.write(text)
        return 0
    committed = CONTRACT.read_text(encoding="utf-8") if CONTRACT.exists() else ""
    if committed == text:
        return 0
    sys.stdout.writelines(difflib.unified_diff(committed.splitlines(keepends=True), text.splitlines(keepends=True),
                                               "contracts/observability.md (committed)", "generated"))
    print(f"\ncontracts/observability.md is stale: run `{COMMAND}`", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
