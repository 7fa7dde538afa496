"""A segment that runs out of room says so, and keeps what it has."""
import pytest

import hftel


def test_a_full_descriptor_table_is_refused_with_its_capacity(segment_file):
    """Registering past `capacity` raises SegmentFullError naming the capacity."""
    with hftel.Telemetry.create(segment_file, capacity=3, heartbeat_interval=None) as tel:
        family = tel.counter("c", "C.", labels=("n",))
        for n in range(3):
            family.labels(n=str(n)).inc()
        with pytest.raises(hftel.SegmentFullError, match="full .3 series"):
            family.labels(n="3")
        assert len(tel.snapshot().series) == 3


def test_a_full_values_area_is_refused(segment_file):
    """A histogram that does not fit in the values area raises SegmentFullError."""
    with hftel.Telemetry.create(segment_file, capacity=16, values_bytes=512, heartbeat_interval=None) as tel:
        with pytest.raises(hftel.SegmentFullError, match="values area is full"):
            tel.histogram("h_ns", "H.")


def test_registering_an_existing_series_again_takes_no_room(segment_file):
    """Re-registration returns the same series instead of allocating a new one."""
    with hftel.Telemetry.create(segment_file, capacity=1, heartbeat_interval=None) as tel:
        tel.counter("c", "C.").inc()
        tel.counter("c", "C.").inc()
        assert tel.snapshot().get_sample_value("c_total") == 2
