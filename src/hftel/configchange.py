"""Audited configuration changes: every change made through the CLI leaves a row in audit_config_changes.

The engine's configuration is a JSON file, a JSON object of nested sections; a key is a dotted path
such as `risk.mm.max_position`. `hftel config set` changes one key in three steps, in this order:

1. attach the engine's segment (if that fails, the file is not touched: no change was made);
2. write the file atomically (a temporary file beside it, fsync, rename, fsync of the directory);
3. write an audit row: who (operator id), where from (CLI), which key, the SHA-256 of the whole
   configuration before and after, and a unified diff. A full audit ring spills the row to disk
   next to the segment, so the row is not lost.

To verify a change, compare the file's hash with the row's `new_config_hash`:

    $ hftel config hash --config /etc/engine/config.json

    SELECT ts, operator_id, key, hex(old_config_hash), hex(new_config_hash)
    FROM hftel.audit_config_changes ORDER BY ts DESC LIMIT 10

(ClickHouse's hex() is upper case; `hftel config hash` prints lower case.) The hash covers the
canonical JSON, so reformatting the file or reordering its keys does not change it.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import difflib
import getpass
import hashlib
import json
import os
import tempfile
from typing import Any, Mapping

from hftel.errors import HftelError
from hftel.schemas import AUDIT_CONFIG_CHANGES

_WIDTHS = {column.name: column.width for column in AUDIT_CONFIG_CHANGES.columns}
MAX_OPERATOR_ID_BYTES = _WIDTHS["operator_id"]  # 32
MAX_KEY_BYTES = _WIDTHS["key"]  # 64
MAX_DIFF_BYTES = _WIDTHS["diff"]  # 1024
SOURCES = ("CLI", "GRPC")
NEW_FILE_MODE = 0o600
_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean",
               type(None): "null"}


class ConfigError(HftelError):
    """A configuration file or change that cannot be used; the message names the problem."""


class ConfigKeyError(ConfigError, KeyError):
    """A key that is not in the configuration; the message suggests close matches."""

    def __str__(self) -> str:  # KeyError's own __str__ would quote the message
        return str(self.args[0])


def _canonical(config: Mapping[str, Any]) -> str:
    return json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def config_hash(config: Mapping[str, Any]) -> bytes:
    """SHA-256 of the canonical JSON (sorted keys, no whitespace, UTF-8): what the audit row records."""
    return hashlib.sha256(_canonical(config).encode("utf-8")).digest()


def config_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """A unified diff (no context lines) of the two configurations as sorted, indented JSON, cut on
    a line boundary to fit the audit row's diff column, with a last line saying how much was cut."""
    def pretty(config: Mapping[str, Any]) -> list[str]:
        return json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False).splitlines()

    lines = list(difflib.unified_diff(pretty(old), pretty(new), "before", "after", n=0, lineterm=""))
    text = "\n".join(lines)
    if len(text.encode("utf-8")) <= MAX_DIFF_BYTES:
        return text
    kept, used = 0, 0
    for line in lines:  # keep a line if it and the cut line for the lines after it still fit
        size = len(line.encode("utf-8")) + 1
        if used + size + len(_cut_line(len(lines) - kept - 1)) > MAX_DIFF_BYTES:
            break
        kept, used = kept + 1, used + size
    return "\n".join(lines[:kept] + [_cut_line(len(lines) - kept)])


def _cut_line(count: int) -> str:
    return f"... (cut: {count} more lines)"


def _check_text(what: str, value: str, width: int) -> None:
    if not value:
        raise ConfigError(f"{what} is empty")
    if not value.isprintable():
        raise ConfigError(f"{what} {value!r} contains control characters")
    size = len(value.encode("utf-8"))
    if size > width:
        raise ConfigError(f"{what} {value!r} is {size} bytes long; the audit table holds at most {width}")


def _check_row(operator_id: str, key: str, source: str, correlation_id: int) -> None:
    _check_text("operator id", operator_id, MAX_OPERATOR_ID_BYTES)
    _check_text("key", key, MAX_KEY_BYTES)
    if source not in SOURCES:
        raise ConfigError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    if not 0 <= correlation_id < 1 << 64:
        raise ConfigError(f"correlation id must be an unsigned 64-bit integer, got {correlation_id}")


def record_config_change(audit: Any, *, operator_id: str, key: str, old_config: Mapping[str, Any],
                         new_config: Mapping[str, Any], source: str = "CLI", correlation_id: int = 0,
                         trace_id: bytes | None = None) -> int:
    """Writes the audit row of one change through `audit` (a Telemetry's `.audit`); returns its seq."""
    _check_row(operator_id, key, source, correlation_id)
    return audit.config_change(
        correlation_id=correlation_id, trace_id=trace_id, operator_id=operator_id, source=source, key=key,
        old_config_hash=config_hash(old_config), new_config_hash=config_hash(new_config),
        diff=config_diff(old_config, new_config))


def operator_identity(explicit: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """Who is making the change: `explicit` if given, else $SUDO_USER, else the login name."""
    if explicit is not None:
        return explicit
    if environ.get("SUDO_USER"):
        return environ["SUDO_USER"]
    try:
        return getpass.getuser()
    except (KeyError, OSError) as error:  # no login name and no passwd entry for this uid
        raise ConfigError(f"cannot tell who you are ({error}): pass --operator") from error


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")  # Python's json module would accept NaN and Infinity


def parse_value(text: str) -> Any:
    """A command-line value: JSON when it parses (10, true, null, [1, 2], "10"), else the text itself."""
    try:
        return json.loads(text, parse_constant=_not_json)
    except ValueError:
        return text


class ConfigFile:
    """The engine's configuration: a JSON file of nested objects, keys addressed as dotted paths.

    >>> config = ConfigFile("/tmp/hftel-doc-config.json")
    >>> _ = config.set("risk.mm.max_position", 10, create=True)   # create: new keys (and files) too
    >>> old, new = config.set("risk.mm.max_position", 20)          # written atomically, mode kept
    >>> config.get("risk.mm.max_position"), config_hash(new) == config_hash(config.load())
    (20, True)
    >>> config.set("risk.mm.max_postion", 30)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    hftel.configchange.ConfigKeyError: ...: no key 'risk.mm.max_postion' (did you mean 'risk.mm.max_position'?)

    Not safe against a concurrent writer of the same file: the last rename wins.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.fspath(path)

    def load(self) -> dict[str, Any]:
        """The configuration as a dict; a missing file, bad JSON or a top level that is not an object raise."""
        try:
            with open(self.path, encoding="utf-8") as file:
                config = json.load(file, parse_constant=_not_json)
        except FileNotFoundError:
            raise ConfigError(f"{self.path}: no such file") from None
        except UnicodeDecodeError as error:
            raise ConfigError(f"{self.path}: not UTF-8 ({error.reason} at byte {error.start})") from None
        except json.JSONDecodeError as error:
            raise ConfigError(
                f"{self.path}: not JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
        except ValueError as error:
            raise ConfigError(f"{self.path}: not JSON: {error}") from None
        if not isinstance(config, dict):
            raise ConfigError(f"{self.path}: the top level is a JSON {_json_type(config)}, not an object")
        return config

    def get(self, key: str) -> Any:
        """The value at a dotted key."""
        config = self.load()
        parent, name = self._parent(config, key, create=False)
        return parent[name]

    def set(self, key: str, value: Any, *, create: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
        """Sets a dotted key and writes the file; returns (old config, new config).

        A key that does not exist is refused unless `create`, which also adds missing sections (and
        the file, with mode 0600). Setting the value the key already has writes nothing.
        """
        old: dict[str, Any] = {} if create and not os.path.exists(self.path) else self.load()
        new = copy.deepcopy(old)
        parent, name = self._parent(new, key, create=create)
        parent[name] = value
        try:
            changed = _canonical(new) != _canonical(old)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: {value!r} is not a JSON value") from None
        if changed:
            self._write(new)
        return old, new

    def _parent(self, config: dict[str, Any], key: str, *, create: bool) -> tuple[dict[str, Any], str]:
        parts = key.split(".")
        if not all(parts):
            raise ConfigError(f"key {key!r}: empty section name (keys look like risk.mm.max_position)")
        node = config
        for depth, part in enumerate(parts):
            here = ".".join(parts[:depth + 1])
            if part not in node and not create:
                raise ConfigKeyError(f"{self.path}: no key {here!r}{_suggest(key, config)}")
            if depth < len(parts) - 1:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    raise ConfigError(f"{self.path}: {key!r}: {here!r} is a JSON {_json_type(node)}, not an object")
        return node, parts[-1]

    def _write(self, config: Mapping[str, Any]) -> None:
        target = os.path.realpath(self.path)  # a symlinked config stays a symlink
        directory = os.path.dirname(target)
        try:
            status: os.stat_result | None = os.stat(target)
        except FileNotFoundError:
            status = None
        text = json.dumps(config, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        descriptor, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.tmp-", dir=directory)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                file.write(text)
                file.flush()
                os.fchmod(file.fileno(), NEW_FILE_MODE if status is None else status.st_mode & 0o7777)
                if status is not None and (status.st_uid, status.st_gid) != (os.geteuid(), os.getegid()):
                    with contextlib.suppress(PermissionError):  # root keeps the owner; others the group if theirs
                        os.fchown(file.fileno(), status.st_uid if os.geteuid() == 0 else -1, status.st_gid)
                os.fsync(file.fileno())
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        directory_descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory_descriptor)
        finally:
            os.close(directory_descriptor)


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


_ABSENT = object()


def _lookup(config: Mapping[str, Any], key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return _ABSENT
        node = node[part]
    return node


def _leaf_keys(config: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for name, value in config.items():
        if isinstance(value, dict) and value:
            keys.extend(_leaf_keys(value, f"{prefix}{name}."))
        else:
            keys.append(f"{prefix}{name}")
    return keys


def _suggest(key: str, config: Mapping[str, Any]) -> str:
    matches = difflib.get_close_matches(key, _leaf_keys(config), n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(match) for match in matches)}?)" if matches else ""


@dataclasses.dataclass(frozen=True)
class ChangeResult:
    """What `change_config` did: hashes in hex, values as JSON text (old None: the key was new)."""

    key: str
    old_hash: str
    new_hash: str
    seq: int | None  # the audit row's seq; None when the value was unchanged and nothing was written
    operator_id: str
    old_value: str | None = None
    new_value: str = ""

    def line(self) -> str:
        """One line for the operator, naming the hashes the audit table can be checked against."""
        if self.seq is None:
            return f"{self.key}: unchanged ({self.new_value}, config sha256 {self.new_hash}, no audit row)"
        old = "(absent)" if self.old_value is None else self.old_value
        return (f"{self.key}: {old} -> {self.new_value} (config sha256 {self.old_hash} -> {self.new_hash}, "
                f"audit seq {self.seq}, operator {self.operator_id})")


def change_config(segment: str | os.PathLike[str], config_path: str | os.PathLike[str], key: str, value: Any, *,
                  operator_id: str, source: str = "CLI", correlation_id: int = 0,
                  create: bool = False) -> ChangeResult:
    """Sets `key` in the config file and records the change in the segment's audit ring.

    >>> from hftel import Telemetry
    >>> engine = Telemetry.create("/tmp/hftel-doc-engine", heartbeat_interval=None)
    >>> _ = ConfigFile("/tmp/hftel-doc-config.json").set("risk.mm.max_position", 10, create=True)
    >>> result = change_config(engine.path, "/tmp/hftel-doc-config.json", "risk.mm.max_position", 30,
    ...                        operator_id="alice")
    >>> result.line()[:46]
    'risk.mm.max_position: 10 -> 30 (config sha256 '
    >>> result.seq, result.new_hash == config_hash(ConfigFile("/tmp/hftel-doc-config.json").load()).hex()
    (1, True)

    The segment is attached first: if that fails, the file is not touched.
    """
    from hftel.telemetry import Telemetry

    _check_row(operator_id, key, source, correlation_id)  # a row we could not write must not follow a change
    try:
        telemetry = Telemetry.attach(segment)
        audit = telemetry.audit
    except (HftelError, OSError, ValueError) as error:
        raise ConfigError(f"cannot attach the segment ({error}); no change was made to {os.fspath(config_path)}") \
            from error
    try:
        config = ConfigFile(config_path)
        old, new = config.set(key, value, create=create)
        old_hash, new_hash = config_hash(old).hex(), config_hash(new).hex()
        before = _lookup(old, key)
        old_value = None if before is _ABSENT else json.dumps(before, ensure_ascii=False)
        result = ChangeResult(key, old_hash, new_hash, None, operator_id, old_value,
                              json.dumps(value, ensure_ascii=False))
        if old_hash == new_hash:
            return result
        try:
            seq = record_config_change(audit, operator_id=operator_id, key=key, old_config=old, new_config=new,
                                       source=source, correlation_id=correlation_id)
        except Exception as error:
            raise ConfigError(f"{key} was changed in {config.path} (config sha256 {old_hash} -> {new_hash}) "
                              f"but its audit row could not be written: {error}; record the change by hand") \
                from error
        return dataclasses.replace(result, seq=seq)
    finally:
        telemetry.close()
