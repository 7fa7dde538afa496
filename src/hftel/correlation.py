"""The ids that tie one strategy intent's flow together, from the intent to the broker and back.

A *flow* starts when a strategy forms an intent and is carried through risk, the order adapter and
execution; every log event and audit row it causes carries its ids, so one query finds them all.

- ``intent_id`` names the intent inside hftel, on its ``audit_orders`` and ``audit_risk_decisions``
  rows and log events: a random 23-bit prefix per process (drawn again in a forked child) and a
  40-bit counter, so it is unique across processes and restarts without coordination and increases
  within a process.
- ``correlation_id`` crosses system boundaries: it is sent to the broker, and recorded on the rows
  the flow caused in tables without an intent (a guardrail transition, a connectivity event). It is
  random, so it reveals nothing of the engine's order rate or restarts.
- ``trace_id`` (16 bytes) and ``span_id`` (8 bytes) are W3C Trace Context ids, for OpenTelemetry
  (:mod:`hftel.tracing`) and systems that speak ``traceparent``; a flow may continue an upstream trace.

Every id is non-zero (zero means "none" in the audit tables); intent and correlation ids are below
2**63, so they survive a signed 64-bit column.

    >>> flow = start_flow()
    >>> list(flow.log_fields())
    ['intent_id', 'correlation_id', 'trace_id']
"""
from __future__ import annotations

import itertools
import os
import random
import re
import threading
import weakref
from typing import Any, NamedTuple

from hftel.errors import HftelError

__all__ = ["Flow", "Flows", "TraceContext", "TraceparentError", "flows", "format_traceparent",
           "parse_traceparent", "start_flow"]

PREFIX_BITS = 23  # per-process random prefix of an intent id
COUNTER_BITS = 40  # per-process counter: 1.1e12 intents, 12 days at a million intents a second
MAX_COUNTER = (1 << COUNTER_BITS) - 1
ID_BITS = PREFIX_BITS + COUNTER_BITS  # 63: ids stay positive as signed 64-bit integers
TRACE_ID_LENGTH = 16
SPAN_ID_LENGTH = 8
_FLAG_SAMPLED = 0x01
_INVALID_VERSION = 0xFF


class TraceparentError(HftelError, ValueError):
    """A ``traceparent`` header (or the ids to format one) breaks the W3C Trace Context rules."""


class TraceContext(NamedTuple):
    """The four fields of a ``traceparent`` header.

    >>> parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").sampled
    True
    """

    version: int
    trace_id: bytes
    span_id: bytes
    flags: int

    @property
    def sampled(self) -> bool:
        """Whether the upstream caller may have recorded its span (flag bit 0)."""
        return bool(self.flags & _FLAG_SAMPLED)


class Flow:
    """The ids of one strategy intent's flow; made by :meth:`Flows.start`, passed along each hop.

    Treat a flow as immutable: a hop that needs its own span takes :meth:`child`.

    >>> flow = Flows().start()
    >>> hop = flow.child()
    >>> (hop.intent_id, hop.trace_id) == (flow.intent_id, flow.trace_id), hop.span_id != flow.span_id
    (True, True)
    >>> flow.traceparent() == f"00-{flow.trace_id_hex}-{flow.span_id_hex}-01"
    True
    """

    __slots__ = ("intent_id", "correlation_id", "trace_id", "span_id", "sampled")

    def __init__(self, intent_id: int, correlation_id: int, trace_id: bytes, span_id: bytes,
                 sampled: bool = True) -> None:
        self.intent_id = intent_id
        self.correlation_id = correlation_id
        self.trace_id = trace_id
        self.span_id = span_id
        self.sampled = sampled

    @property
    def trace_id_hex(self) -> str:
        """The trace id as 32 lowercase hex digits, as log events and ``traceparent`` carry it."""
        return self.trace_id.hex()

    @property
    def span_id_hex(self) -> str:
        """The span id as 16 lowercase hex digits."""
        return self.span_id.hex()

    def traceparent(self) -> str:
        """The W3C ``traceparent`` header naming this flow's span, for the next system."""
        return f"00-{self.trace_id.hex()}-{self.span_id.hex()}-{'01' if self.sampled else '00'}"

    def child(self) -> Flow:
        """The same flow with a new span id, for the next hop."""
        # The process's default Flows draws the span id: a flow carries no random source of its own.
        return Flow(self.intent_id, self.correlation_id, self.trace_id, _new_span_id(flows._random.getrandbits),
                    self.sampled)

    def log_fields(self) -> dict[str, Any]:
        """The ids as log event fields: ``log.info("order_sent", **flow.log_fields())``."""
        return {"intent_id": self.intent_id, "correlation_id": self.correlation_id, "trace_id": self.trace_id.hex()}

    def audit_ids(self) -> dict[str, Any]:
        """The ids as audit columns: ``tel.audit.order(..., **flow.audit_ids())``."""
        return {"intent_id": self.intent_id, "correlation_id": self.correlation_id, "trace_id": self.trace_id}

    def link_ids(self) -> dict[str, Any]:
        """The ids for tables without an intent (guardrail transitions, connectivity, config changes)."""
        return {"correlation_id": self.correlation_id, "trace_id": self.trace_id}

    def __repr__(self) -> str:
        return (f"Flow(intent_id={self.intent_id}, correlation_id={self.correlation_id}, "
                f"trace_id={self.trace_id.hex()}, span_id={self.span_id.hex()}, sampled={self.sampled})")


def _new_span_id(getrandbits: Any) -> bytes:
    span = getrandbits(64)
    while not span:  # one draw in 2**64
        span = getrandbits(64)
    return span.to_bytes(SPAN_ID_LENGTH, "big")


# Every live Flows, so a forked child can reseed them all; weak, so a dropped Flows is freed.
_instances: weakref.WeakSet[Flows] = weakref.WeakSet()


class Flows:
    """Makes flows for one process.

    Random bits come from a ``random.Random`` seeded from ``os.urandom`` (fast: ``start()`` measured
    0.9 µs, where one ``os.urandom(32)`` alone costs 0.6 µs), reseeded in a forked child
    (``os.register_at_fork``), so a child never repeats its parent's ids. Safe to call from any
    thread. Continuing an upstream ``traceparent`` adds its parsing (about 3 µs).

    >>> source = Flows()
    >>> first, second = source.start(), source.start()
    >>> second.intent_id > first.intent_id, first.correlation_id != second.correlation_id
    (True, True)
    >>> upstream = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
    >>> flow = source.start(upstream)
    >>> flow.trace_id_hex, flow.sampled
    ('4bf92f3577b34da6a3ce929d0e0e4736', False)
    """

    def __init__(self) -> None:
        self._random = random.Random()
        self._lock = threading.Lock()  # only to renew the prefix, never on the way of start()
        self._reseed()
        _instances.add(self)

    def _reseed(self) -> None:
        """A new seed, prefix and counter: at creation and in a forked child."""
        self._random.seed(int.from_bytes(os.urandom(32), "big"))
        self._renew_prefix()

    def _renew_prefix(self) -> None:
        # One attribute, so that a thread always pairs a count with its own counter's prefix.
        self._ids = (self._random.getrandbits(PREFIX_BITS) << COUNTER_BITS, itertools.count(1))  # never 0

    def start(self, traceparent: str | None = None) -> Flow:
        """A new intent's flow; given an upstream ``traceparent``, it continues that trace."""
        prefix, counter = self._ids
        count = next(counter)
        if count > MAX_COUNTER:
            return self._start_after_overflow(counter, traceparent)
        getrandbits = self._random.getrandbits
        correlation_id = getrandbits(ID_BITS)
        while not correlation_id:  # one draw in 2**63
            correlation_id = getrandbits(ID_BITS)
        if traceparent is None:
            trace = getrandbits(128)
            while not trace:
                trace = getrandbits(128)
            return Flow(prefix | count, correlation_id, trace.to_bytes(TRACE_ID_LENGTH, "big"),
                        _new_span_id(getrandbits))
        context = parse_traceparent(traceparent)
        return Flow(prefix | count, correlation_id, context.trace_id, _new_span_id(getrandbits), context.sampled)

    def _start_after_overflow(self, counter: itertools.count[int], traceparent: str | None) -> Flow:
        """After 2**40 intents, a new prefix: ids stay unique, but stop increasing this once."""
        with self._lock:
            if self._ids[1] is counter:  # no other thread renewed it first
                self._renew_prefix()
        return self.start(traceparent)


def _reseed_after_fork() -> None:
    for instance in list(_instances):
        instance._lock = threading.Lock()  # the parent's may have been held by a thread the child lacks
        instance._reseed()


os.register_at_fork(after_in_child=_reseed_after_fork)

_HEX_FIELD = re.compile(r"[0-9a-f]*")


def _hex_field(header: str, name: str, text: str, length: int) -> int:
    """The value of one fixed-length lowercase hex field of a header, or a TraceparentError naming it."""
    if len(text) != length:
        raise TraceparentError(f"traceparent: {name} {text!r} has {len(text)} characters, not {length} "
                               f"(in {header!r})")
    if not _HEX_FIELD.fullmatch(text):
        if _HEX_FIELD.fullmatch(text.lower()):
            raise TraceparentError(f"traceparent: {name} {text!r} has uppercase hex digits; only lowercase "
                                   f"is valid (in {header!r})")
        raise TraceparentError(f"traceparent: {name} {text!r} is not hex (in {header!r})")
    return int(text, 16)


def parse_traceparent(header: str) -> TraceContext:
    """The fields of a W3C Trace Context (level 1) ``traceparent`` header, checked strictly.

    Version 00 has exactly four fields; a later version may carry more after a ``-``, which are
    ignored, as the spec's forward-compatibility rules ask. Surrounding whitespace is stripped.

    >>> parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").span_id.hex()
    '00f067aa0ba902b7'
    """
    if not isinstance(header, str):
        raise TraceparentError(f"traceparent: the header must be a str, not {type(header).__name__}")
    text = header.strip()
    if not text:
        raise TraceparentError("traceparent: the header is empty")
    fields = text.split("-")
    version = _hex_field(text, "version", fields[0], 2)
    if version == _INVALID_VERSION:
        raise TraceparentError(f"traceparent: version ff is invalid (in {text!r})")
    if len(fields) < 4:
        raise TraceparentError(f"traceparent: {len(fields)} fields, expected 4 "
                               f"(version-traceid-parentid-flags) (in {text!r})")
    if version == 0 and len(fields) > 4:
        raise TraceparentError(f"traceparent: version 00 has exactly 4 fields, this has {len(fields)}: "
                               f"extra {'-'.join(fields[4:])!r} (in {text!r})")
    trace_id = _hex_field(text, "trace id", fields[1], 32)
    if not trace_id:
        raise TraceparentError(f"traceparent: trace id is all zeros (in {text!r})")
    span_id = _hex_field(text, "parent id", fields[2], 16)
    if not span_id:
        raise TraceparentError(f"traceparent: parent id is all zeros (in {text!r})")
    flags = _hex_field(text, "flags", fields[3], 2)
    return TraceContext(version, trace_id.to_bytes(TRACE_ID_LENGTH, "big"), span_id.to_bytes(SPAN_ID_LENGTH, "big"),
                        flags)


def format_traceparent(trace_id: bytes, span_id: bytes, sampled: bool = True) -> str:
    """A version 00 ``traceparent`` header.

    >>> format_traceparent(bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736"), bytes.fromhex("00f067aa0ba902b7"))
    '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
    """
    for name, value, length in (("trace id", trace_id, TRACE_ID_LENGTH), ("span id", span_id, SPAN_ID_LENGTH)):
        if not isinstance(value, (bytes, bytearray)) or len(value) != length:
            raise TraceparentError(f"traceparent: {name} must be {length} bytes, not {value!r}")
        if not any(value):
            raise TraceparentError(f"traceparent: {name} is all zeros")
    return f"00-{trace_id.hex()}-{span_id.hex()}-{'01' if sampled else '00'}"


# The process's default source of flows.
flows = Flows()
start_flow = flows.start
