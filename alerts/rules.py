"""The alerting rules of hftel, declared once: each alert's PromQL, labels and annotations, its promtool
unit tests, and why it stays quiet on a healthy engine.

`alerts/generate.py` renders these into `alerts/hftel.rules.yml` (what Prometheus loads) and
`alerts/hftel.rules.test.yml` (`promtool test rules`); tests/test_alert_rules.py fails when the
committed files are not what it renders. The names, severities and families are shared with the
Alertmanager routing (`alerts/alertmanager*.yml`) and the runbooks (`docs/runbooks/<family>.md`, one
`## AlertName` heading per alert).

    >>> alert, = by_name("FeedGapCritical")
    >>> alert.severity, alert.family, alert.for_
    ('critical', 'feed-gap', '5s')
    >>> alert.metrics
    ('hft_feed_gap_seconds', 'hft_market_open')
    >>> alert.runbook_url
    'https://github.com/hftel/hftel/blob/main/docs/runbooks/feed-gap.md#feedgapcritical'

How the expressions are written:

- Engine series carry `engine` (the exporter adds it). Expressions aggregate with `max by` or
  `sum by`, keeping `engine` and the label that says where (strategy, api, sink, check, ring) and
  dropping `instance` and `job`, so two Prometheus jobs scraping one engine raise one alert.
- The exporter's own series (hftel_clickhouse_*, hftel_spool_*, hftel_exporter_*,
  hftel_recorder_write_failures_total) have no engine: they keep `instance`, the exporter reporting.
- A ratio filters its denominator with `> 0`: an unset limit or an idle engine gives no result
  rather than +Inf or NaN.
- A quantile is `histogram_quantile(0.99, sum by (le, ...) (rate(..._bucket[window])))`; with no
  observations in the window it is NaN, which compares false.
- An alert with two conditions (BusOverflowCritical, RecorderFailureCritical) is two rules with the
  same name and a `cause` label telling them apart. Without it both would send alerts with the same
  label set, which Alertmanager takes for one alert, resolved whenever either rule stops firing.
- Values are shown with the humanize function that fits them: humanizeDuration for seconds,
  humanizePercentage for ratios, humanize for counts.

One rule is one `Alert`; `ALERTS` holds them in the order the rule files list them.
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
            "recorder-failure", "clickhouse", "engine-and-exporter")

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


def by_name(name: str) -> tuple[Alert, ...]:
    """Every rule of the alert `name` (two for BusOverflowCritical and RecorderFailureCritical)."""
    rules = tuple(alert for alert in ALERTS if alert.name == name)
    if not rules:
        raise KeyError(f"no alert named {name!r}")
    return rules


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


# -- feed-gap -------------------------------------------------------------------------------------------

_GAP_OPEN = {engine_series("hft_feed_gap_seconds"): "0 2x3", engine_series("hft_market_open"): "1x4"}

FEED_GAP = (
    Alert(
        name="FeedGapCritical", severity="critical", family="feed-gap", for_="5s",
        expr="max by (engine) (hft_feed_gap_seconds) > 1 and on (engine) max by (engine) (hft_market_open) == 1",
        summary="Market data feed silent on {{ $labels.engine }}",
        description="No market data event for {{ $value | humanizeDuration }} while the exchange is open "
                    "(critical over 1 s): strategies are deciding on stale prices.",
        quiet_reason="the feed is flowing: events arrive every fraction of a millisecond, so the gap stays under 0.1 s",
        cases=(
            Case("fires once the gap has stayed over 1 s for 5 s while the market is open", _GAP_OPEN, at="10s",
                 fires=(Expected(on_engine(), "Market data feed silent on engine1",
                                 "No market data event for 2s while the exchange is open (critical over 1 s): "
                                 "strategies are deciding on stale prices."),)),
            Case("is only pending when the gap has been over 1 s for less than 5 s", _GAP_OPEN, at="5s"),
            Case("stays quiet at a gap of exactly 1 s",
                 {engine_series("hft_feed_gap_seconds"): "1x4", engine_series("hft_market_open"): "1x4"}, at="15s"),
            Case("stays quiet while the market is closed",
                 {engine_series("hft_feed_gap_seconds"): "0 2x3", engine_series("hft_market_open"): "0x4"}, at="15s"),
        )),
    Alert(
        name="FeedGapWarning", severity="warning", family="feed-gap", for_="5s",
        expr="max by (engine) (hft_feed_gap_seconds) > 0.5 and on (engine) max by (engine) (hft_market_open) == 1",
        summary="Market data feed slowing on {{ $labels.engine }}",
        description="No market data event for {{ $value | humanizeDuration }} while the exchange is open "
                    "(warning over 0.5 s, critical over 1 s).",
        quiet_reason="the feed is flowing: events arrive every fraction of a millisecond, so the gap stays under 0.1 s",
        cases=(
            Case("fires once the gap has stayed over 0.5 s for 5 s while the market is open",
                 {engine_series("hft_feed_gap_seconds"): "0 0.75x3", engine_series("hft_market_open"): "1x4"},
                 at="10s",
                 fires=(Expected(on_engine(), "Market data feed slowing on engine1",
                                 "No market data event for 750ms while the exchange is open "
                                 "(warning over 0.5 s, critical over 1 s)."),)),
            Case("stays quiet at a gap of exactly 0.5 s",
                 {engine_series("hft_feed_gap_seconds"): "0.5x4", engine_series("hft_market_open"): "1x4"},
                 at="15s"),
        )),
    Alert(
        name="FeedLatencyHigh", severity="warning", family="feed-gap", for_="1m",
        expr="histogram_quantile(0.99, sum by (le, engine) (rate(hft_feed_latency_seconds_bucket[1m]))) > 0.05",
        summary="Market data arriving late on {{ $labels.engine }}",
        description="99th percentile of exchange timestamp to receipt is {{ $value | humanizeDuration }} over the "
                    "last minute (warning over 50 ms).",
        quiet_reason="feed latency is about 0.2 ms, its 99th percentile under 1 ms",
        cases=(
            Case("fires when the 99th percentile has been over 50 ms for a minute",
                 {engine_series("hft_feed_latency_seconds_bucket", le="0.025"): "0x12",
                  engine_series("hft_feed_latency_seconds_bucket", le="0.05"): "0x12",
                  engine_series("hft_feed_latency_seconds_bucket", le="0.1"): "0+100x12",
                  engine_series("hft_feed_latency_seconds_bucket", le="+Inf"): "0+100x12"},
                 at="2m", interval="15s",
                 fires=(Expected(on_engine(), "Market data arriving late on engine1",
                                 "99th percentile of exchange timestamp to receipt is 99.5ms over the last minute "
                                 "(warning over 50 ms)."),)),
            Case("stays quiet when the 99th percentile is just under 50 ms",
                 {engine_series("hft_feed_latency_seconds_bucket", le="0.025"): "0x12",
                  engine_series("hft_feed_latency_seconds_bucket", le="0.05"): "0+100x12",
                  engine_series("hft_feed_latency_seconds_bucket", le="0.1"): "0+100x12",
                  engine_series("hft_feed_latency_seconds_bucket", le="+Inf"): "0+100x12"},
                 at="2m", interval="15s"),
        )),
)

# -- bus-overflow ----------------------------------------------------------------------------------------

_BUS_FULL = {engine_series("hft_bus_occupancy_ratio"): "0.1 0.9x4"}

BUS_OVERFLOW = (
    Alert(
        name="BusOverflowCritical", severity="critical", family="bus-overflow", for_="10s", cause="occupancy",
        expr="max by (engine) (hft_bus_occupancy_ratio) > 0.8",
        summary="Event bus nearly full on {{ $labels.engine }}",
        description="The event bus from the feed to the strategies has been {{ $value | humanizePercentage }} full "
                    "for 10 s (critical over 80%): the strategies are falling behind and it will drop events.",
        quiet_reason="the strategies keep up: the bus stays 5 to 15 % full",
        cases=(
            Case("fires once the bus has been over 80% full for 10 s", _BUS_FULL, at="15s",
                 fires=(Expected(on_engine(), "Event bus nearly full on engine1",
                                 "The event bus from the feed to the strategies has been 90% full for 10 s "
                                 "(critical over 80%): the strategies are falling behind and it will drop events."),)),
            Case("is only pending when the bus has been over 80% full for less than 10 s", _BUS_FULL, at="10s"),
            Case("stays quiet at exactly 80% full", {engine_series("hft_bus_occupancy_ratio"): "0.8x4"}, at="20s"),
        )),
    Alert(
        name="BusOverflowCritical", severity="critical", family="bus-overflow", cause="overflow",
        expr="sum by (engine) (increase(hft_bus_overflow_total[1m])) > 0",
        summary="Event bus dropping events on {{ $labels.engine }}",
        description="The event bus dropped {{ $value | humanize }} market events in the last minute: the strategies "
                    "never saw them.",
        quiet_reason="the bus has room for every event: hft_bus_overflow_total stays at 0",
        cases=(
            Case("fires as soon as the bus drops an event",
                 {engine_series("hft_bus_overflow_total"): "0 0 0 5 5"}, at="1m", interval="15s",
                 fires=(Expected(on_engine(), "Event bus dropping events on engine1",
                                 "The event bus dropped 5 market events in the last minute: the strategies never "
                                 "saw them."),)),
            Case("stays quiet while no event is dropped",
                 {engine_series("hft_bus_overflow_total"): "0x4"}, at="1m", interval="15s"),
        )),
    Alert(
        name="BusOccupancyWarning", severity="warning", family="bus-overflow", for_="30s",
        expr="max by (engine) (hft_bus_occupancy_ratio) > 0.6",
        summary="Event bus filling up on {{ $labels.engine }}",
        description="The event bus from the feed to the strategies has been {{ $value | humanizePercentage }} full "
                    "for 30 s (warning over 60%, critical over 80%).",
        quiet_reason="the strategies keep up: the bus stays 5 to 15 % full",
        cases=(
            Case("fires once the bus has been over 60% full for 30 s",
                 {engine_series("hft_bus_occupancy_ratio"): "0.1 0.7x8"}, at="35s",
                 fires=(Expected(on_engine(), "Event bus filling up on engine1",
                                 "The event bus from the feed to the strategies has been 70% full for 30 s "
                                 "(warning over 60%, critical over 80%)."),)),
            Case("is only pending when the bus has been over 60% full for less than 30 s",
                 {engine_series("hft_bus_occupancy_ratio"): "0.1 0.7x8"}, at="30s"),
            Case("stays quiet at exactly 60% full", {engine_series("hft_bus_occupancy_ratio"): "0.6x8"}, at="40s"),
        )),
)

# -- stormguard ------------------------------------------------------------------------------------------

STORMGUARD = (
    Alert(
        name="StormGuardHaltCritical", severity="critical", family="stormguard",
        expr="max by (engine, strategy) (hft_stormguard_mode) == 3",
        summary="StormGuard halted {{ $labels.strategy }} on {{ $labels.engine }}",
        description="StormGuard put strategy {{ $labels.strategy }} in HALT: it sends no new orders until an "
                    "operator resumes it.",
        quiet_reason="every strategy trades in NORMAL; HALT takes a drawdown at its limit",
        cases=(
            Case("fires for the halted strategy only, at once",
                 {engine_series("hft_stormguard_mode", strategy="mm"): "3",
                  engine_series("hft_stormguard_mode", strategy="momentum"): "2"}, at="0s",
                 fires=(Expected(on_engine(strategy="mm"), "StormGuard halted mm on engine1",
                                 "StormGuard put strategy mm in HALT: it sends no new orders until an operator "
                                 "resumes it."),)),
            Case("stays quiet in STORM", {engine_series("hft_stormguard_mode", strategy="mm"): "2x2"}, at="10s"),
        )),
    Alert(
        name="StormGuardWarning", severity="warning", family="stormguard", for_="30s",
        expr="max by (engine, strategy) (hft_stormguard_mode) >= 1 <= 2",
        summary="StormGuard restricting {{ $labels.strategy }} on {{ $labels.engine }}",
        description="StormGuard has held strategy {{ $labels.strategy }} in "
                    "{{ if eq $value 1.0 }}WARM{{ else }}STORM{{ end }} (mode {{ $value }}) for 30 s: "
                    "its reject rate, drawdown or gateway is out of bounds.",
        quiet_reason="every strategy trades in NORMAL; a rare WARM after a couple of rejects clears well within 30 s",
        cases=(
            Case("fires once a strategy has been in STORM for 30 s",
                 {engine_series("hft_stormguard_mode", strategy="mm"): "0 2x8"}, at="35s",
                 fires=(Expected(on_engine(strategy="mm"), "StormGuard restricting mm on engine1",
                                 "StormGuard has held strategy mm in STORM (mode 2) for 30 s: its reject rate, "
                                 "drawdown or gateway is out of bounds."),)),
            Case("names WARM when the strategy is in WARM",
                 {engine_series("hft_stormguard_mode", strategy="momentum"): "1x8"}, at="30s",
                 fires=(Expected(on_engine(strategy="momentum"), "StormGuard restricting momentum on engine1",
                                 "StormGuard has held strategy momentum in WARM (mode 1) for 30 s: its reject rate, "
                                 "drawdown or gateway is out of bounds."),)),
            Case("is only pending when the strategy has been in STORM for less than 30 s",
                 {engine_series("hft_stormguard_mode", strategy="mm"): "0 2x8"}, at="30s"),
            Case("stays quiet in HALT, which is the critical's",
                 {engine_series("hft_stormguard_mode", strategy="mm"): "3x12"}, at="1m"),
        )),
    Alert(
        name="DrawdownWarning", severity="warning", family="stormguard", for_="1m",
        expr="max by (engine, strategy) (hft_drawdown) / max by (engine, strategy) (hft_drawdown_limit > 0) > 0.5",
        summary="Drawdown of {{ $labels.strategy }} past half its limit on {{ $labels.engine }}",
        description="Strategy {{ $labels.strategy }} is {{ $value | humanizePercentage }} of its drawdown limit below "
                    "its session peak (warning over 50%); StormGuard halts it at 100%.",
        quiet_reason="drawdowns stay a small fraction (about a tenth at most) of each strategy's limit",
        cases=(
            Case("fires once the drawdown has been over half the limit for a minute",
                 {engine_series("hft_drawdown", strategy="mm"): "300000x12",
                  engine_series("hft_drawdown_limit", strategy="mm"): "500000x12"}, at="1m",
                 fires=(Expected(on_engine(strategy="mm"),
                                 "Drawdown of mm past half its limit on engine1",
                                 "Strategy mm is 60% of its drawdown limit below its session peak (warning over "
                                 "50%); StormGuard halts it at 100%."),)),
            Case("stays quiet at exactly half the limit",
                 {engine_series("hft_drawdown", strategy="mm"): "250000x12",
                  engine_series("hft_drawdown_limit", strategy="mm"): "500000x12"}, at="1m"),
            Case("stays quiet while the limit is unset (0)",
                 {engine_series("hft_drawdown", strategy="mm"): "300000x12",
                  engine_series("hft_drawdown_limit", strategy="mm"): "0x12"}, at="1m"),
        )),
)

# -- reject-spike ----------------------------------------------------------------------------------------

_REJECT_RATIO = ("sum by (engine) (rate(hft_order_rejects_total[1m])) "
                 "/ (sum by (engine) (rate(hft_order_actions_total[1m])) > 0)")


def _orders(rejects: str, submits: str, samples: int = 12) -> dict[str, str]:
    """Order counters growing by `rejects` and `submits` a sample (every 15 s), split over two labels each."""
    return {engine_series("hft_order_rejects_total", reason="price_limit"): f"0+{rejects}x{samples}",
            engine_series("hft_order_rejects_total", reason="other"): f"0x{samples}",
            engine_series("hft_order_actions_total", action="submit"): f"0+{submits}x{samples}",
            engine_series("hft_order_actions_total", action="cancel"): f"0x{samples}"}


REJECT_SPIKE = (
    Alert(
        name="OrderRejectSpikeCritical", severity="critical", family="reject-spike", for_="30s",
        expr=f"{_REJECT_RATIO} > 0.05",
        summary="Broker rejecting orders on {{ $labels.engine }}",
        description="{{ $value | humanizePercentage }} of order actions were rejected over the last minute "
                    "(critical over 5%).",
        quiet_reason="the broker rejects about 0.5 % of orders",
        cases=(
            Case("fires once a tenth of orders have been rejected for 30 s", _orders("1", "10"), at="1m",
                 interval="15s",
                 fires=(Expected(on_engine(), "Broker rejecting orders on engine1",
                                 "10% of order actions were rejected over the last minute (critical over 5%)."),)),
            Case("stays quiet at 4% rejected", _orders("1", "25"), at="1m", interval="15s"),
            Case("stays quiet while no order is sent", _orders("0", "0"), at="1m", interval="15s"),
        )),
    Alert(
        name="OrderRejectRateWarning", severity="warning", family="reject-spike", for_="1m",
        expr=f"{_REJECT_RATIO} > 0.02",
        summary="Order rejects rising on {{ $labels.engine }}",
        description="{{ $value | humanizePercentage }} of order actions were rejected over the last minute "
                    "(warning over 2%, critical over 5%).",
        quiet_reason="the broker rejects about 0.5 % of orders",
        cases=(
            Case("fires once 4% of orders have been rejected for a minute", _orders("1", "25", 20), at="1m30s",
                 interval="15s",
                 fires=(Expected(on_engine(), "Order rejects rising on engine1",
                                 "4% of order actions were rejected over the last minute "
                                 "(warning over 2%, critical over 5%)."),)),
            Case("is only pending when 4% have been rejected for less than a minute", _orders("1", "25", 20),
                 at="1m", interval="15s"),
            Case("stays quiet at 1.7% rejected", _orders("1", "60", 20), at="1m30s", interval="15s"),
        )),
    Alert(
        name="OrderRateNearLimit", severity="warning", family="reject-spike", for_="30s",
        expr="max by (engine) (hft_order_rate) / max by (engine) (hft_order_rate_limit > 0) > 0.8",
        summary="Order rate near the broker's limit on {{ $labels.engine }}",
        description="The engine has been sending orders at {{ $value | humanizePercentage }} of the rate the broker "
                    "allows for 30 s (warning over 80%); past it the broker rejects.",
        quiet_reason="the engine averages about 13 orders/s against a limit of 25; peaks pass within 30 s",
        cases=(
            Case("fires once the order rate has been over 80% of the limit for 30 s",
                 {engine_series("hft_order_rate"): "22x8", engine_series("hft_order_rate_limit"): "25x8"}, at="30s",
                 fires=(Expected(on_engine(), "Order rate near the broker's limit on engine1",
                                 "The engine has been sending orders at 88% of the rate the broker allows for 30 s "
                                 "(warning over 80%); past it the broker rejects."),)),
            Case("stays quiet at exactly 80% of the limit",
                 {engine_series("hft_order_rate"): "20x8", engine_series("hft_order_rate_limit"): "25x8"}, at="35s"),
            Case("stays quiet while the limit is unset (0)",
                 {engine_series("hft_order_rate"): "22x8", engine_series("hft_order_rate_limit"): "0x8"}, at="35s"),
        )),
    Alert(
        name="ApiUsageNearLimit", severity="warning", family="reject-spike", for_="1m",
        expr="max by (engine, api) (hft_api_usage) / max by (engine, api) (hft_api_limit > 0) > 0.8",
        summary="Broker API {{ $labels.api }} near its limit on {{ $labels.engine }}",
        description="The engine has used {{ $value | humanizePercentage }} of the broker's {{ $labels.api }} limit "
                    "for a minute (warning over 80%); past it the broker refuses requests.",
        quiet_reason="usage stays about half of each limit: orders average about 130 of 250, "
                     "subscriptions 8 of 200, queries 2 of 50",
        cases=(
            Case("fires for the API over 80% of its limit for a minute",
                 {engine_series("hft_api_usage", api="orders"): "240x12",
                  engine_series("hft_api_limit", api="orders"): "250x12",
                  engine_series("hft_api_usage", api="queries"): "2x12",
                  engine_series("hft_api_limit", api="queries"): "50x12"}, at="1m",
                 fires=(Expected(on_engine(api="orders"), "Broker API orders near its limit on engine1",
                                 "The engine has used 96% of the broker's orders limit for a minute (warning over "
                                 "80%); past it the broker refuses requests."),)),
            Case("stays quiet at exactly 80% of the limit",
                 {engine_series("hft_api_usage", api="orders"): "200x12",
                  engine_series("hft_api_limit", api="orders"): "250x12"}, at="1m"),
        )),
)

# -- disconnect ------------------------------------------------------------------------------------------

_DISCONNECTED = {engine_series("hft_shioaji_connected"): "1 0x3"}

DISCONNECT = (
    Alert(
        name="ShioajiDisconnectCritical", severity="critical", family="disconnect", for_="5s",
        expr="max by (engine) (hft_shioaji_connected) == 0",
        summary="Shioaji session down on {{ $labels.engine }}",
        description="The Shioaji session has not been connected and logged in for 5 s: no market data arrives and "
                    "orders are rejected as disconnected until it reconnects.",
        quiet_reason="the Shioaji session is connected from the engine's start",
        cases=(
            Case("fires once the session has been down for 5 s", _DISCONNECTED, at="10s",
                 fires=(Expected(on_engine(), "Shioaji session down on engine1",
                                 "The Shioaji session has not been connected and logged in for 5 s: no market data "
                                 "arrives and orders are rejected as disconnected until it reconnects."),)),
            Case("is only pending when the session has been down for less than 5 s", _DISCONNECTED, at="5s"),
        )),
    Alert(
        # increase() extrapolates to the edges of its window, so exactly 2 reconnects can read as 2.1:
        # ">= 3" says "more than 2" for a counter of whole reconnects.
        name="ShioajiReconnecting", severity="warning", family="disconnect",
        expr="sum by (engine) (increase(hft_shioaji_reconnects_total[15m])) >= 3",
        summary="Shioaji session flapping on {{ $labels.engine }}",
        description="The Shioaji session reconnected {{ $value | humanize }} times in the last 15 minutes "
                    "(warning at 3).",
        quiet_reason="the session never drops: hft_shioaji_reconnects_total stays at 0",
        cases=(
            Case("fires at the third reconnect in 15 minutes",
                 {engine_series("hft_shioaji_reconnects_total"): "0 1 2 3x2"}, at="5m", interval="1m",
                 fires=(Expected(on_engine(), "Shioaji session flapping on engine1",
                                 "The Shioaji session reconnected 3 times in the last 15 minutes (warning at 3)."),)),
            Case("stays quiet after two reconnects",
                 {engine_series("hft_shioaji_reconnects_total"): "0 1 2x3"}, at="5m", interval="1m"),
        )),
)

# -- latency ---------------------------------------------------------------------------------------------


def _strategy_buckets(strategy: str, slow: bool) -> dict[str, str]:
    """hft_strategy_latency_seconds of `strategy`: every decision just under 1 ms, or just over."""
    bounds = {"0.0005": "0x12", "0.001": "0x12" if slow else "0+100x12", "0.0025": "0+100x12", "+Inf": "0+100x12"}
    return {engine_series("hft_strategy_latency_seconds_bucket", strategy=strategy, le=le): values
            for le, values in bounds.items()}


LATENCY = (
    Alert(
        name="StrategyLatencyHigh", severity="warning", family="latency", for_="1m",
        expr="histogram_quantile(0.99, sum by (le, engine, strategy) "
             "(rate(hft_strategy_latency_seconds_bucket[1m]))) > 0.001",
        summary="Strategy {{ $labels.strategy }} deciding slowly on {{ $labels.engine }}",
        description="99th percentile of market event to decision for strategy {{ $labels.strategy }} is "
                    "{{ $value | humanizeDuration }} over the last minute (warning over 1 ms).",
        quiet_reason="strategies decide in about 5 to 30 microseconds",
        cases=(
            Case("fires for the strategy whose 99th percentile has been over 1 ms for a minute",
                 {**_strategy_buckets("momentum", slow=True), **_strategy_buckets("mm", slow=False)},
                 at="2m", interval="15s",
                 fires=(Expected(on_engine(strategy="momentum"), "Strategy momentum deciding slowly on engine1",
                                 "99th percentile of market event to decision for strategy momentum is 2.485ms over "
                                 "the last minute (warning over 1 ms)."),)),
            Case("stays quiet when the 99th percentile is just under 1 ms", _strategy_buckets("mm", slow=False),
                 at="2m", interval="15s"),
        )),
    Alert(
        name="OrderLatencyHigh", severity="warning", family="latency", for_="1m",
        expr="histogram_quantile(0.99, sum by (le, engine) (rate(hft_order_latency_seconds_bucket[1m]))) > 0.25",
        summary="Broker acknowledging orders slowly on {{ $labels.engine }}",
        description="99th percentile of order submission to the broker's acknowledgement is "
                    "{{ $value | humanizeDuration }} over the last minute (warning over 250 ms).",
        quiet_reason="the simulated broker acknowledges in about 2 ms",
        cases=(
            Case("fires when the 99th percentile has been over 250 ms for a minute",
                 {engine_series("hft_order_latency_seconds_bucket", le="0.1"): "0x12",
                  engine_series("hft_order_latency_seconds_bucket", le="0.25"): "0x12",
                  engine_series("hft_order_latency_seconds_bucket", le="0.5"): "0+20x12",
                  engine_series("hft_order_latency_seconds_bucket", le="+Inf"): "0+20x12"},
                 at="2m", interval="15s",
                 fires=(Expected(on_engine(), "Broker acknowledging orders slowly on engine1",
                                 "99th percentile of order submission to the broker's acknowledgement is 497.5ms "
                                 "over the last minute (warning over 250 ms)."),)),
            Case("stays quiet when the 99th percentile is just under 250 ms",
                 {engine_series("hft_order_latency_seconds_bucket", le="0.1"): "0x12",
                  engine_series("hft_order_latency_seconds_bucket", le="0.25"): "0+20x12",
                  engine_series("hft_order_latency_seconds_bucket", le="0.5"): "0+20x12",
                  engine_series("hft_order_latency_seconds_bucket", le="+Inf"): "0+20x12"},
                 at="2m", interval="15s"),
        )),
)

# -- reconciliation --------------------------------------------------------------------------------------

RECONCILIATION = (
    Alert(
        name="ReconciliationDelayed", severity="warning", family="reconciliation", for_="1m",
        expr="max by (engine) (hft_reconciliation_delay_seconds) > 30",
        summary="Positions not reconciled on {{ $labels.engine }}",
        description="Positions were last reconciled with the broker {{ $value | humanizeDuration }} ago "
                    "(warning over 30 s): the engine's positions may disagree with the broker's.",
        quiet_reason="positions are reconciled every 5 s",
        cases=(
            Case("fires once the delay has been over 30 s for a minute",
                 {engine_series("hft_reconciliation_delay_seconds"): "45x8"}, at="1m", interval="15s",
                 fires=(Expected(on_engine(), "Positions not reconciled on engine1",
                                 "Positions were last reconciled with the broker 45s ago (warning over 30 s): the "
                                 "engine's positions may disagree with the broker's."),)),
            Case("stays quiet at a delay of exactly 30 s",
                 {engine_series("hft_reconciliation_delay_seconds"): "30x8"}, at="1m", interval="15s"),
        )),
)

# -- recorder-failure ------------------------------------------------------------------------------------

RECORDER_FAILURE = (
    Alert(
        name="RecorderFailureCritical", severity="critical", family="recorder-failure", cause="engine-recorder",
        expr="sum by (engine, sink) (increase(hft_recorder_write_failures_total[5m])) > 0",
        summary="Recorder failing to write {{ $labels.sink }} on {{ $labels.engine }}",
        description="The engine's recorder failed {{ $value | humanize }} batch writes to {{ $labels.sink }} in the "
                    "last 5 minutes; its queue grows until the sink takes writes again.",
        quiet_reason="the recorder's sink is writable: hft_recorder_write_failures_total stays at 0",
        cases=(
            Case("fires at the first failed write",
                 {engine_series("hft_recorder_write_failures_total", sink="ticks"): "0 0 2x4"}, at="5m",
                 interval="1m",
                 fires=(Expected(on_engine(sink="ticks"), "Recorder failing to write ticks on engine1",
                                 "The engine's recorder failed 2 batch writes to ticks in the last 5 minutes; its "
                                 "queue grows until the sink takes writes again."),)),
            Case("stays quiet while every write succeeds",
                 {engine_series("hft_recorder_write_failures_total", sink="ticks"): "0x6"}, at="5m", interval="1m"),
        )),
    Alert(
        name="RecorderFailureCritical", severity="critical", family="recorder-failure", cause="clickhouse-drain",
        expr="sum by (instance, table) (increase(hftel_recorder_write_failures_total[5m])) > 0",
        summary="Exporter failing to insert into {{ $labels.table }} from {{ $labels.instance }}",
        description="{{ $value | humanize }} inserts into ClickHouse table {{ $labels.table }} failed in the last "
                    "5 minutes; the rows wait in the exporter's spool and are retried.",
        quiet_reason="ClickHouse takes every insert: hftel_recorder_write_failures_total stays at 0",
        cases=(
            Case("fires at the first failed insert, transient or permanent",
                 {exporter_series("hftel_recorder_write_failures_total", table="audit_orders",
                                  reason="transient"): "0 0 1x4",
                  exporter_series("hftel_recorder_write_failures_total", table="audit_orders",
                                  reason="permanent"): "0 0 0 1x3",
                  exporter_series("hftel_recorder_write_failures_total", table="logs_hft",
                                  reason="transient"): "0x6"}, at="5m", interval="1m",
                 fires=(Expected(on_exporter(table="audit_orders"),
                                 "Exporter failing to insert into audit_orders from host1:9477",
                                 "2 inserts into ClickHouse table audit_orders failed in the last 5 minutes; the "
                                 "rows wait in the exporter's spool and are retried."),)),
            Case("stays quiet while every insert succeeds",
                 {exporter_series("hftel_recorder_write_failures_total", table="audit_orders",
                                  reason="transient"): "0x6"}, at="5m", interval="1m"),
        )),
    Alert(
        name="RecorderQueueBacklog", severity="warning", family="recorder-failure", for_="1m",
        expr="max by (engine, sink) (hft_recorder_queue_depth) > 10000",
        summary="Recorder falling behind on {{ $labels.sink }} on {{ $labels.engine }}",
        description="{{ $value | humanize }} records are queued for {{ $labels.sink }} and not yet written "
                    "(warning over 10k for a minute).",
        quiet_reason="the recorder writes its queue every 250 ms: it never holds more than a few hundred ticks",
        cases=(
            Case("fires once the queue has been over 10000 for a minute",
                 {engine_series("hft_recorder_queue_depth", sink="ticks"): "12000x12"}, at="1m",
                 fires=(Expected(on_engine(sink="ticks"), "Recorder falling behind on ticks on engine1",
                                 "12k records are queued for ticks and not yet written (warning over 10k for a "
                                 "minute)."),)),
            Case("stays quiet at exactly 10000",
                 {engine_series("hft_recorder_queue_depth", sink="ticks"): "10000x12"}, at="1m"),
        )),
)

# -- clickhouse ------------------------------------------------------------------------------------------


def _insert_buckets(slow: bool) -> dict[str, str]:
    """hftel_clickhouse_insert_duration_seconds: every insert just under 5 s, or just over."""
    bounds = {"2.5": "0x7", "5": "0x7" if slow else "0+10x7", "10": "0+10x7", "+Inf": "0+10x7"}
    return {exporter_series("hftel_clickhouse_insert_duration_seconds_bucket", le=le): values
            for le, values in bounds.items()}


CLICKHOUSE = (
    Alert(
        name="ClickHouseDown", severity="warning", family="clickhouse", for_="1m",
        expr="max by (instance, sink) (hftel_clickhouse_up) == 0",
        summary="ClickHouse unreachable from {{ $labels.instance }}",
        description="The exporter's last insert or ping to its {{ $labels.sink }} ClickHouse failed, for a minute: "
                    "audit rows and logs wait in the spool until it is back.",
        quiet_reason="the embedded ClickHouse answers: hftel_clickhouse_up is 1",
        cases=(
            Case("fires once ClickHouse has been down for a minute",
                 {exporter_series("hftel_clickhouse_up", sink="clickhouse"): "0x12"}, at="1m",
                 fires=(Expected(on_exporter(sink="clickhouse"), "ClickHouse unreachable from host1:9477",
                                 "The exporter's last insert or ping to its clickhouse ClickHouse failed, for a "
                                 "minute: audit rows and logs wait in the spool until it is back."),)),
            Case("is only pending when ClickHouse has been down for less than a minute",
                 {exporter_series("hftel_clickhouse_up", sink="clickhouse"): "0x12"}, at="55s"),
        )),
    Alert(
        name="ClickHouseInsertSlow", severity="warning", family="clickhouse", for_="5m",
        expr="histogram_quantile(0.99, sum by (le, instance) "
             "(rate(hftel_clickhouse_insert_duration_seconds_bucket[5m]))) > 5",
        summary="ClickHouse inserts slow from {{ $labels.instance }}",
        description="99th percentile of one spooled batch's insert is {{ $value | humanizeDuration }} over the last "
                    "5 minutes (warning over 5 s): the spool will grow.",
        quiet_reason="the embedded ClickHouse inserts a batch in milliseconds",
        cases=(
            Case("fires when the 99th percentile has been over 5 s for 5 minutes", _insert_buckets(slow=True),
                 at="7m", interval="1m",
                 fires=(Expected(on_exporter(), "ClickHouse inserts slow from host1:9477",
                                 "99th percentile of one spooled batch's insert is 9.95s over the last 5 minutes "
                                 "(warning over 5 s): the spool will grow."),)),
            Case("stays quiet when the 99th percentile is just under 5 s", _insert_buckets(slow=False),
                 at="7m", interval="1m"),
        )),
    Alert(
        name="SpoolFillingUp", severity="warning", family="clickhouse", for_="5m",
        expr="max by (instance) (hftel_spool_usage_ratio) > 0.5",
        summary="Exporter spool filling up on {{ $labels.instance }}",
        description="The exporter's spool is {{ $value | humanizePercentage }} of its cap, for 5 minutes (warning over "
                    "50%): ClickHouse takes batches slower than the engines write them; at 100% the drain stops.",
        quiet_reason="the drain inserts each batch within seconds: the spool holds a few batches, far under its cap",
        cases=(
            Case("fires once the spool has been over half full for 5 minutes",
                 {exporter_series("hftel_spool_usage_ratio"): "0.75x10"}, at="5m", interval="1m",
                 fires=(Expected(on_exporter(), "Exporter spool filling up on host1:9477",
                                 "The exporter's spool is 75% of its cap, for 5 minutes (warning over 50%): "
                                 "ClickHouse takes batches slower than the engines write them; at 100% the drain "
                                 "stops."),)),
            Case("stays quiet at exactly half full",
                 {exporter_series("hftel_spool_usage_ratio"): "0.5x10"}, at="6m", interval="1m"),
        )),
    Alert(
        name="SpoolFullCritical", severity="critical", family="clickhouse",
        expr="max by (instance) (hftel_spool_full) == 1",
        summary="Exporter spool full on {{ $labels.instance }}",
        description="The exporter's spool is at its cap: the drain has stopped reading the rings, engines spill audit "
                    "rows to their spill files and log events are dropped once the log rings fill.",
        quiet_reason="the spool is far under its cap: hftel_spool_full is 0",
        cases=(
            Case("fires at once when the spool is full", {exporter_series("hftel_spool_full"): "0 1"}, at="5s",
                 fires=(Expected(on_exporter(), "Exporter spool full on host1:9477",
                                 "The exporter's spool is at its cap: the drain has stopped reading the rings, "
                                 "engines spill audit rows to their spill files and log events are dropped once the "
                                 "log rings fill."),)),
            Case("stays quiet while the spool has room", {exporter_series("hftel_spool_full"): "0 0"}, at="5s"),
        )),
    Alert(
        name="BatchesQuarantined", severity="warning", family="clickhouse",
        expr="sum by (instance) (increase(hftel_spool_quarantined_batches_total[1h])) > 0",
        summary="ClickHouse refused batches from {{ $labels.instance }}",
        description="ClickHouse refused {{ $value | humanize }} spooled batches for good in the last hour; they are "
                    "in the spool's quarantine directory and need a person.",
        quiet_reason="ClickHouse accepts every batch: hftel_spool_quarantined_batches_total stays at 0",
        cases=(
            Case("fires at the first quarantined batch",
                 {exporter_series("hftel_spool_quarantined_batches_total"): "0 0 1x2"}, at="15m", interval="5m",
                 fires=(Expected(on_exporter(), "ClickHouse refused batches from host1:9477",
                                 "ClickHouse refused 1 spooled batches for good in the last hour; they are in the "
                                 "spool's quarantine directory and need a person."),)),
            Case("stays quiet while no batch is quarantined",
                 {exporter_series("hftel_spool_quarantined_batches_total"): "0x3"}, at="15m", interval="5m"),
        )),
)

# -- engine-and-exporter ---------------------------------------------------------------------------------

_ENGINE_DOWN = {engine_series("hftel_engine_up"): "1 0x3", engine_series("hftel_engine_heartbeat_age_seconds"): "0+5x3"}
_STALLED = {engine_series("hft_process_uptime_seconds"): "100 115 130x6"}

ENGINE_AND_EXPORTER = (
    Alert(
        name="AuditLossCritical", severity="critical", family="engine-and-exporter",
        expr='sum by (engine) (increase(hftel_ring_lost_total{ring="audit"}[5m])) > 0',
        summary="Audit rows lost on {{ $labels.engine }}",
        description="{{ $value | humanize }} audit rows were lost in the last 5 minutes: the audit ring was full and "
                    "the spill file could not take them either.",
        quiet_reason="the drain keeps the audit ring from filling: nothing spills, nothing is lost",
        cases=(
            Case("fires at the first lost audit row",
                 {engine_series("hftel_ring_lost_total", ring="audit"): "0 0 3x4"}, at="5m", interval="1m",
                 fires=(Expected(on_engine(), "Audit rows lost on engine1",
                                 "3 audit rows were lost in the last 5 minutes: the audit ring was full and the spill "
                                 "file could not take them either."),)),
            Case("stays quiet when only log events are dropped",
                 {engine_series("hftel_ring_lost_total", ring="audit"): "0x6",
                  engine_series("hftel_ring_lost_total", ring="log"): "0 0 3x4"}, at="5m", interval="1m"),
        )),
    Alert(
        name="AuditSpilling", severity="warning", family="engine-and-exporter",
        expr='sum by (engine) (increase(hftel_ring_spilled_total{ring="audit"}[5m])) > 0',
        summary="Audit rows spilling on {{ $labels.engine }}",
        description="{{ $value | humanize }} audit rows went to the spill file in the last 5 minutes because the audit "
                    "ring was full: the drain is behind or stopped.",
        quiet_reason="the drain keeps the audit ring from filling: hftel_ring_spilled_total stays at 0",
        cases=(
            Case("fires at the first spilled audit row",
                 {engine_series("hftel_ring_spilled_total", ring="audit"): "0 0 40x4"}, at="5m", interval="1m",
                 fires=(Expected(on_engine(), "Audit rows spilling on engine1",
                                 "40 audit rows went to the spill file in the last 5 minutes because the audit ring "
                                 "was full: the drain is behind or stopped."),)),
            Case("stays quiet while nothing spills",
                 {engine_series("hftel_ring_spilled_total", ring="audit"): "0x6"}, at="5m", interval="1m"),
        )),
    Alert(
        name="RingFillingUp", severity="warning", family="engine-and-exporter", for_="1m",
        expr="max by (engine, ring) (hftel_ring_occupancy_ratio) > 0.5",
        summary="The {{ $labels.ring }} ring filling up on {{ $labels.engine }}",
        description="The {{ $labels.ring }} ring has been {{ $value | humanizePercentage }} full for a minute "
                    "(warning over 50%): the drain is not keeping up; when full, audit rows spill and log events "
                    "are dropped.",
        quiet_reason="the drain empties the rings several times a second",
        cases=(
            Case("fires for the ring over half full for a minute",
                 {engine_series("hftel_ring_occupancy_ratio", ring="log"): "0.6x12",
                  engine_series("hftel_ring_occupancy_ratio", ring="audit"): "0.1x12"}, at="1m",
                 fires=(Expected(on_engine(ring="log"), "The log ring filling up on engine1",
                                 "The log ring has been 60% full for a minute (warning over 50%): the drain is not "
                                 "keeping up; when full, audit rows spill and log events are dropped."),)),
            Case("stays quiet at exactly half full",
                 {engine_series("hftel_ring_occupancy_ratio", ring="log"): "0.5x12"}, at="1m"),
        )),
    Alert(
        name="EngineDownCritical", severity="critical", family="engine-and-exporter", for_="10s",
        expr="max by (engine) (hftel_engine_heartbeat_age_seconds) "
             "and on (engine) max by (engine) (hftel_engine_up) == 0",
        summary="Engine {{ $labels.engine }} down",
        description="The engine has not stamped its heartbeat for {{ $value | humanizeDuration }}: it has died, "
                    "stopped or closed its segment.",
        quiet_reason="the engine stamps its heartbeat: hftel_engine_up is 1",
        cases=(
            Case("fires once the engine has been down for 10 s", _ENGINE_DOWN, at="15s",
                 fires=(Expected(on_engine(), "Engine engine1 down",
                                 "The engine has not stamped its heartbeat for 15s: it has died, stopped or closed "
                                 "its segment."),)),
            Case("is only pending when the engine has been down for less than 10 s", _ENGINE_DOWN, at="10s"),
        )),
    Alert(
        # delta() needs two samples, so a freshly started engine, scraped once, is not taken for stalled.
        name="EngineStalled", severity="warning", family="engine-and-exporter",
        expr="max by (engine) (delta(hft_process_uptime_seconds[1m])) == 0 "
             "and on (engine) max by (engine) (hftel_engine_up) == 1",
        summary="Engine {{ $labels.engine }} stalled",
        description="The engine's heartbeat is alive but hft_process_uptime_seconds has not moved for a minute: its "
                    "main loop is stuck.",
        quiet_reason="the engine's loop sets hft_process_uptime_seconds every 100 ms, so it rises between scrapes",
        cases=(
            Case("fires when the uptime has not moved for a minute while the heartbeat is alive",
                 {**_STALLED, engine_series("hftel_engine_up"): "1x7"}, at="1m45s", interval="15s",
                 fires=(Expected(on_engine(), "Engine engine1 stalled",
                                 "The engine's heartbeat is alive but hft_process_uptime_seconds has not moved for a "
                                 "minute: its main loop is stuck."),)),
            Case("stays quiet while the uptime moved within the minute",
                 {**_STALLED, engine_series("hftel_engine_up"): "1x7"}, at="1m15s", interval="15s"),
            Case("stays quiet when the engine is down, which is EngineDownCritical's",
                 {**_STALLED, engine_series("hftel_engine_up"): "0x7"}, at="1m45s", interval="15s"),
        )),
    Alert(
        name="HealthCheckFailing", severity="warning", family="engine-and-exporter", for_="1m",
        expr="min by (engine, check) (hft_health_check_status) == 0",
        summary="Health check {{ $labels.check }} failing on {{ $labels.engine }}",
        description="The engine's own {{ $labels.check }} health check has been failing for a minute.",
        quiet_reason="every health check passes: feed, gateway, bus and recorder are 1",
        cases=(
            Case("fires for the check that has failed for a minute",
                 {engine_series("hft_health_check_status", check="feed"): "0x12",
                  engine_series("hft_health_check_status", check="gateway"): "1x12"}, at="1m",
                 fires=(Expected(on_engine(check="feed"), "Health check feed failing on engine1",
                                 "The engine's own feed health check has been failing for a minute."),)),
            Case("is only pending when the check has failed for less than a minute",
                 {engine_series("hft_health_check_status", check="feed"): "0x12"}, at="55s"),
        )),
    Alert(
        name="ExporterDown", severity="critical", family="engine-and-exporter", for_="30s",
        expr='up{job="hftel"} == 0 or absent(up{job="hftel"})',
        summary="hftel exporter down{{ with $labels.instance }} on {{ . }}{{ end }}",
        description="Prometheus cannot scrape the hftel exporter "
                    "(job hftel{{ with $labels.instance }}, {{ . }}{{ end }}) for 30 s: no engine metrics arrive and "
                    "every other hftel alert is blind.",
        quiet_reason='Prometheus scrapes the exporter as job "hftel" and it answers: up is 1',
        cases=(
            Case("fires once the exporter has failed its scrapes for 30 s",
                 {exporter_series("up"): "0x8"}, at="30s",
                 fires=(Expected({"instance": INSTANCE, "job": JOB}, "hftel exporter down on host1:9477",
                                 "Prometheus cannot scrape the hftel exporter (job hftel, host1:9477) for 30 s: no "
                                 "engine metrics arrive and every other hftel alert is blind."),)),
            Case("fires when Prometheus has no hftel target at all",
                 {'up{instance="node1:9100",job="node"}': "1x8"}, at="30s",
                 fires=(Expected({"job": JOB}, "hftel exporter down",
                                 "Prometheus cannot scrape the hftel exporter (job hftel) for 30 s: no engine metrics "
                                 "arrive and every other hftel alert is blind."),)),
            Case("is only pending when the scrapes have failed for less than 30 s",
                 {exporter_series("up"): "0x8"}, at="25s"),
            Case("stays quiet while the scrapes succeed", {exporter_series("up"): "1x8"}, at="35s"),
        )),
    Alert(
        name="ExporterErrors", severity="warning", family="engine-and-exporter",
        expr="sum by (instance, kind) (increase(hftel_exporter_errors_total[5m])) > 0",
        summary="hftel exporter errors ({{ $labels.kind }}) on {{ $labels.instance }}",
        description="The exporter counted {{ $value | humanize }} {{ $labels.kind }} errors in the last 5 minutes.",
        quiet_reason="the demo's segments are well formed: hftel_exporter_errors_total stays at 0 for every kind",
        cases=(
            Case("fires for the kind of error counted",
                 {exporter_series("hftel_exporter_errors_total", kind="segment_corrupt"): "0 0 1x4",
                  exporter_series("hftel_exporter_errors_total", kind="render"): "0x6"}, at="5m", interval="1m",
                 fires=(Expected(on_exporter(kind="segment_corrupt"),
                                 "hftel exporter errors (segment_corrupt) on host1:9477",
                                 "The exporter counted 1 segment_corrupt errors in the last 5 minutes."),)),
            Case("stays quiet while no error is counted",
                 {exporter_series("hftel_exporter_errors_total", kind="render"): "0x6"}, at="5m", interval="1m"),
        )),
    Alert(
        name="LogSchemaViolations", severity="warning", family="engine-and-exporter",
        expr="sum by (engine) (increase(hftel_ring_violations_total[15m])) > 0",
        summary="Log events breaking their schema on {{ $labels.engine }}",
        description="{{ $value | humanize }} log events in the last 15 minutes lacked a field their component "
                    "requires (flagged schema_violation in logs_hft).",
        quiet_reason="the facades log every required field: hftel_ring_violations_total stays at 0",
        cases=(
            Case("fires at the first violation",
                 {engine_series("hftel_ring_violations_total", ring="log"): "0 0 4x3"}, at="5m", interval="1m",
                 fires=(Expected(on_engine(), "Log events breaking their schema on engine1",
                                 "4 log events in the last 15 minutes lacked a field their component requires "
                                 "(flagged schema_violation in logs_hft)."),)),
            Case("stays quiet while every event has its fields",
                 {engine_series("hftel_ring_violations_total", ring="log"): "0x5"}, at="5m", interval="1m"),
        )),
)

#: Every rule, in the order the rule files list them (by family, as the runbooks are).
ALERTS: tuple[Alert, ...] = (*FEED_GAP, *BUS_OVERFLOW, *STORMGUARD, *REJECT_SPIKE, *DISCONNECT, *LATENCY,
                             *RECONCILIATION, *RECORDER_FAILURE, *CLICKHOUSE, *ENGINE_AND_EXPORTER)

#: The alert names, each once, in order.
NAMES: tuple[str, ...] = tuple(dict.fromkeys(alert.name for alert in ALERTS))
