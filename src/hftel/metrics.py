"""Metric definitions: bucket layouts, label sets and labelled families.

The record handles themselves (Counter, Gauge, IntGauge, Histogram) are C types from hftel._core;
this module holds what is decided once, on the slow path, before a handle exists.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from hftel import _core
from hftel.errors import RegistrationError

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


@dataclass(frozen=True)
class Buckets:
    """A histogram's bucket layout: inclusive upper bounds, in the unit observed (nanoseconds).

    >>> explicit_buckets([1_000, 10_000, 100_000]).bounds
    (1000, 10000, 100000)
    >>> len(DEFAULT_BUCKETS.bounds)
    57
    """

    scheme: int
    bounds: tuple[int, ...]
    low_exponent: int = 0
    high_exponent: int = 0
    sub_bucket_bits: int = 0


def log_linear_buckets(low_ns: int = 64, high_ns: int = 2**34, steps_per_octave: int = 2) -> Buckets:
    """Powers of two from `low_ns` to `high_ns`, each octave cut into `steps_per_octave` equal steps.

    Lookup costs a count-leading-zeros, a shift and a mask. All three arguments are powers of two.
    """
    for label, value in (("low_ns", low_ns), ("high_ns", high_ns), ("steps_per_octave", steps_per_octave)):
        if not isinstance(value, int) or value < 1 or value & (value - 1):
            raise RegistrationError(f"log_linear_buckets: {label} must be a power of two, got {value!r}")
    low, high, sub_bits = low_ns.bit_length() - 1, high_ns.bit_length() - 1, steps_per_octave.bit_length() - 1
    if not sub_bits <= low < high <= 62 or sub_bits > 8:
        raise RegistrationError(
            f"log_linear_buckets: need steps_per_octave <= low_ns < high_ns <= 2**62 and at most 256 steps per "
            f"octave, got low_ns={low_ns}, high_ns={high_ns}, steps_per_octave={steps_per_octave}"
        )
    count = 1 + ((high - low) << sub_bits)
    if count > _core.MAX_BUCKETS:
        raise RegistrationError(f"log_linear_buckets: {count} buckets, at most {_core.MAX_BUCKETS}")
    bounds = tuple(_core.log_linear_bound(low, sub_bits, i) for i in range(count))
    return Buckets(_core.BUCKETS_LOG_LINEAR, bounds, low, high, sub_bits)


def explicit_buckets(bounds: Iterable[int | float]) -> Buckets:
    """Buckets with the given inclusive upper bounds (integers); a trailing +Inf is implied."""
    values = list(bounds)
    if values and values[-1] == float("inf"):
        values.pop()
    if not values:
        raise RegistrationError("a histogram needs at least one finite bucket bound")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RegistrationError(f"bucket bounds are integers (nanoseconds by convention), got {value!r}")
        if value < 0:
            raise RegistrationError(f"bucket bounds must be >= 0, got {value}")
    if any(b <= a for a, b in zip(values, values[1:])):
        raise RegistrationError(f"bucket bounds must strictly increase, got {values}")
    if len(values) > _core.MAX_BUCKETS:
        raise RegistrationError(f"{len(values)} bucket bounds, at most {_core.MAX_BUCKETS}")
    return Buckets(_core.BUCKETS_EXPLICIT, tuple(values))


#: 64 ns to 17.2 s, two steps per octave: 57 finite buckets.
DEFAULT_BUCKETS = log_linear_buckets()


def as_buckets(buckets: Buckets | Sequence[int | float] | None) -> Buckets:
    if buckets is None:
        return DEFAULT_BUCKETS
    if isinstance(buckets, Buckets):
        return buckets
    return explicit_buckets(buckets)


def check_metric_name(name: str) -> None:
    if not isinstance(name, str) or not _METRIC_NAME.match(name):
        raise RegistrationError(f"invalid metric name {name!r}: use [a-zA-Z_:][a-zA-Z0-9_:]*")


def check_label_names(metric: str, labelnames: Sequence[str], reserved: Sequence[str] = ()) -> tuple[str, ...]:
    names = tuple(labelnames)
    for name in names:
        if not isinstance(name, str) or not _LABEL_NAME.match(name) or name.startswith("__"):
            raise RegistrationError(f"{metric}: invalid label name {name!r}")
        if name in reserved:
            raise RegistrationError(f"{metric}: label name {name!r} is reserved")
    if len(set(names)) != len(names):
        raise RegistrationError(f"{metric}: duplicate label names in {names}")
    return names


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render_labels(labelnames: Sequence[str], values: Sequence[str]) -> str:
    """Labels as the exposition format writes them: side="buy",venue="X"."""
    return ",".join(f'{name}="{_escape(value)}"' for name, value in zip(labelnames, values))


_LABEL_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def parse_labels(rendered: str) -> dict[str, str]:
    """The inverse of render_labels (the C side has already checked the syntax)."""
    return {
        name: re.sub(r"\\[\\\"n]", lambda m: _UNESCAPE[m.group(0)], value)
        for name, value in _LABEL_PAIR.findall(rendered)
    }


class MetricFamily:
    """A metric with label names; `.labels(...)` gives the handle of one label set.

    >>> orders = tel.counter("orders", "Orders sent.", labels=("side",))  # doctest: +SKIP
    >>> orders.labels(side="buy").inc()                                    # doctest: +SKIP

    Handles are registered on first use (any process may add label sets while a reader is
    attached) and cached, so keep the handle on the hot path rather than calling labels() there.
    """

    def __init__(self, kind: str, name: str, labelnames: tuple[str, ...], make: Callable[[str], Any]):
        self.kind = kind
        self.name = name
        self.labelnames = labelnames
        self._make = make
        self._children: dict[tuple[str, ...], Any] = {}

    def labels(self, *values: Any, **kwargs: Any) -> Any:
        if values and kwargs:
            raise ValueError(f"{self.name}: pass label values by position or by name, not both")
        if kwargs:
            if set(kwargs) != set(self.labelnames):
                raise ValueError(f"{self.name}: expected labels {self.labelnames}, got {tuple(kwargs)}")
            values = tuple(kwargs[name] for name in self.labelnames)
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name}: expected {len(self.labelnames)} label values {self.labelnames}")
        key = tuple(str(value) for value in values)
        child = self._children.get(key)
        if child is None:
            child = self._make(render_labels(self.labelnames, key))
            self._children[key] = child
        return child

    def __getattr__(self, attribute: str) -> Any:
        if attribute in ("inc", "dec", "set", "observe", "time"):
            raise AttributeError(
                f"{self.kind} {self.name!r} has labels {self.labelnames}: call .labels(...) first, "
                f"then .{attribute}() on the handle it returns"
            )
        raise AttributeError(attribute)

    def __repr__(self) -> str:
        return f"<{self.kind} family {self.name} labels={self.labelnames}>"
