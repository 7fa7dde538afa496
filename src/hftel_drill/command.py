"""`hftel drill SCENARIO|all`: run failure drills against a real Prometheus and Alertmanager.

    hftel drill feed-gap                        # one drill, production timings
    hftel drill all --time-scale 0.1            # every drill, durations shortened tenfold (what the tests run)
    hftel drill all --record                    # and write docs/drills/RESULTS.md

Exit status: 0 when every drill passed, 1 when one failed, 2 when the drills could not run (a bad
argument, a missing tool, a part that did not start).
"""
from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from hftel_drill import plan, timing
from hftel_drill.results import Run, render
from hftel_drill.runner import Outcome, Progress, run_drill, wait_quiet
from hftel_drill.servers import DrillError, find_tool
from hftel_drill.stack import Stack, find_alerts_dir

QUIET_TIMEOUT = 120.0  # how long the alerts of one drill may take to clear before the next


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hftel drill", description=__doc__.splitlines()[0].split(": ", 1)[1],
        epilog="Each drill starts from a quiet stack, injects the scenario into the demo engine, waits for its "
               "alert to fire within `for` plus two evaluation intervals, checks Alertmanager notified exactly "
               "the alert's receivers and the audit tables and logs recorded the failure, clears it and waits for "
               "the alert to resolve. See docs/drills/README.md.")
    parser.add_argument("scenarios", nargs="+", metavar="SCENARIO",
                        help=f"one or more of {', '.join(plan.DRILLS)}, run in that order; or all")
    parser.add_argument("--time-scale", type=float, default=1.0, metavar="X",
                        help="multiply every duration of the rules and the routing by X, in (0, 1] "
                             "(default 1: production timings; the tests use 0.1)")
    parser.add_argument("--record", nargs="?", const="", default=None, metavar="PATH",
                        help="write the results as Markdown (default path: docs/drills/RESULTS.md of the checkout)")
    parser.add_argument("--alerts", metavar="DIR",
                        help="where hftel.rules.yml and alertmanager.test.yml are (default: the checkout's alerts/)")
    parser.add_argument("--dir", metavar="DIR",
                        help="working directory for the configs, data and logs (default: a new temporary one)")
    parser.add_argument("--seed", type=int, help="seed the demo engine, for a repeatable run")
    return parser


def tool_version(binary: str, name: str) -> str:
    """"Prometheus 2.42.0+ds", from the first line of the tool's --version ("prometheus, version 2.42.0+ds (...)")."""
    result = subprocess.run([find_tool(binary), "--version"], capture_output=True, text=True, timeout=30)
    first = (result.stdout or result.stderr).splitlines()[0]
    return f"{name} {first.split(' version ', 1)[-1].split(' ')[0]}"


def run(args: argparse.Namespace, out=sys.stdout) -> int:
    drills = plan.select(args.scenarios)
    if not timing.is_scale(args.time_scale):
        raise ValueError(f"--time-scale must be in (0, 1], not {args.time_scale:g}")
    alerts_dir = find_alerts_dir(args.alerts)
    record = None
    if args.record is not None:
        record = Path(args.record) if args.record else alerts_dir.parent / "docs" / "drills" / "RESULTS.md"
    workdir = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="hftel-drill-"))
    progress = Progress(out)
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    progress.say(f"hftel drill {' '.join(args.scenarios)}: {timing.describe(args.time_scale)}; working directory {workdir}")
    outcomes: list[Outcome] = []
    with Stack(workdir, alerts_dir, args.time_scale, say=progress.say, seed=args.seed) as stack:
        for drill in drills:
            wait_quiet(stack, progress, QUIET_TIMEOUT)
            outcomes.append(run_drill(stack, drill, progress))
    failed = [outcome.scenario for outcome in outcomes if not outcome.passed]
    progress.say(f"{len(outcomes) - len(failed)} of {len(outcomes)} drills passed"
                 + (f"; failed: {', '.join(failed)}" if failed else ""))
    if record is not None:
        run_info = Run(started, args.time_scale, tool_version("prometheus", "Prometheus"),
                       tool_version("prometheus-alertmanager", "Alertmanager"))
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(render(outcomes, run_info))
        progress.say(f"results written to {record}")
    progress.say(f"configs, data and logs stay in {workdir}")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except ValueError as problem:
        print(f"hftel drill: {problem}", file=sys.stderr)
        return 2
    except DrillError as problem:
        print(f"hftel drill: {problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
