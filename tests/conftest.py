"""Shared fixtures: every test gets its own segment file in a temporary directory."""
from __future__ import annotations

import multiprocessing
import shutil
import subprocess
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


def build_c_program(source: Path, directory: Path) -> Path:
    """Compiles a test's C engine against the project's headers, warnings as errors; skips the test
    with the reason when there is no C compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip(f"no C compiler (cc or gcc) on PATH: {source.name} needs one")
    binary = directory / source.stem
    subprocess.run(
        [compiler, "-std=c11", "-D_GNU_SOURCE", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread",
         f"-I{hftel.get_include()}", str(source), "-o", str(binary)],
        check=True,
    )
    return binary
