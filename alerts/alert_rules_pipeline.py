"""The alerts on the telemetry pipeline and on liveness: the engine's recorder (recorder-failure), the
exporter's drain into ClickHouse and its spool (clickhouse), and the engine, its rings and the
exporter themselves (engine-and-exporter).

Each family is a tuple of `Alert`s in the order its runbook lists them; alerts/rules.py puts the
families in `ALERTS`. How the expressions are written is said once, in alerts/rules.py.
"""
from __future__ import annotations

from alert_model import INSTANCE, JOB, Alert, Case, Expected, engine_series, exporter_series, on_engine, on_exporter


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
