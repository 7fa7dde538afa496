"""Generates the Grafana dashboards in this folder from Python: nothing in the JSON is written by hand.

    python dashboards/generate.py           # (re)write every dashboard's JSON after changing one
    python dashboards/generate.py --check   # exit 1 naming each JSON file that differs from the output

Five dashboards (the plan's section 3), each a Grafana 10 JSON model (schemaVersion 39) with a
`datasource` variable every panel and query uses, an `engine` variable every engine query filters
by, a stable uid, the tag `hftel`, a 5 s refresh and the last hour. The metric names are the
contract's (contracts/observability.md) and nothing else; a panel's description names the alerts
(ALERTS, the names declared in alerts/rules.py) that watch what it shows. tests/test_dashboards.py checks the
names, and that the committed JSON is what this file writes.

Plain Python, no dashboard library: a panel is a dict built by one small function per panel type,
a Dashboard places panels left to right on Grafana's 24-column grid and numbers them in order. Those
building blocks are dashboards/dashboard_panels.py; the five dashboards are declared in
dashboards/dashboard_layouts.py (DASHBOARDS); this file writes and checks their JSON, and lists their
queries for the tests.

    >>> [uid for uid, _, _ in queries()][:1]
    ['hftel-feed-gateway']
    >>> concrete('rate(hft_intents_total{engine=~"$engine"}[$__rate_interval])')
    'rate(hft_intents_total{engine=~".*"}[1m])'
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Sequence

DIRECTORY = Path(__file__).resolve().parent
COMMAND = "python dashboards/generate.py"

# dashboards/ is not a package and this file is loaded by path (the tests), so its sibling modules
# are found by putting dashboards/ on sys.path; their names (dashboard_*) shadow nothing.
if str(DIRECTORY) not in sys.path:
    sys.path.append(str(DIRECTORY))

from dashboard_layouts import DASHBOARDS  # noqa: E402  (needs dashboards/ on sys.path)
from dashboard_panels import ALERTS, Dashboard  # noqa: E402

__all__ = ["ALERTS", "COMMAND", "CONCRETE", "DASHBOARDS", "DIRECTORY", "Dashboard", "concrete", "main", "models",
           "queries", "render", "stale", "write"]

#: Values for the template variables that make a query runnable against Prometheus as it is: the
#: "All" choice for the variables, and the windows Grafana would pick for a one-hour view.
CONCRETE = {"engine": ".*", "strategy": ".*", "__rate_interval": "1m", "__interval": "15s", "__range": "5m"}


def concrete(expr: str) -> str:
    """`expr` with each template variable replaced by a value Prometheus accepts (CONCRETE)."""
    def value(match: re.Match[str]) -> str:
        try:
            return CONCRETE[match.group(1)]
        except KeyError:
            raise ValueError(f"{expr!r}: no concrete value for ${match.group(1)} (CONCRETE)") from None
    return re.sub(r"\$\{?(\w+)\}?", value, expr)


def models() -> dict[str, dict[str, Any]]:
    """file name -> the dashboard's JSON model."""
    return {name: build().model() for name, build in DASHBOARDS.items()}


def render(model: dict[str, Any]) -> str:
    """The file's text: sorted keys, two-space indent, a final newline (stable diffs)."""
    return json.dumps(model, indent=2, sort_keys=True) + "\n"


def queries() -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title, PromQL) of every query of every panel, in dashboard and panel order."""
    return [(model["uid"], item["title"], t["expr"]) for model in models().values()
            for item in model["panels"] for t in item.get("targets", ())]


def stale(directory: Path = DIRECTORY) -> dict[str, str]:
    """The JSON files in `directory` that are not what the generator writes: file name -> why."""
    expected = {name: render(model) for name, model in models().items()}
    problems = {path.name: f"is not written by {COMMAND} (remove it, or generate it)"
                for path in directory.glob("*.json") if path.name not in expected}
    for name, text in expected.items():
        path = directory / name
        if not path.is_file():
            problems[name] = f"is missing: run `{COMMAND}`"
        elif path.read_text(encoding="utf-8") != text:
            problems[name] = f"is stale: run `{COMMAND}`"
    return dict(sorted(problems.items()))


def write(directory: Path = DIRECTORY) -> list[Path]:
    """Writes every dashboard into `directory`; returns the files written."""
    paths = []
    for name, model in models().items():
        paths.append(directory / name)
        paths[-1].write_text(render(model), encoding="utf-8")
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Writes the Grafana dashboards' JSON, or checks it is current.")
    parser.add_argument("--check", action="store_true", help="exit 1 naming each stale JSON file; write nothing")
    parser.add_argument("--directory", type=Path, default=DIRECTORY, help="where the JSON files are (default: here)")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale(args.directory)
        for name, why in problems.items():
            print(f"{args.directory / name} {why}", file=sys.stderr)
        return 1 if problems else 0
    for path in write(args.directory):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
