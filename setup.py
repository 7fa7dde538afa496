"""Builds the Cython extensions hftel._core (segment, metrics), hftel._rings (audit and log rings) and
hftel_exporter._exposition (the exporter's compiled renderer).

The C headers and the .pxd files are also copied into the package (hftel/include) so that C and
Cython engines can build against an installed hftel: see hftel.get_include().
"""
import shutil
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_py import build_py

CEXT = Path("cext")
HEADERS = ["hftel.h", "hftel_ring.h", "hftel_registry.h", "hftel_writer.h", "hftel_audit.h"]
PXDS = ["hftel/__init__.pxd", "hftel/chftel.pxd", "hftel/_core.pxd"]


class BuildPyWithHeaders(build_py):
    """Ships cext's headers and .pxd files inside the package, under hftel/include."""

    def run(self):
        super().run()
        target = Path(self.build_lib) / "hftel" / "include"
        for name in HEADERS + PXDS:
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(CEXT / name, destination)


extensions = [
    Extension(
        f"hftel.{name}",
        sources=[f"cext/hftel/{name}.pyx"],
        include_dirs=["cext"],
        extra_compile_args=["-O3", "-std=c11", "-D_GNU_SOURCE"],
    )
    for name in ("_core", "_rings")
] + [
    Extension(
        "hftel_exporter._exposition",
        sources=["cext/hftel_exporter/_exposition.pyx"],
        include_dirs=["cext"],
        extra_compile_args=["-O3", "-std=c11", "-D_GNU_SOURCE"],
    )
]

setup(
    ext_modules=cythonize(extensions, include_path=["cext"], language_level=3),
    cmdclass={"build_py": BuildPyWithHeaders},
)
