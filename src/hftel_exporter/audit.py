"""`hftel audit` and `hftel migrate`: query and check the audit tables, and apply the schema.

    hftel audit query "SELECT count() FROM hftel.audit_orders" [--format CSV]
    hftel audit query - < report.sql
    hftel audit verify [--table audit_orders ...] [--since 2025-01-02T08:45:00+08:00] [--json]
    hftel migrate [--cluster NAME] [--print]

All three read the exporter's settings (the same `--config` file, `HFTEL_*` variables and
`--clickhouse.*` flags as `hftel exporter`) and run against the sink they name: a ClickHouse server
(`clickhouse.url`), or the embedded engine's data directory (`clickhouse.embedded_path`). While the
exporter runs with the embedded engine it holds that directory; `hftel audit` then asks the
exporter over its query socket, beside the data directory (hftel_exporter.querysocket), where
queries are read-only. With no exporter running, `hftel audit` opens the directory itself,
read-only too. On a server, what a query may do is what the ClickHouse user's grants allow (the
hftel_reader role: SELECT only).

Exit status: 0 on success (verify: every source complete and unique), 1 when the query fails or
verify finds a gap or a duplicate, 2 for a bad flag or setting.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any, Sequence

from hftel.errors import HftelError
from hftel.schemas import AUDIT_TABLES
from hftel_exporter.config import SETTINGS, ConfigError, load_config
from hftel_exporter.sinks import embedded_path, sink_kind

AUDIT_TABLE_NAMES = tuple(table.name for table in AUDIT_TABLES)
FIRST_RANGES = 5  # missing ranges verify lists per source


# -- settings --------------------------------------------------------------------------------------

def _add_settings(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="the exporter's TOML config file")
    group = parser.add_argument_group("ClickHouse settings", "as for `hftel exporter` (they override the config "
                                                             "file and HFTEL_CLICKHOUSE_* variables)")
    for setting in SETTINGS:
        if setting.section == "clickhouse":
            group.add_argument(setting.flag, dest=setting.key, metavar="VALUE",
                               help=f"{setting.help} [{setting.env}; default {setting.default!r}]")


def _quiet_driver() -> None:
    """A failure is reported in one line of ours; clickhouse-connect would log it again on stderr."""
    import logging

    logging.getLogger("clickhouse_connect").setLevel(logging.CRITICAL)


def _configured(prog: str, arguments: argparse.Namespace) -> SimpleNamespace | None:
    """The settings from --config, HFTEL_* and the --clickhouse.* flags; None (said on stderr) when wrong."""
    _quiet_driver()
    flags = {setting.key: value for setting in SETTINGS
             if setting.section == "clickhouse" and (value := getattr(arguments, setting.key, None)) is not None}
    try:
        return load_config(arguments.config, flags=flags)
    except ConfigError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return None


def _in_use(error: Exception) -> bool:
    """Whether chdb could not open a data directory because another process holds it."""
    text = str(error)
    return "Cannot lock file" in text or "Another server instance" in text


def open_reader(config: SimpleNamespace) -> Any:
    """What queries run on: the ClickHouse server, the exporter's query socket, or the embedded
    data directory opened read-only. HftelError when there is none."""
    from hftel_exporter import querysocket
    from hftel_exporter.sinks import open_sink

    kind = sink_kind(config)
    if kind == "off":
        raise HftelError("no sink configured: clickhouse.sink is 'off'; set clickhouse.url for a ClickHouse server "
                         "or clickhouse.sink = 'embedded'")
    if kind == "clickhouse":
        return open_sink(config)
    data = embedded_path(config)
    socket_path = querysocket.default_socket_path(data)
    if querysocket.answering(socket_path):
        return querysocket.SocketSink(socket_path, config.clickhouse.database)
    if not os.path.isdir(data):
        raise HftelError(f"no embedded ClickHouse at {data}: the exporter has not run with the embedded sink there "
                         f"(clickhouse.embedded_path)")
    in_use = HftelError(
        f"the embedded ClickHouse at {data} is in use by another process and nobody answers on its query socket "
        f"{socket_path}: wait for that process (another `hftel audit` or `hftel migrate`) to finish, or stop it (an "
        f"exporter that serves no query socket)")
    if querysocket.in_use(data):
        raise in_use
    try:
        return querysocket.ReadOnlyEmbedded(data, config.clickhouse.database)
    except HftelError as error:
        if _in_use(error):  # taken between the check and the open
            raise in_use from None
        raise


# -- verify ----------------------------------------------------------------------------------------

def parse_since(text: str) -> datetime:
    """An ISO 8601 time; without an offset it is UTC (the audit tables' `ts` is UTC)."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time such as 2025-01-02T08:45:00+08:00") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def verify_sql(database: str = "hftel", tables: Sequence[str] = AUDIT_TABLE_NAMES, since: datetime | str | None = None,
               ranges: int = FIRST_RANGES) -> str:
    """The query `hftel audit verify` runs: one row per source_id over the (source_id, seq) of
    `tables` (rows with ts >= `since` when given).

    A writer numbers its rows 1, 2, 3, ... across all five audit tables (`seq`, per `source_id`), so
    a source's first row has seq 1 and a complete source holds every seq from 1 to its highest:
    missing = max_seq - distinct_seqs, and duplicates = rows - distinct_seqs. With `since` the
    window starts inside the sequence: missing counts from the window's first seq instead
    (max_seq - min_seq + 1 - distinct_seqs), and a gap just before it goes unseen. With only some
    of the tables, the seqs of the rows in the others count as missing.

    Columns: source_id, rows, distinct_seqs, min_seq, max_seq, duplicates, missing,
    missing_ranges (how many runs of missing seqs) and first_missing_ranges (the first `ranges`
    runs, as [first, last] seq pairs), found by comparing each distinct seq with the one before it
    (lagInFrame over the source's seqs in order).
    """
    from hftel.schemas import checked_database

    database = checked_database(database)
    unknown = [table for table in tables if table not in AUDIT_TABLE_NAMES]
    if unknown or not tables:
        raise ValueError(f"tables: {unknown or 'none'}: expected some of {', '.join(AUDIT_TABLE_NAMES)}")
    if isinstance(since, str):
        since = parse_since(since)
    where = ""
    if since is not None:
        utc = since.astimezone(timezone.utc) if since.tzinfo else since.replace(tzinfo=timezone.utc)
        where = f" WHERE ts >= toDateTime64('{utc.strftime('%Y-%m-%d %H:%M:%S.%f')}', 6, 'UTC')"
    union = "\n            UNION ALL\n".join(
        f"            SELECT source_id, seq FROM {database}.{table}{where}" for table in dict.fromkeys(tables))
    first_prev = "toUInt64(seq - 1)" if since is not None else "toUInt64(0)"  # seq before a source's first row
    missing = ("toInt64(max_seq) - toInt64(min_seq) + 1 - toInt64(distinct_seqs)" if since is not None
               else "toInt64(max_seq) - toInt64(distinct_seqs)")
    return f"""SELECT
    source_id,
    sum(copies) AS rows,
    count() AS distinct_seqs,
    min(seq) AS min_seq,
    max(seq) AS max_seq,
    toInt64(rows) - toInt64(distinct_seqs) AS duplicates,
    {missing} AS missing,
    countIf(seq > prev + 1) AS missing_ranges,
    groupArraySortedIf({int(ranges)})((prev + 1, seq - 1), seq > prev + 1) AS first_missing_ranges
FROM
(
    SELECT
        source_id,
        seq,
        copies,
        lagInFrame(seq, 1, {first_prev}) OVER (PARTITION BY source_id ORDER BY seq ASC
                                                ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS prev
    FROM
    (
        SELECT source_id, seq, count() AS copies
        FROM
        (
{union}
        )
        GROUP BY source_id, seq
    )
)
GROUP BY source_id
ORDER BY source_id"""


def _source(row: dict[str, Any]) -> dict[str, Any]:
    """A verify row with its numbers as ints (JSON may quote 64-bit integers) and `ok`."""
    source = {key: int(row[key]) for key in ("source_id", "rows", "distinct_seqs", "min_seq", "max_seq",
                                             "duplicates", "missing", "missing_ranges")}
    source["first_missing_ranges"] = [[int(first), int(last)] for first, last in row["first_missing_ranges"]]
    source["ok"] = source["duplicates"] == 0 and source["missing"] == 0
    return source


def _ranges(source: dict[str, Any]) -> str:
    shown = [f"{first}" if first == last else f"{first}-{last}" for first, last in source["first_missing_ranges"]]
    more = source["missing_ranges"] - len(shown)
    return (", ".join(shown) + (f", ... (+{more} more)" if more > 0 else "")) or "-"


def render(sources: list[dict[str, Any]]) -> str:
    """The verify report: one line per source, then the summary line."""
    header = ("source_id", "rows", "distinct", "min_seq", "max_seq", "duplicates", "missing", "first missing seqs")
    lines = [(str(s["source_id"]), str(s["rows"]), str(s["distinct_seqs"]), str(s["min_seq"]), str(s["max_seq"]),
              str(s["duplicates"]), str(s["missing"]), _ranges(s)) for s in sources]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header) - 1)]
    text = []
    for row in [header, *lines]:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:-1], widths[1:])]
        text.append("  ".join(cells + [row[-1]]).rstrip())
    return ("\n".join(text) + "\n" if sources else "") + summary(sources) + "\n"


def summary(sources: list[dict[str, Any]]) -> str:
    rows = sum(s["rows"] for s in sources)
    bad = [s for s in sources if not s["ok"]]
    if not sources:
        return "OK: no audit rows"
    if not bad:
        return f"OK: {len(sources)} source(s), {rows} row(s): every seq present once"
    return (f"FAIL: {len(bad)} of {len(sources)} source(s) incomplete or duplicated: "
            f"{sum(s['missing'] for s in bad)} seq(s) missing, {sum(s['duplicates'] for s in bad)} duplicate row(s)")


# -- hftel audit -----------------------------------------------------------------------------------

def _write_result(reader: Any, sql: str, fmt: str | None) -> int:
    """Runs `sql` and writes the engine's output: a table on a terminal, else tab-separated with names."""
    fmt = fmt or ("PrettyCompactMonoBlock" if sys.stdout.isatty() else "TabSeparatedWithNames")
    sys.stdout.buffer.write(reader.query(sql, fmt))
    sys.stdout.flush()
    return 0


def _query(arguments: argparse.Namespace, config: SimpleNamespace, reader: Any) -> int:
    return _write_result(reader, sys.stdin.read() if arguments.sql == "-" else arguments.sql, arguments.format)


def _trace(arguments: argparse.Namespace, config: SimpleNamespace, reader: Any) -> int:
    from hftel.traces import trace_sql

    if arguments.print_sql:
        print(trace_sql(arguments.intent_id, config.clickhouse.database))
        return 0
    return _write_result(reader, trace_sql(arguments.intent_id, config.clickhouse.database), arguments.format)


def _verify(arguments: argparse.Namespace, config: SimpleNamespace, reader: Any) -> int:
    tables = tuple(dict.fromkeys(arguments.table)) if arguments.table else AUDIT_TABLE_NAMES
    sql = verify_sql(config.clickhouse.database, tables, arguments.since)
    sources = [_source(row) for row in reader.query_rows(sql)]
    if arguments.json:
        sys.stdout.write("".join(json.dumps(source) + "\n" for source in sources))
    else:
        sys.stdout.write(render(sources))
    return 0 if all(source["ok"] for source in sources) else 1


def build_audit_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hftel audit",
        description="Query the audit tables in the configured sink (read-only), or check every source's sequence "
                    "numbers for gaps and duplicates.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{query,trace,verify}")
    query = commands.add_parser(
        "query", help="run SQL against the configured sink and write the result to stdout",
        description="Run one read-only SQL statement against the configured sink and write the engine's output "
                    "to stdout. With the embedded engine, an exporter that holds the data directory answers on its "
                    "query socket.")
    query.add_argument("sql", help="the SQL; '-' reads it from stdin")
    query.add_argument("--format", metavar="F",
                       help="ClickHouse output format (default: PrettyCompactMonoBlock on a terminal, else "
                            "TabSeparatedWithNames)")
    _add_settings(query)
    query.set_defaults(run=_query)
    trace = commands.add_parser(
        "trace", help="every row of every table about one intent, oldest first",
        description="Follow one strategy intent through the audit tables and logs_hft in a single query: the rows "
                    "with its intent_id, and the rows its flow caused (a StormGuard transition, a gateway drop, a "
                    "configuration change) through its correlation_id.")
    trace.add_argument("intent_id", type=int, help="the intent's id (intent_id in audit_orders and the logs)")
    trace.add_argument("--format", metavar="F", help="ClickHouse output format (as for query)")
    trace.add_argument("--print-sql", action="store_true", help="print the SQL instead of running it")
    _add_settings(trace)
    trace.set_defaults(run=_trace)
    verify = commands.add_parser(
        "verify", help="report gaps and duplicates in every source's sequence numbers",
        description="For every source_id in the audit tables: its rows, distinct seqs, lowest and highest seq, "
                    "duplicates and missing seqs (a source's first row has seq 1), and the first missing ranges. "
                    "Exit 0 when every source is complete and unique, 1 otherwise.")
    verify.add_argument("--table", action="append", choices=AUDIT_TABLE_NAMES, metavar="T",
                        help="check only this audit table (repeatable; default all five). A writer numbers its rows "
                             "across all five, so the seqs of the others count as missing")
    verify.add_argument("--since", type=parse_since, metavar="ISO-TIME",
                        help="only rows with ts at or after this time (UTC without an offset); seqs then count from "
                             "each source's first seq in the window")
    verify.add_argument("--json", action="store_true", help="one JSON object per source, one per line")
    _add_settings(verify)
    verify.set_defaults(run=_verify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """`hftel audit ...`"""
    arguments = build_audit_parser().parse_args(argv)
    config = _configured("hftel audit", arguments)
    if config is None:
        return 2
    try:
        reader = open_reader(config)
        try:
            return arguments.run(arguments, config, reader)
        finally:
            reader.close()
    except KeyboardInterrupt:
        return 130
    except (HftelError, OSError, ValueError) as error:
        print(f"hftel audit: {error}", file=sys.stderr)
        return 1


# -- hftel migrate ---------------------------------------------------------------------------------

def build_migrate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hftel migrate",
        description="Create the database, the audit tables, logs_hft and schema_migrations in the configured sink "
                    "when missing (idempotent), check the tables against this hftel's schema and record its version. "
                    "On a server this needs an administrator: --clickhouse.user with the password in "
                    "clickhouse.password_file or HFTEL_CLICKHOUSE_PASSWORD.")
    parser.add_argument("--cluster", metavar="NAME", help="create the tables ON CLUSTER NAME, replicated (server only)")
    parser.add_argument("--print", action="store_true", dest="print_sql",
                        help="print the SQL statements instead of connecting")
    _add_settings(parser)
    return parser


def migrate_main(argv: Sequence[str] | None = None) -> int:
    """`hftel migrate ...`"""
    from hftel_exporter import ddl, querysocket

    arguments = build_migrate_parser().parse_args(argv)
    config = _configured("hftel migrate", arguments)
    if config is None:
        return 2
    settings = config.clickhouse
    if arguments.print_sql:
        try:
            statements = ddl.statements(settings.database, settings.audit_ttl, settings.logs_ttl, arguments.cluster)
        except ValueError as error:
            print(f"hftel migrate: {error}", file=sys.stderr)
            return 2
        sys.stdout.write("".join(statement + ";\n\n" for statement in statements))
        sys.stdout.write(f"-- hftel migrate then records schema version {ddl.SCHEMA_VERSION} in "
                         f"{settings.database}.{ddl.MIGRATIONS_TABLE}\n")
        return 0
    kind = sink_kind(config)
    try:
        if kind == "off":
            raise HftelError("no sink configured: clickhouse.sink is 'off'")
        if kind == "embedded":
            sink, where = _open_embedded_for_migrate(config, arguments.cluster, querysocket)
        else:
            from hftel_exporter.sinks import open_sink

            sink, where = open_sink(config), f"ClickHouse at {settings.url} as {settings.user}"
        try:
            version = ddl.migrate(sink.command, sink.query_rows, database=settings.database,
                                  audit_ttl=settings.audit_ttl, logs_ttl=settings.logs_ttl, cluster=arguments.cluster)
        finally:
            sink.close()
    except KeyboardInterrupt:
        return 130
    except (HftelError, OSError, ValueError) as error:
        hint = ""
        if kind == "clickhouse" and ("Code: 497" in str(error) or "ACCESS_DENIED" in str(error)):
            hint = (f" (migrate needs an administrator: --clickhouse.user NAME, the password in "
                    f"clickhouse.password_file or HFTEL_CLICKHOUSE_PASSWORD; {settings.user} may not)")
        print(f"hftel migrate: {error}{hint}", file=sys.stderr)
        return 1
    print(f"schema version {version}: database {settings.database} on {where}")
    return 0


def _open_embedded_for_migrate(config: SimpleNamespace, cluster: str | None, querysocket: Any) -> tuple[Any, str]:
    from hftel_exporter.sinks import EmbeddedSink

    if cluster is not None:
        raise HftelError("--cluster needs a ClickHouse server (clickhouse.url); the embedded engine has no cluster")
    data = embedded_path(config)
    socket_path = querysocket.default_socket_path(data)
    running = (f"the exporter is running with the embedded ClickHouse at {data} (its query socket {socket_path} "
               f"answers); it migrates its database itself at start (clickhouse.migrate), so there is nothing to do "
               f"here. Stop it first to migrate by hand")
    if querysocket.answering(socket_path):
        raise HftelError(running)
    in_use = HftelError(f"the embedded ClickHouse at {data} is in use by another process (an exporter, which "
                        f"migrates its database itself at start, or `hftel audit`): stop it first")
    if querysocket.in_use(data):
        raise in_use
    try:
        return EmbeddedSink(data, config.clickhouse.database), f"embedded ClickHouse at {data}"
    except HftelError as error:
        if _in_use(error):  # taken between the check and the open
            raise in_use from None
        raise
