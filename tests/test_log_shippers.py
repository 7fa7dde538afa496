"""The example fluent-bit and vector configs under exporter/ tail the file the exporter writes and read
its lines' timestamps in the format log_line() produces."""
from __future__ import annotations

import datetime
import fnmatch
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from hftel_exporter.logfiles import DEFAULT_PATH, log_line

EXPORTER = Path(__file__).resolve().parent.parent / "exporter"
FLUENT_BIT = EXPORTER / "fluent-bit" / "fluent-bit.yaml"
VECTOR = EXPORTER / "vector" / "vector.yaml"

T0_NS = 1_714_555_800 * 1_000_000_000  # 2024-05-01T09:30:00Z


def timestamp_of(at_ns: int) -> str:
    """The "timestamp" of the line log_line() writes for an event at `at_ns`."""
    event = {"event": "order_checked", "level": "info", "timestamp_ns": at_ns, "pid": 1}
    return json.loads(log_line(event, "engine1"))["timestamp"]


def moment(at_ns: int) -> datetime.datetime:
    """The event's time to the microsecond, as naive UTC (what strptime returns)."""
    return datetime.datetime(1970, 1, 1) + datetime.timedelta(microseconds=at_ns // 1000)


FRACTION_NS = T0_NS + 123_456_789  # "...:00.123456Z"
WHOLE_SECOND_NS = T0_NS + 999      # "...:00Z": isoformat() drops a zero fraction


def load(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as file:
        return yaml.safe_load(file)


def off(value: Any) -> bool:
    return value is False or str(value).lower() in ("off", "false", "no", "0")


# -- fluent-bit --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fluent_bit() -> dict[str, Any]:
    return load(FLUENT_BIT)


def fluent_bit_tail(config: dict[str, Any]) -> dict[str, Any]:
    (tail,) = [i for i in config["pipeline"]["inputs"] if i["name"] == "tail"]
    return tail


def fluent_bit_parser(config: dict[str, Any]) -> dict[str, Any]:
    name = fluent_bit_tail(config)["parser"]
    (parser,) = [p for p in config["parsers"] if p["name"] == name]
    return parser


def fluent_bit_strptime(value: str, time_format: str) -> datetime.datetime:
    """fluent-bit's reading of %L: strptime up to %L, the digits as a fraction, strptime after it."""
    head, _, tail = time_format.partition("%L")
    width = len(datetime.datetime(2000, 1, 1).strftime(head))  # every field of head has a fixed width
    prefix = datetime.datetime.strptime(value[:width], head)
    rest = value[width:]
    fraction = re.match(r"\d+", rest)
    assert fraction is not None, f"no fraction of a second in {value!r}"
    datetime.datetime.strptime(rest[fraction.end():], tail)  # what follows %L must match too
    return prefix + datetime.timedelta(seconds=float("0." + fraction.group()))


def test_fluent_bit_tails_the_file_the_exporter_writes(fluent_bit):
    paths = [p.strip() for p in fluent_bit_tail(fluent_bit)["path"].split(",")]
    assert "/var/log/hftel/*.json" in paths
    assert any(fnmatch.fnmatch(DEFAULT_PATH, p) for p in paths)


def test_fluent_bit_keeps_tail_offsets_in_a_database(fluent_bit):
    tail = fluent_bit_tail(fluent_bit)
    assert tail["db"].startswith("/")
    assert not fnmatch.fnmatch(tail["db"], fluent_bit_tail(fluent_bit)["path"])


def test_fluent_bit_parses_lines_as_json_timed_by_their_timestamp_key(fluent_bit):
    parser = fluent_bit_parser(fluent_bit)
    assert parser["format"] == "json"
    assert parser["time_key"] == "timestamp"
    assert parser["time_format"] == "%Y-%m-%dT%H:%M:%S.%LZ"


def test_fluent_bit_time_format_reads_a_log_lines_timestamp(fluent_bit):
    time_format = fluent_bit_parser(fluent_bit)["time_format"]
    stamp = timestamp_of(FRACTION_NS)
    assert stamp == "2024-05-01T09:30:00.123456Z"
    assert fluent_bit_strptime(stamp, time_format) == moment(FRACTION_NS)


def test_fluent_bit_reads_a_whole_second_timestamp_without_a_fraction_because_not_strict(fluent_bit):
    parser = fluent_bit_parser(fluent_bit)
    stamp = timestamp_of(WHOLE_SECOND_NS)
    assert stamp == "2024-05-01T09:30:00Z"
    # Time_Strict off: fluent-bit keeps what matched before the missing ".%L", the whole seconds.
    assert off(parser.get("time_strict", True))
    seconds_part = parser["time_format"].split(".%L")[0]
    assert datetime.datetime.strptime(stamp[:19], seconds_part) == moment(WHOLE_SECOND_NS)


def test_fluent_bit_outputs_match_the_tail_tag(fluent_bit):
    tag = fluent_bit_tail(fluent_bit)["tag"].replace("*", DEFAULT_PATH.replace("/", ".").lstrip("."))
    outputs = fluent_bit["pipeline"]["outputs"]
    assert outputs and all(fnmatch.fnmatchcase(tag, output["match"]) for output in outputs)


def test_fluent_bit_accepts_the_config(tmp_path):
    binary = shutil.which("fluent-bit") or shutil.which("fluent-bit", path="/opt/fluent-bit/bin")
    if binary is None:
        reason = "fluent-bit is not on PATH: its own check (fluent-bit --dry-run -c) was not run"
        print(reason)
        pytest.skip(reason)
    result = subprocess.run([binary, "--dry-run", "-c", str(FLUENT_BIT)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# -- vector ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def vector() -> dict[str, Any]:
    return load(VECTOR)


def vector_file_source(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (source,) = [(name, s) for name, s in config["sources"].items() if s["type"] == "file"]
    return source


def vector_remap(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    source_name, _ = vector_file_source(config)
    (remap,) = [(name, t) for name, t in config["transforms"].items()
                if t["type"] == "remap" and source_name in t["inputs"]]
    return remap


def vector_time_format(config: dict[str, Any]) -> str:
    program = vector_remap(config)[1]["source"]
    found = re.search(r'parse_timestamp!?\(\s*\.timestamp\s*,\s*format:\s*"([^"]+)"', program)
    assert found, "the remap must parse .timestamp with parse_timestamp(..., format: ...)"
    return found.group(1)


def chrono_strptime(value: str, time_format: str) -> datetime.datetime:
    """chrono's reading of %.f: a '.' and the fraction when the next character is a '.', else nothing."""
    assert "%.f" in time_format
    if value[19:20] == ".":
        return datetime.datetime.strptime(value, time_format.replace("%.f", ".%f"))
    return datetime.datetime.strptime(value, time_format.replace("%.f", ""))


def test_vector_reads_the_file_the_exporter_writes(vector):
    _, source = vector_file_source(vector)
    assert "/var/log/hftel/*.json" in source["include"]
    assert any(fnmatch.fnmatch(DEFAULT_PATH, pattern) for pattern in source["include"])


def test_vector_parses_each_line_as_json_then_its_timestamp_in_utc(vector):
    program = vector_remap(vector)[1]["source"]
    assert program.index("parse_json(.message)") < program.index("parse_timestamp(.timestamp")
    assert 'timezone: "UTC"' in program
    assert ".timestamp = ts" in program


def test_vector_time_format_reads_a_log_lines_timestamp(vector):
    stamp = timestamp_of(FRACTION_NS)
    assert chrono_strptime(stamp, vector_time_format(vector)) == moment(FRACTION_NS)


def test_vector_time_format_reads_a_whole_second_timestamp_without_a_fraction(vector):
    stamp = timestamp_of(WHOLE_SECOND_NS)
    assert stamp == "2024-05-01T09:30:00Z"
    assert chrono_strptime(stamp, vector_time_format(vector)) == moment(WHOLE_SECOND_NS)


def test_vector_sinks_take_the_parsed_events(vector):
    remap_name, _ = vector_remap(vector)
    assert vector["sinks"] and all(sink["inputs"] == [remap_name] for sink in vector["sinks"].values())


def test_vector_accepts_the_config():
    binary = shutil.which("vector")
    if binary is None:
        reason = "vector is not on PATH: its own check (vector validate) was not run"
        print(reason)
        pytest.skip(reason)
    result = subprocess.run([binary, "validate", "--no-environment", str(VECTOR)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
