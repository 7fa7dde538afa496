"""Builds the Cython extension hftel._core over cext/hftel.h.

The C headers and the .pxd files are also copied into the package (hftel/include) so that C and
Cython engines can build against an installed hftel: see hftel.get_include().
"""
import shutil
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_py import build_py

CEXT = Path("cext")
HEADERS = ["hftel.h", "hftel_registry.h", "hftel_audit.h"]
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


extension = Extension(
    "hftel._core",
    sources=["cext/hftel/_core.pyx"],
    include_dirs=["cext"],
    extra_compile_args=["-O3", "-std=c11", "-D_GNU_SOURCE"],
)

setup(
    ext_modules=cythonize([extension], include_path=["cext"], language_level=3),
    cmdclass={"build_py": BuildPyWithHeaders},
)
