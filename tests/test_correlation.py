"""A flow's ids tie one intent's rows, events and spans together; traceparent headers follow W3C Trace Context."""
from __future__ import annotations

import itertools
import json
import os
import random
import types
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hftel import correlation
from hftel.correlation import (MAX_COUNTER, Flow, Flows, TraceContext, TraceparentError, format_traceparent,
                               parse_traceparent)
from hftel.errors import HftelError

# The examples of the W3C Trace Context recommendation.
TRACE_HEX = "0af7651916cd43dd8448eb211c80319c"
PARENT_HEX = "b7ad6b7169203331"
VALID = f"00-{TRACE_HEX}-{PARENT_HEX}-01"


class TestParseTraceparent:
    def test_a_valid_header_gives_its_fields(self) -> None:
        """The four fields come back as numbers and bytes."""
        assert TraceContext(0, bytes.fromhex(TRACE_HEX), bytes.fromhex(PARENT_HEX), 1) == parse_traceparent(VALID)

    def test_round_trip(self) -> None:
        """Formatting the parsed fields gives the header back."""
        context = parse_traceparent(VALID)
        assert VALID == format_traceparent(context.trace_id, context.span_id, context.sampled)

    def test_flags_00_is_not_sampled(self) -> None:
        """Bit 0 of the flags is the sampled flag."""
        assert (False, True) == (parse_traceparent(VALID[:-2] + "00").sampled, parse_traceparent(VALID).sampled)

    def test_surrounding_whitespace_is_stripped(self) -> None:
        """Whitespace around the header (as a header parser may leave it) is not part of it."""
        assert parse_traceparent(VALID) == parse_traceparent(f" \t{VALID} \n")

    @pytest.mark.parametrize(("header", "problem"), [
        pytest.param(f"00-{'0' * 32}-{PARENT_HEX}-01", "trace id is all zeros", id="all-zero trace id"),
        pytest.param(f"00-{TRACE_HEX}-{'0' * 16}-01", "parent id is all zeros", id="all-zero parent id"),
        pytest.param(f"ff-{TRACE_HEX}-{PARENT_HEX}-01", "version ff is invalid", id="version ff"),
        pytest.param(f"00-{TRACE_HEX.upper()}-{PARENT_HEX}-01", f"trace id '{TRACE_HEX.upper()}' has uppercase",
                     id="uppercase trace id"),
        pytest.param(f"00-{TRACE_HEX}-{PARENT_HEX.upper()}-01", f"parent id '{PARENT_HEX.upper()}' has uppercase",
                     id="uppercase parent id"),
        pytest.param(f"0A-{TRACE_HEX}-{PARENT_HEX}-01", "version '0A' has uppercase", id="uppercase version"),
        pytest.param(f"00-{TRACE_HEX[:-1]}-{PARENT_HEX}-01", "has 31 characters, not 32", id="short trace id"),
        pytest.param(f"00-{TRACE_HEX}0-{PARENT_HEX}-01", "has 33 characters, not 32", id="long trace id"),
        pytest.param(f"00-{TRACE_HEX}-{PARENT_HEX[:-1]}-01", "has 15 characters, not 16", id="short parent id"),
        pytest.param(f"00-{TRACE_HEX}-{PARENT_HEX}-1", "flags '1' has 1 characters, not 2", id="short flags"),
        pytest.param(f"0-{TRACE_HEX}-{PARENT_HEX}-01", "version '0' has 1 characters, not 2", id="short version"),
        pytest.param(f"00-{TRACE_HEX}-{PARENT_HEX}", "3 fields, expected 4", id="missing flags"),
        pytest.param(f"00-{TRACE_HEX}-{PARENT_HEX}-01-extra", "version 00 has exactly 4 fields, this has 5",
                     id="version 00 with an extra field"),
        pytest.param(f"00-{TRACE_HEX}-{PARENT_HEX}-01-", "version 00 has exactly 4 fields",
                     id="version 00 with a trailing dash"),
        pytest.param(f"00-{TRACE_HEX[:-1]}g-{PARENT_HEX}-01", "trace id '0af7651916cd43dd8448eb211c80319g' is not hex",
                     id="non-hex trace id"),
        pytest.param(f"00-{TRACE_HEX}-{PARENT_HEX}-0x", "flags '0x' is not hex", id="non-hex flags"),
        pytest.param(f"00_{TRACE_HEX}_{PARENT_HEX}_01", "has 55 characters, not 2", id="underscores for dashes"),
        pytest.param(f"cc-{TRACE_HEX}-{PARENT_HEX}-01.what", "flags '01.what' has 7 characters",
                     id="future version with flags not followed by a dash"),
        pytest.param("   ", "the header is empty", id="blank"),
    ])
    def test_an_invalid_header_is_rejected_naming_the_problem(self, header: str, problem: str) -> None:
        """Each of the spec's invalid forms raises a TraceparentError whose message names the problem and part."""
        with pytest.raises(TraceparentError) as raised:
            parse_traceparent(header)
        assert str(raised.value).startswith("traceparent: ")
        assert problem in str(raised.value)

    def test_the_error_is_a_value_error_and_an_hftel_error(self) -> None:
        """Callers may catch it as either."""
        assert issubclass(TraceparentError, ValueError) and issubclass(TraceparentError, HftelError)

    def test_a_future_version_with_extra_fields_is_accepted(self) -> None:
        """A higher version may append fields after a dash; the first four are read, the rest ignored."""
        header = f"cc-{TRACE_HEX}-{PARENT_HEX}-01-what-the-future-will-be-like"
        assert TraceContext(0xCC, bytes.fromhex(TRACE_HEX), bytes.fromhex(PARENT_HEX), 1) == parse_traceparent(header)

    @given(trace_id=st.binary(min_size=16, max_size=16).filter(any),
           span_id=st.binary(min_size=8, max_size=8).filter(any),
           flags=st.sampled_from(["00", "01"]))
    def test_formatting_a_parsed_valid_header_gives_it_back(self, trace_id: bytes, span_id: bytes, flags: str) -> None:
        """format_traceparent(parse_traceparent(x)) == x for every valid version 00 header."""
        header = f"00-{trace_id.hex()}-{span_id.hex()}-{flags}"
        context = parse_traceparent(header)
        assert header == format_traceparent(context.trace_id, context.span_id, context.sampled)


class TestFormatTraceparent:
    @pytest.mark.parametrize(("trace_id", "span_id", "problem"), [
        pytest.param(b"\1" * 15, b"\1" * 8, "trace id must be 16 bytes", id="15-byte trace id"),
        pytest.param(b"\1" * 16, b"\1" * 9, "span id must be 8 bytes", id="9-byte span id"),
        pytest.param(bytes(16), b"\1" * 8, "trace id is all zeros", id="all-zero trace id"),
        pytest.param(b"\1" * 16, bytes(8), "span id is all zeros", id="all-zero span id"),
        pytest.param(TRACE_HEX, b"\1" * 8, "trace id must be 16 bytes", id="hex string trace id"),
    ])
    def test_ids_a_header_cannot_carry_are_rejected(self, trace_id: Any, span_id: Any, problem: str) -> None:
        """Wrong lengths, all-zero ids and hex strings instead of bytes raise a TraceparentError naming the id."""
        with pytest.raises(TraceparentError, match=problem):
            format_traceparent(trace_id, span_id)

    def test_not_sampled_is_flags_00(self) -> None:
        """sampled=False formats the flags as 00."""
        assert VALID[:-2] + "00" == format_traceparent(bytes.fromhex(TRACE_HEX), bytes.fromhex(PARENT_HEX), False)


class TestFlow:
    def test_traceparent_names_the_flows_trace_and_span(self) -> None:
        """flow.traceparent() is version 00 with the flow's hex ids, sampled."""
        flow = Flows().start()
        assert f"00-{flow.trace_id.hex()}-{flow.span_id.hex()}-01" == flow.traceparent()
        assert (flow.trace_id_hex, flow.span_id_hex) == (flow.trace_id.hex(), flow.span_id.hex())

    def test_child_keeps_the_ids_and_takes_a_new_span(self) -> None:
        """A child is the same flow for the next hop: same intent, correlation and trace ids, a new span id."""
        flow = Flows().start()
        hop = flow.child()
        assert ((flow.intent_id, flow.correlation_id, flow.trace_id, flow.sampled)
                == (hop.intent_id, hop.correlation_id, hop.trace_id, hop.sampled))
        assert 8 == len(hop.span_id) and hop.span_id != flow.span_id

    def test_log_fields(self) -> None:
        """Log events carry the ids as ints and the trace id as 32 lowercase hex digits."""
        flow = Flows().start()
        fields = flow.log_fields()
        assert {"intent_id": flow.intent_id, "correlation_id": flow.correlation_id,
                "trace_id": flow.trace_id.hex()} == fields
        assert fields == json.loads(json.dumps(fields))

    def test_audit_ids(self) -> None:
        """Order and risk decision rows take the ids with the trace id as 16 bytes."""
        flow = Flows().start()
        assert {"intent_id": flow.intent_id, "correlation_id": flow.correlation_id,
                "trace_id": flow.trace_id} == flow.audit_ids()

    def test_link_ids(self) -> None:
        """Tables without an intent id take the correlation and trace ids only."""
        flow = Flows().start()
        assert {"correlation_id": flow.correlation_id, "trace_id": flow.trace_id} == flow.link_ids()

    def test_repr_shows_the_ids(self) -> None:
        """The repr names every id, as logs and queries show them."""
        flow = Flows().start()
        text = repr(flow)
        for part in (str(flow.intent_id), str(flow.correlation_id), flow.trace_id.hex(), flow.span_id.hex()):
            assert part in text

    def test_a_flow_has_no_instance_dict(self) -> None:
        """Flows use __slots__: no per-flow dict, and no attribute can be added by mistake."""
        flow = Flows().start()
        with pytest.raises(AttributeError):
            flow.intent = 1  # type: ignore[attr-defined]


class ZerosFirst(random.Random):
    """A random source whose first draw of each width is zero, as a real one may be once in 2**bits."""

    def __init__(self) -> None:
        self.widths: set[int] = set()
        super().__init__()

    def getrandbits(self, k: int) -> int:
        if k not in self.widths:
            self.widths.add(k)
            return 0
        return super().getrandbits(k)


class TestFlows:
    def test_ids_are_non_zero_and_below_2_63(self) -> None:
        """Intent and correlation ids fit a signed 64-bit column; no id is zero ("none" in the audit tables)."""
        source = Flows()
        for flow in (source.start() for _ in range(1000)):
            assert 0 < flow.intent_id < 2 ** 63 and 0 < flow.correlation_id < 2 ** 63
            assert (16, 8) == (len(flow.trace_id), len(flow.span_id))
            assert any(flow.trace_id) and any(flow.span_id)

    def test_a_zero_draw_never_becomes_a_zero_id(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A prefix of zero still gives a non-zero intent id; a zero correlation, trace or span draw is redrawn."""
        monkeypatch.setattr(correlation, "random", types.SimpleNamespace(Random=ZerosFirst))
        flow = Flows().start()
        assert 1 == flow.intent_id  # prefix 0, first count 1
        assert 0 != flow.correlation_id and any(flow.trace_id) and any(flow.span_id)

    def test_a_new_flow_is_sampled(self) -> None:
        """A flow this process starts is sampled; the decision belongs to the tracer provider's sampler."""
        assert Flows().start().sampled

    def test_intent_ids_increase_within_a_flows(self) -> None:
        """Rows of one process sort by intent id in the order the intents were made."""
        source = Flows()
        ids = [source.start().intent_id for _ in range(10_000)]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)

    def test_ids_are_unique_across_many_flows(self) -> None:
        """Intent, correlation, trace and span ids do not repeat across flows and across Flows instances."""
        made = [source.start() for source in (Flows(), Flows()) for _ in range(20_000)]
        for name in ("intent_id", "correlation_id", "trace_id", "span_id"):
            assert len(made) == len({getattr(flow, name) for flow in made}), name

    def test_two_flows_instances_draw_different_prefixes(self) -> None:
        """Each Flows draws its own random prefix, so separate processes need no coordination."""
        first, second = Flows().start(), Flows().start()
        assert first.intent_id >> 40 != second.intent_id >> 40

    def test_running_out_of_counter_renews_the_prefix(self) -> None:
        """After 2**40 intents the counter starts again under a new prefix, so ids stay unique and non-zero."""
        source = Flows()
        prefix, _ = source._ids
        source._ids = (prefix, itertools.count(MAX_COUNTER))  # the last count of this prefix
        last, after = source.start(), source.start()
        assert prefix | MAX_COUNTER == last.intent_id
        assert after.intent_id >> 40 != prefix >> 40 and after.intent_id & MAX_COUNTER == 1

    def test_continuing_an_upstream_trace_keeps_trace_id_and_sampled_flag(self) -> None:
        """Given an upstream traceparent, the flow joins that trace with its sampling decision and a span of its own."""
        upstream = f"00-{TRACE_HEX}-{PARENT_HEX}-00"
        flow = Flows().start(upstream)
        assert (bytes.fromhex(TRACE_HEX), False) == (flow.trace_id, flow.sampled)
        assert flow.span_id != bytes.fromhex(PARENT_HEX) and any(flow.span_id)
        assert f"00-{TRACE_HEX}-{flow.span_id.hex()}-00" == flow.traceparent()

    def test_continuing_still_makes_a_new_intent(self) -> None:
        """Two intents continuing one upstream trace have their own intent and correlation ids."""
        source = Flows()
        first, second = source.start(VALID), source.start(VALID)
        assert first.trace_id == second.trace_id
        assert first.intent_id != second.intent_id and first.correlation_id != second.correlation_id

    def test_a_malformed_upstream_header_raises(self) -> None:
        """start() refuses a malformed traceparent rather than silently starting a new trace."""
        with pytest.raises(TraceparentError, match="trace id is all zeros"):
            Flows().start(f"00-{'0' * 32}-{PARENT_HEX}-01")

    def test_a_forked_child_draws_ids_its_parent_does_not(self) -> None:
        """After os.fork the child reseeds: its next intent and correlation ids differ from the parent's next ones."""
        sources = (Flows(), correlation.flows)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report its next ids and leave without running pytest's teardown
            try:
                os.close(read_end)
                ids = [[(flow.intent_id, flow.correlation_id) for flow in (source.start() for _ in range(100))]
                       for source in sources]
                os.write(write_end, json.dumps(ids).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            child_ids = json.loads(pipe.read())
        assert (pid, 0) == os.waitpid(pid, 0)
        for source, child in zip(sources, child_ids):
            parent = [(flow.intent_id, flow.correlation_id) for flow in (source.start() for _ in range(100))]
            assert not {intent for intent, _ in parent} & {intent for intent, _ in child}
            assert not {corr for _, corr in parent} & {corr for _, corr in child}
            assert parent[0][0] >> 40 != child[0][0] >> 40  # a new prefix, not only a new counter
