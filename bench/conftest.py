"""Shared set-up for the benchmarks: the metric objects of each library, a segment with drained audit
and log rings, structlog's fast JSON configuration, and bench/cloops.pyx built.

Every benchmark runs a loop of `n` record calls per round (so the harness overhead is amortised) and
stores in `benchmark.extra_info` what bench/report.py needs to turn its timings into a table:
n, the library, the operation, the baseline to subtract and the target.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import random
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

import hftel

BENCH = Path(__file__).resolve().parent
BUILD = BENCH / "_build"

# Observations for the histogram benchmarks: log-uniform from 1 us to 1 s, so that they land in many
# buckets of every library's default layout. The same values go to every library.
OBSERVATION_LOW_NS = 1_000
OBSERVATION_HIGH_NS = 1_000_000_000


def observations_ns(count: int, seed: int = 20240601) -> list[int]:
    """`count` latencies in integer nanoseconds, log-uniform in [1 us, 1 s), reproducible."""
    rng = random.Random(seed)
    ratio = OBSERVATION_HIGH_NS / OBSERVATION_LOW_NS
    return [int(OBSERVATION_LOW_NS * ratio ** rng.random()) for _ in range(count)]


@pytest.fixture(scope="session")
def observations():
    """The histogram benchmarks' values: a function of the count, in integer nanoseconds."""
    return observations_ns


@pytest.fixture(scope="session")
def measure():
    """Runs `fn(*args)` (one loop of n operations) under benchmark.pedantic; returns the call count."""

    def run(benchmark, fn, args, *, n, rounds, warmup_rounds, setup=None, **info):
        """`setup`, if given, runs before every round (warm-up included), outside the timed region."""
        calls = [0]

        def counted(*call_args):
            calls[0] += 1
            return fn(*call_args)

        def prepare():
            setup()
            return args, {}

        benchmark.extra_info.update(n=n, **info)
        if setup is None:
            benchmark.pedantic(counted, args=args, rounds=rounds, iterations=1, warmup_rounds=warmup_rounds)
        else:
            benchmark.pedantic(counted, setup=prepare, rounds=rounds, iterations=1, warmup_rounds=warmup_rounds)
        return calls[0]

    return run


def _proc_cpuinfo() -> dict:
    """The CPU model, clock and logical CPU count from /proc/cpuinfo (Linux); {} elsewhere."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return {}
    fields = [line.partition(":") for line in lines]
    first = {key.strip(): value.strip() for key, _, value in fields if key.strip()}
    return {
        "model_name": first.get("model name", ""),
        "cpu_mhz": first.get("cpu MHz", ""),
        "logical_cpus": sum(1 for key, _, _ in fields if key.strip() == "processor"),
    }


def _version(distribution: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


_LOAD_AT_START: list[float] = []


def pytest_sessionstart(session):
    if hasattr(os, "getloadavg"):
        _LOAD_AT_START[:] = os.getloadavg()


def pytest_benchmark_update_machine_info(config, machine_info):
    """Adds what bench/report.py prints about the run, captured when the benchmarks ran."""
    import subprocess

    try:
        compiler = subprocess.run(["cc", "--version"], capture_output=True, text=True, check=False).stdout
    except OSError:
        compiler = ""
    machine_info["hftel_bench"] = {
        **_proc_cpuinfo(),
        "load_average_at_start": list(_LOAD_AT_START),
        "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else [],
        "cc": compiler.splitlines()[0] if compiler else "",
        "versions": {name: _version(name) for name in
                     ("hftel", "prometheus_client", "opentelemetry-sdk", "structlog", "orjson",
                      "pytest-benchmark", "Cython")},
    }


# -- hftel -------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def telemetry():
    """One hftel segment for the whole run, on tmpfs as in production (no page writeback)."""
    directory = tempfile.mkdtemp(prefix="hftel-bench-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    tel = hftel.Telemetry.create(os.path.join(directory, "segment"), heartbeat_interval=None)
    yield tel
    tel.close()
    shutil.rmtree(directory, ignore_errors=True)


class Rings:
    """A segment with an audit and a log ring, and the one consumer of each (as the exporter).

    Every ring benchmark drains both rings before each round (its `setup`, outside the timed region),
    so that no round ever finds a ring full: a full audit ring spills to a file, a full log ring
    drops the event, and neither is what the benchmark means to time. `drained` counts what the
    consumers took out, so a benchmark can check that every call left exactly one record.
    """

    def __init__(self, tel):
        from hftel import rings

        self.tel = tel
        self.audit = rings.AuditConsumer(tel._segment)
        self.log = rings.LogConsumer(tel._segment)
        self.drained = {"audit": 0, "log": 0}
        self.last = {"audit": None, "log": None}  # the last batch that held anything, for spot checks

    def drain(self):
        for name, consumer in (("audit", self.audit), ("log", self.log)):
            while True:
                batch = consumer.poll()
                count = batch.count if name == "audit" else len(batch.events)
                consumer.release(batch)
                if not count:
                    break
                self.drained[name] += count
                self.last[name] = batch

    def overflows(self):
        """The audit and log rings' overflow counters (full, spilled, lost), to be all zero."""
        return {f"{name}.{key}": consumer.stats()[key]
                for name, consumer in (("audit", self.audit), ("log", self.log))
                for key in ("full", "spilled", "lost")}


@pytest.fixture(scope="session")
def rings():
    """A segment of its own for the ring benchmarks: the production ring sizes (16 MiB each), on tmpfs."""
    base = os.environ.get("HFTEL_SHM_DIR") or ("/dev/shm" if os.path.isdir("/dev/shm") else None)
    directory = tempfile.mkdtemp(prefix="hftel-bench-rings-", dir=base)
    tel = hftel.Telemetry.create(os.path.join(directory, "segment"), heartbeat_interval=None,
                                 audit_ring_bytes=16 << 20, log_ring_bytes=16 << 20)
    yield Rings(tel)
    tel.close()
    shutil.rmtree(directory, ignore_errors=True)


# -- structlog ---------------------------------------------------------------------------------------


def configure_structlog_fast_json(file):
    """structlog's recommended fast configuration (its performance docs): a filtering bound logger,
    cached on first use, JSON rendered by orjson, bytes written straight to `file`."""
    import logging

    import orjson
    import structlog

    structlog.configure(
        cache_logger_on_first_use=True,
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.format_exc_info,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ],
        logger_factory=structlog.BytesLoggerFactory(file=file),
    )


class StructlogFastJson:
    """Configures structlog as above; `lines()` checks what it renders, on a buffer, untimed."""

    def __init__(self):
        self.files = []

    def configure(self, file=None):
        """Into `file`, by default /dev/null (opened here, closed at teardown). Returns structlog."""
        import structlog

        if file is None:
            file = open(os.devnull, "wb")
            self.files.append(file)
        configure_structlog_fast_json(file)
        return structlog

    def lines(self, make_logger, loop, n=2):
        """The JSON lines `loop(make_logger(), n)` writes, decoded. Reconfigures structlog: call
        configure() again before the benchmark."""
        import io
        import json

        buffer = io.BytesIO()
        self.configure(buffer)
        loop(make_logger(), n)
        return [json.loads(line) for line in buffer.getvalue().splitlines()]


@pytest.fixture
def structlog_fast_json():
    """A StructlogFastJson; structlog's defaults are put back afterwards (structlog.configure is
    global: no other benchmark may see this configuration)."""
    import structlog

    fast = StructlogFastJson()
    try:
        yield fast
    finally:
        structlog.reset_defaults()
        for file in fast.files:
            file.close()


@pytest.fixture
def structlog_hftel(rings):
    """structlog routed into the rings' segment by hftel.logs.configure(strict=True); reset afterwards."""
    import structlog

    from hftel import logs

    logs.configure(rings.tel, strict=True)
    try:
        yield structlog
    finally:
        structlog.reset_defaults()


# -- prometheus_client -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def prometheus_multiprocess(tmp_path_factory):
    """A factory of prometheus_client metrics in multiprocess mode, for real.

    prometheus_client picks its value class once, at import (`values.ValueClass = get_value_class()`),
    and every metric constructs `values.ValueClass(...)` when it is created. So we set
    PROMETHEUS_MULTIPROC_DIR, rebuild the class with get_value_class() (a MultiProcessValue, i.e. an
    mmap'd .db file per process), create the metric, and put both back so that the single-process
    benchmarks keep the plain MutexValue.
    """
    from prometheus_client import values

    directory = tmp_path_factory.mktemp("prometheus_multiproc")

    def make(metric_class, name, documentation, **kwargs):
        saved_env = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        saved_class = values.ValueClass
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
        try:
            values.ValueClass = values.get_value_class()
            assert values.ValueClass._multiprocess, "get_value_class() did not return MultiProcessValue"
            metric = metric_class(name, documentation, registry=None, **kwargs)
        finally:
            values.ValueClass = saved_class
            if saved_env is None:
                del os.environ["PROMETHEUS_MULTIPROC_DIR"]
            else:
                os.environ["PROMETHEUS_MULTIPROC_DIR"] = saved_env
        value = metric._value if hasattr(metric, "_value") else metric._sum
        assert value._multiprocess, f"{name} did not get a multiprocess value"
        assert list(directory.glob("*.db")), "no .db file appeared in PROMETHEUS_MULTIPROC_DIR"
        return metric

    make.directory = directory
    yield make
    values.close_all_multiprocess_files()


# -- OpenTelemetry -----------------------------------------------------------------------------------


class OTel:
    """An OpenTelemetry SDK meter (not the global one) and the in-memory reader behind it."""

    def __init__(self):
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(metric_readers=[self.reader])
        self.meter = self.provider.get_meter("hftel-bench")

    def points(self, name):
        """The data points the reader collects for instrument `name`."""
        return [
            point
            for resource_metrics in self.reader.get_metrics_data().resource_metrics
            for scope_metrics in resource_metrics.scope_metrics
            for metric in scope_metrics.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]


@pytest.fixture(scope="session")
def otel():
    sdk = OTel()
    yield sdk
    sdk.provider.shutdown()


# -- bench/cloops.pyx, built at benchmark time -----------------------------------------------------


def _build_key(include: Path) -> str:
    """A digest of everything the extension depends on, so that a stale build is never reused."""
    import Cython

    digest = hashlib.sha256()
    inputs = [BENCH / "cloops.pyx", *sorted(include.glob("*.h")), *sorted((include / "hftel").glob("*.pxd"))]
    for path in inputs:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update(f"{Cython.__version__} {sys.version} {sysconfig.get_platform()}".encode())
    return digest.hexdigest()[:16]


def build_cloops():
    """Cythonizes and compiles bench/cloops.pyx (-O3) into bench/_build/<digest>/ and imports it."""
    from Cython.Build import cythonize
    from setuptools import Distribution, Extension

    include = Path(hftel.get_include())
    target = BUILD / _build_key(include)
    built = sorted(target.glob("cloops*" + sysconfig.get_config_var("EXT_SUFFIX")))
    if not built:
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(BENCH / "cloops.pyx", target / "cloops.pyx")
        extension = Extension(
            "cloops",
            sources=[str(target / "cloops.pyx")],
            include_dirs=[str(include)],
            extra_compile_args=["-O3", "-std=c11", "-D_GNU_SOURCE"],
        )
        distribution = Distribution({
            "ext_modules": cythonize([extension], include_path=[str(include)], language_level=3, quiet=True),
        })
        command = distribution.get_command_obj("build_ext")
        command.build_lib = str(target)
        command.build_temp = str(target / "tmp")
        command.ensure_finalized()
        command.run()
        built = sorted(target.glob("cloops*" + sysconfig.get_config_var("EXT_SUFFIX")))
    spec = importlib.util.spec_from_file_location("cloops", built[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def cloops():
    return build_cloops()
