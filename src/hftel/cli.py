"""The `hftel` command. Each subcommand imports what it needs only when it runs."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from hftel.demo.scenarios import NAMES as SCENARIO_NAMES  # names only: the demo itself loads when run


def _demo(args: argparse.Namespace) -> int:
    from hftel.demo.runner import run

    try:
        return run(segment=args.segment, directory=args.dir, duration=args.duration, scenarios=args.scenario,
                   inject_after=args.inject_after, clear_after=args.clear_after, port=args.port,
                   interval=args.interval, seed=args.seed)
    except (ValueError, RuntimeError) as problem:
        print(f"hftel demo: {problem}", file=sys.stderr)
        return 2 if isinstance(problem, ValueError) else 1


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


def _config(args: argparse.Namespace) -> int:
    import json

    from hftel import configchange

    if args.action == "hash":
        print(configchange.config_hash(configchange.ConfigFile(args.config).load()).hex())
    elif args.action == "get":
        print(json.dumps(configchange.ConfigFile(args.config).get(args.key), ensure_ascii=False))
    else:
        result = configchange.change_config(
            args.segment, args.config, args.key, configchange.parse_value(args.value),
            operator_id=configchange.operator_identity(args.operator), correlation_id=args.correlation_id,
            create=args.create)
        print(result.line())
    return 0


def _exporter(arguments: Sequence[str]) -> int:
    from hftel_exporter.command import main as exporter_main

    return exporter_main(arguments)


def _audit(arguments: Sequence[str]) -> int:
    from hftel_exporter.audit import main as audit_main

    return audit_main(arguments)


def _migrate(arguments: Sequence[str]) -> int:
    from hftel_exporter.audit import migrate_main

    return migrate_main(arguments)


def _drill(arguments: Sequence[str]) -> int:
    from hftel_drill.command import main as drill_main

    return drill_main(arguments)


# Subcommands of the exporter and drill packages: main() hands their arguments over unparsed (their flags
# are their own, and hftel_exporter and hftel_drill are imported only when one of them runs).
_EXPORTER_COMMANDS = {"exporter": _exporter, "audit": _audit, "migrate": _migrate, "drill": _drill}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hftel", description="Telemetry for a trading engine's hot path.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="run a simulated trading engine with the exporter alongside (metrics, audit rows, logs)")
    demo.add_argument("--scenario", action="append", default=[], metavar="NAME",
                      help=f"inject a failure (repeatable): {', '.join(SCENARIO_NAMES)}")
    demo.add_argument("--duration", type=float, default=0.0, help="seconds to run; 0 (the default) runs until Ctrl-C")
    demo.add_argument("--inject-after", type=float, default=5.0, metavar="S",
                      help="seconds before the scenarios switch on (default 5)")
    demo.add_argument("--clear-after", type=float, default=None, metavar="S",
                      help="seconds before they switch off again (default: never)")
    demo.add_argument("--segment", default="demo", help="segment name or path (default: demo, /dev/shm/hftel-demo)")
    demo.add_argument("--dir", help="working directory for configs, data and logs (default: a new temporary one)")
    demo.add_argument("--port", type=int, default=9477, help="the exporter's port on 127.0.0.1 (0: any free port)")
    demo.add_argument("--interval", type=float, default=2.0, help="seconds between status lines")
    demo.add_argument("--seed", type=int, help="seed the simulation, for a repeatable run")
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
    config = commands.add_parser(
        "config", help="change the engine's JSON config file, one audited key at a time; get a key; hash the file")
    config.set_defaults(handler=_config)
    actions = config.add_subparsers(dest="action", required=True)
    config_set = actions.add_parser(
        "set", help="set KEY to VALUE in the config file and write an audit_config_changes row into the segment",
        description="VALUE is parsed as JSON when it parses (10, true, null, [1,2], '\"10\"'), else taken as a string.")
    config_set.add_argument("--config", required=True, help="the engine's JSON config file")
    config_set.add_argument("--segment", required=True,
                            help="the engine's segment (name or path): attached first; the file is not touched "
                                 "if that fails")
    config_set.add_argument("--operator", help="who makes the change (default: $SUDO_USER, else the login name)")
    config_set.add_argument("--correlation-id", type=int, default=0, help="ties the row to a flow (default 0: none)")
    config_set.add_argument("--create", action="store_true", help="add KEY (and its sections) if it does not exist")
    config_set.add_argument("key", metavar="KEY", help="a dotted path, e.g. risk.mm.max_position")
    config_set.add_argument("value", metavar="VALUE", help="the new value")
    config_get = actions.add_parser("get", help="print a key's value as JSON")
    config_get.add_argument("--config", required=True, help="the engine's JSON config file")
    config_get.add_argument("key", metavar="KEY", help="a dotted path, e.g. risk.mm.max_position")
    config_hash = actions.add_parser(
        "hash", help="print the config's SHA-256 (canonical JSON): compare with new_config_hash in the audit table")
    config_hash.add_argument("--config", required=True, help="the engine's JSON config file")
    # Listed for --help only: main() hands `hftel exporter|audit|migrate|drill ...` over unparsed.
    commands.add_parser("exporter", add_help=False,
                        help="serve attached segments as Prometheus metrics (see `hftel exporter --help`)")
    commands.add_parser("audit", add_help=False,
                        help="query the audit tables (read-only), or verify every source's sequence numbers "
                             "(see `hftel audit --help`)")
    commands.add_parser("migrate", add_help=False,
                        help="create or check the ClickHouse schema and record its version "
                             "(see `hftel migrate --help`)")
    commands.add_parser("drill", add_help=False,
                        help="inject a failure into the demo engine and check its alert fires, reaches its "
                             "receivers and resolves, on a real Prometheus and Alertmanager (see `hftel drill --help`)")
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
