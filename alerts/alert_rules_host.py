"""The v2 alerts on what the pipeline runs on: the ClickHouse server's own health, as the exporter reads
it from the system tables (clickhouse), and the host under the engine and the exporter (host).

Their series come from the exporter (hftel_clickhouse_* from the sink's system tables, hftel_host_*
from psutil), so they carry `instance`, not `engine`. Whether they are quiet depends on the machine
(its disks and its load), not on the engine: they are declared `machine_dependent`.
"""
from __future__ import annotations

from alert_model import Alert, Case, Expected, exporter_series, on_exporter


def _disk(free: str, total: str = "100x20") -> dict[str, str]:
    return {exporter_series("hftel_clickhouse_disk_free_bytes", sink="embedded", disk="default"): free,
            exporter_series("hftel_clickhouse_disk_total_bytes", sink="embedded", disk="default"): total}


def _parts(count: str) -> dict[str, str]:
    return {exporter_series("hftel_clickhouse_parts", sink="embedded", database="hftel", table="audit_orders",
                            partition="202611"): count,
            exporter_series("hftel_clickhouse_parts", sink="embedded", database="hftel", table="logs_hft",
                            partition="202611"): "12x20"}


def _mutations(failed: str) -> dict[str, str]:
    return {exporter_series("hftel_clickhouse_mutations_failed", sink="embedded", database="hftel",
                            table="audit_orders"): failed}


CLICKHOUSE_SERVER = (
    Alert(
        name="ClickHouseDiskFullCritical", severity="critical", family="clickhouse", for_="1m", machine_dependent=True,
        expr="min by (instance, sink, disk) (hftel_clickhouse_disk_free_bytes "
             "/ (hftel_clickhouse_disk_total_bytes > 0)) < 0.05",
        summary="ClickHouse disk {{ $labels.disk }} almost full on {{ $labels.instance }}",
        description="Only {{ $value | humanizePercentage }} of ClickHouse disk {{ $labels.disk }} is free (critical "
                    "under 5%): inserts and merges fail when it fills, the spool grows, then engines spill.",
        quiet_reason="the ClickHouse data directory's filesystem has room (it is this machine's disk)",
        cases=(
            Case("fires once the disk has had under 5% free for a minute", _disk("4x20"), at="1m",
                 fires=(Expected(on_exporter(sink="embedded", disk="default"),
                                 "ClickHouse disk default almost full on host1:9477",
                                 "Only 4% of ClickHouse disk default is free (critical under 5%): inserts and merges "
                                 "fail when it fills, the spool grows, then engines spill."),)),
            Case("stays quiet at exactly 5% free", _disk("5x20"), at="1m"),
        )),
    Alert(
        name="ClickHouseDiskNearlyFull", severity="warning", family="clickhouse", for_="5m", machine_dependent=True,
        expr="min by (instance, sink, disk) (hftel_clickhouse_disk_free_bytes "
             "/ (hftel_clickhouse_disk_total_bytes > 0)) < 0.15",
        summary="ClickHouse disk {{ $labels.disk }} filling up on {{ $labels.instance }}",
        description="{{ $value | humanizePercentage }} of ClickHouse disk {{ $labels.disk }} is free, for 5 minutes "
                    "(warning under 15%, critical under 5%).",
        quiet_reason="the ClickHouse data directory's filesystem has room (it is this machine's disk)",
        cases=(
            Case("fires once the disk has had under 15% free for 5 minutes", _disk("10x10"), at="5m",
                 interval="1m",
                 fires=(Expected(on_exporter(sink="embedded", disk="default"),
                                 "ClickHouse disk default filling up on host1:9477",
                                 "10% of ClickHouse disk default is free, for 5 minutes (warning under 15%, "
                                 "critical under 5%)."),)),
            Case("stays quiet at exactly 15% free", _disk("15x10"), at="5m", interval="1m"),
            Case("stays quiet while the disk's size is unknown (0)", _disk("0x10", "0x10"), at="5m",
                 interval="1m"),
        )),
    Alert(
        name="ClickHouseTooManyParts", severity="warning", family="clickhouse", for_="5m",
        expr="max by (instance, sink, database, table) (hftel_clickhouse_parts) > 300",
        summary="Too many parts in {{ $labels.database }}.{{ $labels.table }} on {{ $labels.instance }}",
        description="A partition of {{ $labels.database }}.{{ $labels.table }} has {{ $value | humanize }} active "
                    "parts, for 5 minutes (warning over 300): merges are behind the inserts; ClickHouse delays "
                    "inserts at parts_to_delay_insert and refuses them at parts_to_throw_insert.",
        quiet_reason="the drain inserts a batch every 0.5 s and merges keep each partition to tens of parts",
        cases=(
            Case("fires once a partition has held over 300 parts for 5 minutes", _parts("301x10"), at="5m",
                 interval="1m",
                 fires=(Expected(on_exporter(sink="embedded", database="hftel", table="audit_orders"),
                                 "Too many parts in hftel.audit_orders on host1:9477",
                                 "A partition of hftel.audit_orders has 301 active parts, for 5 minutes (warning "
                                 "over 300): merges are behind the inserts; ClickHouse delays inserts at "
                                 "parts_to_delay_insert and refuses them at parts_to_throw_insert."),)),
            Case("stays quiet at exactly 300 parts", _parts("300x10"), at="5m", interval="1m"),
        )),
    Alert(
        name="ClickHouseMutationFailed", severity="warning", family="clickhouse", for_="1m",
        expr="max by (instance, sink, database, table) (hftel_clickhouse_mutations_failed) > 0",
        summary="Mutation failing on {{ $labels.database }}.{{ $labels.table }} on {{ $labels.instance }}",
        description="{{ $value | humanize }} mutations (ALTER ... UPDATE or DELETE) of {{ $labels.database }}."
                    "{{ $labels.table }} keep failing; ClickHouse retries them forever and they hold back merges "
                    "until fixed or killed.",
        quiet_reason="nothing mutates the audit tables: they are append-only",
        cases=(
            Case("fires once a mutation has been failing for a minute", _mutations("0 1x12"), at="1m5s",
                 fires=(Expected(on_exporter(sink="embedded", database="hftel", table="audit_orders"),
                                 "Mutation failing on hftel.audit_orders on host1:9477",
                                 "1 mutations (ALTER ... UPDATE or DELETE) of hftel.audit_orders keep failing; "
                                 "ClickHouse retries them forever and they hold back merges until fixed or "
                                 "killed."),)),
            Case("stays quiet once the mutation is killed", _mutations("0 1x6 0x6"), at="1m5s"),
        )),
    Alert(
        name="ClickHouseHealthUnknown", severity="warning", family="clickhouse", for_="5m",
        expr="max by (instance, sink) (hftel_clickhouse_health_up) == 0",
        summary="ClickHouse health unreadable from {{ $labels.instance }}",
        description="The exporter has not read ClickHouse's system tables for 5 minutes: the disk, parts and "
                    "mutation alerts are blind until it can.",
        quiet_reason="the embedded ClickHouse answers the exporter's system-table queries",
        cases=(
            Case("fires once the system tables have been unreadable for 5 minutes",
                 {exporter_series("hftel_clickhouse_health_up", sink="embedded"): "0x10"}, at="5m", interval="1m",
                 fires=(Expected(on_exporter(sink="embedded"), "ClickHouse health unreadable from host1:9477",
                                 "The exporter has not read ClickHouse's system tables for 5 minutes: the disk, parts "
                                 "and mutation alerts are blind until it can."),)),
            Case("stays quiet while they are read",
                 {exporter_series("hftel_clickhouse_health_up", sink="embedded"): "1x10"}, at="5m", interval="1m"),
        )),
)

# -- host ------------------------------------------------------------------------------------------------


def _cpu(idle_per_second: str) -> dict[str, str]:
    """hftel_host_cpu_seconds_total of two cores, idle growing by `idle_per_second` a second (15 s samples)."""
    step = f"{float(idle_per_second) * 15:g}"
    return {exporter_series("hftel_host_cpu_seconds_total", cpu=str(cpu), mode="idle"): f"0+{step}x30"
            for cpu in (0, 1)}


def _filesystem(avail: str) -> dict[str, str]:
    return {exporter_series("hftel_host_filesystem_avail_bytes", mountpoint="/var/lib/hftel", fstype="ext4"): avail,
            exporter_series("hftel_host_filesystem_size_bytes", mountpoint="/var/lib/hftel", fstype="ext4"): "100x10"}


def _memory(available: str) -> dict[str, str]:
    return {exporter_series("hftel_host_memory_available_bytes"): available,
            exporter_series("hftel_host_memory_total_bytes"): "100x10"}


HOST = (
    Alert(
        name="HostCpuSaturated", severity="warning", family="host", for_="5m", machine_dependent=True,
        expr='1 - avg by (instance) (rate(hftel_host_cpu_seconds_total{mode="idle"}[1m])) > 0.9',
        summary="CPU saturated on {{ $labels.instance }}",
        description="The host's CPUs have been {{ $value | humanizePercentage }} busy on average for 5 minutes "
                    "(warning over 90%): the engine's threads queue for a core and its latencies grow.",
        quiet_reason="the demo engine and the exporter use a fraction of the cores (on a machine not otherwise busy)",
        cases=(
            Case("fires once the cores have been over 90% busy for 5 minutes", _cpu("0.05"), at="6m", interval="15s",
                 fires=(Expected(on_exporter(), "CPU saturated on host1:9477",
                                 "The host's CPUs have been 95% busy on average for 5 minutes (warning over 90%): "
                                 "the engine's threads queue for a core and its latencies grow."),)),
            Case("stays quiet at 80% busy", _cpu("0.2"), at="6m", interval="15s"),
        )),
    Alert(
        name="HostDiskNearlyFull", severity="warning", family="host", for_="5m", machine_dependent=True,
        expr="min by (instance, mountpoint) (hftel_host_filesystem_avail_bytes "
             "/ (hftel_host_filesystem_size_bytes > 0)) < 0.1",
        summary="Filesystem {{ $labels.mountpoint }} filling up on {{ $labels.instance }}",
        description="Only {{ $value | humanizePercentage }} of {{ $labels.mountpoint }} is available, for 5 minutes "
                    "(warning under 10%): the spool, the log files and the recorder write there.",
        quiet_reason="the machine's filesystems have room",
        cases=(
            Case("fires once a filesystem has had under 10% available for 5 minutes", _filesystem("8x10"), at="5m",
                 interval="1m",
                 fires=(Expected(on_exporter(mountpoint="/var/lib/hftel"),
                                 "Filesystem /var/lib/hftel filling up on host1:9477",
                                 "Only 8% of /var/lib/hftel is available, for 5 minutes (warning under 10%): the "
                                 "spool, the log files and the recorder write there."),)),
            Case("stays quiet at exactly 10% available", _filesystem("10x10"), at="5m", interval="1m"),
        )),
    Alert(
        name="HostMemoryLow", severity="warning", family="host", for_="5m", machine_dependent=True,
        expr="min by (instance) (hftel_host_memory_available_bytes / (hftel_host_memory_total_bytes > 0)) < 0.1",
        summary="Memory low on {{ $labels.instance }}",
        description="Only {{ $value | humanizePercentage }} of the host's memory is available, for 5 minutes "
                    "(warning under 10%): page cache is gone and swapping or the OOM killer come next.",
        quiet_reason="the machine has memory to spare",
        cases=(
            Case("fires once under 10% of memory has been available for 5 minutes", _memory("7x10"), at="5m",
                 interval="1m",
                 fires=(Expected(on_exporter(), "Memory low on host1:9477",
                                 "Only 7% of the host's memory is available, for 5 minutes (warning under 10%): page "
                                 "cache is gone and swapping or the OOM killer come next."),)),
            Case("stays quiet at exactly 10% available", _memory("10x10"), at="5m", interval="1m"),
        )),
)
