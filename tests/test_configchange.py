"""Audited config changes: hashes, diffs, the atomic file write, the audit row and `hftel config`."""
from __future__ import annotations

import difflib
import hashlib
import json
import re
from pathlib import Path
from typing import Iterator

import pytest

import hftel
from hftel import configchange
from hftel.cli import main
from hftel.configchange import (ChangeResult, ConfigError, ConfigFile, ConfigKeyError, change_config, config_diff,
                                config_hash, operator_identity, parse_value, record_config_change)
from hftel.errors import HftelError
from hftel.rings import AuditConsumer
from hftel.schemas import AUDIT_CONFIG_CHANGES

SOURCES = next(column.values for column in AUDIT_CONFIG_CHANGES.columns if column.name == "source")

CONFIG = {"risk": {"mm": {"max_position": 10, "max_order_qty": 5}, "mode": "NORMAL"}, "gateway": "shioaji"}


@pytest.fixture
def segment(tmp_path: Path) -> Iterator[hftel.Telemetry]:
    """The engine's segment, with an audit ring for the change rows."""
    telemetry = hftel.Telemetry.create(str(tmp_path / "seg"), heartbeat_interval=None, capacity=64,
                                       values_bytes=1 << 20, audit_ring_bytes=1 << 16, log_ring_bytes=0)
    yield telemetry
    telemetry.close()


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """An engine config file, written the way a person would (key order theirs, mode 0640)."""
    path = tmp_path / "engine.json"
    path.write_text(json.dumps(CONFIG, indent=4) + "\n", encoding="utf-8")
    path.chmod(0o640)
    return path


def change_rows(telemetry: hftel.Telemetry) -> list:
    """The audit_config_changes rows in the segment's ring, read by the exporter's consumer."""
    return list(AuditConsumer(telemetry.path).poll().tables.get("audit_config_changes", []))


def fixed(value: bytes, width: int = 32) -> bytes:
    """A FixedString column as stored: numpy's 'S' type drops trailing zero bytes on reading."""
    return bytes(value).ljust(width, b"\0")


# -- hash and diff -------------------------------------------------------------------------------------


def test_the_hash_does_not_depend_on_key_order_or_whitespace():
    """Two configs that differ only in key order (and so in formatting) hash the same."""
    reordered = json.loads('{ "gateway" : "shioaji",\n "risk": {"mode": "NORMAL",'
                           '"mm": {"max_order_qty": 5, "max_position": 10}}}')
    assert config_hash(CONFIG) == config_hash(reordered)


def test_the_hash_is_sha256_of_the_canonical_json():
    """The hash is SHA-256 of sorted, compact, UTF-8 JSON: anyone can recompute it."""
    config = {"b": "é", "a": [1, 2]}
    assert hashlib.sha256('{"a":[1,2],"b":"é"}'.encode()).digest() == config_hash(config)


def test_the_hash_changes_when_a_value_changes():
    """Changing one nested value changes the hash."""
    changed = json.loads(json.dumps(CONFIG))
    changed["risk"]["mm"]["max_position"] = 11
    assert config_hash(CONFIG) != config_hash(changed)


def test_the_diff_shows_the_changed_key_and_nothing_else():
    """The diff has the before/after headers and only the changed line, old and new."""
    changed = json.loads(json.dumps(CONFIG))
    changed["risk"]["mm"]["max_position"] = 20
    lines = config_diff(CONFIG, changed).splitlines()
    assert ["--- before", "+++ after"] == lines[:2]
    assert ['-      "max_position": 10', '+      "max_position": 20'] == lines[3:]


def test_a_long_diff_is_cut_on_a_line_boundary_within_the_audit_column():
    """A diff over 1024 bytes keeps whole lines (multi-byte text intact) and says how many it cut."""
    old = {f"key{index:03}": "é" * 20 for index in range(100)}
    new = {f"key{index:03}": "ü" * 20 for index in range(100)}
    uncut_lines = list(difflib.unified_diff(
        json.dumps(old, indent=2, sort_keys=True, ensure_ascii=False).splitlines(),
        json.dumps(new, indent=2, sort_keys=True, ensure_ascii=False).splitlines(),
        "before", "after", n=0, lineterm=""))
    diff = config_diff(old, new)
    *kept, last = diff.split("\n")
    assert len(diff.encode("utf-8")) <= 1024
    assert uncut_lines[:len(kept)] == kept
    assert f"... (cut: {len(uncut_lines) - len(kept)} more lines)" == last


# -- the config file -----------------------------------------------------------------------------------


def test_set_replaces_the_file_with_a_new_one_and_keeps_its_mode(config_path):
    """set() renames a complete new file over the old (a new inode), mode 0640 kept, no temp left."""
    inode = config_path.stat().st_ino
    old, new = ConfigFile(config_path).set("risk.mm.max_position", 20)
    assert (10, 20) == (old["risk"]["mm"]["max_position"], new["risk"]["mm"]["max_position"])
    assert new == json.loads(config_path.read_text(encoding="utf-8"))
    assert inode != config_path.stat().st_ino
    assert 0o640 == config_path.stat().st_mode & 0o7777
    assert ["engine.json"] == [path.name for path in config_path.parent.iterdir()]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(config_path, monkeypatch):
    """If the rename fails, the config file is byte-identical and the temporary file is gone."""
    before = config_path.read_bytes()

    def fail(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(configchange.os, "replace", fail)
    with pytest.raises(OSError):
        ConfigFile(config_path).set("risk.mm.max_position", 20)
    assert before == config_path.read_bytes()
    assert ["engine.json"] == [path.name for path in config_path.parent.iterdir()]


def test_a_new_file_is_created_with_mode_0600(tmp_path):
    """With create, a missing file is written, readable by its owner only."""
    path = tmp_path / "new.json"
    ConfigFile(path).set("risk.max_position", 3, create=True)
    assert {"risk": {"max_position": 3}} == json.loads(path.read_text(encoding="utf-8"))
    assert 0o600 == path.stat().st_mode & 0o7777


def test_an_unknown_key_suggests_the_close_match_and_leaves_the_file_byte_identical(config_path):
    """A misspelt key is refused with the dotted key it probably meant; nothing is written."""
    before = config_path.read_bytes()
    with pytest.raises(ConfigKeyError, match=r"no key 'risk.mm.max_postion'.*did you mean 'risk.mm.max_position'"):
        ConfigFile(config_path).set("risk.mm.max_postion", 20)
    assert before == config_path.read_bytes()


def test_an_unknown_key_error_is_a_key_error_and_an_hftel_error(config_path):
    """ConfigKeyError is caught as KeyError and by the CLI's HftelError handler, its text unquoted."""
    with pytest.raises(KeyError) as caught:
        ConfigFile(config_path).get("nope")
    assert isinstance(caught.value, HftelError)
    assert str(caught.value).startswith(f"{config_path}: no key 'nope'")


def test_create_adds_a_missing_key_and_its_sections(config_path):
    """With create, a key and the sections leading to it are added; the rest is kept."""
    _, new = ConfigFile(config_path).set("risk.arb.max_position", 7, create=True)
    assert 7 == ConfigFile(config_path).get("risk.arb.max_position")
    assert CONFIG["risk"]["mm"] == new["risk"]["mm"]


def test_setting_through_a_non_object_is_refused_naming_it(config_path):
    """`gateway.name` cannot be set when gateway is a string; the error names gateway and its type."""
    before = config_path.read_bytes()
    with pytest.raises(ConfigError, match=r"'gateway' is a JSON string, not an object"):
        ConfigFile(config_path).set("gateway.name", "x", create=True)
    assert before == config_path.read_bytes()


def test_setting_the_current_value_does_not_rewrite_the_file(config_path):
    """An unchanged value returns equal configs and leaves the file (and its inode) alone."""
    inode = config_path.stat().st_ino
    old, new = ConfigFile(config_path).set("risk.mm.max_position", 10)
    assert old == new
    assert inode == config_path.stat().st_ino


def test_a_file_that_is_not_json_is_refused_with_line_and_column(tmp_path):
    """Bad JSON is reported with the file, the line and the column."""
    path = tmp_path / "bad.json"
    path.write_text('{\n  "a": 1,\n  "b": }\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.json: not JSON: .* line 3 column 8"):
        ConfigFile(path).load()


def test_a_top_level_that_is_not_an_object_is_refused(tmp_path):
    """A config file holding a JSON array is refused, naming what it holds."""
    path = tmp_path / "list.json"
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ConfigError, match="the top level is a JSON array, not an object"):
        ConfigFile(path).load()


# -- the audit row ------------------------------------------------------------------------------------


def test_the_audit_row_carries_operator_source_key_hashes_and_correlation_id(segment, config_path):
    """The row names who, CLI, the key, the correlation id and the hashes of the file before and after."""
    before = config_hash(json.loads(config_path.read_text(encoding="utf-8")))
    result = change_config(segment.path, config_path, "risk.mm.max_position", 20, operator_id="alice",
                           correlation_id=42)
    after = config_hash(json.loads(config_path.read_text(encoding="utf-8")))
    [row] = change_rows(segment)
    assert (b"alice", "CLI", b"risk.mm.max_position", 42) == (
        row["operator_id"], SOURCES[row["source"] - 1], row["key"],
        row["correlation_id"])
    assert (before, after) == (fixed(row["old_config_hash"]), fixed(row["new_config_hash"]))
    assert (before.hex(), after.hex(), int(row["seq"])) == (result.old_hash, result.new_hash, result.seq)
    assert b'+      "max_position": 20' in row["diff"]


def test_an_unchanged_value_writes_no_audit_row(segment, config_path):
    """Setting the value a key already has records nothing and reports no seq."""
    result = change_config(segment.path, config_path, "risk.mm.max_position", 10, operator_id="alice")
    assert (None, result.old_hash) == (result.seq, result.new_hash)
    assert [] == change_rows(segment)


def test_a_missing_segment_is_refused_and_the_file_is_not_touched(tmp_path, config_path):
    """Without a segment to audit into, no change is made, and the error says so."""
    before = config_path.read_bytes()
    with pytest.raises(ConfigError, match="no change was made"):
        change_config(tmp_path / "no-such-segment", config_path, "risk.mm.max_position", 20, operator_id="alice")
    assert before == config_path.read_bytes()


def test_an_operator_id_over_32_bytes_is_refused_with_a_message(segment):
    """A 33-byte operator id is refused, saying its length and the limit, rather than cut; no row."""
    with pytest.raises(ConfigError, match=r"operator id 'a{33}' is 33 bytes long; .* at most 32"):
        record_config_change(segment.audit, operator_id="a" * 33, key="risk.mm.max_position",
                             old_config=CONFIG, new_config={})
    assert [] == change_rows(segment)


def test_a_refused_operator_id_leaves_the_file_untouched(segment, config_path):
    """The row is checked before the file is written: no change is made that could not be audited."""
    before = config_path.read_bytes()
    with pytest.raises(ConfigError, match="control characters"):
        change_config(segment.path, config_path, "risk.mm.max_position", 20, operator_id="al\nice")
    assert before == config_path.read_bytes()


# -- the operator -------------------------------------------------------------------------------------


def test_an_explicit_operator_wins_over_sudo_user(monkeypatch):
    """--operator is used even when run under sudo."""
    monkeypatch.setattr(configchange.getpass, "getuser", lambda: "root")
    assert "alice" == operator_identity("alice", {"SUDO_USER": "bob"})


def test_sudo_user_wins_over_the_login_name(monkeypatch):
    """Under sudo, the person who ran sudo is the operator, not root."""
    monkeypatch.setattr(configchange.getpass, "getuser", lambda: "root")
    assert "bob" == operator_identity(None, {"SUDO_USER": "bob"})


def test_the_login_name_is_the_last_resort(monkeypatch):
    """Without --operator or $SUDO_USER, the login name is the operator."""
    monkeypatch.setattr(configchange.getpass, "getuser", lambda: "carol")
    assert "carol" == operator_identity(None, {})


# -- the command --------------------------------------------------------------------------------------


def test_values_parse_as_json_else_as_plain_strings():
    """10, true, null, lists and quoted strings are JSON; anything else is the text itself."""
    assert [10, 2.5, True, None, [1, "a"], {"a": 1}, "10", "WARM", "NaN"] == [
        parse_value(text) for text in ("10", "2.5", "true", "null", '[1, "a"]', '{"a": 1}', '"10"', "WARM", "NaN")]


def test_cli_set_prints_the_change_and_exits_0(segment, config_path, capsys):
    """`hftel config set` prints key, old and new value, both hashes, the seq and the operator."""
    code = main(["config", "set", "--config", str(config_path), "--segment", segment.path, "--operator", "alice",
                 "--correlation-id", "9", "risk.mm.max_position", "20"])
    out = capsys.readouterr().out
    new_hash = config_hash(json.loads(config_path.read_text(encoding="utf-8"))).hex()
    assert 0 == code
    assert (f"risk.mm.max_position: 10 -> 20 (config sha256 {config_hash(CONFIG).hex()} -> {new_hash}, "
            "audit seq 1, operator alice)\n") == out
    assert [9] == [row["correlation_id"] for row in change_rows(segment)]


def test_cli_set_says_unchanged_for_the_current_value(segment, config_path, capsys):
    """Setting the current value prints "unchanged" and writes no row."""
    code = main(["config", "set", "--config", str(config_path), "--segment", segment.path, "--operator", "alice",
                 "risk.mode", "NORMAL"])
    assert (0, []) == (code, change_rows(segment))
    assert capsys.readouterr().out.startswith('risk.mode: unchanged ("NORMAL", config sha256 ')


def test_cli_unknown_key_exits_1_with_the_suggestion_on_stderr(segment, config_path, capsys):
    """An unknown key: exit 1, one `hftel config:` line on stderr with the close match, nothing on stdout."""
    code = main(["config", "set", "--config", str(config_path), "--segment", segment.path, "--operator", "alice",
                 "risk.mm.max_postion", "20"])
    captured = capsys.readouterr()
    assert (1, "") == (code, captured.out)
    assert re.fullmatch(r"hftel config: .*no key 'risk.mm.max_postion' \(did you mean 'risk.mm.max_position'.*\)\n",
                        captured.err)


def test_cli_hash_prints_the_hash_the_audit_table_records(config_path, capsys):
    """`hftel config hash` prints the hex SHA-256 of the canonical config."""
    assert 0 == main(["config", "hash", "--config", str(config_path)])
    assert config_hash(CONFIG).hex() + "\n" == capsys.readouterr().out


def test_cli_get_prints_the_value_as_json(config_path, capsys):
    """`hftel config get` prints a key's value as JSON."""
    assert 0 == main(["config", "get", "--config", str(config_path), "risk.mm"])
    assert {"max_position": 10, "max_order_qty": 5} == json.loads(capsys.readouterr().out)


def test_change_result_line_shows_absent_for_a_created_key():
    """A key that did not exist before is shown as (absent)."""
    result = ChangeResult("a.b", "00", "11", 3, "alice", None, "1")
    assert "a.b: (absent) -> 1 (config sha256 00 -> 11, audit seq 3, operator alice)" == result.line()


def test_no_sections_are_empty_in_a_key(config_path):
    """`risk..mode` is refused: every part of a dotted key is a name."""
    with pytest.raises(ConfigError, match="empty section name"):
        ConfigFile(config_path).set("risk..mode", 1, create=True)



def test_a_file_holding_nan_is_refused(tmp_path):
    """NaN is not JSON (and has no canonical form to hash): the file is refused, not half-read."""
    path = tmp_path / "nan.json"
    path.write_text('{"risk": {"limit": NaN}}', encoding="utf-8")
    with pytest.raises(ConfigError, match="nan.json: not JSON: NaN is not JSON"):
        ConfigFile(path).load()
