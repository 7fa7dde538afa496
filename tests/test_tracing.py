"""Tracing hooks cost nothing until enabled; enabled, each hop of a flow is a span in the flow's trace."""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Any, Iterator

import pytest

from hftel import tracing
from hftel.correlation import Flow, Flows
from hftel.tracing import TracingUnavailableError


@pytest.fixture(autouse=True)
def tracing_off() -> Iterator[None]:
    """enable() is global: every test ends with tracing off again."""
    yield
    tracing.disable()


@pytest.fixture
def exporter() -> Iterator[Any]:
    """Tracing enabled with an SDK tracer provider (not the global one) that keeps finished spans in memory."""
    sdk_trace = pytest.importorskip("opentelemetry.sdk.trace", reason="opentelemetry-sdk is not installed")
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = sdk_trace.TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracing.enable(provider)
    yield memory
    provider.shutdown()


@pytest.fixture
def flow() -> Flow:
    """A new intent's flow."""
    return Flows().start()


def run_python(code: str, **environ: str) -> str:
    """The stdout of a fresh interpreter running code, with nothing imported before it."""
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                          env={**os.environ, **environ}).stdout.strip()


def as_int(ident: bytes) -> int:
    return int.from_bytes(ident, "big")


class TestDisabled:
    def test_tracing_is_off_in_a_new_process(self) -> None:
        """Nothing turns tracing on by itself, not even HFTEL_OTEL in the environment."""
        assert "False" == run_python("import hftel.tracing; print(hftel.tracing.enabled)", HFTEL_OTEL="1")

    def test_span_returns_one_shared_no_op_for_every_call(self, flow: Flow) -> None:
        """While disabled, span() allocates no context manager: every call returns the same object."""
        first = tracing.span("risk_check")
        assert first is tracing.span("order_submit", flow, rule="max_position")

    def test_the_no_op_runs_the_block_and_lets_exceptions_through(self, flow: Flow) -> None:
        """The no-op is a context manager that neither swallows nor records anything."""
        ran = []
        with pytest.raises(KeyError):
            with tracing.span("risk_check", flow) as current:
                ran.append(current.is_recording())
                current.set_attribute("rule", "max_position")
                raise KeyError("boom")
        assert [False] == ran

    def test_importing_does_not_import_opentelemetry(self) -> None:
        """The engine pays no OpenTelemetry import for hooks it does not use."""
        code = "import sys, hftel.tracing; print('opentelemetry' in sys.modules)"
        assert "False" == run_python(code)

    def test_a_disabled_span_does_not_import_opentelemetry(self) -> None:
        """Calling span() while disabled imports nothing either."""
        code = ("import sys, hftel.tracing\n"
                "from hftel.correlation import start_flow\n"
                "with hftel.tracing.span('risk_check', start_flow(), rule='max_position'):\n"
                "    pass\n"
                "print(any(name.split('.')[0] == 'opentelemetry' for name in sys.modules))")
        assert "False" == run_python(code)


class TestEnabled:
    def test_a_span_carries_the_flows_trace_id_parent_and_ids(self, exporter: Any, flow: Flow) -> None:
        """The span is in the flow's trace, a child of the flow's span id, with intent and correlation ids."""
        with tracing.span("risk_check", flow, rule="max_position"):
            pass
        (finished,) = exporter.get_finished_spans()
        assert "risk_check" == finished.name
        assert as_int(flow.trace_id) == finished.context.trace_id
        assert (as_int(flow.trace_id), as_int(flow.span_id), True) == (
            finished.parent.trace_id, finished.parent.span_id, finished.parent.is_remote)
        assert {"intent_id": flow.intent_id, "correlation_id": flow.correlation_id,
                "rule": "max_position"} == dict(finished.attributes)

    def test_two_hops_of_a_flow_land_in_one_trace(self, exporter: Any, flow: Flow) -> None:
        """The flow's hop and its child's hop share the flow's trace id, each under its own span id."""
        hop = flow.child()
        with tracing.span("risk_check", flow):
            pass
        with tracing.span("order_submit", hop):
            pass
        risk, order = exporter.get_finished_spans()
        assert as_int(flow.trace_id) == risk.context.trace_id == order.context.trace_id
        assert (as_int(flow.span_id), as_int(hop.span_id)) == (risk.parent.span_id, order.parent.span_id)

    def test_an_exception_is_recorded_with_error_status_and_propagates(self, exporter: Any, flow: Flow) -> None:
        """A block that raises ends its span with ERROR status and an exception event; the caller still sees it."""
        from opentelemetry.trace import StatusCode

        with pytest.raises(RuntimeError, match="broker rejected"):
            with tracing.span("order_submit", flow):
                raise RuntimeError("broker rejected")
        (finished,) = exporter.get_finished_spans()
        assert StatusCode.ERROR == finished.status.status_code
        (event,) = finished.events
        assert ("exception", "RuntimeError", "broker rejected") == (
            event.name, event.attributes["exception.type"], event.attributes["exception.message"])

    def test_the_block_gets_the_recording_span(self, exporter: Any, flow: Flow) -> None:
        """Inside the block the span is the real one: attributes set there are exported."""
        with tracing.span("order_submit", flow) as current:
            assert current.is_recording()
            current.set_attribute("broker_order_id", "B123")
        (finished,) = exporter.get_finished_spans()
        assert "B123" == finished.attributes["broker_order_id"]

    def test_disable_returns_to_the_no_op(self, exporter: Any, flow: Flow) -> None:
        """After disable(), span() is the shared no-op again and nothing more is exported."""
        tracing.disable()
        assert not tracing.enabled
        with tracing.span("risk_check", flow) as current:
            assert not current.is_recording()
        assert () == tuple(exporter.get_finished_spans())
        assert tracing.span("a") is tracing.span("b")


class TestEnableFromEnvironment:
    @pytest.mark.parametrize("value", ["1", "true", "yes", "TRUE"])
    def test_an_on_value_enables(self, value: str) -> None:
        """HFTEL_OTEL=1 (or true, yes, in any case) turns tracing on with the global tracer provider."""
        pytest.importorskip("opentelemetry.trace", reason="opentelemetry is not installed")
        assert tracing.enable_from_environment({"HFTEL_OTEL": value})
        assert tracing.enabled

    @pytest.mark.parametrize("environ", [{}, {"HFTEL_OTEL": "0"}, {"HFTEL_OTEL": ""}, {"HFTEL_OTEL": "no"}],
                             ids=["unset", "0", "empty", "no"])
    def test_unset_or_an_off_value_leaves_tracing_off(self, environ: dict[str, str]) -> None:
        """Without HFTEL_OTEL, or with 0, tracing stays off and span() stays the no-op."""
        assert not tracing.enable_from_environment(environ)
        assert not tracing.enabled

    def test_any_other_value_raises_naming_the_variable(self) -> None:
        """A typo is an error at start-up, not tracing silently off."""
        with pytest.raises(ValueError, match="HFTEL_OTEL='maybe': expected 1, true or yes"):
            tracing.enable_from_environment({"HFTEL_OTEL": "maybe"})
        assert not tracing.enabled


class TestUnavailable:
    def test_enable_without_opentelemetry_raises_saying_what_to_install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without OpenTelemetry, enable() raises TracingUnavailableError naming the package, and tracing stays off."""
        monkeypatch.setitem(sys.modules, "opentelemetry", None)
        with pytest.raises(TracingUnavailableError, match="pip install opentelemetry-sdk"):
            tracing.enable()
        assert not tracing.enabled

    def test_hftel_otel_without_opentelemetry_raises(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Asking for tracing through the environment without OpenTelemetry is an error, not silence."""
        monkeypatch.setitem(sys.modules, "opentelemetry", None)
        with pytest.raises(TracingUnavailableError):
            tracing.enable_from_environment({"HFTEL_OTEL": "1"})
