"""The alerts on the trading path, from the market data feed to the broker and back: feed-gap,
bus-overflow, stormguard, reject-spike, disconnect, latency and reconciliation.

Each family is a tuple of `Alert`s in the order its runbook lists them; alerts/rules.py puts the
families in `ALERTS`. How the expressions are written is said once, in alerts/rules.py.
"""
from __future__ import annotations

from alert_model import Alert, Case, Expected, engine_series, on_engine


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
