"""No audit row is lost or duplicated on its way to ClickHouse, whatever fails on the way.

Two engine processes write a steady flow of audit rows (each its own source, seq from 1) while the
real exporter drains them through its spool into ClickHouse (the chdb-backed test endpoint, spoken
to by the real clickhouse-connect). Then the exporter is SIGKILLed and restarted, ClickHouse is taken
away for 30 s and brought back, or both at once. Afterwards every source's sequence numbers in
ClickHouse run from 1 to the last one written, each exactly once.
"""
from __future__ import annotations

import re
import time
import urllib.request

import pytest

import hftel
from tests.processes import ExporterProcess, wait_until

pytest.importorskip("chdb.session", reason="the test ClickHouse runs on chdb: pip install 'hftel[exporter]'")
pytest.importorskip("clickhouse_connect", reason="the clickhouse sink needs clickhouse-connect: "
                                                 "pip install 'hftel[exporter]'")

from tests.clickhouse_endpoint import ClickHouseEndpoint  # noqa: E402

RATE = 1500            # rows per second per engine process
OUTAGE_SECONDS = 30.0  # how long ClickHouse stays away


def write_flow(path, stop, written, rate):
    """An engine: audit rows at a steady rate until told to stop; `written` counts them."""
    tel = hftel.Telemetry.attach(path)
    count, started = 0, time.monotonic()
    while not stop.is_set():
        due = int((time.monotonic() - started) * rate)
        while count < due:
            tel.audit.order(intent_id=count + 1, strategy="mm", symbol="2330", side="BUY", quantity=1)
            count += 1
        written.value = count
        stop.wait(0.005)  # pacing: the rate, not a synchronisation
    written.value = count


class Flow:
    """Two engine processes writing audit rows into one segment."""

    def __init__(self, spawn, path):
        self.stop = spawn.Event()
        self.written = [spawn.Value("q", 0) for _ in range(2)]
        self.processes = [spawn.Process(target=write_flow, args=(path, self.stop, counter, RATE))
                          for counter in self.written]

    def __enter__(self):
        for process in self.processes:
            process.start()
        return self

    def total(self):
        return sum(counter.value for counter in self.written)

    def finish(self):
        self.stop.set()
        for process in self.processes:
            process.join(30)
        return sorted(counter.value for counter in self.written)

    def __exit__(self, *exc_info):
        self.stop.set()
        for process in self.processes:
            process.join(30)
            if process.is_alive():
                process.kill()


@pytest.fixture
def segment(tmp_path):
    # A small ring (a few thousand rows): while the exporter is down the engines spill, and the
    # restarted exporter must pick those rows up too.
    tel = hftel.Telemetry.create(str(tmp_path / "hftel-flow"), capacity=16, values_bytes=1 << 12,
                                 audit_ring_bytes=1 << 20, log_ring_bytes=1 << 16)
    yield tel.path
    tel.close()


@pytest.fixture
def clickhouse(tmp_path):
    with ClickHouseEndpoint(str(tmp_path / "clickhouse")) as endpoint:  # started on entering
        yield endpoint


def exporter(tmp_path, name, segment, clickhouse):
    directory = tmp_path / name
    directory.mkdir()
    return ExporterProcess(
        directory, "--segments.paths", segment, "--segments.scan-interval", "0.2",
        "--clickhouse.sink", "clickhouse", "--clickhouse.url", clickhouse.url, "--clickhouse.user", "default",
        "--spool.path", str(tmp_path / "spool"), "--drain.batch-interval", "0.2",
        environ={"HFTEL_CLICKHOUSE_PASSWORD": ""})


def metric(process, name):
    with urllib.request.urlopen(f"{process.url}/metrics", timeout=5) as response:
        text = response.read().decode()
    found = re.search(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", text, re.M)
    return float(found.group(1)) if found else None


def rows_in_clickhouse(clickhouse):
    try:
        client = clickhouse.client()
        try:
            return client.query("SELECT count() FROM hftel.audit_orders").result_rows[0][0]
        finally:
            client.close()
    except Exception:  # not up yet, or the table not created yet
        return -1


def per_source(clickhouse):
    client = clickhouse.client()
    try:
        return client.query("SELECT count(), uniqExact(seq), min(seq), max(seq) FROM hftel.audit_orders "
                            "GROUP BY source_id ORDER BY max(seq)").result_rows
    finally:
        client.close()


def assert_complete_and_unique(clickhouse, flow):
    written = flow.finish()
    wait_until(lambda: rows_in_clickhouse(clickhouse) == sum(written),
               f"all {sum(written)} rows in ClickHouse", timeout=90)
    assert per_source(clickhouse) == [(count, count, 1, count) for count in written]


def test_sigkilled_exporter_restarts_without_losing_or_duplicating_rows(tmp_path, spawn, segment, clickhouse):
    with Flow(spawn, segment) as flow:
        with exporter(tmp_path, "first", segment, clickhouse) as first:
            wait_until(lambda: rows_in_clickhouse(clickhouse) > 2 * RATE, "rows flowing into ClickHouse")
            first.process.kill()
            first.process.wait()
        written_while_down = flow.total()
        wait_until(lambda: flow.total() > written_while_down + RATE, "the engines writing on meanwhile")
        with exporter(tmp_path, "second", segment, clickhouse):
            assert_complete_and_unique(clickhouse, flow)


def test_clickhouse_away_for_30_seconds_loses_and_duplicates_nothing(tmp_path, spawn, segment, clickhouse):
    with Flow(spawn, segment) as flow, exporter(tmp_path, "exporter", segment, clickhouse) as process:
        wait_until(lambda: rows_in_clickhouse(clickhouse) > 2 * RATE, "rows flowing into ClickHouse")
        clickhouse.stop()
        away_until = time.monotonic() + OUTAGE_SECONDS
        wait_until(lambda: metric(process, "hftel_clickhouse_up") == 0, "the exporter noticing the outage")
        wait_until(lambda: (metric(process, "hftel_spool_batches") or 0) >= 3, "batches piling up in the spool")
        wait_until(lambda: time.monotonic() >= away_until, "the outage", timeout=OUTAGE_SECONDS + 5)
        assert metric(process, "hftel_spool_oldest_batch_age_seconds") > 10
        clickhouse.start()
        assert_complete_and_unique(clickhouse, flow)
        wait_until(lambda: metric(process, "hftel_spool_batches") == 0, "the spool emptied")
        assert metric(process, "hftel_clickhouse_up") == 1


def test_exporter_killed_while_clickhouse_is_away_loses_and_duplicates_nothing(tmp_path, spawn, segment, clickhouse):
    with Flow(spawn, segment) as flow:
        with exporter(tmp_path, "first", segment, clickhouse) as first:
            wait_until(lambda: rows_in_clickhouse(clickhouse) > 2 * RATE, "rows flowing into ClickHouse")
            clickhouse.stop()
            away_until = time.monotonic() + OUTAGE_SECONDS
            wait_until(lambda: (metric(first, "hftel_spool_batches") or 0) >= 3, "batches piling up in the spool")
            first.process.kill()
            first.process.wait()
        with exporter(tmp_path, "second", segment, clickhouse) as second:
            wait_until(lambda: (metric(second, "hftel_spool_batches") or 0) >= 3, "the spool found again")
            wait_until(lambda: time.monotonic() >= away_until, "the outage", timeout=OUTAGE_SECONDS + 5)
            clickhouse.start()
            assert_complete_and_unique(clickhouse, flow)
