"""Engine logging through the structlog API, into the log ring: the engine never renders JSON.

    >>> import structlog
    >>> hftel.logs.configure(tel)
    >>> log = structlog.get_logger(component="risk_engine", strategy="mm")
    >>> log.info("order_checked", intent_id=42, risk_mode="NORMAL")

configure() installs RingLogger as structlog's wrapper class: a call copies the event name, the
bound context and the call's fields into the log ring (about a microsecond) and returns. The
exporter renders them as structlog's JSONRenderer would, off the hot path. Processors are not run
in the engine; bind what you need with bind() or get_logger(**initial_values).

Every component declares the fields its events must carry (COMPONENT_FIELDS, the log schema in
one place). A logger bound to `component=` checks them on every call: a missing field raises
LogSchemaError when strict (tests: HFTEL_LOG_STRICT=1 or configure(strict=True)), and otherwise
writes the event flagged `schema_violation` and counts it in the ring's violations counter.
"""
from __future__ import annotations

import logging
import os
import sys
import traceback
from typing import Any

from hftel.errors import HftelError

# The log schema: what every event of a component must carry, besides event, level and timestamp.
COMPONENT_FIELDS: dict[str, tuple[str, ...]] = {
    "market_data": ("feed",),
    "strategy_runner": ("strategy",),
    "risk_engine": ("strategy", "intent_id", "risk_mode"),
    "order_adapter": ("strategy", "intent_id", "correlation_id"),
    "execution": ("intent_id", "broker_order_id"),
    "recorder": ("sink",),
    "monitor": ("check",),
}

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR,
          "critical": logging.CRITICAL}


class LogSchemaError(HftelError, ValueError):
    """A log event lacks a field its component requires (raised only in strict mode)."""


class UnknownComponentError(HftelError, ValueError):
    """A logger was bound to a component the log schema does not know."""


class RingSink:
    """What RingLogger writes to: the log ring writer, the minimum level and the strictness."""

    def __init__(self, writer: Any, level: int, strict: bool):
        self.writer = writer
        self.level = level
        self.strict = strict


def _required(context: dict[str, Any]) -> tuple[str, ...]:
    """The required fields the context does not already hold."""
    component = context.get("component")
    if component is None:
        return ()
    try:
        fields = COMPONENT_FIELDS[component]
    except (KeyError, TypeError):
        raise UnknownComponentError(
            f"unknown log component {component!r}; known: {', '.join(COMPONENT_FIELDS)}") from None
    return tuple(name for name in fields if name not in context)


class RingLogger:
    """A structlog bound logger whose every call is one copy into the log ring.

    >>> log = RingLogger(RingSink(tel.log_writer, logging.INFO, strict=True), (), {"component": "monitor"})
    >>> log.bind(check="heartbeat").info("engine_alive", age_ms=3)
    """

    __slots__ = ("_logger", "_context", "_missing")

    def __init__(self, logger: RingSink, processors: Any = (), context: dict[str, Any] | None = None):
        self._logger = logger
        self._context = dict(context or {})
        self._missing = _required(self._context)

    # -- structlog's BindableLogger protocol ----------------------------------------------------------

    def bind(self, **new_values: Any) -> "RingLogger":
        return RingLogger(self._logger, (), {**self._context, **new_values})

    def unbind(self, *keys: str) -> "RingLogger":
        context = dict(self._context)
        for key in keys:
            del context[key]
        return RingLogger(self._logger, (), context)

    def try_unbind(self, *keys: str) -> "RingLogger":
        context = {key: value for key, value in self._context.items() if key not in keys}
        return RingLogger(self._logger, (), context)

    def new(self, **new_values: Any) -> "RingLogger":
        return RingLogger(self._logger, (), new_values)

    # -- logging: debug, info, warning, error, critical, exception, log (made by _level_method) -------

    def _violation(self, event: str, fields: dict[str, Any]) -> bool:
        """Whether a required field is missing; raises LogSchemaError about it when strict."""
        absent = [name for name in self._missing if name not in fields]
        if absent and self._logger.strict:
            raise LogSchemaError(f"log event {event!r} of component {self._context['component']!r} lacks "
                                 f"required field(s) {', '.join(absent)}")
        return bool(absent)

    def exception(self, event: Any = None, *args: Any, **fields: Any) -> None:
        fields.setdefault("exc_info", True)
        return self.error(event, *args, **fields)

    def log(self, level: int, event: Any = None, *args: Any, **fields: Any) -> None:
        return _LEVEL_METHODS.get(level, _level_method(level))(self, event, *args, **fields)

    def is_enabled_for(self, level: int) -> bool:
        return level >= self._logger.level

    def __repr__(self) -> str:
        return f"<RingLogger context={self._context!r}>"


def _level_method(level: int) -> Any:
    """One logging method, written out flat: this is the engine's hot path."""

    def emit(self: RingLogger, event: Any = None, *args: Any, **fields: Any) -> None:
        sink = self._logger
        if level < sink.level:
            return None
        if args:
            event = str(event) % args
        elif type(event) is not str:
            event = str(event)
        violation = False
        if self._missing:
            for name in self._missing:
                if name not in fields:
                    violation = self._violation(event, fields)
                    break
        if "exc_info" in fields:
            fields = _with_exception(fields)
        sink.writer.write(level, event, self._context, fields, violation)
        return None

    return emit


_LEVEL_METHODS = {level: _level_method(level) for level in (10, 20, 30, 40, 50)}
RingLogger.debug = _LEVEL_METHODS[10]  # type: ignore[attr-defined]
RingLogger.info = _LEVEL_METHODS[20]  # type: ignore[attr-defined]
RingLogger.msg = _LEVEL_METHODS[20]  # type: ignore[attr-defined]
RingLogger.warning = RingLogger.warn = _LEVEL_METHODS[30]  # type: ignore[attr-defined]
RingLogger.error = _LEVEL_METHODS[40]  # type: ignore[attr-defined]
RingLogger.critical = RingLogger.fatal = _LEVEL_METHODS[50]  # type: ignore[attr-defined]


def get_logger(**initial_values: Any) -> RingLogger:
    """A bound RingLogger straight away, skipping structlog's lazy proxy (whose every call costs a
    __getattr__ and a bind, about a microsecond here). Needs configure() first.

    >>> log = hftel.logs.get_logger(component="monitor", check="heartbeat")
    """
    import structlog

    return structlog.get_logger(**initial_values).bind()


def _with_exception(fields: dict[str, Any]) -> dict[str, Any]:
    """structlog's format_exc_info: exc_info becomes an `exception` field holding the traceback."""
    fields = dict(fields)
    info = fields.pop("exc_info")
    if isinstance(info, BaseException):
        info = (type(info), info, info.__traceback__)
    elif not isinstance(info, tuple):
        info = sys.exc_info() if info else (None, None, None)
    if info[0] is not None:
        fields["exception"] = "".join(traceback.format_exception(*info))
    return fields


def strict_from_environment() -> bool:
    return os.environ.get("HFTEL_LOG_STRICT", "").lower() in ("1", "true", "yes")


def configure(telemetry: Any, *, level: str | int = "info", strict: bool | None = None) -> RingSink:
    """Routes structlog.get_logger() loggers into the segment's log ring. Returns the sink.

    strict=None reads HFTEL_LOG_STRICT (set it in test runs); strict=True raises LogSchemaError on a
    missing required field, strict=False counts it and writes the event flagged.
    """
    import structlog

    numeric = LEVELS[level.lower()] if isinstance(level, str) else int(level)
    sink = RingSink(telemetry.log_writer, numeric, strict_from_environment() if strict is None else strict)
    structlog.configure(
        wrapper_class=RingLogger,
        logger_factory=lambda *args: sink,
        processors=[],
        context_class=dict,
        cache_logger_on_first_use=True,
    )
    return sink
