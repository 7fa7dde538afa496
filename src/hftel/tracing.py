"""OpenTelemetry spans for a flow's hops: hooks that cost nothing until tracing is turned on.

The engine's hot path must not pay for tracing it does not use, so every hook is a no-op by
default: :func:`span` checks one module global and hands back a shared object that does nothing,
and OpenTelemetry is not even imported. Facades that would build attributes check
``hftel.tracing.enabled`` first.

To turn tracing on, install the SDK (``pip install opentelemetry-sdk``), configure a tracer
provider with an exporter, and call :func:`enable` (with the provider, or none for the global
one), or set ``HFTEL_OTEL=1`` and call :func:`enable_from_environment` at start-up. Each hop of a
flow then becomes a span in the flow's trace, a child of the flow's span id, carrying its
``intent_id`` and ``correlation_id``::

    import hftel.tracing
    from hftel.correlation import start_flow

    hftel.tracing.enable(provider)          # or HFTEL_OTEL=1 and hftel.tracing.enable_from_environment()
    flow = start_flow()
    with hftel.tracing.span("risk_check", flow, rule="max_position"):
        ...
    with hftel.tracing.span("order_submit", flow.child()):
        ...
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, ContextManager, Mapping

from hftel.errors import HftelError

if TYPE_CHECKING:
    from hftel.correlation import Flow

__all__ = ["TracingUnavailableError", "disable", "enable", "enable_from_environment", "enabled", "span"]

ENVIRONMENT_VARIABLE = "HFTEL_OTEL"
TRACER_NAME = "hftel"
_ON = ("1", "true", "yes")
_OFF = ("", "0", "false", "no")

enabled: bool = False  # the one thing a disabled hook reads
_tracer: Any = None  # the "hftel" tracer, once enabled; kept after disable() for a span() racing it
_trace: Any = None  # the opentelemetry.trace module, once enabled


class TracingUnavailableError(HftelError):
    """Tracing was asked for, but OpenTelemetry is not installed."""


class _NoSpan:
    """What :func:`span` returns while tracing is off: one shared object that does nothing.

    >>> with span("risk_check") as current:
    ...     current.is_recording()
    False
    """

    __slots__ = ()

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def is_recording(self) -> bool:
        """Never: nothing is recorded while tracing is off."""
        return False

    def set_attribute(self, key: str, value: Any) -> None:
        """Ignored, as on a span that is not recording."""


_NO_SPAN = _NoSpan()


def enable(tracer_provider: Any | None = None) -> None:
    """Turn tracing on, with this OpenTelemetry tracer provider or (None) the global one."""
    global enabled, _tracer, _trace
    try:
        from opentelemetry import trace
    except ImportError as error:
        raise TracingUnavailableError(
            "hftel tracing needs OpenTelemetry, which is not importable: pip install opentelemetry-sdk "
            f"(or leave {ENVIRONMENT_VARIABLE} unset) ({error})") from error
    provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
    _trace = trace
    _tracer = provider.get_tracer(TRACER_NAME)
    enabled = True  # last: a span() that sees it sees the tracer too


def disable() -> None:
    """Turn tracing off: :func:`span` is a no-op again."""
    global enabled
    enabled = False


def enable_from_environment(environ: Mapping[str, str] | None = None) -> bool:
    """Enable tracing if ``HFTEL_OTEL`` is 1, true or yes; return whether tracing is enabled.

    Unset, empty, 0, false or no leave tracing as it is; any other value is a ValueError.
    """
    value = (os.environ if environ is None else environ).get(ENVIRONMENT_VARIABLE, "")
    setting = value.strip().lower()
    if setting in _ON:
        enable()
    elif setting not in _OFF:
        raise ValueError(f"{ENVIRONMENT_VARIABLE}={value!r}: expected 1, true or yes to enable tracing, "
                         "or 0, false, no or unset to leave it off")
    return enabled


def span(name: str, flow: Flow | None = None, **attributes: Any) -> ContextManager[Any]:
    """A span around a block, in the flow's trace and a child of its span id; a shared no-op when disabled.

    The block gets the OpenTelemetry span (or the no-op). If it raises, the exception is recorded
    on the span, the span's status is ERROR, and the exception propagates.
    """
    if not enabled:
        return _NO_SPAN
    return _start_span(name, flow, attributes)


def _start_span(name: str, flow: Flow | None, attributes: dict[str, Any]) -> ContextManager[Any]:
    trace = _trace
    context = None
    if flow is not None:
        flags = trace.TraceFlags(trace.TraceFlags.SAMPLED if flow.sampled else trace.TraceFlags.DEFAULT)
        parent = trace.SpanContext(int.from_bytes(flow.trace_id, "big"), int.from_bytes(flow.span_id, "big"),
                                   is_remote=True, trace_flags=flags)
        context = trace.set_span_in_context(trace.NonRecordingSpan(parent))
        attributes = {"intent_id": flow.intent_id, "correlation_id": flow.correlation_id, **attributes}
    return _tracer.start_as_current_span(name, context=context, attributes=attributes,
                                         record_exception=True, set_status_on_exception=True)
