"""hftel: telemetry for a trading engine's hot path.

The engine records counters, gauges and latency histograms into a shared-memory segment at C speed;
a separate exporter process reads snapshots of it. See README.md and docs/layout.md.

    >>> import hftel
    >>> tel = hftel.Telemetry.create("/tmp/hftel-init-doc")
    >>> tel.counter("ticks", "Ticks seen.").inc()
    >>> hftel.Reader("/tmp/hftel-init-doc").snapshot().get_sample_value("ticks_total")
    1
    >>> tel.close()
"""
from pathlib import Path

from hftel._core import LAYOUT_VERSION, Counter, Gauge, Histogram, IntGauge
from hftel.errors import (
    HftelError,
    LayoutVersionError,
    RegistrationBusyError,
    RegistrationError,
    SegmentError,
    SegmentFullError,
)
from hftel.metrics import DEFAULT_BUCKETS, Buckets, MetricFamily, explicit_buckets, log_linear_buckets
from hftel.reader import EngineStatus, Reader, SegmentInfo, Series, Snapshot
from hftel.telemetry import Telemetry, segment_path

__version__ = "0.1.0"


def get_include() -> str:
    """The directory holding hftel.h, hftel_registry.h and the .pxd files, for C and Cython engines."""
    installed = Path(__file__).parent / "include"
    if (installed / "hftel.h").exists():
        return str(installed)
    return str(Path(__file__).resolve().parents[2] / "cext")  # a source checkout


__all__ = [
    "Buckets", "Counter", "DEFAULT_BUCKETS", "EngineStatus", "Gauge", "HftelError", "Histogram", "IntGauge",
    "LAYOUT_VERSION", "LayoutVersionError", "MetricFamily", "Reader", "RegistrationBusyError",
    "RegistrationError", "SegmentError", "SegmentFullError", "SegmentInfo", "Series", "Snapshot", "Telemetry",
    "explicit_buckets", "get_include", "log_linear_buckets", "segment_path",
]
