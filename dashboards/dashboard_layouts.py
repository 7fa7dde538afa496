"""The five dashboards, one function each, and DASHBOARDS, which names each one's JSON file.

A dashboard is a `Dashboard` (dashboards/dashboard_panels.py) with rows and panels added left to
right in reading order; the panels are numbered in that order, so add a new one after the others
to keep the existing ids.
"""
from __future__ import annotations

from typing import Callable

from dashboard_panels import (CONNECTED, DASHED_LIMIT, ENGINE, EXPORTER, PASS_FAIL, RED, RIGHT_AXIS, STORMGUARD,
                              STRATEGY, UP_DOWN, Dashboard, bargauge, increase, override, quantiles, rate, series,
                              stat, state_timeline, table, target, text, timeseries)


def feed_gateway() -> Dashboard:
    d = Dashboard("hftel-feed-gateway", "hftel / Feed & Gateway Health",
                  "The Shioaji session, the market data feed, broker API usage and the event bus to the strategies.")
    d.row("Gateway")
    d.add(6, 8, stat(
        "Shioaji connection", "Whether each engine's Shioaji session is connected and logged in, now.", "bool_on_off",
        [target(f"min by (engine) ({series('hft_shioaji_connected', ENGINE)})", "{{engine}}")],
        mappings=CONNECTED, alerts=["ShioajiDisconnectCritical"]))
    d.add(12, 8, state_timeline(
        "Shioaji connection over time", "Connected and disconnected spells of each engine's Shioaji session.",
        "bool_on_off", [target(f"min by (engine) ({series('hft_shioaji_connected', ENGINE)})", "{{engine}}")],
        mappings=CONNECTED, alerts=["ShioajiDisconnectCritical"]))
    d.add(6, 8, stat(
        "Reconnects in range", "Reconnections of the Shioaji session over the dashboard's time range.", "short",
        [target(f"sum by (engine) ({increase('hft_shioaji_reconnects_total', ENGINE, '$__range')})", "{{engine}}",
                instant=True)], steps=[(1, "yellow"), (3, "red")], alerts=["ShioajiReconnecting"]))
    d.add(8, 8, timeseries(
        "Shioaji reconnects per 15 min", "Reconnections in the trailing 15 minutes; more than 2 warns.", "short",
        [target(f"sum by (engine) ({increase('hft_shioaji_reconnects_total', ENGINE, '15m')})", "{{engine}}")],
        steps=[(2, "red")], alerts=["ShioajiReconnecting"]))
    d.add(8, 8, timeseries(
        "Broker API usage vs limit", "Each broker API's usage in its limit window over the broker's limit.",
        "percentunit", [target(f"{series('hft_api_usage', ENGINE)} / ({series('hft_api_limit', ENGINE)} > 0)",
                               "{{engine}} {{api}}")],
        steps=[(0.8, "red")], minimum=0, alerts=["ApiUsageNearLimit"]))
    d.add(8, 8, bargauge(
        "Broker API usage now", "Requests used in the current window against each API's limit (the bar's end).",
        "percentunit", [target(f"max by (api) ({series('hft_api_usage', ENGINE)} / ({series('hft_api_limit', ENGINE)}"
                               " > 0))", "{{api}}", instant=True)],
        steps=[(0.6, "yellow"), (0.8, "red")], minimum=0, maximum=1, alerts=["ApiUsageNearLimit"]))
    d.row("Feed")
    d.add(8, 8, timeseries(
        "Feed event rate by type", "Market data events received per second: ticks (trades) and bidask (quotes).",
        "eps", [target(f"sum by (type) ({rate('hft_feed_events_total', ENGINE)})", "{{type}}")]))
    d.add(8, 8, timeseries(
        "Feed gap", "Seconds since the last market data event (left), and whether the exchange session is open "
        "(right): a gap matters only while the market is open.", "s",
        [target(f"max by (engine) ({series('hft_feed_gap_seconds', ENGINE)})", "{{engine}} gap"),
         target(f"max by (engine) ({series('hft_market_open', ENGINE)})", "{{engine}} market open")],
        steps=[(0.5, "yellow"), (1, "red")], alerts=["FeedGapCritical", "FeedGapWarning"],
        overrides=[override("B", unit="bool_on_off", min=0, max=1, custom__lineInterpolation="stepAfter",
                            **RIGHT_AXIS)]))
    d.add(8, 8, timeseries(
        "Feed latency p50/p95/p99", "Exchange timestamp to receipt in the engine, percentiles over all engines "
        "selected.", "s", quantiles("hft_feed_latency_seconds", ENGINE), steps=[(0.05, "red")],
        alerts=["FeedLatencyHigh"]))
    d.row("Event bus")
    d.add(12, 8, timeseries(
        "Event bus occupancy", "How full the event bus from the feed to the strategies is.", "percentunit",
        [target(f"max by (engine) ({series('hft_bus_occupancy_ratio', ENGINE)})", "{{engine}}")],
        steps=[(0.6, "yellow"), (0.8, "red")], minimum=0, maximum=1,
        alerts=["BusOccupancyWarning", "BusOverflowCritical"]))
    d.add(12, 8, timeseries(
        "Event bus overflow", "Events the bus had no room for and dropped, per second: anything above 0 is lost "
        "market data.", "eps", [target(f"sum by (engine) ({rate('hft_bus_overflow_total', ENGINE)})", "{{engine}}")],
        steps=[(0.001, "red")], alerts=["BusOverflowCritical"]))
    return d


def strategy_order_path() -> Dashboard:
    d = Dashboard("hftel-strategy-order", "hftel / Strategy & Order Path",
                  "From market event to strategy decision, through risk and StormGuard, to the broker and back.",
                  strategy=True)
    d.row("Strategies")
    d.add(12, 8, timeseries(
        "Strategy latency p50/p95/p99", "Market event to strategy decision, by strategy.", "s",
        quantiles("hft_strategy_latency_seconds", STRATEGY, by=("strategy",)), steps=[(0.001, "red")],
        alerts=["StrategyLatencyHigh"]))
    d.add(12, 8, timeseries(
        "Intents per second by strategy", "Order intents each strategy emitted, per second.", "ops",
        [target(f"sum by (strategy) ({rate('hft_intents_total', STRATEGY)})", "{{strategy}}")]))
    d.add(24, 6, state_timeline(
        "StormGuard mode by strategy", "StormGuard's mode for each strategy over time: NORMAL (green), WARM "
        "(yellow), STORM (orange), HALT (red).", "none",
        [target(f"max by (engine, strategy) ({series('hft_stormguard_mode', STRATEGY)})", "{{engine}} {{strategy}}")],
        mappings=STORMGUARD, alerts=["StormGuardHaltCritical", "StormGuardWarning"]))
    d.row("Risk")
    d.add(12, 8, timeseries(
        "Risk rejects by reason", "Intents the risk engine rejected per second, stacked by reason.", "ops",
        [target(f"sum by (reason) ({rate('hft_risk_rejects_total', ENGINE)})", "{{reason}}")], stack=True))
    d.add(12, 8, timeseries(
        "Risk decisions by outcome", "Pre-trade risk decisions per second: allow, reject, throttle.", "ops",
        [target(f"sum by (decision) ({rate('hft_risk_checks_total', ENGINE)})", "{{decision}}")], stack=True))
    d.row("Orders")
    d.add(12, 8, timeseries(
        "Order submissions, ACKs and rejects", "Order actions sent to the broker (by action), its "
        "acknowledgements and its rejects, per second.", "ops",
        [target(f"sum by (action) ({rate('hft_order_actions_total', ENGINE)})", "{{action}}"),
         target(f"sum({rate('hft_order_acks_total', ENGINE)})", "ack"),
         target(f"sum({rate('hft_order_rejects_total', ENGINE)})", "reject")],
        alerts=["OrderRejectSpikeCritical"]))
    d.add(12, 8, timeseries(
        "Order rejects by reason", "Order actions the broker (or a down gateway) rejected per second, stacked by "
        "reason.", "ops", [target(f"sum by (reason) ({rate('hft_order_rejects_total', ENGINE)})", "{{reason}}")],
        stack=True, alerts=["OrderRejectSpikeCritical"]))
    d.add(8, 8, timeseries(
        "Order reject ratio", "Broker rejects over order actions sent, per engine: above 2% warns, above 5% is "
        "critical.", "percentunit",
        [target(f"sum by (engine) ({rate('hft_order_rejects_total', ENGINE)}) / "
                f"sum by (engine) ({rate('hft_order_actions_total', ENGINE)})", "{{engine}}")],
        steps=[(0.02, "yellow"), (0.05, "red")], minimum=0,
        alerts=["OrderRejectSpikeCritical", "OrderRejectRateWarning"]))
    d.add(8, 8, timeseries(
        "Order latency p50/p95/p99", "Order submission to the broker's acknowledgement.", "s",
        quantiles("hft_order_latency_seconds", ENGINE), steps=[(0.25, "red")], alerts=["OrderLatencyHigh"]))
    d.add(8, 8, timeseries(
        "Order rate vs limit", "Order actions per second over the rate limiter's window, and the rate the broker "
        "allows (dashed).", "ops",
        [target(f"max by (engine) ({series('hft_order_rate', ENGINE)})", "{{engine}} rate"),
         target(f"max by (engine) ({series('hft_order_rate_limit', ENGINE)})", "{{engine}} limit")],
        overrides=[override("B", **DASHED_LIMIT)], alerts=["OrderRateNearLimit"]))
    d.row("Event bus")
    d.add(24, 8, timeseries(
        "Event bus health", "How full the event bus to the strategies is (left) and the events it dropped per "
        "second (right).", "percentunit",
        [target(f"max by (engine) ({series('hft_bus_occupancy_ratio', ENGINE)})", "{{engine}} occupancy"),
         target(f"sum by (engine) ({rate('hft_bus_overflow_total', ENGINE)})", "{{engine}} dropped")],
        steps=[(0.6, "yellow"), (0.8, "red")], minimum=0,
        overrides=[override("B", unit="eps", **RIGHT_AXIS)], alerts=["BusOccupancyWarning", "BusOverflowCritical"]))
    return d


def pnl_exposure() -> Dashboard:
    d = Dashboard("hftel-pnl-exposure", "hftel / PnL & Exposure",
                  "Profit and loss by strategy, drawdown against StormGuard's limit, exposure, leverage and "
                  "positions. Amounts are in the account currency.", strategy=True)
    realized, unrealized = series("hft_pnl_realized", STRATEGY), series("hft_pnl_unrealized", STRATEGY)
    d.row("PnL")
    d.add(8, 8, stat(
        "PnL now", "Realised, unrealised and total PnL since the session start, over the strategies selected, in "
        "the account currency.", "short",
        [target(f"sum({realized})", "realised"), target(f"sum({unrealized})", "unrealised"),
         target(f"sum({realized}) + sum({unrealized})", "total")], steps=[(0, "green")], base="red"))
    d.add(8, 8, timeseries(
        "Realised PnL by strategy", "Realised PnL since the session start, by strategy and in total, in the "
        "account currency.", "short",
        [target(f"sum by (strategy) ({realized})", "{{strategy}}"), target(f"sum({realized})", "total")]))
    d.add(8, 8, timeseries(
        "Unrealised PnL by strategy", "Unrealised PnL of open positions at the last price, by strategy and in "
        "total, in the account currency.", "short",
        [target(f"sum by (strategy) ({unrealized})", "{{strategy}}"), target(f"sum({unrealized})", "total")]))
    d.add(12, 8, timeseries(
        "Drawdown vs limit", "Each strategy's drop from its session peak of total PnL, and the drawdown at which "
        "StormGuard halts it (dashed), in the account currency.", "short",
        [target(f"max by (engine, strategy) ({series('hft_drawdown', STRATEGY)})", "{{engine}} {{strategy}}"),
         target(f"max by (engine, strategy) ({series('hft_drawdown_limit', STRATEGY)})",
                "{{engine}} {{strategy}} limit")],
        overrides=[override("B", **DASHED_LIMIT)], alerts=["DrawdownWarning", "StormGuardHaltCritical"]))
    d.add(12, 8, bargauge(
        "Drawdown used of limit", "Each strategy's drawdown over its limit, now: StormGuard halts the strategy at "
        "100%.", "percentunit",
        [target(f"max by (engine, strategy) ({series('hft_drawdown', STRATEGY)} / "
                f"({series('hft_drawdown_limit', STRATEGY)} > 0))", "{{engine}} {{strategy}}", instant=True)],
        steps=[(0.5, "yellow"), (0.8, "orange"), (1, "red")], minimum=0, maximum=1,
        alerts=["DrawdownWarning", "StormGuardHaltCritical"]))
    d.row("Exposure and positions")
    d.add(8, 8, timeseries(
        "Exposure: gross, long, short", "Notional exposure in the account currency: gross (long + short), long, "
        "short.", "short", [target(f"sum by (kind) ({series('hft_exposure', ENGINE)})", "{{kind}}")]))
    d.add(8, 8, timeseries(
        "Leverage ratio", "Gross exposure divided by account equity.", "suffix:x",
        [target(f"max by (engine) ({series('hft_leverage_ratio', ENGINE)})", "{{engine}}")], minimum=0))
    d.add(8, 8, table(
        "Top positions", "Net position by symbol in lots (positive long, negative short), largest first.",
        "suffix: lots",
        [target(f"sum by (symbol) ({series('hft_position', ENGINE)})", instant=True, table=True),
         target(f"abs(sum by (symbol) ({series('hft_position', ENGINE)}))", instant=True, table=True)],
        columns={"symbol": "Symbol", "Value #A": "Position", "Value #B": "Size"}, sort_by="Size"))
    d.add(12, 8, timeseries(
        "Fills by side", "Fills received per second, by side.", "ops",
        [target(f"sum by (side) ({rate('hft_fills_total', ENGINE)})", "{{side}}")]))
    d.add(12, 8, timeseries(
        "Reconciliation delay", "Seconds since positions were last reconciled with the broker; above 30 s warns.",
        "s", [target(f"max by (engine) ({series('hft_reconciliation_delay_seconds', ENGINE)})", "{{engine}}")],
        steps=[(30, "red")], alerts=["ReconciliationDelayed"]))
    return d


def recorder_clickhouse() -> Dashboard:
    d = Dashboard("hftel-recorder-clickhouse", "hftel / Recorder & ClickHouse",
                  "The engine's own recorder, and the exporter's drain of audit rows and logs into ClickHouse: "
                  "availability, inserts, the spool waiting for ClickHouse, the rings.")
    writes = f"sum by (sink) ({rate('hft_recorder_writes_total', ENGINE)})"
    failures = f"sum by (sink) ({rate('hft_recorder_write_failures_total', ENGINE)})"
    d.row("Engine recorder")
    d.add(8, 8, timeseries(
        "Recorder write success rate", "Batches the engine's recorder wrote over batches it tried, by sink.",
        "percentunit", [target(f"{writes} / ({writes} + {failures})", "{{sink}}")],
        steps=[(0.999, "green")], base="red", minimum=0, maximum=1, alerts=["RecorderFailureCritical"]))
    d.add(8, 8, timeseries(
        "Recorder writes and failures", "Batches the engine's recorder wrote, and failed to write, per second, by "
        "sink.", "wps", [target(writes, "{{sink}} written"), target(failures, "{{sink}} failed")],
        overrides=[override("B", color=RED)], alerts=["RecorderFailureCritical"]))
    d.add(8, 8, timeseries(
        "Recorder write latency p50/p95/p99", "Time to write one batch, by sink.", "s",
        quantiles("hft_recorder_write_latency_seconds", ENGINE, by=("sink",))))
    d.row("ClickHouse (the exporter's drain)")
    clickhouse_up = f"min by (instance, sink) ({series('hftel_clickhouse_up')})"
    d.add(6, 8, stat(
        "ClickHouse availability", "Whether the last insert or ping to ClickHouse succeeded, per exporter; while "
        "down, rows wait in the spool.", "bool_on_off", [target(clickhouse_up, "{{instance}} {{sink}}")],
        mappings=UP_DOWN, alerts=["ClickHouseDown"]))
    d.add(18, 8, state_timeline(
        "ClickHouse availability over time", "Up and down spells of ClickHouse as each exporter sees it.",
        "bool_on_off", [target(clickhouse_up, "{{instance}} {{sink}}")], mappings=UP_DOWN, alerts=["ClickHouseDown"]))
    d.add(8, 8, timeseries(
        "ClickHouse insert latency p50/p95/p99", "Time taken by one insert of a spooled batch.", "s",
        quantiles("hftel_clickhouse_insert_duration_seconds"), steps=[(5, "red")],
        alerts=["ClickHouseInsertSlow"]))
    d.add(8, 8, timeseries(
        "Rows inserted per table", "Rows inserted into ClickHouse per second, by table.", "rowsps",
        [target(f"sum by (table) ({rate('hftel_clickhouse_rows_inserted_total')})", "{{table}}")],
        stack=True))
    d.add(8, 8, timeseries(
        "ClickHouse write failures", "Failed inserts into ClickHouse in the trailing 5 minutes, by table and "
        "whether a retry may succeed (transient) or the batch is quarantined (permanent).", "short",
        [target(f"sum by (table, reason) ({increase('hftel_recorder_write_failures_total', window='5m')})",
                "{{table}} {{reason}}")],
        steps=[(1, "red")], bars=True, stack=True, alerts=["RecorderFailureCritical"]))
    d.row("Ingestion queues")
    d.add(8, 8, timeseries(
        "Ingestion queue depth", "Records queued for the engine's recorder by sink, and batches in the exporter's "
        "spool waiting for ClickHouse (right).", "short",
        [target(f"max by (engine, sink) ({series('hft_recorder_queue_depth', ENGINE)})", "{{engine}} {{sink}} records"),
         target(f"sum by (instance) ({series('hftel_spool_batches')})", "{{instance}} spooled batches")],
        steps=[(10000, "red")], overrides=[override("B", **RIGHT_AXIS)], alerts=["RecorderQueueBacklog"]))
    d.add(8, 8, timeseries(
        "Spool usage", "Bytes in the spool over its cap: above 50% warns; at 100% the drain stops reading the "
        "rings and engines spill.", "percentunit",
        [target(f"max by (instance) ({series('hftel_spool_usage_ratio')})", "{{instance}} usage"),
         target(f"max by (instance) ({series('hftel_spool_full')})", "{{instance}} full")],
        steps=[(0.5, "yellow"), (1, "red")], minimum=0, maximum=1, alerts=["SpoolFillingUp", "SpoolFullCritical"]))
    d.add(8, 8, timeseries(
        "Spool size", "Bytes held in the spool, waiting for ClickHouse, and its cap (dashed).", "bytes",
        [target(f"sum by (instance) ({series('hftel_spool_bytes')})", "{{instance}} held"),
         target(f"max by (instance) ({series('hftel_spool_max_bytes')})", "{{instance}} cap")],
        overrides=[override("B", **DASHED_LIMIT)], alerts=["SpoolFillingUp"]))
    d.add(8, 8, timeseries(
        "Oldest spooled batch age", "Age of the oldest batch in the spool: how far ClickHouse lags the engines.", "s",
        [target(f"max by (instance) ({series('hftel_spool_oldest_batch_age_seconds')})", "{{instance}}")],
        alerts=["ClickHouseDown"]))
    d.add(8, 8, timeseries(
        "Rows spooled", "Rows the drain took into the spool per second, by engine and origin (ring or spill file).",
        "rowsps", [target(f"sum by (engine, origin) ({rate('hftel_drain_rows_spooled_total', ENGINE)})",
                          "{{engine}} {{origin}}")]))
    d.add(8, 8, stat(
        "Batches quarantined in range", "Batches ClickHouse refused for good over the time range, moved to the "
        "spool's quarantine directory: each needs a person.", "short",
        [target(f"sum({increase('hftel_spool_quarantined_batches_total', window='$__range')})", "quarantined",
                instant=True)], steps=[(1, "red")], alerts=["BatchesQuarantined"]))
    d.row("Engine rings")
    d.add(12, 8, timeseries(
        "Ring occupancy", "How full each engine's audit and log rings are: bytes written and not yet drained over "
        "capacity.", "percentunit",
        [target(f"max by (engine, ring) ({series('hftel_ring_occupancy_ratio', ENGINE)})", "{{engine}} {{ring}}")],
        steps=[(0.5, "yellow"), (0.9, "red")], minimum=0, maximum=1, alerts=["RingFillingUp"]))
    d.add(12, 8, timeseries(
        "Ring spills and losses", "In the trailing 5 minutes: audit rows sent to the spill file because the ring "
        "was full, and records lost.", "short",
        [target(f"sum by (engine, ring) ({increase('hftel_ring_spilled_total', ENGINE, '5m')})",
                "{{engine}} {{ring}} spilled"),
         target(f"sum by (engine, ring) ({increase('hftel_ring_lost_total', ENGINE, '5m')})",
                "{{engine}} {{ring}} lost")],
        steps=[(1, "red")], alerts=["AuditSpilling", "AuditLossCritical"]))
    d.row("ClickHouse server (v2)")
    d.add(6, 8, stat(
        "ClickHouse health readable", "Whether the exporter's last read of ClickHouse's system tables (parts, "
        "merges, mutations, disks) succeeded.", "bool_on_off",
        [target(f"min by (instance, sink) ({series('hftel_clickhouse_health_up', EXPORTER)})", "{{instance}} {{sink}}")],
        mappings=UP_DOWN, alerts=["ClickHouseHealthUnknown"]))
    d.add(9, 8, timeseries(
        "ClickHouse disk usage", "Used share of each ClickHouse disk (system.disks): inserts and merges fail when "
        "it fills.", "percentunit",
        [target(f"1 - max by (instance, disk) ({series('hftel_clickhouse_disk_free_bytes', EXPORTER)}) "
                f"/ max by (instance, disk) ({series('hftel_clickhouse_disk_total_bytes', EXPORTER)})",
                "{{instance}} {{disk}}")],
        steps=[(0.85, "yellow"), (0.95, "red")], minimum=0, maximum=1,
        alerts=["ClickHouseDiskNearlyFull", "ClickHouseDiskFullCritical"]))
    d.add(9, 8, timeseries(
        "ClickHouse disk free", "Free and used bytes of each ClickHouse disk.", "bytes",
        [target(f"max by (instance, disk) ({series('hftel_clickhouse_disk_free_bytes', EXPORTER)})",
                "{{instance}} {{disk}} free"),
         target(f"max by (instance, disk) ({series('hftel_clickhouse_disk_used_bytes', EXPORTER)})",
                "{{instance}} {{disk}} used")], minimum=0))
    d.add(8, 8, timeseries(
        "Active parts per partition (largest)", "The largest count of active parts in one partition of each "
        "table: merges behind inserts make it climb; ClickHouse then delays and refuses inserts.", "short",
        [target(f"max by (table) ({series('hftel_clickhouse_parts', EXPORTER)})", "{{table}}")],
        steps=[(300, "red")], alerts=["ClickHouseTooManyParts"]))
    d.add(8, 8, timeseries(
        "Merges and mutations", "Background merges running, and mutations (ALTER UPDATE/DELETE) pending and "
        "failing, per table.", "short",
        [target(f"sum by (table) ({series('hftel_clickhouse_merges_active', EXPORTER)})", "{{table}} merging"),
         target(f"sum by (table) ({series('hftel_clickhouse_mutations_pending', EXPORTER)})", "{{table}} pending"),
         target(f"sum by (table) ({series('hftel_clickhouse_mutations_failed', EXPORTER)})", "{{table}} failed")],
        alerts=["ClickHouseMutationFailed"]))
    d.add(8, 8, timeseries(
        "ClickHouse query latency p50/p95/p99", "Round trip of the exporter's reads of the system tables: how "
        "fast ClickHouse answers a small query (insert latency is above).", "s",
        quantiles("hftel_clickhouse_query_duration_seconds", EXPORTER, by=("instance",))))
    return d


IDLE = EXPORTER + ', mode="idle"'


def system_health() -> Dashboard:
    d = Dashboard("hftel-system-health", "hftel / System Health",
                  "Engine liveness and health checks, the exporter's own health, the host and the engine processes.")
    d.row("Engines")
    d.add(6, 8, stat(
        "Engine up", "Whether each engine is alive and stamping its heartbeat.", "bool_on_off",
        [target(series("hftel_engine_up", ENGINE), "{{engine}}")], mappings=UP_DOWN, alerts=["EngineDownCritical"]))
    d.add(6, 8, timeseries(
        "Engine heartbeat age", "Seconds since each engine last stamped its heartbeat.", "s",
        [target(series("hftel_engine_heartbeat_age_seconds", ENGINE), "{{engine}}")], steps=[(2, "red")],
        alerts=["EngineDownCritical"]))
    d.add(6, 8, timeseries(
        "Engine process uptime", "Seconds since each engine process started: a line that stops rising is a "
        "stalled loop.", "s", [target(series("hft_process_uptime_seconds", ENGINE), "{{engine}}")],
        alerts=["EngineStalled"]))
    d.add(6, 8, state_timeline(
        "Engine health checks", "The engine's own health checks (feed, gateway, bus, recorder): pass or fail.",
        "bool_on_off", [target(f"min by (engine, check) ({series('hft_health_check_status', ENGINE)})",
                               "{{engine}} {{check}}")],
        mappings=PASS_FAIL, alerts=["HealthCheckFailing"]))
    d.row("Exporter")
    d.add(6, 8, stat(
        "Exporter up", "Whether Prometheus reached each exporter's /metrics at its last scrape.", "bool_on_off",
        [target(f"up{{{EXPORTER}}}", "{{instance}}")], mappings=UP_DOWN, alerts=["ExporterDown"]))
    d.add(6, 8, timeseries(
        "Exporter scrape duration p50/p95/p99", "Time each exporter took to answer a scrape of /metrics.", "s",
        quantiles("hftel_exporter_scrape_duration_seconds", by=("instance",))))
    d.add(6, 8, timeseries(
        "Exporter errors by kind", "Exporter errors in the trailing 5 minutes, by kind: refused segments and "
        "descriptors, conflicts, renders.", "short",
        [target(f"sum by (kind) ({increase('hftel_exporter_errors_total', window='5m')})", "{{kind}}")],
        steps=[(1, "red")], alerts=["ExporterErrors"]))
    d.add(6, 8, timeseries(
        "Segments attached", "Engine segments each exporter serves, those its drain reads, and those the drain "
        "could not open.", "short",
        [target(f"sum by (instance) ({series('hftel_exporter_segments_attached')})", "{{instance}} served"),
         target(f"sum by (instance) ({series('hftel_drain_segments')})", "{{instance}} drained"),
         target(f"sum by (instance) ({series('hftel_drain_refused_segments')})", "{{instance}} refused")]))
    d.add(8, 8, timeseries(
        "Exporter CPU", "CPU time the exporter process used per second (100% is one core).", "percentunit",
        [target(rate("process_cpu_seconds_total", EXPORTER), "{{instance}}")], minimum=0))
    d.add(8, 8, timeseries(
        "Exporter resident memory", "Resident memory of the exporter process.", "bytes",
        [target(series("process_resident_memory_bytes", EXPORTER), "{{instance}}")], minimum=0))
    d.add(8, 8, timeseries(
        "Log schema violations and truncations", "In the trailing 15 minutes: log events that lacked a field "
        "their component requires, and events cut short to fit the log ring.", "short",
        [target(f"sum by (engine) ({increase('hftel_ring_violations_total', ENGINE, '15m')})", "{{engine}} violations"),
         target(f"sum by (engine) ({increase('hftel_ring_truncated_total', ENGINE, '15m')})", "{{engine}} truncated")],
        alerts=["LogSchemaViolations"]))
    d.row("Host (v2)")
    d.add(8, 8, timeseries(
        "CPU busy per core", "Share of each core's time not idle. A busy-polling engine pins its core at 100% "
        "by design; the alert looks at the average.", "percentunit",
        [target(f"1 - max by (instance, cpu) ({rate('hftel_host_cpu_seconds_total', IDLE)})",
                "{{instance}} cpu{{cpu}}")], minimum=0, maximum=1, alerts=["HostCpuSaturated"]))
    d.add(8, 8, timeseries(
        "Load average", "Runnable and uninterruptible tasks, averaged over 1, 5 and 15 minutes, against the "
        "number of CPUs (dashed).", "short",
        [target(f"max by (instance) ({series('hftel_host_load1', EXPORTER)})", "{{instance}} 1m"),
         target(f"max by (instance) ({series('hftel_host_load5', EXPORTER)})", "{{instance}} 5m"),
         target(f"max by (instance) ({series('hftel_host_load15', EXPORTER)})", "{{instance}} 15m"),
         target(f"max by (instance) ({series('hftel_host_cpus', EXPORTER)})", "{{instance}} CPUs")],
        overrides=[override("D", **DASHED_LIMIT)]))
    d.add(8, 8, timeseries(
        "Memory and swap", "Memory available to new work (page cache included) and swap in use; swapping "
        "means latency spikes.", "bytes",
        [target(f"max by (instance) ({series('hftel_host_memory_available_bytes', EXPORTER)})",
                "{{instance}} available"),
         target(f"max by (instance) ({series('hftel_host_memory_total_bytes', EXPORTER)})", "{{instance}} total"),
         target(f"max by (instance) ({series('hftel_host_swap_used_bytes', EXPORTER)})", "{{instance}} swap used")],
        overrides=[override("B", **DASHED_LIMIT)], minimum=0, alerts=["HostMemoryLow"]))
    d.add(8, 8, timeseries(
        "Network throughput", "Bytes received and sent per second by each interface.", "Bps",
        [target(f"sum by (instance, device) ({rate('hftel_host_network_receive_bytes_total', EXPORTER)})",
                "{{instance}} {{device}} in"),
         target(f"sum by (instance, device) ({rate('hftel_host_network_transmit_bytes_total', EXPORTER)})",
                "{{instance}} {{device}} out")], minimum=0))
    d.add(8, 8, timeseries(
        "Network errors and drops", "Errors and dropped packets per second, by interface and direction: any "
        "is worth a look on a trading host.", "pps",
        [target(f"sum by (instance, device) ({rate('hftel_host_network_receive_errors_total', EXPORTER)}) + "
                f"sum by (instance, device) ({rate('hftel_host_network_transmit_errors_total', EXPORTER)})",
                "{{instance}} {{device}} errors"),
         target(f"sum by (instance, device) ({rate('hftel_host_network_receive_drops_total', EXPORTER)}) + "
                f"sum by (instance, device) ({rate('hftel_host_network_transmit_drops_total', EXPORTER)})",
                "{{instance}} {{device}} drops")], steps=[(1, "red")], minimum=0))
    d.add(8, 8, timeseries(
        "Filesystem usage", "Used share of each filesystem: the spool, the log files, the embedded ClickHouse "
        "and the recorder write to local disks.", "percentunit",
        [target(f"1 - min by (instance, mountpoint) ({series('hftel_host_filesystem_avail_bytes', EXPORTER)} "
                f"/ {series('hftel_host_filesystem_size_bytes', EXPORTER)})", "{{instance}} {{mountpoint}}")],
        steps=[(0.9, "red")], minimum=0, maximum=1, alerts=["HostDiskNearlyFull"]))
    d.add(12, 8, timeseries(
        "Disk IO latency", "Average time of one read and one write, per disk (queue depth: node exporter's "
        "node_disk_io_time_weighted_seconds_total, see docs/exporter.md).", "s",
        [target(f"sum by (instance, device) ({rate('hftel_host_disk_read_time_seconds_total', EXPORTER)}) "
                f"/ sum by (instance, device) ({rate('hftel_host_disk_reads_completed_total', EXPORTER)})",
                "{{instance}} {{device}} read"),
         target(f"sum by (instance, device) ({rate('hftel_host_disk_write_time_seconds_total', EXPORTER)}) "
                f"/ sum by (instance, device) ({rate('hftel_host_disk_writes_completed_total', EXPORTER)})",
                "{{instance}} {{device}} write")], minimum=0))
    d.add(12, 8, timeseries(
        "Disk utilisation", "Share of time each disk was busy with IO.", "percentunit",
        [target(f"sum by (instance, device) ({rate('hftel_host_disk_io_time_seconds_total', EXPORTER)})",
                "{{instance}} {{device}}")], minimum=0, maximum=1))
    d.row("Engine processes (v2)")
    d.add(8, 8, timeseries(
        "Engine process CPU", "CPU time each engine process used per second, user and system (100% is one "
        "core).", "percentunit",
        [target(f"sum by (engine, mode) ({rate('hftel_engine_process_cpu_seconds_total', ENGINE)})",
                "{{engine}} {{mode}}")], minimum=0, alerts=["HostCpuSaturated"]))
    d.add(8, 8, timeseries(
        "Engine resident memory and threads", "Resident memory of each engine process, and its threads (right).",
        "bytes",
        [target(f"max by (engine) ({series('hftel_engine_process_resident_memory_bytes', ENGINE)})", "{{engine}} RSS"),
         target(f"max by (engine) ({series('hftel_engine_process_threads', ENGINE)})", "{{engine}} threads")],
        overrides=[override("B", **RIGHT_AXIS)], minimum=0, alerts=["HostMemoryLow"]))
    d.add(8, 8, timeseries(
        "Engine context switches", "Voluntary (the engine waited) and involuntary (the kernel took its core) "
        "context switches per second: involuntary ones rising mean the engine is starved of CPU.", "ops",
        [target(f"sum by (engine, kind) ({rate('hftel_engine_process_context_switches_total', ENGINE)})",
                "{{engine}} {{kind}}")], minimum=0))
    d.add(12, 8, timeseries(
        "Python GC collections", "Garbage collections per second in each engine, by generation (generation 2 "
        "collections are the long ones), and the objects they freed and could not free per second (right).",
        "ops",
        [target(f"sum by (engine, generation) ({rate('hft_python_gc_collections_total', ENGINE)})",
                "{{engine}} gen{{generation}}"),
         target(f"sum by (engine) ({rate('hft_python_gc_collected_objects_total', ENGINE)})",
                "{{engine}} objects freed"),
         target(f"sum by (engine) ({rate('hft_python_gc_uncollectable_objects_total', ENGINE)})",
                "{{engine}} uncollectable")],
        overrides=[override("B", **RIGHT_AXIS), override("C", **RIGHT_AXIS)], minimum=0))
    d.add(12, 8, timeseries(
        "Python GC pause p50/p95/p99", "How long the engine's thread stood still for a garbage collection.", "s",
        quantiles("hft_python_gc_pause_seconds", ENGINE, by=("engine",))))
    return d


#: file name -> the function that builds it, in the order the README lists them.
DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "feed-gateway-health.json": feed_gateway,
    "strategy-order-path.json": strategy_order_path,
    "pnl-exposure.json": pnl_exposure,
    "recorder-clickhouse.json": recorder_clickhouse,
    "system-health.json": system_health,
}
