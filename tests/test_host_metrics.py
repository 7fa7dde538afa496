"""Host and engine process metrics, as a real `hftel exporter` process serves them on /metrics.

One exporter (metrics only, a 0.2 s scan interval) serves every test of this module; each test names
its own engines. The values are checked against what psutil reads in the test process.
"""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import psutil
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

import hftel
from hftel_exporter.host import CPU_MODES, FAMILIES, OPTIONAL_FAMILIES, SKIPPED_DISKS
from processes import ExporterProcess, wait_until

HOST_FAMILIES = [family for family in FAMILIES if family[0].startswith("hftel_host_")]
PROCESS_FAMILIES = [family for family in FAMILIES if family[0].startswith("hftel_engine_process_")]
CREATOR_PID_OFFSET, START_TIME_OFFSET = 32, 40  # docs/layout.md, the segment header

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def directory(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("host")


@pytest.fixture(scope="module")
def exporter(directory) -> Iterator[ExporterProcess]:
    with ExporterProcess(directory, "--segments.paths", f"{directory}/hftel-*", "--segments.scan-interval", "0.2",
                         "--clickhouse.sink", "off") as process:
        yield process


def scrape(exporter: ExporterProcess, accept: str = "text/plain") -> str:
    request = urllib.request.Request(exporter.url + "/metrics", headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode()


def samples(exporter: ExporterProcess) -> Samples:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(scrape(exporter)) for sample in family.samples}


def of(found: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples named `name`, by their labels."""
    return {labels: value for (sample, labels), value in found.items() if sample == name}


def exposed(name: str, kind: str) -> str:
    return f"{name}_total" if kind == "counter" else name


def cpu_totals(found: Samples) -> dict[str, float]:
    """Seconds per CPU, every mode summed."""
    totals: dict[str, float] = {}
    for labels, value in of(found, "hftel_host_cpu_seconds_total").items():
        cpu = dict(labels)["cpu"]
        totals[cpu] = totals.get(cpu, 0.0) + value
    return totals


def next_collection(exporter: ExporterProcess, after: Samples) -> Samples:
    """The first scrape showing a host collection newer than `after` (idle time always moves on)."""
    return wait_until(lambda: (found := samples(exporter)) and cpu_totals(found) != cpu_totals(after) and found,
                      "a new host metrics collection")


@pytest.fixture
def engine_process(directory) -> Iterator[subprocess.Popen]:
    """A child process that creates its segment hftel-child, then waits until its stdin closes."""
    code = (f"import hftel, sys; tel = hftel.Telemetry.create({str(directory / 'hftel-child')!r}); "
            "print('ready', flush=True); sys.stdin.read(); tel.close()")
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    yield child
    if child.poll() is None:
        child.kill()
    child.wait()
    os.unlink(directory / "hftel-child")


# -- the host ------------------------------------------------------------------------------------------

def test_every_host_family_has_samples_unless_the_machine_lacks_what_it_measures(exporter):
    """Each hftel_host_* family is served; temperatures only where psutil finds a sensor."""
    found = samples(exporter)
    sensors = psutil.sensors_temperatures() if hasattr(psutil, "sensors_temperatures") else {}
    for name, kind, _ in HOST_FAMILIES:
        if name in OPTIONAL_FAMILIES and not sensors:
            assert {} == of(found, exposed(name, kind)), name
        else:
            assert of(found, exposed(name, kind)), f"{name} has no sample"


def test_cpu_seconds_are_per_logical_cpu_and_mode(exporter):
    """One series per CPU psutil lists and per mode; hftel_host_cpus is the logical CPU count."""
    found = samples(exporter)
    cpus = {str(cpu) for cpu in range(len(psutil.cpu_times(percpu=True)))}
    series = set(of(found, "hftel_host_cpu_seconds_total"))
    assert {(("cpu", cpu), ("mode", mode)) for cpu in cpus for mode in CPU_MODES} == series
    assert psutil.cpu_count() == found[("hftel_host_cpus", ())]


def test_cpu_seconds_of_every_core_increase_between_collections(exporter):
    """Every CPU's seconds, all modes summed, grow from one collection to the next."""
    first = samples(exporter)
    second = wait_until(lambda: (found := samples(exporter)) and all(
        total > cpu_totals(first)[cpu] for cpu, total in cpu_totals(found).items()) and found,
        "every CPU's seconds to increase")
    assert cpu_totals(first).keys() == cpu_totals(second).keys()


def test_host_counters_never_decrease(exporter):
    """Over three collections no hftel_host_* counter goes down."""
    counters = {exposed(name, kind) for name, kind, _ in HOST_FAMILIES if kind == "counter"}
    scrapes = [samples(exporter)]
    for _ in range(2):
        scrapes.append(next_collection(exporter, scrapes[-1]))
    for before, after in zip(scrapes, scrapes[1:]):
        went_down = [(key, before[key], value) for key, value in after.items()
                     if key[0] in counters and key in before and value < before[key]]
        assert [] == went_down


def test_memory_and_load_are_what_the_kernel_says(exporter):
    """Available memory is at most the total, the total is psutil's, swap used at most swap total."""
    found = samples(exporter)
    total, available = found[("hftel_host_memory_total_bytes", ())], found[("hftel_host_memory_available_bytes", ())]
    assert 0 < available <= total == psutil.virtual_memory().total
    assert 0 <= found[("hftel_host_swap_used_bytes", ())] <= found[("hftel_host_swap_total_bytes", ())]
    assert all(found[(name, ())] >= 0 for name in ("hftel_host_load1", "hftel_host_load5", "hftel_host_load15"))


def test_the_filesystem_of_the_tests_directory_is_listed(exporter, directory):
    """The filesystem holding the test's directory has a size and an available size no larger."""
    found = samples(exporter)
    sizes = of(found, "hftel_host_filesystem_size_bytes")
    mine = [labels for labels in sizes if os.stat(dict(labels)["mountpoint"]).st_dev == os.stat(directory).st_dev]
    assert len(mine) == 1, sorted(sizes)
    assert sizes[mine[0]] == psutil.disk_usage(str(directory)).total
    assert 0 <= of(found, "hftel_host_filesystem_avail_bytes")[mine[0]] <= sizes[mine[0]]


def test_network_devices_are_psutils_without_loopback(exporter):
    """Every interface psutil sees but lo has its counters."""
    devices = {dict(labels)["device"] for labels in of(samples(exporter), "hftel_host_network_receive_bytes_total")}
    assert set(psutil.net_io_counters(pernic=True)) - {"lo"} == devices


def test_disks_are_whole_devices(exporter):
    """Disks psutil sees are listed, but not their partitions, loop devices or RAM disks."""
    devices = {dict(labels)["device"] for labels in of(samples(exporter), "hftel_host_disk_reads_completed_total")}
    expected = {name for name in psutil.disk_io_counters(perdisk=True) if not SKIPPED_DISKS.match(name)}
    assert expected == devices


def test_openmetrics_scrapes_parse_with_the_host_families(exporter):
    """In OpenMetrics the host counters are families without _total and their samples parse."""
    families = {family.name: family for family in parse_openmetrics(
        scrape(exporter, "application/openmetrics-text;version=1.0.0"))}
    assert families["hftel_host_cpu_seconds"].type == "counter"
    assert families["hftel_host_cpu_seconds"].samples[0].name == "hftel_host_cpu_seconds_total"


# -- engine processes ----------------------------------------------------------------------------------

def test_an_engine_process_is_served_while_it_lives(exporter, engine_process):
    """A child that created a segment gets its RSS, CPU, threads, files and context switches under its
    engine label; once it exits they disappear and hftel_engine_up says 0."""
    engine = (("engine", "child"),)
    found = wait_until(lambda: (found := samples(exporter)) and engine in of(
        found, "hftel_engine_process_resident_memory_bytes") and found, "the child's process metrics")
    process = psutil.Process(engine_process.pid)
    for name, kind, _ in PROCESS_FAMILIES:
        assert {dict(labels)["engine"] for labels in of(found, exposed(name, kind))} == {"child"}, name
    assert 0.5 < found[("hftel_engine_process_resident_memory_bytes", engine)] / process.memory_info().rss < 2
    assert found[("hftel_engine_process_threads", engine)] == process.num_threads() >= 2  # main and heartbeat
    assert found[("hftel_engine_process_open_fds", engine)] >= 3
    cpu = of(found, "hftel_engine_process_cpu_seconds_total")
    assert {(("engine", "child"), ("mode", mode)) for mode in ("user", "system")} == set(cpu)
    assert cpu[(("engine", "child"), ("mode", "user"))] > 0  # importing hftel takes CPU
    switches = of(found, "hftel_engine_process_context_switches_total")
    assert {(("engine", "child"), ("kind", kind)) for kind in ("voluntary", "involuntary")} == set(switches)
    assert switches[(("engine", "child"), ("kind", "voluntary"))] > 0

    engine_process.stdin.close()
    engine_process.wait(timeout=10)
    gone = wait_until(lambda: (found := samples(exporter)) and not any(
        key[0].startswith("hftel_engine_process_") for key in found) and found, "the process metrics to go")
    assert gone[("hftel_engine_up", engine)] == 0


def test_a_pid_now_naming_another_process_is_not_attributed(exporter, directory, tmp_path):
    """A segment whose creator pid belongs to a process started after the segment (the engine died
    and the kernel reused its pid) gets no process metrics, and the exporter says why once."""
    bystander = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        staging = tmp_path / "hftel-reused"
        hftel.Telemetry.create(staging, capacity=16, values_bytes=1 << 16, heartbeat_interval=None).close()
        an_hour_ago = time.time_ns() - 3600 * 10**9  # the engine created it then, and has died since
        with open(staging, "r+b") as segment:
            header = bytearray(segment.read(48))
            struct.pack_into("<q", header, CREATOR_PID_OFFSET, bystander.pid)
            struct.pack_into("<Q", header, START_TIME_OFFSET, an_hour_ago)
            segment.seek(0)
            segment.write(header)
        os.rename(staging, directory / "hftel-reused")  # appears whole, as an engine's segment does
        engine = (("engine", "reused"),)
        wait_until(lambda: any(line.get("event") == "engine pid now names another process; not attributed"
                               and line.get("pid") == bystander.pid for line in exporter.log()),
                   "the exporter to log the reused pid")
        found = next_collection(exporter, samples(exporter))
        info = [dict(labels) for labels in of(found, "hftel_engine_info") if ("engine", "reused") in labels]
        assert [str(bystander.pid)] == [labels["pid"] for labels in info]
        assert [] == [key for key in found if key[0].startswith("hftel_engine_process_") and key[1][:1] == engine]
    finally:
        bystander.kill()
        bystander.wait()
        os.unlink(directory / "hftel-reused")


# -- the switch ----------------------------------------------------------------------------------------

def test_host_enabled_false_serves_no_host_or_process_family(tmp_path):
    """With host.enabled false neither the host's nor the engine processes' families are served."""
    with ExporterProcess(tmp_path, "--segments.paths", f"{tmp_path}/hftel-*", "--clickhouse.sink", "off",
                         "--host.enabled", "false") as exporter:
        body = scrape(exporter)
    assert "hftel_exporter_build_info" in body
    assert [] == [name for name, _, _ in FAMILIES if name in body]
