"""The repository's generator scripts (contracts/, dashboards/, alerts/), which are not packages,
loaded by path for the tests that check what they generate."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_script(relative: str, name: str) -> ModuleType:
    """ROOT/`relative` as the module `name`, loaded once per test process.

    Registered in sys.modules before it runs: dataclasses look their module up while the class is built.
    """
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / relative)
    assert spec is not None and spec.loader is not None, relative
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
