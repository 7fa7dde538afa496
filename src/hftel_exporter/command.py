"""`hftel exporter`: reads the config, starts the HTTP server and runs the main loop under systemd.

    hftel exporter --config /etc/hftel/exporter.toml
    hftel exporter --config exporter.toml --check-config
    hftel exporter --segments.paths '/dev/shm/hftel-*' --web.listen-address 127.0.0.1:9477

Every setting of hftel_exporter.config is also a flag here and an `HFTEL_*` variable.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import SimpleNamespace
from typing import Sequence

from hftel.errors import HftelError
from hftel_exporter.config import SETTINGS, ConfigError, describe, load_config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hftel exporter",
        description="Serve hftel segments as Prometheus metrics. Settings come from the config file, then HFTEL_* "
                    "environment variables, then these flags.")
    parser.add_argument("--config", metavar="FILE", help="TOML config file (see exporter/systemd/exporter.toml)")
    parser.add_argument("--check-config", action="store_true",
                        help="validate the settings and the web config file, print the effective settings, exit")
    for setting in SETTINGS:
        parser.add_argument(setting.flag, dest=setting.key, metavar="VALUE",
                            action="append" if setting.type is list else "store",
                            help=f"{setting.help} [{setting.env}; default {setting.default!r}]")
    return parser


def _flags(arguments: argparse.Namespace) -> dict[str, object]:
    return {setting.key: value for setting in SETTINGS
            if (value := getattr(arguments, setting.key)) is not None}


def _load(arguments: argparse.Namespace) -> tuple[SimpleNamespace, object]:
    """The config and the parsed web config file; raises ConfigError or WebConfigError."""
    from hftel_exporter.webconfig import load_web_config

    config = load_config(arguments.config, flags=_flags(arguments))
    web = load_web_config(config.web.config_file or None)
    return config, web


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    try:
        config, web = _load(arguments)
    except (ConfigError, HftelError) as error:
        print(f"hftel exporter: {error}", file=sys.stderr)
        return 2
    if arguments.check_config:
        print(f"# {arguments.config or 'no config file'}: OK")
        print(describe(config), end="")
        return 0
    return run(config, web)


def run(config: SimpleNamespace, web: object) -> int:
    """Serves until SIGTERM or SIGINT; tells systemd when it is ready, alive and stopping."""
    from hftel_exporter.exporter import Exporter
    from hftel_exporter.log import configure
    from hftel_exporter.server import MetricsServer, parse_listen_address
    from hftel_exporter.systemd import Notifier

    log = configure(config.log.level, config.log.format)
    exporter = Exporter(config, log)
    exporter.tick()
    # Host and engine process metrics (psutil) on a thread of their own; None when host.enabled is false.
    from hftel_exporter.host import start_host
    exporter.host = start_host(config, exporter.attachments, log)
    try:
        exporter.drain = build_drain(config, log)
    except HftelError as error:
        log.error("cannot start the drain", error=str(error))
        return 1
    host, port = parse_listen_address(config.web.listen_address)
    if host in ("", "0.0.0.0", "::"):
        log.warning("listening on every interface; /metrics is reachable from the network", address=config.web.listen_address)
    for note in getattr(web, "notes", ()):
        log.warning("web config", note=note)
    server = MetricsServer((host, port), exporter, web=web, telemetry_path=config.web.telemetry_path,
                           log=lambda event, fields: log.warning(event, **fields))
    try:
        server.start()
    except OSError as error:
        log.error("cannot listen", address=config.web.listen_address, error=str(error))
        return 1
    # ClickHouse's system tables on a thread of its own (None when the sink is off or health_interval is 0).
    from hftel_exporter.clickhouse_health import start_health
    exporter.health = start_health(exporter.drain, config.clickhouse.health_interval, log)
    # `hftel audit query` while this process holds the embedded data directory: read-only queries
    # on a Unix socket beside it (None unless the sink is embedded; see hftel_exporter.querysocket).
    from hftel_exporter.querysocket import serve_embedded
    query_server = serve_embedded(exporter.drain, log)
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())
    notifier = Notifier.from_environment()
    log.info("exporter started", address=f"{host}:{server.port}", tls=getattr(web, "tls", None) is not None,
             segments=config.segments.paths, attached=len(exporter.segments.attached))
    if exporter.drain is not None:
        exporter.drain.start(exporter.attachments)
    notifier.ready(status=_status(exporter))
    interval = min(config.segments.scan_interval, notifier.watchdog_interval or config.segments.scan_interval)
    try:
        while not stop.wait(interval):
            exporter.tick()
            notifier.watchdog()
            notifier.status(_status(exporter))
    finally:
        notifier.stopping()
        server.shutdown()
        if exporter.host is not None:
            exporter.host.stop()
        if exporter.health is not None:  # before the drain closes the sink
            exporter.health.stop()
        if query_server is not None:  # before the drain closes the sink
            query_server.stop()
        if exporter.drain is not None:
            exporter.drain.stop()
        log.info("exporter stopped")
    return 0


def build_drain(config: SimpleNamespace, log: object) -> object:
    """The drain the [clickhouse], [spool], [drain] and [logfile] settings describe (None when the sink
    is 'off'): the sink opened and migrated, the spool loaded for replay, the log file opened."""
    from hftel_exporter import ddl
    from hftel_exporter.config import logfile_path, state_path
    from hftel_exporter.drain import Drain
    from hftel_exporter.logfiles import LogFile
    from hftel_exporter.sinks import open_sink
    from hftel_exporter.spool import Spool

    sink = open_sink(config)
    if sink is None:
        return None
    settings = config.clickhouse

    def prepare() -> None:
        version = ddl.migrate(sink.command, sink.query_rows, database=settings.database,
                              audit_ttl=settings.audit_ttl, logs_ttl=settings.logs_ttl)
        log.info("schema ready", sink=sink.name, database=settings.database, version=version)

    spool = Spool(config.spool.path or state_path("spool"), config.spool.max_bytes)
    for problem in spool.damaged:
        log.critical("damaged spool entry moved aside", problem=problem)
    if spool.entries():
        log.info("replaying the spool", batches=len(spool.entries()), bytes=spool.bytes)
    path = logfile_path(config)
    log_file = LogFile(path, max_bytes=config.logfile.max_bytes, rotate_interval=config.logfile.rotate_interval,
                       backups=config.logfile.backups) if path else None
    return Drain(spool, sink, batch_rows=config.drain.batch_rows, batch_interval=config.drain.batch_interval,
                 log=log, log_file=log_file, prepare=prepare if settings.migrate else None)


def _status(exporter: object) -> str:
    attached = exporter.segments.attached  # type: ignore[attr-defined]
    return f"{len(attached)} segment(s) attached"
