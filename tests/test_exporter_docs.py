"""docs/exporter.md lists every setting and every metric of the exporter's own, as the code has them."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from hftel_exporter.config import SETTINGS
from hftel_exporter.selfmetrics import ERROR_KINDS, FAMILIES

DOC = (Path(__file__).resolve().parents[1] / "docs" / "exporter.md").read_text()


def table_rows() -> dict[str, list[str]]:
    rows = {}
    for line in DOC.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `") and cells:
            rows[cells[0]] = cells
    return rows


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda setting: setting.key)
def test_every_setting_is_documented_with_its_variable_flag_and_default(setting):
    row = table_rows().get(f"`{setting.key}`")
    assert row is not None, f"{setting.key} is missing from docs/exporter.md"
    assert f"`{setting.env}`" in row[1] and f"`{setting.flag}`" in row[2]
    default = setting.default if setting.type is not list else None
    if default is not None:
        assert row[3].startswith(f'`{default!r}`'.replace("'", '"')), row[3]


def test_no_undocumented_setting_is_listed():
    documented = {cell.strip("`") for cell in table_rows() if "." in cell and cell.count("`") == 2}
    keys = {setting.key for setting in SETTINGS}
    assert {key for key in documented if key.split(".")[0] in ("segments", "web", "log")} <= keys


def test_every_exporter_metric_is_documented():
    for name, kind, _ in FAMILIES:
        shown = f"{name}_total" if kind == "counter" else name
        assert re.search(rf"`{re.escape(shown)}`", DOC), f"{shown} is missing from docs/exporter.md"


def test_every_error_kind_is_documented():
    for kind in ERROR_KINDS:
        assert f"`{kind}`" in DOC
