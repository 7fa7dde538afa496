"""Shared fixtures: every test gets its own segment file in a temporary directory."""
from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Iterator

import pytest
from hypothesis import HealthCheck, settings

import hftel

# Timing is not what the property tests check: a loaded CI machine must not turn a slow example
# into a failure.
settings.register_profile("hftel", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("hftel")


@pytest.fixture
def segment_file(tmp_path: Path) -> str:
    """A path for a new segment (not created yet)."""
    return str(tmp_path / "engine.seg")


@pytest.fixture
def tel(segment_file: str) -> Iterator[hftel.Telemetry]:
    """A fresh engine-side segment, closed after the test."""
    telemetry = hftel.Telemetry.create(segment_file, capacity=1024, values_bytes=1 << 20)
    yield telemetry
    telemetry.close()


@pytest.fixture
def spawn() -> multiprocessing.context.SpawnContext:
    """A multiprocessing context whose children start clean and attach to segments by path."""
    return multiprocessing.get_context("spawn")
