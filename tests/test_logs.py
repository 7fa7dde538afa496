"""Engine logging through structlog's API lands in the log ring and comes out as structlog would render it."""
from __future__ import annotations

import datetime
import json
import os
import struct
import time
import types
from typing import Any, Iterator

import pytest
import structlog

import hftel
import hftel.logs
from hftel import _rings
from hftel.logs import COMPONENT_FIELDS, LogSchemaError, UnknownComponentError
from hftel.rings import LogConsumer, render_json

SMALL_RING = 65536  # the smallest ring a segment can have


@pytest.fixture(autouse=True)
def reset_structlog() -> Iterator[None]:
    """configure() is global: every test starts and ends with structlog's defaults."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest.fixture
def small(segment_file: str) -> Iterator[hftel.Telemetry]:
    """An engine segment with the smallest rings, so that filling them takes a few hundred events."""
    telemetry = hftel.Telemetry.create(segment_file, capacity=16, values_bytes=1 << 16, heartbeat_interval=None,
                                       audit_ring_bytes=SMALL_RING, log_ring_bytes=SMALL_RING)
    yield telemetry
    telemetry.close()


@pytest.fixture
def consumer(small: hftel.Telemetry) -> LogConsumer:
    return LogConsumer(small.path)


def log_ring_stats(telemetry: hftel.Telemetry) -> dict[str, int]:
    return _rings.Ring(telemetry.log_writer.segment, _rings.LOG).stats()


def only_event(consumer: LogConsumer) -> dict[str, Any]:
    events = consumer.poll().events
    assert len(events) == 1, events
    return events[0]


# -- what arrives ------------------------------------------------------------------------------------

def test_an_event_logged_through_structlog_arrives_with_its_context_fields_level_time_and_pid(small, consumer):
    """structlog.get_logger(...).info(...) reaches the consumer as structlog's event dict, plus the producer."""
    hftel.logs.configure(small, strict=True)
    log = structlog.get_logger(component="risk_engine", strategy="mm")
    before = time.time_ns()
    log.info("order_checked", intent_id=42, risk_mode="NORMAL")
    after = time.time_ns()
    event = only_event(consumer)
    assert event["event"] == "order_checked"
    assert event["level"] == "info"
    assert event["component"] == "risk_engine"
    assert event["strategy"] == "mm"
    assert event["intent_id"] == 42
    assert event["risk_mode"] == "NORMAL"
    assert before <= event["timestamp_ns"] <= after
    assert event["pid"] == os.getpid()
    assert "schema_violation" not in event and "truncated" not in event


def test_a_call_field_overrides_a_bound_field_of_the_same_key(small, consumer):
    """As in structlog, the call's value wins over the bound one, and the key appears once."""
    hftel.logs.configure(small, strict=True)
    structlog.get_logger(component="monitor", check="bound").info("probe", check="call")
    assert only_event(consumer)["check"] == "call"
    payload = _rings.Ring(small.log_writer.segment, _rings.LOG).recent()[-1][4]
    assert struct.unpack_from("<H", payload, 10)[0] == 3  # event, component, check: written once


def test_bind_returns_a_new_logger_and_leaves_the_original_alone(small, consumer):
    """bind() adds context to a new logger only, as structlog's bound loggers do."""
    hftel.logs.configure(small, strict=True)
    log = hftel.logs.get_logger(component="monitor", check="heartbeat")
    log.bind(venue="twse").info("bound")
    log.info("original")
    bound, original = consumer.poll().events
    assert bound["venue"] == "twse"
    assert "venue" not in original


def test_unbind_removes_keys_and_raises_keyerror_for_an_absent_one_like_structlog(small, consumer):
    """unbind() drops context keys; an absent key is a KeyError in both structlog and hftel."""
    hftel.logs.configure(small, strict=True)
    log = hftel.logs.get_logger(component="monitor", check="heartbeat", venue="twse")
    log.unbind("venue").info("unbound")
    assert "venue" not in only_event(consumer)
    plain = structlog.wrap_logger(structlog.ReturnLogger(), processors=[], venue="twse")
    with pytest.raises(KeyError):
        plain.unbind("absent")
    with pytest.raises(KeyError):
        log.unbind("absent")


def test_try_unbind_ignores_an_absent_key(small, consumer):
    """try_unbind() removes what is there and passes over what is not."""
    hftel.logs.configure(small, strict=True)
    log = hftel.logs.get_logger(component="monitor", check="heartbeat", venue="twse")
    log.try_unbind("venue", "absent").info("unbound")
    event = only_event(consumer)
    assert "venue" not in event
    assert event["check"] == "heartbeat"


def test_new_replaces_the_whole_context(small, consumer):
    """new() starts from an empty context with only the values it is given."""
    hftel.logs.configure(small, strict=True)
    log = hftel.logs.get_logger(component="monitor", check="heartbeat", venue="twse")
    log.new(component="recorder", sink="parquet").info("fresh")
    event = only_event(consumer)
    assert event["component"] == "recorder"
    assert event["sink"] == "parquet"
    assert "check" not in event and "venue" not in event


class Opaque:
    def __repr__(self) -> str:
        return "Opaque(<état>)"


@pytest.mark.parametrize(
    ("value", "decoded"),
    [
        (7, 7),
        (-(2**63), -(2**63)),
        (-12, -12),
        (2.5e-3, 2.5e-3),
        (True, True),
        (False, False),
        (None, None),
        ("naïve 台積電 ✓", "naïve 台積電 ✓"),
        (b"\x00\x01\xfe\xff", "0001feff"),
        (2**64 + 3, 2**64 + 3),
        (-(2**80), -(2**80)),
        (Opaque(), "Opaque(<état>)"),
    ],
    ids=["int", "min-int64", "negative-int", "float", "true", "false", "none", "non-ascii-str", "bytes-as-hex",
         "int-beyond-64-bits", "negative-int-beyond-64-bits", "object-as-repr"],
)
def test_a_field_value_round_trips_with_its_type(small, consumer, value, decoded):
    """Each value type comes back as it went in (bytes as hex, other objects as their repr)."""
    hftel.logs.configure(small, strict=True)
    hftel.logs.get_logger(component="monitor", check="types").info("typed", value=value)
    got = only_event(consumer)["value"]
    assert got == decoded
    assert type(got) is type(decoded)


# -- the log schema ----------------------------------------------------------------------------------

def test_a_missing_required_field_raises_naming_component_and_fields_in_strict_mode(small, consumer):
    """Strict: LogSchemaError names the component and every field missing, and nothing is written."""
    hftel.logs.configure(small, strict=True)
    log = structlog.get_logger(component="risk_engine", strategy="mm")
    with pytest.raises(LogSchemaError, match=r"'risk_engine' lacks required field\(s\) intent_id, risk_mode$"):
        log.info("order_checked")
    assert consumer.poll().events == []
    assert log_ring_stats(small)["tail"] == 0


def test_a_missing_required_field_is_written_flagged_and_counted_when_not_strict(small, consumer):
    """Non-strict: each violating event is written with schema_violation and counted once."""
    hftel.logs.configure(small, strict=False)
    log = structlog.get_logger(component="execution", intent_id=5)
    log.info("filled")
    log.warning("partially_filled", qty=3)
    log.info("acked", broker_order_id="B-1")
    flagged, partial, fine = consumer.poll().events
    assert flagged["schema_violation"] is True
    assert partial["schema_violation"] is True and partial["qty"] == 3
    assert "schema_violation" not in fine
    assert log_ring_stats(small)["violations"] == 2


def test_required_fields_bound_in_context_satisfy_the_schema(small, consumer):
    """A field bound earlier counts as present: strict mode lets the event through unflagged."""
    hftel.logs.configure(small, strict=True)
    log = hftel.logs.get_logger(component="order_adapter", strategy="mm").bind(intent_id=9, correlation_id=77)
    log.info("order_sent")
    event = only_event(consumer)
    assert event["correlation_id"] == 77
    assert "schema_violation" not in event


def test_an_unknown_component_raises_listing_the_known_ones(small):
    """A logger bound to a component the schema lacks fails, naming it and every known component."""
    hftel.logs.configure(small, strict=False)
    with pytest.raises(UnknownComponentError) as raised:
        structlog.get_logger(component="risk_enigne").info("typo")
    message = str(raised.value)
    assert "'risk_enigne'" in message
    for component in COMPONENT_FIELDS:
        assert component in message


@pytest.mark.parametrize("component", sorted(COMPONENT_FIELDS))
def test_every_declared_component_is_accepted_with_its_required_fields(small, consumer, component):
    """Each component of COMPONENT_FIELDS logs in strict mode when its fields are given."""
    hftel.logs.configure(small, strict=True)
    fields = {name: f"{name}-value" for name in COMPONENT_FIELDS[component]}
    structlog.get_logger(component=component).info("declared", **fields)
    event = only_event(consumer)
    assert event["component"] == component
    assert {name: event[name] for name in fields} == fields


def test_hftel_log_strict_in_the_environment_makes_configure_strict_by_default(small, consumer, monkeypatch):
    """HFTEL_LOG_STRICT=1 (as test runs set it) turns a missing field into an error."""
    monkeypatch.setenv("HFTEL_LOG_STRICT", "1")
    hftel.logs.configure(small)
    with pytest.raises(LogSchemaError):
        structlog.get_logger(component="market_data").info("tick")
    assert consumer.poll().events == []


def test_without_hftel_log_strict_configure_is_lenient_by_default(small, consumer, monkeypatch):
    """With no HFTEL_LOG_STRICT a missing field is flagged, not raised (production must keep running)."""
    monkeypatch.delenv("HFTEL_LOG_STRICT", raising=False)
    hftel.logs.configure(small)
    structlog.get_logger(component="market_data").info("tick")
    assert only_event(consumer)["schema_violation"] is True


# -- levels --------------------------------------------------------------------------------------------

def test_events_below_the_configured_level_are_not_written(small, consumer):
    """level="info": debug events never reach the ring, info events do."""
    hftel.logs.configure(small, level="info", strict=True)
    log = hftel.logs.get_logger(component="monitor", check="levels")
    log.debug("chatty")
    log.info("useful")
    assert [event["event"] for event in consumer.poll().events] == ["useful"]


@pytest.mark.parametrize("call", ["log30", "warning", "warn"])
def test_warning_warn_and_log_30_are_all_level_warning(small, consumer, call):
    """log.log(30, ...), log.warning(...) and log.warn(...) write level "warning"."""
    hftel.logs.configure(small, strict=True)
    log = hftel.logs.get_logger(component="monitor", check="levels")
    if call == "log30":
        log.log(30, "careful")
    else:
        getattr(log, call)("careful")
    event = only_event(consumer)
    assert (event["event"], event["level"]) == ("careful", "warning")


def test_exception_in_an_except_block_carries_the_traceback_at_level_error(small, consumer):
    """exception() renders the exception being handled into an `exception` field, like format_exc_info."""
    hftel.logs.configure(small, strict=True)
    log = hftel.logs.get_logger(component="monitor", check="errors")
    try:
        {}["missing-key"]
    except KeyError:
        log.exception("lookup_failed")
    event = only_event(consumer)
    assert event["level"] == "error"
    assert event["exception"].startswith("Traceback (most recent call last):")
    assert "KeyError: 'missing-key'" in event["exception"]
    assert "exc_info" not in event


def test_positional_arguments_format_the_event(small, consumer):
    """log.info("x=%s", 5) writes the event "x=5", as structlog's positional formatting does."""
    hftel.logs.configure(small, strict=True)
    hftel.logs.get_logger(component="monitor", check="format").info("x=%s y=%d", "five", 6)
    assert only_event(consumer)["event"] == "x=five y=6"


# -- overflow ----------------------------------------------------------------------------------------

def test_a_value_too_long_for_the_event_is_cut_flagged_and_counted(small, consumer):
    """A value beyond the event's room is cut to fit; the event says truncated and the ring counts it."""
    hftel.logs.configure(small, strict=True)
    text = "x" * (2 * _rings.LOG_EVENT_MAX_LENGTH)
    hftel.logs.get_logger(component="monitor", check="long").info("long", text=text)
    event = only_event(consumer)
    assert event["truncated"] is True
    assert 0 < len(event["text"]) < _rings.LOG_EVENT_MAX_LENGTH
    assert text.startswith(event["text"])
    assert log_ring_stats(small)["truncated"] == 1


def test_a_cut_never_splits_a_utf8_character(small, consumer):
    """Three-byte characters at three alignments: every cut lands on a character boundary."""
    hftel.logs.configure(small, strict=True)
    log = hftel.logs.get_logger(component="monitor", check="cut")
    log.info("long", text="a" * (2 * _rings.LOG_EVENT_MAX_LENGTH))
    room = len(only_event(consumer)["text"])  # how many bytes of text the event has room for
    backed_off = 0
    for lead in ("", "a", "aa"):
        text = lead + "€" * _rings.LOG_EVENT_MAX_LENGTH
        log.info("long", text=text)
        cut = only_event(consumer)["text"]
        assert "\ufffd" not in cut
        assert text.startswith(cut)
        assert room - 2 <= len(cut.encode()) <= room
        backed_off += len(cut.encode()) < room
    assert backed_off == 2  # two of the three alignments put the room's end inside a character


def test_a_full_log_ring_drops_and_counts_events_without_stopping_the_engine(small):
    """No consumer: once the ring is full write() returns False, and `lost` counts every such event."""
    writer = small.log_writer
    context = {"component": "monitor", "check": "flood"}
    results = [writer.write(20, "flood", context, {"i": i, "pad": "p" * 200}) for i in range(1000)]
    dropped = results.count(False)
    assert results[0] is True
    assert dropped > 0
    stats = log_ring_stats(small)
    assert stats["lost"] == dropped
    assert stats["full"] == dropped
    assert len(LogConsumer(small.path).poll().events) == results.count(True)


def test_after_draining_a_full_log_ring_writes_succeed_again(small):
    """Releasing what the consumer polled frees the ring: the next write is accepted and delivered."""
    writer = small.log_writer
    while writer.write(20, "flood", {}, {"pad": "p" * 200}):
        pass
    consumer = LogConsumer(small.path)
    consumer.release(consumer.poll())
    assert writer.write(20, "after_drain", {}, {"ok": True}) is True
    assert [event["event"] for event in consumer.poll().events] == ["after_drain"]


# -- rendering -----------------------------------------------------------------------------------------

def frozen_structlog_clock(monkeypatch: pytest.MonkeyPatch, moment: datetime.datetime) -> None:
    """Makes structlog's TimeStamper read `moment` as now."""

    class Frozen(datetime.datetime):
        @classmethod
        def now(cls, tz: Any = None) -> datetime.datetime:  # type: ignore[override]
            return moment.astimezone(tz)

    monkeypatch.setattr(structlog.processors, "datetime",
                        types.SimpleNamespace(datetime=Frozen, timezone=datetime.timezone))


def structlog_json(event_dict: dict[str, Any], method: str) -> dict[str, Any]:
    """What structlog itself renders for `event_dict`: add_log_level, TimeStamper, JSONRenderer."""
    event_dict = structlog.processors.add_log_level(None, method, dict(event_dict))
    event_dict = structlog.processors.TimeStamper(fmt="iso", utc=True)(None, method, event_dict)
    return json.loads(structlog.processors.JSONRenderer()(None, method, event_dict))


EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def moment_of(iso: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(iso.replace("Z", "+00:00"))


def test_render_json_gives_what_structlogs_json_renderer_gives_for_the_same_event(small, consumer, monkeypatch):
    """Same keys, same values, same timestamp format as add_log_level + TimeStamper(iso, utc) + JSONRenderer."""
    hftel.logs.configure(small, strict=True)
    opaque = Opaque()
    context = {"component": "risk_engine", "strategy": "mm", "intent_id": 42}
    fields = {"risk_mode": "NORMAL", "qty": -3, "price": 101.25, "ok": True, "note": None, "venue": "台灣",
              "big": 2**70, "thing": opaque}
    structlog.get_logger(**context).warning("order_checked", **fields)
    event = only_event(consumer)
    ours = json.loads(render_json(event))

    moment = moment_of(ours["timestamp"])
    assert (moment - EPOCH) // datetime.timedelta(microseconds=1) == event["timestamp_ns"] // 1000
    frozen_structlog_clock(monkeypatch, moment)
    theirs = structlog_json({"event": "order_checked", **context, **fields, "pid": os.getpid()}, "warning")
    assert ours == theirs  # the timestamp string too: structlog stamped the same instant


def test_render_json_formats_a_whole_second_as_structlog_does(small, consumer, monkeypatch):
    """An event stamped on a whole second renders its timestamp exactly as TimeStamper(iso, utc) would."""
    whole_second = 1_700_000_000 * 10**9
    small.log_writer.write(20, "on_the_second", {}, {}, ts=whole_second)
    ours = json.loads(render_json(only_event(consumer)))
    moment = datetime.datetime.fromtimestamp(whole_second // 10**9, tz=datetime.timezone.utc)
    frozen_structlog_clock(monkeypatch, moment)
    theirs = structlog_json({"event": "on_the_second", "pid": os.getpid()}, "info")
    assert ours["timestamp"] == theirs["timestamp"]


def test_a_value_whose_repr_logs_does_not_corrupt_the_event_being_written(small, consumer):
    """The event being encoded survives a nested log call made while one of its values is rendered."""
    hftel.logs.configure(small, strict=True)
    log = hftel.logs.get_logger(component="monitor", check="nested")

    class Chatty:
        def __repr__(self) -> str:
            log.info("inner")
            return "Chatty()"

    log.info("outer", value=Chatty(), after="tail")
    events = {event["event"]: event for event in consumer.poll().events}
    assert events["outer"]["value"] == "Chatty()"
    assert events["outer"]["after"] == "tail"
    assert "value" not in events["inner"]


def test_a_key_longer_than_255_bytes_is_cut_on_a_character_boundary(small, consumer):
    """Keys are cut at 255 bytes too, never inside a UTF-8 character, and the event is flagged."""
    key = "k" + "鍵" * 100  # 301 bytes: a cut at 255 would land inside a character
    small.log_writer.write(20, "long_key", {}, {key: 1})
    [event] = consumer.poll().events
    [stored] = [name for name in event if name.startswith("k")]
    assert key.startswith(stored) and len(stored.encode()) == 253
    assert event["truncated"] is True
