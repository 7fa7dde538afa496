"""The building blocks of hftel's dashboards: PromQL helpers, one function per panel type, the template
variables, and `Dashboard`, which places panels on Grafana's grid. dashboards/dashboard_layouts.py
builds the five dashboards from these; dashboards/generate.py writes them.

A panel is a plain dict built by one small function per panel type (`timeseries`, `stat`,
`state_timeline`, `bargauge`, `table`, `text`); every one reads from the `datasource` variable, and
its description may name only the alerts in ALERTS.

    >>> rate("hft_intents_total", ENGINE)
    'rate(hft_intents_total{engine=~"$engine"}[$__rate_interval])'
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any, Iterable, Sequence

from hftel.catalogue import STORMGUARD_MODE_VALUES

Panel = dict[str, Any]

#: Every panel and query reads from the data source the `datasource` variable names.
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

#: Selectors. Engine series carry `engine` (added by the exporter); the exporter's scrape, drain and
#: spool series do not, and their hftel_ names need no selector. The process_ families and `up` are
#: every target's, so those select the exporter by the job Prometheus scrapes it as.
ENGINE = 'engine=~"$engine"'
STRATEGY = 'engine=~"$engine", strategy=~"$strategy"'
EXPORTER = 'job="hftel"'
RATE = "$__rate_interval"

#: The percentiles every latency panel shows.
QUANTILES = ((0.5, "p50"), (0.95, "p95"), (0.99, "p99"))

#: StormGuard's modes (hft_stormguard_mode's values, from the catalogue) and their colours.
MODE_COLOURS = {"NORMAL": "green", "WARM": "yellow", "STORM": "orange", "HALT": "red"}

def _alert_names() -> frozenset[str]:
    """The alert rules' names, declared once in alerts/rules.py (loaded as alerts/generate.py loads it)."""
    rules = sys.modules.get("hftel_alert_rules")
    if rules is None:
        spec = importlib.util.spec_from_file_location(
            "hftel_alert_rules", Path(__file__).resolve().parents[1] / "alerts" / "rules.py")
        assert spec is not None and spec.loader is not None
        rules = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = rules  # dataclasses look their module up while the class is built
        spec.loader.exec_module(rules)
    return frozenset(rules.NAMES)


#: The alert rules' names; a panel's description may name only these.
ALERTS = _alert_names()

GRID_WIDTH = 24  # Grafana's grid columns


# -- queries -------------------------------------------------------------------------------------------

def series(metric: str, selector: str = "") -> str:
    """`metric{selector}`, or the bare name when there is nothing to select."""
    return f"{metric}{{{selector}}}" if selector else metric


def rate(metric: str, selector: str = "", window: str = RATE) -> str:
    return f"rate({series(metric, selector)}[{window}])"


def increase(metric: str, selector: str = "", window: str = RATE) -> str:
    return f"increase({series(metric, selector)}[{window}])"


def target(expr: str, legend: str = "", *, instant: bool = False, table: bool = False) -> dict[str, Any]:
    """One Prometheus query; the panel gives it its refId."""
    return {"datasource": DATASOURCE, "editorMode": "code", "expr": expr, "format": "table" if table else "time_series",
            "instant": instant, "legendFormat": legend or "__auto", "range": not instant}


def quantiles(histogram: str, selector: str = "", by: Sequence[str] = ()) -> list[dict[str, Any]]:
    """p50, p95 and p99 of a histogram (named without `_bucket`), kept apart by `by`."""
    labels = ", ".join(("le", *by))
    names = " ".join(f"{{{{{label}}}}}" for label in by)
    return [target(f"histogram_quantile({q}, sum by ({labels}) ({rate(histogram + '_bucket', selector)}))",
                   f"{name} {names}".strip()) for q, name in QUANTILES]



# -- panels --------------------------------------------------------------------------------------------

def describe(text: str, alerts: Iterable[str]) -> str:
    """A panel's description: what it shows, then the alerts that watch the same thing."""
    alerts = tuple(alerts)
    unknown = sorted(set(alerts) - ALERTS)
    if unknown:
        raise ValueError(f"no alert named {', '.join(unknown)} (the alerts are declared in alerts/rules.py)")
    return f"{text} Alerts: {', '.join(alerts)}." if alerts else text


def thresholds(*steps: tuple[float, str], base: str = "green") -> dict[str, Any]:
    """Absolute thresholds: `base` below the first step, then each step's colour from its value up."""
    return {"mode": "absolute",
            "steps": [{"color": base, "value": None}, *({"color": c, "value": v} for v, c in steps)]}


def value_mappings(names: dict[int, tuple[str, str]]) -> list[dict[str, Any]]:
    """Grafana value mappings: value -> (text, colour)."""
    return [{"type": "value", "options": {str(value): {"color": colour, "index": index, "text": text}
                                          for index, (value, (text, colour)) in enumerate(sorted(names.items()))}}]


UP_DOWN = value_mappings({0: ("DOWN", "red"), 1: ("UP", "green")})
PASS_FAIL = value_mappings({0: ("FAIL", "red"), 1: ("PASS", "green")})
CONNECTED = value_mappings({0: ("DISCONNECTED", "red"), 1: ("CONNECTED", "green")})
STORMGUARD = value_mappings({index: (mode, MODE_COLOURS[mode]) for mode, index in STORMGUARD_MODE_VALUES.items()})


def override(ref_id: str, **properties: Any) -> dict[str, Any]:
    """Field properties for one query's series (e.g. a limit drawn dashed, a second unit on the right)."""
    return {"matcher": {"id": "byFrameRefID", "options": ref_id},
            "properties": [{"id": key.replace("__", "."), "value": value} for key, value in properties.items()]}


RED = {"fixedColor": "red", "mode": "fixed"}
DASHED_LIMIT = {"custom__lineStyle": {"dash": [10, 10], "fill": "dash"}, "color": RED}
RIGHT_AXIS = {"custom__axisPlacement": "right"}


def panel(kind: str, title: str, description: str, unit: str, targets: Sequence[dict[str, Any]], *,
          options: dict[str, Any], custom: dict[str, Any] | None = None, steps: dict[str, Any] | None = None,
          mappings: Sequence[dict[str, Any]] = (), overrides: Sequence[dict[str, Any]] = (),
          color: str = "palette-classic", minimum: float | None = None, maximum: float | None = None,
          extra: dict[str, Any] | None = None) -> Panel:
    """The parts every panel has; its id and gridPos come from Dashboard.add."""
    defaults: dict[str, Any] = {"color": {"mode": color}, "mappings": list(mappings),
                                "thresholds": steps or thresholds(), "unit": unit}
    if custom is not None:
        defaults["custom"] = custom
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    refs = [{**t, "refId": chr(ord("A") + i)} for i, t in enumerate(targets)]
    return {"datasource": DATASOURCE, "description": description, "fieldConfig": {"defaults": defaults,
            "overrides": list(overrides)}, "options": options, "targets": refs, "title": title, "type": kind,
            **(extra or {})}


LEGEND = {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": True}
TOOLTIP = {"mode": "multi", "sort": "desc"}
LAST = {"calcs": ["lastNotNull"], "fields": "", "values": False}


def timeseries(title: str, description: str, unit: str, targets: Sequence[dict[str, Any]], *,
               alerts: Iterable[str] = (), steps: Sequence[tuple[float, str]] = (), stack: bool = False,
               bars: bool = False, minimum: float | None = None, maximum: float | None = None,
               overrides: Sequence[dict[str, Any]] = (), base: str = "green") -> Panel:
    """Lines (or stacked bars) over time; thresholds, when given, drawn as dashed lines."""
    custom = {"axisSoftMin": 0, "drawStyle": "bars" if bars else "line", "fillOpacity": 80 if bars else 10,
              "lineWidth": 1, "showPoints": "never", "spanNulls": False,
              "stacking": {"group": "A", "mode": "normal" if stack else "none"},
              "thresholdsStyle": {"mode": "dashed" if steps else "off"}}
    return panel("timeseries", title, describe(description, alerts), unit, targets, custom=custom,
                 steps=thresholds(*steps, base=base), minimum=minimum, maximum=maximum, overrides=overrides,
                 options={"legend": LEGEND, "tooltip": TOOLTIP})


def stat(title: str, description: str, unit: str, targets: Sequence[dict[str, Any]], *, alerts: Iterable[str] = (),
         steps: Sequence[tuple[float, str]] = (), mappings: Sequence[dict[str, Any]] = (),
         base: str = "green") -> Panel:
    """The latest value of each series, coloured by its thresholds or mappings."""
    return panel("stat", title, describe(description, alerts), unit, targets, steps=thresholds(*steps, base=base),
                 mappings=mappings, color="thresholds",
                 options={"colorMode": "background", "graphMode": "none", "justifyMode": "auto",
                          "orientation": "auto", "reduceOptions": LAST, "textMode": "auto"})


def state_timeline(title: str, description: str, unit: str, targets: Sequence[dict[str, Any]], *,
                   mappings: Sequence[dict[str, Any]], alerts: Iterable[str] = ()) -> Panel:
    """One band per series, coloured by the state its value maps to."""
    return panel("state-timeline", title, describe(description, alerts), unit, targets, mappings=mappings,
                 color="thresholds", custom={"fillOpacity": 80, "lineWidth": 0},
                 options={"alignValue": "left", "legend": LEGEND, "mergeValues": True, "rowHeight": 0.9,
                          "showValue": "auto", "tooltip": {"mode": "single", "sort": "none"}})


def bargauge(title: str, description: str, unit: str, targets: Sequence[dict[str, Any]], *,
             alerts: Iterable[str] = (), steps: Sequence[tuple[float, str]] = (), minimum: float | None = None,
             maximum: float | None = None) -> Panel:
    """One horizontal bar per series: its latest value against the thresholds."""
    return panel("bargauge", title, describe(description, alerts), unit, targets, steps=thresholds(*steps),
                 color="thresholds", minimum=minimum, maximum=maximum,
                 options={"displayMode": "gradient", "minVizHeight": 10, "minVizWidth": 0,
                          "orientation": "horizontal", "reduceOptions": LAST, "showUnfilled": True,
                          "valueMode": "color"})


def table(title: str, description: str, unit: str, targets: Sequence[dict[str, Any]], *,
          columns: dict[str, str], sort_by: str, alerts: Iterable[str] = ()) -> Panel:
    """Instant queries merged into one row per label set; `columns` renames `Value #<refId>` columns."""
    transformations = [
        {"id": "merge", "options": {}},
        {"id": "organize", "options": {"excludeByName": {"Time": True}, "indexByName": {},
                                       "renameByName": columns}},
    ]
    return panel("table", title, describe(description, alerts), unit, targets, color="thresholds",
                 custom={"align": "auto", "cellOptions": {"type": "auto"}, "inspect": False},
                 options={"cellHeight": "sm", "footer": {"countRows": False, "fields": "", "reducer": ["sum"],
                                                         "show": False},
                          "showHeader": True, "sortBy": [{"desc": True, "displayName": sort_by}]},
                 extra={"transformations": transformations})


def text(title: str, content: str) -> Panel:
    """A markdown note: what a dashboard does not show yet, and when it will."""
    return {"datasource": DATASOURCE, "description": "A note, not a query.",
            "fieldConfig": {"defaults": {"unit": "none"}, "overrides": []},
            "options": {"code": {"language": "plaintext", "showLineNumbers": False, "showMiniMap": False},
                        "content": content, "mode": "markdown"},
            "title": title, "type": "text"}


# -- dashboards ----------------------------------------------------------------------------------------

def variable_datasource() -> dict[str, Any]:
    return {"current": {}, "hide": 0, "includeAll": False, "label": "Data source", "multi": False,
            "name": "datasource", "options": [], "query": "prometheus", "refresh": 1, "regex": "",
            "skipUrlSync": False, "type": "datasource"}


def variable_query(name: str, label: str, query: str) -> dict[str, Any]:
    """A multi-value label_values variable whose "All" is `.*`, so queries select with `=~"$name"`."""
    return {"allValue": ".*", "current": {}, "datasource": DATASOURCE, "definition": query, "hide": 0,
            "includeAll": True, "label": label, "multi": True, "name": name, "options": [],
            "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"}, "refresh": 2,
            "regex": "", "skipUrlSync": False, "sort": 1, "type": "query"}


ENGINE_VARIABLE = variable_query("engine", "Engine", "label_values(hftel_engine_up, engine)")
STRATEGY_VARIABLE = variable_query("strategy", "Strategy",
                                   'label_values(hft_intents_total{engine=~"$engine"}, strategy)')


class Dashboard:
    """Panels placed left to right, wrapping at the grid's width; rows start a new line.

    Ids follow the order panels are added, so a panel keeps its id (and its links) until panels
    are inserted before it.
    """

    def __init__(self, uid: str, title: str, description: str, *, strategy: bool = False):
        self.uid, self.title, self.description = uid, title, description
        self.variables = [variable_datasource(), ENGINE_VARIABLE] + ([STRATEGY_VARIABLE] if strategy else [])
        self.panels: list[Panel] = []
        self.x = self.y = self.line_height = 0

    def _newline(self) -> None:
        self.y += self.line_height
        self.x = self.line_height = 0

    def _place(self, item: Panel, width: int, height: int) -> None:
        if self.x + width > GRID_WIDTH:
            self._newline()
        item["gridPos"] = {"h": height, "w": width, "x": self.x, "y": self.y}
        item["id"] = len(self.panels) + 1
        self.panels.append(item)
        self.x += width
        self.line_height = max(self.line_height, height)

    def row(self, title: str) -> None:
        if self.x:
            self._newline()
        self._place({"collapsed": False, "panels": [], "title": title, "type": "row"}, GRID_WIDTH, 1)
        self._newline()

    def add(self, width: int, height: int, *items: Panel) -> None:
        for item in items:
            self._place(item, width, height)

    def model(self) -> dict[str, Any]:
        return {
            "annotations": {"list": [{"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                                      "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
                                      "name": "Annotations & Alerts", "type": "dashboard"}]},
            "description": self.description,
            "editable": True,
            "fiscalYearStartMonth": 0,
            "graphTooltip": 1,
            "id": None,
            "links": [{"asDropdown": True, "icon": "external link", "includeVars": True, "keepTime": True,
                       "tags": ["hftel"], "targetBlank": False, "title": "hftel dashboards", "type": "dashboards"}],
            "liveNow": False,
            "panels": self.panels,
            "refresh": "5s",
            "schemaVersion": 39,
            "tags": ["hftel"],
            "templating": {"list": self.variables},
            "time": {"from": "now-1h", "to": "now"},
            "timepicker": {"refresh_intervals": ["5s", "10s", "30s", "1m", "5m", "15m"]},
            "timezone": "",
            "title": self.title,
            "uid": self.uid,
            "version": 1,
            "weekStart": "",
        }
