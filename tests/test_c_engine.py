"""A C engine including cext/hftel.h writes into a segment that Python created."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import hftel
from conftest import build_c_program

ENGINE_SOURCE = Path(__file__).parent / "c" / "engine.c"
THREADS, ITERATIONS = 4, 100_000


@pytest.fixture(scope="module")
def c_engine(tmp_path_factory) -> Path:
    """tests/c/engine.c built with the system compiler against the project's headers."""
    return build_c_program(ENGINE_SOURCE, tmp_path_factory.mktemp("c"))


@pytest.fixture
def c_written(tel, segment_file, c_engine) -> hftel.Snapshot:
    """The snapshot after the C engine ran against series Python registered."""
    tel.counter("c_orders", "Orders.", labels=("side",)).labels(side="buy")
    tel.histogram("c_latency_ns", "Latency.")
    tel.counter("c_owned", "Owned by one thread.")
    tel.histogram("c_owned_latency_ns", "Owned latency.", buckets=[50, 100, 200])
    tel.gauge("c_position", "Position.", kind="int")
    tel.gauge("c_pnl", "PnL.")
    result = subprocess.run([str(c_engine), segment_file, str(THREADS), str(ITERATIONS)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return tel.snapshot()


def test_c_threads_adding_atomically_lose_no_update(c_written):
    """4 C threads x 100,000 atomic adds on one counter read back exactly."""
    assert c_written.get_sample_value("c_orders_total", {"side": "buy"}) == THREADS * ITERATIONS


def test_c_atomic_histogram_counts_and_sums_exactly(c_written):
    """The histogram C threads observed into has the exact count, sum and bucket split."""
    series = c_written.get("c_latency_ns")
    assert series.count == THREADS * ITERATIONS
    per_thread_sum = sum((i % 1000) * 1000 for i in range(ITERATIONS))
    assert series.sum == THREADS * per_thread_sum
    # i % 1000 == 0 gives 0 ns: THREADS * ITERATIONS / 1000 observations at or below 64 ns.
    assert series.cumulative[0] == THREADS * ITERATIONS // 1000


def test_c_single_writer_functions_record_exactly(c_written):
    """The single-writer counter and histogram, driven by one C thread, read back exactly."""
    assert c_written.get_sample_value("c_owned_total") == 2 * ITERATIONS
    assert c_written.get_sample_value("c_owned_latency_ns_bucket", {"le": "100"}) == ITERATIONS
    assert c_written.get_sample_value("c_owned_latency_ns_bucket", {"le": "50"}) == 0
    assert c_written.get_sample_value("c_owned_latency_ns_sum") == 100 * ITERATIONS


def test_c_gauges_read_back_exactly(c_written):
    """Integer and float gauges set from C are what Python reads."""
    assert c_written.get_sample_value("c_position") == -5
    assert c_written.get_sample_value("c_pnl") == 1234.75


def test_series_registered_from_c_are_seen_by_python(c_written):
    """hftel_register from C publishes a series the Python reader discovers."""
    assert c_written.get_sample_value("c_registered_total", {"origin": "c"}) == 99


def test_header_compiles_as_cpp(tmp_path):
    """C++ engines include the same headers, the ring, writer and audit row headers too."""
    compiler = shutil.which("c++") or shutil.which("g++")
    if compiler is None:
        pytest.skip("no C++ compiler (c++ or g++) on PATH")
    source = tmp_path / "engine.cpp"
    source.write_text('#include "hftel_writer.h"\n#include "hftel_audit.h"\n'
                      'int main() { hftel_counter c{}; hftel_audit_orders_row row{}; (void)c; (void)row; return 0; }\n')
    subprocess.run([compiler, "-std=c++11", "-Wall", "-Wextra", "-Werror", f"-I{hftel.get_include()}", str(source),
                    "-o", str(tmp_path / "engine")], check=True)
