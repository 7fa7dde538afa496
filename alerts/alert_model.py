"""The vocabulary the alert declarations are written in: an `Alert` with its promtool `Case`s and
their `Expected` alerts, the severities and runbook families an alert may have, and helpers that name
the test series and the labels an alert fires with.

alerts/rules.py gathers the declarations (alerts/alert_rules_trading.py, alerts/alert_rules_pipeline.py)
into `ALERTS` and re-exports all of this; import from there.

    >>> engine_series("hft_feed_gap_seconds")
    'hft_feed_gap_seconds{engine="engine1",instance="host1:9477",job="hftel"}'
    >>> on_exporter(kind="render")
    {'instance': 'host1:9477', 'kind': 'render'}
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

#: Where the runbooks are published; an alert links `<RUNBOOK_BASE>/<family>.md#<alert name lowercased>`,
#: GitHub's anchor for the runbook's `## AlertName` heading.
RUNBOOK_BASE = "https://github.com/hftel/hftel/blob/main/docs/runbooks"

#: severity -> the rule group that holds its alerts. critical pages a person (Slack #trading-alerts,
#: pager and email); warning goes to Slack only. The routing is alerts/alertmanager*.yml.
GROUPS = {"critical": "hftel-critical", "warning": "hftel-warning"}
SEVERITIES = tuple(GROUPS)

#: How often Prometheus evaluates both groups. The engine's failures matter within seconds (a 5 s
#: feed gap is already critical), so the usual 1 m global interval would be too coarse.
EVALUATION_INTERVAL = "5s"

#: The runbook families (docs/runbooks/<family>.md); config-change is a procedure with no alert.
FAMILIES = ("feed-gap", "bus-overflow", "stormguard", "reject-spike", "disconnect", "latency", "reconciliation",
            "recorder-failure", "clickhouse", "engine-and-exporter", "host")

#: The labels of the test series: one engine behind one exporter, scraped as job "hftel".
ENGINE = "engine1"
INSTANCE = "host1:9477"
JOB = "hftel"


@dataclass(frozen=True)
class Expected:
    """An alert a promtool case expects firing: the labels its expression gives it (severity, family
    and cause are the rule's and added for you), and its summary and description as rendered."""

    labels: Mapping[str, str]
    summary: str
    description: str


@dataclass(frozen=True)
class Case:
    """One promtool unit test: these input series, evaluated at `at`, fire exactly `fires` (none: quiet).

    `doc` is a sentence saying what the case shows; `series` maps a series to its values in
    promtool's notation ('0 2x3' is 0 2 2 2 2), one value per `interval`.
    """

    doc: str
    series: Mapping[str, str]
    at: str
    interval: str = "5s"
    fires: tuple[Expected, ...] = ()


@dataclass(frozen=True)
class Alert:
    """One alerting rule, with the promtool cases that prove it and why it is quiet when all is well."""

    name: str
    severity: str
    family: str
    expr: str
    summary: str
    description: str
    quiet_reason: str
    cases: tuple[Case, ...]
    for_: str = ""
    cause: str = ""
    #: Quiet or not depends on the machine (its disks, memory and load), not on the engine: the live
    #: tests check such an alert evaluates, not that it is empty.
    machine_dependent: bool = False

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"{self.name}: severity {self.severity!r} is not one of {SEVERITIES}")
        if self.family not in FAMILIES:
            raise ValueError(f"{self.name}: family {self.family!r} has no runbook; families: {FAMILIES}")
        if not self.quiet_reason:
            raise ValueError(f"{self.name}: say why the expression is empty on a healthy engine")

    @property
    def labels(self) -> dict[str, str]:
        """The labels the rule adds to every alert it fires."""
        labels = {"severity": self.severity, "family": self.family}
        if self.cause:
            labels["cause"] = self.cause
        return labels

    @property
    def runbook_url(self) -> str:
        return f"{RUNBOOK_BASE}/{self.family}.md#{self.name.lower()}"

    @property
    def annotations(self) -> dict[str, str]:
        return {"summary": self.summary, "description": self.description, "runbook_url": self.runbook_url}

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metric families the expression reads, by the name they are exposed under."""
        return metric_names(self.expr)


_METRIC = re.compile(r"\b(?:hft_\w+|hftel_\w+|up)\b")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def metric_names(expr: str) -> tuple[str, ...]:
    """The metric names in a PromQL expression, histogram samples by their family (_bucket, _count,
    _sum stripped), sorted; label values are ignored.

    >>> metric_names('histogram_quantile(0.99, sum by (le) (rate(hft_x_seconds_bucket{job="up"}[1m]))) and up')
    ('hft_x_seconds', 'up')
    """
    names = {re.sub(r"_(?:bucket|count|sum)$", "", name) for name in _METRIC.findall(_STRING.sub('""', expr))}
    return tuple(sorted(names))


def _selector(metric: str, base: Mapping[str, str], labels: Mapping[str, str]) -> str:
    pairs = {**base, **labels}
    return metric + "{" + ",".join(f'{key}="{value}"' for key, value in pairs.items()) + "}"


def engine_series(metric: str, **labels: str) -> str:
    """A test series of an engine metric, as Prometheus stores it after scraping the exporter."""
    return _selector(metric, {"engine": ENGINE, "instance": INSTANCE, "job": JOB}, labels)


def exporter_series(metric: str, **labels: str) -> str:
    """A test series of one of the exporter's own metrics (no engine label)."""
    return _selector(metric, {"instance": INSTANCE, "job": JOB}, labels)


def on_engine(**labels: str) -> dict[str, str]:
    """The labels an engine alert carries: the engine, and `labels`."""
    return {"engine": ENGINE, **labels}


def on_exporter(**labels: str) -> dict[str, str]:
    """The labels an alert on the exporter's own series carries: the instance, and `labels`."""
    return {"instance": INSTANCE, **labels}
