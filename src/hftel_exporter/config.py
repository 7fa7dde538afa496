"""The exporter's settings: declared once, read from a TOML file, `HFTEL_*` variables and flags.

Every setting is a `section.name` key. The same declaration gives its TOML place (`[web]
listen_address`), its environment variable (`HFTEL_WEB_LISTEN_ADDRESS`) and its flag
(`--web.listen-address`). Later sources win: defaults, then the file, then the environment, then
flags. A key that does not exist, or a value of the wrong type, stops the exporter at start with a
message that names the key and where it came from.

    >>> config = load_config(None, environ={"HFTEL_WEB_LISTEN_ADDRESS": "127.0.0.1:9000"})
    >>> config.web.listen_address
    '127.0.0.1:9000'
"""
from __future__ import annotations

import difflib
import math
import os
import re
import sys
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable, Mapping, Sequence

from hftel.errors import HftelError
from hftel.schemas import AUDIT_ORDERS, LOGS_HFT, checked_database, checked_interval
from hftel.telemetry import DEFAULT_DIRECTORY

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


class ConfigError(HftelError):
    """A setting that does not exist or does not hold; the message names the key and its source."""


def _choice(*choices: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
    return check


def _positive(value: float) -> None:
    if value <= 0:
        raise ValueError(f"must be > 0, got {value}")


def _seconds_or_off(value: float) -> None:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"must be a number of seconds >= 0 (0 turns it off), got {value}")


def _absolute_path(value: str) -> None:
    if not value.startswith("/"):
        raise ValueError(f"must start with '/', got {value!r}")


def _listen_address(value: str) -> None:
    from hftel_exporter.server import parse_listen_address

    parse_listen_address(value)


def _url(value: str) -> None:
    if value and not re.match(r"^https?://[^/\s]+(/.*)?$", value):
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
    if "@" in value.split("//", 1)[-1].split("/", 1)[0]:
        raise ValueError("put the password in clickhouse.password_file or HFTEL_CLICKHOUSE_PASSWORD, not the URL")


def _from_schemas(check: Callable[[Any, str], Any]) -> Callable[[Any], None]:
    """One of hftel.schemas' checks (database names, TTL intervals), the same rules as the DDL's."""
    def run(value: Any) -> None:
        try:
            check(value, "")
        except ValueError as problem:
            raise ValueError(str(problem).removeprefix(": ")) from None
    return run


def _nonempty(value: list) -> None:
    if not value:
        raise ValueError("needs at least one path or glob")


@dataclass(frozen=True)
class Setting:
    """One setting: where it lives, its type, its default and what it means."""

    section: str
    name: str
    type: type
    default: Any
    help: str
    check: Callable[[Any], None] | None = None

    @property
    def key(self) -> str:
        return f"{self.section}.{self.name}"

    @property
    def env(self) -> str:
        return f"HFTEL_{self.section}_{self.name}".upper()

    @property
    def flag(self) -> str:
        return f"--{self.section}.{self.name.replace('_', '-')}"


SETTINGS: tuple[Setting, ...] = (
    Setting("segments", "paths", list, [f"{DEFAULT_DIRECTORY}/hftel-*"],
            "Segment files or globs to attach; files that appear later are picked up.", _nonempty),
    Setting("segments", "engine_label", str, "engine",
            "Label naming the engine (the segment file without 'hftel-') on every series; '' for none."),
    Setting("segments", "scan_interval", float, 1.0,
            "Seconds between scans for new, recreated and deleted segments (a scrape also scans).", _positive),
    Setting("segments", "stale_after", float, 2.0,
            "Seconds without a heartbeat after which an engine is reported down.", _positive),
    Setting("web", "listen_address", str, "127.0.0.1:9477",
            "host:port to serve on; loopback by default. ':9477' listens on every interface.", _listen_address),
    Setting("web", "telemetry_path", str, "/metrics", "Path of the metrics endpoint.", _absolute_path),
    Setting("web", "config_file", str, "",
            "Web configuration file for TLS and basic auth, in the Prometheus exporter-toolkit format."),
    Setting("clickhouse", "sink", str, "auto",
            "Where audit rows and log events go: 'clickhouse' (a server at clickhouse.url), 'embedded' (the "
            "ClickHouse engine in-process, at clickhouse.embedded_path), 'auto' (clickhouse when a url is set, "
            "else embedded) or 'off' (no drain: metrics only).", _choice("auto", "clickhouse", "embedded", "off")),
    Setting("clickhouse", "url", str, "", "ClickHouse HTTP(S) URL, e.g. http://127.0.0.1:8123; '' for none.",
            _url),
    Setting("clickhouse", "user", str, "hftel_writer", "ClickHouse user; it needs only the hftel_writer role."),
    Setting("clickhouse", "password_file", str, "",
            "File holding the ClickHouse password. Default: $CREDENTIALS_DIRECTORY/clickhouse-password under "
            "systemd, else the HFTEL_CLICKHOUSE_PASSWORD variable; never logged."),
    Setting("clickhouse", "database", str, "hftel", "Database of the audit and log tables.",
            _from_schemas(checked_database)),
    Setting("clickhouse", "embedded_path", str, "",
            "Data directory of the embedded engine; '' for $STATE_DIRECTORY/chdb (systemd) or "
            "~/.local/state/hftel-exporter/chdb."),
    Setting("clickhouse", "migrate", bool, True,
            "Create the database, tables and schema version at start when missing (idempotent)."),
    Setting("clickhouse", "audit_ttl", str, AUDIT_ORDERS.retention,
            "How long audit rows are kept (a ClickHouse interval).",
            _from_schemas(checked_interval)),
    Setting("clickhouse", "logs_ttl", str, LOGS_HFT.retention, "How long log events are kept in logs_hft.",
            _from_schemas(checked_interval)),
    Setting("clickhouse", "insert_timeout", float, 30.0, "Seconds an insert may take before it is retried.",
            _positive),
    Setting("clickhouse", "health_interval", float, 5.0,
            "Seconds between reads of ClickHouse's system tables (parts, merges, mutations, disks) for the "
            "hftel_clickhouse_* health metrics, on a thread of their own; 0 turns them off.", _seconds_or_off),
    Setting("spool", "path", str, "",
            "Directory of the durable spool; '' for $STATE_DIRECTORY/spool (systemd) or "
            "~/.local/state/hftel-exporter/spool."),
    Setting("spool", "max_bytes", int, 1 << 30,
            "Spool size cap. At the cap the drain stops reading the rings (engines spill, nothing is dropped) "
            "and hftel_spool_full says so.", _positive),
    Setting("drain", "batch_rows", int, 100_000, "Rows per batch at most.", _positive),
    Setting("drain", "batch_interval", float, 1.0, "Seconds a batch may wait for more rows.", _positive),
    Setting("logfile", "path", str, "",
            "JSON lines file of the engines' log events, for fluent-bit or vector; '' for "
            "$LOGS_DIRECTORY/engine.json under systemd, else none."),
    Setting("logfile", "max_bytes", int, 100 << 20, "Rotate the log file at this size.", _positive),
    Setting("logfile", "rotate_interval", float, 86400.0, "Rotate the log file after this many seconds.",
            _positive),
    Setting("logfile", "backups", int, 7, "Rotated log files kept.", _positive),
    Setting("host", "enabled", bool, True,
            "Collect host metrics (CPU, load, memory, network, disks, filesystems, temperatures) and each attached "
            "engine's process metrics (CPU, memory, threads, files) with psutil, every scan interval on a thread "
            "of their own."),
    Setting("log", "level", str, "info", "Exporter log level.", _choice("debug", "info", "warning", "error")),
    Setting("log", "format", str, "json", "Exporter log lines on stderr: json or console.",
            _choice("json", "console")),
)

BY_KEY = {setting.key: setting for setting in SETTINGS}
SECTIONS = tuple(dict.fromkeys(setting.section for setting in SETTINGS))

_TYPE_NAMES = {str: "a string", float: "a number", int: "an integer", bool: "true or false",
               list: "a list of strings"}


def _coerce(setting: Setting, value: Any) -> Any:
    """A value from TOML (already typed) checked against the setting's type."""
    if setting.type is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if setting.type is list and isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    if setting.type is not list and isinstance(value, setting.type) and not (
            isinstance(value, bool) and setting.type is not bool):
        return value
    raise ValueError(f"expected {_TYPE_NAMES[setting.type]}, got {type(value).__name__} {value!r}")


def _parse_text(setting: Setting, text: str) -> Any:
    """A value from the environment or a flag, where everything arrives as text."""
    if setting.type is list:
        return [item.strip() for item in text.split(",") if item.strip()]
    if setting.type is bool:
        lowered = text.strip().lower()
        if lowered not in ("1", "0", "true", "false", "yes", "no"):
            raise ValueError(f"expected true or false, got {text!r}")
        return lowered in ("1", "true", "yes")
    if setting.type in (int, float):
        try:
            return setting.type(text)
        except ValueError:
            raise ValueError(f"expected {_TYPE_NAMES[setting.type]}, got {text!r}") from None
    return text


def _unknown(key: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f"unknown key {key}" + (f" (did you mean {close[0]}?)" if close else "")


def _read_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as file:
            document = tomllib.load(file)
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    values: dict[str, Any] = {}
    for section, table in document.items():
        if section not in SECTIONS:
            raise ConfigError(f"{path}: {_unknown(section, SECTIONS).replace('key', 'section')}")
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {section} must be a table ([{section}]), got {table!r}")
        for name, value in table.items():
            key = f"{section}.{name}"
            if key not in BY_KEY:
                raise ConfigError(f"{path}: {_unknown(key, list(BY_KEY))}")
            try:
                values[key] = _coerce(BY_KEY[key], value)
            except ValueError as problem:
                raise ConfigError(f"{path}: {key}: {problem}") from None
    return values


def load_config(path: str | None, *, environ: Mapping[str, str] | None = None,
                flags: Mapping[str, str | list[str]] | None = None) -> SimpleNamespace:
    """Defaults, then the file at `path`, then `HFTEL_*` variables, then flags (key -> text).

    Returns a namespace per section (`config.web.listen_address`); raises ConfigError.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {setting.key: setting.default for setting in SETTINGS}
    shm = environ.get("HFTEL_SHM_DIR")
    if shm:
        values["segments.paths"] = [f"{shm.rstrip('/')}/hftel-*"]
    if path:
        values.update(_read_file(path))
    for setting in SETTINGS:
        if setting.env in environ:
            values[setting.key] = _from_text(setting, environ[setting.env], f"environment {setting.env}")
    for key, text in (flags or {}).items():
        setting = BY_KEY[key]
        joined = ",".join(text) if isinstance(text, list) else text
        values[key] = _from_text(setting, joined, f"flag {setting.flag}")
    for setting in SETTINGS:
        if setting.check is not None:
            try:
                setting.check(values[setting.key])
            except ValueError as problem:
                raise ConfigError(f"{setting.key}: {problem}") from None
    sections = {section: SimpleNamespace() for section in SECTIONS}
    for key, value in values.items():
        section, name = key.split(".", 1)
        setattr(sections[section], name, value)
    config = SimpleNamespace(**sections)
    config.source = path
    return config


def _from_text(setting: Setting, text: str, origin: str) -> Any:
    try:
        return _parse_text(setting, text)
    except ValueError as problem:
        raise ConfigError(f"{origin} ({setting.key}): {problem}") from None


def describe(config: SimpleNamespace) -> str:
    """The effective settings as TOML, for `--check-config`."""
    out = []
    for section in SECTIONS:
        out.append(f"[{section}]")
        for setting in (s for s in SETTINGS if s.section == section):
            value = getattr(getattr(config, section), setting.name)
            text = "[" + ", ".join(f'"{v}"' for v in value) + "]" if isinstance(value, list) else (
                f'"{value}"' if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else value)
            out.append(f"{setting.name} = {text}")
        out.append("")
    return "\n".join(out)


#: The engines' JSON log file in systemd's LogsDirectory (the shipper examples tail it).
LOG_FILE_NAME = "engine.json"


def state_path(name: str, environ: Mapping[str, str] | None = None) -> str:
    """Where the exporter keeps `name` when its setting is '': systemd's StateDirectory, else the
    user's state directory (~/.local/state/hftel-exporter)."""
    environ = os.environ if environ is None else environ
    base = environ.get("STATE_DIRECTORY", "").split(":")[0] or os.path.join(
        environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "hftel-exporter")
    return os.path.join(base, name)


def logfile_path(config: SimpleNamespace, environ: Mapping[str, str] | None = None) -> str:
    """The engines' JSON log file: the setting, else $LOGS_DIRECTORY/engine.json under systemd, else ''."""
    environ = os.environ if environ is None else environ
    if config.logfile.path:
        return config.logfile.path
    logs = environ.get("LOGS_DIRECTORY", "").split(":")[0]
    return os.path.join(logs, LOG_FILE_NAME) if logs else ""
