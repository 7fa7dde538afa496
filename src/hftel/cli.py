"""The `hftel` command. Each subcommand imports what it needs only when it runs."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence


def _demo(args: argparse.Namespace) -> int:
    from hftel.demo import run

    return run(segment=args.segment, duration=args.duration, interval=args.interval)


def _inspect(args: argparse.Namespace) -> int:
    from hftel.flightrecorder import report

    sys.stdout.write(report(args.segment, args.last))
    return 0


def _top(args: argparse.Namespace) -> int:
    from hftel import top

    if args.interval < 0 or (args.interval == 0 and not args.once):
        print("hftel top: --interval must be > 0 seconds (0 only with --once)", file=sys.stderr)
        return 2
    if args.once:
        sys.stdout.write(top.once(args.segment, args.interval))
        return 0
    return top.run(args.segment, args.interval)


def _exporter(arguments: Sequence[str]) -> int:
    from hftel_exporter.command import main as exporter_main

    return exporter_main(arguments)


def _audit(arguments: Sequence[str]) -> int:
    from hftel_exporter.audit import main as audit_main

    return audit_main(arguments)


def _migrate(arguments: Sequence[str]) -> int:
    from hftel_exporter.audit import migrate_main

    return migrate_main(arguments)


# Subcommands of the exporter package: main() hands their arguments over unparsed (their flags are
# their own, and hftel_exporter is imported only when one of them runs).
_EXPORTER_COMMANDS = {"exporter": _exporter, "audit": _audit, "migrate": _migrate}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hftel", description="Telemetry for a trading engine's hot path.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run a small engine loop and print live snapshots of its segment")
    demo.add_argument("--segment", default="demo", help="segment name or path (default: demo)")
    demo.add_argument("--duration", type=float, default=10.0, help="seconds to run; 0 runs until Ctrl-C")
    demo.add_argument("--interval", type=float, default=1.0, help="seconds between snapshots")
    demo.set_defaults(handler=_demo)
    inspect = commands.add_parser(
        "inspect", help="print a segment's header, liveness and the last audit rows and log events in its rings")
    inspect.add_argument("segment", help="segment name or path")
    inspect.add_argument("-n", "--last", type=int, default=10, help="how many rows and events to print (default 10)")
    inspect.set_defaults(handler=_inspect)
    top = commands.add_parser(
        "top", help="a live view of a segment: counters and rates, gauges, histogram quantiles, rings (q quits)")
    top.add_argument("segment", nargs="?",
                     help="segment name or path (default: the first hftel-* in $HFTEL_SHM_DIR, else /dev/shm)")
    top.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes (default 1.0)")
    top.add_argument("--once", action="store_true",
                     help="print one frame and exit: two samples --interval apart, so rates show "
                          "(--interval 0: one sample, rates '-')")
    top.set_defaults(handler=_top)
    # Listed for --help only: main() hands `hftel exporter|audit|migrate ...` to hftel_exporter unparsed.
    commands.add_parser("exporter", add_help=False,
                        help="serve attached segments as Prometheus metrics (see `hftel exporter --help`)")
    commands.add_parser("audit", add_help=False,
                        help="query the audit tables (read-only), or verify every source's sequence numbers "
                             "(see `hftel audit --help`)")
    commands.add_parser("migrate", add_help=False,
                        help="create or check the ClickHouse schema and record its version "
                             "(see `hftel migrate --help`)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] and argv[0] in _EXPORTER_COMMANDS:  # argparse's REMAINDER would not pass their flags on
        return _EXPORTER_COMMANDS[argv[0]](argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # noqa: BLE001 - the command's last word is one clear line
        from hftel.errors import HftelError

        if isinstance(error, (HftelError, OSError)):
            print(f"hftel {args.command}: {error}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    raise SystemExit(main())
