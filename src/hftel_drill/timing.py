"""The drill's timing override: the project's alert rules and Alertmanager routing with every
duration scaled by one factor, everything else unchanged.

At `scale` 1 a drill runs the production rules and routing as they are (a full drill takes about a
quarter of an hour, mostly waiting for 5-minute windows to empty). The tests run `scale` 0.1: each
rule's `for`, its range windows (`[5m]` becomes `[30s]`) and its group's evaluation interval, and the
routing's group_wait, group_interval and repeat_interval, shrink tenfold. Thresholds, expressions,
labels, the route tree, the matchers and the inhibition stay exactly as committed, so a drill at any
scale exercises the same decisions. Floors keep the shortened durations meaningful at a 1 s scrape:
a range window holds at least four samples, and nothing is evaluated or grouped faster than 1 s.

    >>> scale_duration("5m", 0.1)
    '30s'
    >>> scale_expr("increase(x[5m]) > 0 and rate(y[1m]) > 1", 0.1)
    'increase(x[30s]) > 0 and rate(y[6s]) > 1'
"""
from __future__ import annotations

import copy
import re
from typing import Any

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, "y": 31536000.0}
_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_RANGE = re.compile(r"\[((?:\d+(?:ms|s|m|h|d|w|y))+)\]")

#: The drill's Prometheus scrapes the exporter this often (seconds); windows hold >= 4 scrapes.
SCRAPE_INTERVAL = 1.0
WINDOW_FLOOR = 4 * SCRAPE_INTERVAL
INTERVAL_FLOOR = 1.0  # evaluation, group_wait, group_interval


def seconds(duration: str) -> float:
    """A Prometheus duration ("1m30s", "500ms") in seconds; ValueError naming it when malformed."""
    parts = _PART.findall(duration)
    if not parts or "".join(number + unit for number, unit in parts) != duration:
        raise ValueError(f"not a Prometheus duration: {duration!r}")
    return sum(int(number) * _UNITS[unit] for number, unit in parts)


def duration(value: float) -> str:
    """Seconds as the shortest Prometheus duration that says them (to the millisecond)."""
    millis = round(value * 1000)
    if millis % 1000:
        return f"{millis}ms"
    text, rest = "", millis // 1000
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            text += f"{rest // size}{unit}"
            rest %= size
    return text or "0s"


def scale_duration(text: str, scale: float, floor: float = 0.0) -> str:
    """`text` times `scale`, never below `floor` seconds (nor above the original)."""
    original = seconds(text)
    return duration(min(original, max(original * scale, floor)))


def scale_expr(expr: str, scale: float) -> str:
    """`expr` with every range window (`[1m]`) scaled; nothing else touched."""
    return _RANGE.sub(lambda match: f"[{scale_duration(match.group(1), scale, WINDOW_FLOOR)}]", expr)


def windows(expr: str) -> list[str]:
    """The range windows of `expr`, as written ("5m")."""
    return _RANGE.findall(expr)


def scale_rules(rules: dict, scale: float) -> dict:
    """A copy of a parsed rule file with `for`, range windows and group intervals scaled."""
    scaled = copy.deepcopy(rules)
    for group in scaled["groups"]:
        if "interval" in group:
            group["interval"] = scale_duration(group["interval"], scale, INTERVAL_FLOOR)
        for rule in group["rules"]:
            rule["expr"] = scale_expr(rule["expr"], scale)
            if "for" in rule:
                rule["for"] = scale_duration(rule["for"], scale, INTERVAL_FLOOR)
    return scaled


_ROUTE_TIMERS = ("group_wait", "group_interval", "repeat_interval")


def _scale_route(route: dict, scale: float) -> None:
    for key in _ROUTE_TIMERS:
        if key in route:
            route[key] = scale_duration(route[key], scale, INTERVAL_FLOOR)
    for child in route.get("routes", []):
        _scale_route(child, scale)


def scale_routing(routing: dict, scale: float, webhook_base: str) -> dict:
    """A copy of the parsed test routing (alerts/alertmanager.test.yml) with its timers scaled and
    every webhook pointed at `webhook_base/<receiver>`; the tree, matchers and inhibition unchanged."""
    scaled = copy.deepcopy(routing)
    _scale_route(scaled["route"], scale)
    base = webhook_base.rstrip("/")
    for receiver in scaled["receivers"]:
        for webhook in receiver.get("webhook_configs", []):
            webhook["url"] = f"{base}/{receiver['name']}"
    return scaled


def rule_timings(rules: dict) -> dict[str, tuple[float, float]]:
    """alertname -> (longest `for`, its group's evaluation interval), in seconds, of a parsed rule file."""
    timings: dict[str, tuple[float, float]] = {}
    for group in rules["groups"]:
        interval = seconds(group.get("interval", "1m"))
        for rule in group["rules"]:
            if "alert" in rule:
                hold = seconds(rule["for"]) if "for" in rule else 0.0
                previous = timings.get(rule["alert"], (0.0, 0.0))
                timings[rule["alert"]] = (max(previous[0], hold), max(previous[1], interval))
    return timings


def route_timer(routing: dict, severity: str, key: str) -> float:
    """The effective `key` timer (seconds) for alerts of `severity` in a parsed routing: the first
    child route matching `severity="..."` that sets it, else the root's."""
    for child in routing["route"].get("routes", []):
        if f'severity="{severity}"' in child.get("matchers", []) and key in child:
            return seconds(child[key])
    return seconds(routing["route"].get(key, "0s"))


def describe(scale: float) -> str:
    return "production timings" if scale == 1 else f"every duration x{scale:g} (test override)"


def is_scale(value: Any) -> bool:
    return isinstance(value, (int, float)) and 0 < value <= 1
