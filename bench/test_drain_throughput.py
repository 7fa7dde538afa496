"""Sustained audit rows: engine -> ring -> exporter (drain, spool, insert) -> embedded ClickHouse.

A C loop (bench/cloops.pyx AuditLoop, the engine's own hftel_audit_write) offers audit_orders rows at a
fixed rate for HFTEL_BENCH_DRAIN_SECONDS (default 60) into a segment on /dev/shm, while the real
`hftel exporter` process drains it into the embedded engine with its durable spool on disk. The run
passes when every row offered is in ClickHouse, once, and the exporter kept up: the last row landed
within two batch intervals of the last row written. The exporter's CPU time over the run says what
share of the machine the drain costs.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
import urllib.request

import pytest

import hftel
from exporter_process import ExporterProcess

RATE = int(os.environ.get("HFTEL_BENCH_DRAIN_RATE", "1100000"))  # rows/s offered: 10 % over the target
SECONDS = float(os.environ.get("HFTEL_BENCH_DRAIN_SECONDS", "60"))
# The default batch (100k rows) and one-second batches at this rate, which is what ClickHouse advises
# (about one insert per second per table: fewer parts to merge).
BATCH_ROWS = [int(rows) for rows in os.environ.get("HFTEL_BENCH_DRAIN_BATCH_ROWS", "100000,1000000").split(",")]
RING_BYTES = 1 << 30  # about three seconds of rows at 1M/s: a batch fills at most half of it
TICK = 0.005


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _inserted(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    found = re.search(r'^hftel_clickhouse_rows_inserted_total\{table="audit_orders"\} (\d+)', text, re.M)
    return int(found.group(1)) if found else 0


def Exporter(segment: str, directory: str, batch_rows: int) -> ExporterProcess:
    """The exporter draining `segment` into an embedded ClickHouse under `directory`."""
    return ExporterProcess("--segments.paths", segment, "--clickhouse.sink", "embedded",
                           "--clickhouse.embedded-path", f"{directory}/chdb", "--spool.path", f"{directory}/spool",
                           "--web.listen-address", "127.0.0.1:0", "--segments.scan-interval", "0.2",
                           "--drain.batch-rows", str(batch_rows))


def _offer(loop, rate: int, seconds: float) -> tuple[int, int, float]:
    """Writes rows at `rate` for `seconds`; returns (rows written, rows refused by a full ring, when done)."""
    written = refused = 0
    started = time.perf_counter()
    while True:
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            break
        due = int(rate * elapsed) - written - refused
        if due > 0:
            done, _ = loop.orders(due, 0)
            written += done
            refused += due - done
        else:
            time.sleep(TICK)
    return written, refused, time.perf_counter()


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="needs /dev/shm for the segment")
@pytest.mark.parametrize("batch_rows", BATCH_ROWS)
def test_sustained_audit_rows_into_embedded_clickhouse(benchmark, cloops, batch_rows):
    pytest.importorskip("chdb.session", reason="the embedded sink needs chdb: pip install 'hftel[exporter]'")
    shm = tempfile.mkdtemp(prefix="hftel-drain-bench-", dir="/dev/shm")
    disk = tempfile.mkdtemp(prefix="hftel-drain-bench-")
    segment = os.path.join(shm, "hftel-bench")
    tel = hftel.Telemetry.create(segment, capacity=64, values_bytes=1 << 16, audit_ring_bytes=RING_BYTES,
                                 log_ring_bytes=1 << 16)
    exporter = Exporter(segment, disk, batch_rows)
    result: dict = {}

    def run() -> None:
        loop = cloops.AuditLoop(tel._segment, 0xBE_4C_D8_A1)
        cpu_before, started = _cpu_seconds(exporter.process.pid), time.perf_counter()
        written, refused, stopped = _offer(loop, RATE, SECONDS)
        while _inserted(exporter.url) < written and time.perf_counter() - stopped < 120:
            time.sleep(0.05)
        landed = time.perf_counter()
        result.update(written=written, refused=refused, offered_seconds=stopped - started,
                      wall_seconds=landed - started, lag_seconds=landed - stopped,
                      exporter_cpu_seconds=_cpu_seconds(exporter.process.pid) - cpu_before,
                      inserted=_inserted(exporter.url))

    try:
        benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=0)
    finally:
        exporter.stop()
        tel.close()
    from chdb import session

    store = session.Session(f"{disk}/chdb")
    count, unique = map(int, str(store.query("SELECT count(), uniqExact(seq) FROM hftel.audit_orders", "CSV"))
                        .strip().split(","))
    store.close()
    shutil.rmtree(shm, ignore_errors=True)
    shutil.rmtree(disk, ignore_errors=True)
    rows_per_second = result["written"] / result["wall_seconds"]
    benchmark.extra_info.update(
        kind="drain", n=result["written"], batch_rows=batch_rows, op="audit rows engine -> embedded ClickHouse", target_rows_per_second=1e6,
        offered_rate=RATE, rows_per_second=rows_per_second, in_clickhouse=count, unique_seqs=unique,
        exporter_cpu_share=result["exporter_cpu_seconds"] / result["wall_seconds"], cpus=os.cpu_count(), **result)
    print(f"\n{result['written']:,} rows in {result['wall_seconds']:.1f} s = {rows_per_second:,.0f} rows/s; "
          f"exporter CPU {result['exporter_cpu_seconds']:.1f} s "
          f"({100 * result['exporter_cpu_seconds'] / result['wall_seconds']:.0f} % of one core); "
          f"refused by a full ring {result['refused']:,}; in ClickHouse {count:,}, unique {unique:,}")
    problems = [line for line in exporter.log if '"level": "info"' not in line]
    # The ring may not fill (that would be rows refused); the rate itself is judged in the report.
    assert result["refused"] == 0, f"the ring filled: the exporter did not keep up; {problems[:5]}"
    assert count == unique == result["written"], f"rows lost or duplicated on the way; {problems[:5]}"
