"""`hftel demo`: the simulated engine in a child process, with the exporter alongside.

The runner creates a working directory (configs, the embedded ClickHouse, the JSON log file, the
tick recorder's file), starts the engine and `hftel exporter`, prints where to look, switches the
chosen scenarios on and off, and at the end stops the engine, waits until the exporter has
delivered every audit row and log event, and stops the exporter.

Scenarios switch on `--inject-after` seconds in and off `--clear-after` seconds in (never, by
default); SIGUSR1 switches them on and SIGUSR2 off at any time (the failure drills use that).
"""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Sequence

from hftel.demo.scenarios import Faults, check_names
from hftel.reader import Reader
from hftel.telemetry import segment_path

DRAIN_TIMEOUT = 120.0


def engine_main(path: str, workdir: str, flags: Any, ready: Any, stop: Any, seed: int | None) -> None:
    """The engine process: create the segment (0660, so an exporter in the group can drain it) and trade."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the runner decides when the engine stops
    from hftel import logs, tracing
    from hftel.demo.engine import DemoEngine, load_config
    from hftel.telemetry import Telemetry

    tracing.enable_from_environment()
    runner = os.getppid()
    config_path = Path(workdir) / "engine.json"
    with Telemetry.create(path, mode=0o660) as telemetry:
        logs.configure(telemetry)  # structlog loggers (the engine's own events) write to the log ring
        engine = DemoEngine(telemetry, load_config(config_path), Path(workdir), Faults(flags), seed=seed,
                            config_path=config_path)
        ready.set()
        # Stops when told, or when the runner is gone (killed, not interrupted): never left trading alone.
        engine.run_paced(lambda: stop.is_set() or os.getppid() != runner)
        engine.log.info("engine_stopping", events=engine.events)


def exporter_config(workdir: Path, segment: str, port: int) -> str:
    """The exporter's TOML for the demo: this segment, loopback, everything under `workdir`."""
    return "\n".join([
        "[segments]", f"paths = [{json.dumps(segment)}]", "",
        "[web]", f'listen_address = "127.0.0.1:{port}"', "",
        "[clickhouse]", 'sink = "embedded"', f"embedded_path = {json.dumps(str(workdir / 'chdb'))}", "",
        "[spool]", f"path = {json.dumps(str(workdir / 'spool'))}", "",
        "[drain]", "batch_interval = 0.5", "",
        "[logfile]", f"path = {json.dumps(str(workdir / 'logs' / 'engine.json'))}", "",
    ])


class Demo:
    """The engine and exporter processes of one demo run.

    >>> with Demo(Path("/tmp/d"), "/dev/shm/hftel-demo", port=0) as demo:   # doctest: +SKIP
    ...     print(demo.metrics_url)
    """

    def __init__(self, workdir: Path, segment: str, *, port: int = 9477, seed: int | None = None):
        self.workdir = workdir
        self.segment = segment
        self.port = port
        self.seed = seed
        context = multiprocessing.get_context("spawn")
        self.faults = Faults.shared(context)
        self._ready, self._stop = context.Event(), context.Event()
        self.engine = context.Process(target=engine_main, name="hftel-demo-engine",
                                      args=(segment, str(workdir), self.faults.flags, self._ready, self._stop, seed))
        self.exporter: subprocess.Popen | None = None
        self.config_path = workdir / "exporter.toml"
        self.log_path = workdir / "exporter.log"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def __enter__(self) -> "Demo":
        self.workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.engine.start()
        if not self._ready.wait(60):
            self.close()
            raise RuntimeError("the demo engine did not start within 60 s")
        self.config_path.write_text(exporter_config(self.workdir, self.segment, self.port))
        environ = {**os.environ, "STATE_DIRECTORY": str(self.workdir / "state")}
        with open(self.log_path, "ab") as log:
            # A session of its own: Ctrl-C reaches the runner only, which stops things in order.
            self.exporter = subprocess.Popen([sys.executable, "-m", "hftel", "exporter", "--config",
                                              str(self.config_path)], stderr=log, env=environ, start_new_session=True)
        self._wait_for_exporter()
        return self

    def _wait_for_exporter(self) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.exporter is not None
            if self.exporter.poll() is not None:
                tail = self.log_path.read_text()[-2000:]
                self.close()
                raise RuntimeError(f"the exporter exited with {self.exporter.returncode}:\n{tail}")
            if self.port == 0:
                self.port = self._started_port()
            if self.port and self.scrape(timeout=2) is not None:
                return
            time.sleep(0.2)
        self.close()
        raise RuntimeError(f"the exporter did not answer on {self.metrics_url} within 90 s; see {self.log_path}")

    def _started_port(self) -> int:
        for line in self.log_path.read_text().splitlines():
            if '"exporter started"' in line:
                return int(json.loads(line)["address"].rsplit(":", 1)[1])
        return 0

    def scrape(self, timeout: float = 5) -> str | None:
        """The exporter's /metrics text, or None when it does not answer."""
        try:
            with urllib.request.urlopen(self.metrics_url, timeout=timeout) as response:
                return response.read().decode()
        except OSError:
            return None

    def drained(self) -> bool:
        """True once the exporter holds nothing undelivered: rings released, spool empty."""
        text = self.scrape()
        if text is None:
            return False
        pending = [line for line in text.splitlines()
                   if line.startswith(("hftel_ring_used_bytes{", "hftel_spool_batches ")) and float(line.split()[-1])]
        return not pending

    def stop_engine(self) -> None:
        self._stop.set()
        self.engine.join(30)
        if self.engine.is_alive():
            self.engine.kill()
            self.engine.join()

    def close(self, drain_timeout: float = DRAIN_TIMEOUT) -> bool:
        """Stops the engine, waits (up to `drain_timeout`) for the exporter to deliver everything, stops
        the exporter. Returns whether everything was delivered."""
        if self.engine.is_alive():
            self.stop_engine()
        delivered = False
        if self.exporter is None or self.exporter.poll() is not None:
            return delivered
        try:
            deadline = time.monotonic() + drain_timeout
            while not delivered and time.monotonic() < deadline:
                delivered = self.drained()
                if not delivered:
                    time.sleep(0.25)
        finally:  # a second Ctrl-C stops the waiting, never leaves the exporter behind
            self.exporter.send_signal(signal.SIGTERM)
            try:
                self.exporter.wait(30)
            except subprocess.TimeoutExpired:
                self.exporter.kill()
                self.exporter.wait()
        return delivered

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def describe(demo: Demo, scenarios: Sequence[str], inject_after: float, clear_after: float | None) -> str:
    workdir = demo.workdir
    audit = f"hftel audit query --config {workdir / 'exporter.toml'}"
    lines = [
        f"hftel demo: engine pid {demo.engine.pid} records into {demo.segment}; exporter pid {demo.exporter.pid}",
        f"  metrics   {demo.metrics_url}",
        f"  data      {workdir / 'chdb'} (embedded ClickHouse: the audit tables and logs_hft)",
        f"  logs      {workdir / 'logs' / 'engine.json'} (engine events as JSON lines); exporter: {demo.log_path}",
        f"  config    {workdir / 'engine.json'}: change it, audited, with",
        f"            hftel config set --config {workdir / 'engine.json'} --segment {demo.segment} "
        f"strategies.mm.max_position 15",
        f"  try       {audit} \"SELECT status, count() FROM hftel.audit_orders GROUP BY status\"",
        f"            hftel top {demo.segment}",
    ]
    for name in scenarios:
        when = f"on at {inject_after:g} s" + (f", off at {clear_after:g} s" if clear_after is not None else "")
        lines.append(f"  scenario  {name}: {when} (SIGUSR1 on, SIGUSR2 off)")
    return "\n".join(lines)


def status_line(reader: Reader, elapsed: float, faults: Faults) -> str:
    snapshot = reader.snapshot()

    def total(name: str) -> float:
        return sum(s.value for s in snapshot.series if s.name == name)

    modes = ",".join(f"{s.labels['strategy']}={('NORMAL', 'WARM', 'STORM', 'HALT')[int(s.value)]}"
                     for s in snapshot.series if s.name == "hft_stormguard_mode")
    active = ",".join(sorted(faults.snapshot())) or "none"
    return (f"[{elapsed:6.1f} s] events {total('hft_feed_events'):>9,.0f}  intents {total('hft_intents'):>6,.0f}  "
            f"fills {total('hft_fills'):>5,.0f}  rejects {total('hft_order_rejects') + total('hft_risk_rejects'):>5,.0f}  "
            f"gap {total('hft_feed_gap_seconds'):5.1f} s  stormguard {modes}  faults {active}")


def run(*, segment: str = "demo", directory: str | None = None, duration: float = 0.0, scenarios: Sequence[str] = (),
        inject_after: float = 5.0, clear_after: float | None = None, port: int = 9477, interval: float = 2.0,
        seed: int | None = None) -> int:
    """The `hftel demo` command; returns its exit status."""
    scenarios = check_names(scenarios)
    if clear_after is not None and clear_after <= inject_after:
        raise ValueError(f"--clear-after ({clear_after:g}) must be later than --inject-after ({inject_after:g})")
    workdir = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="hftel-demo-"))
    path = segment_path(segment)
    demo = Demo(workdir, path, port=port, seed=seed)
    switched = {"on": False}

    def switch(on: bool) -> None:
        if on == switched["on"]:
            return
        switched["on"] = on
        for name in scenarios:
            (demo.faults.inject if on else demo.faults.clear)(name)
        if not on and "stormguard-halt" in scenarios:
            resume_halted(workdir, path)

    with demo:
        signal.signal(signal.SIGUSR1, lambda *_: switch(True))
        signal.signal(signal.SIGUSR2, lambda *_: switch(False))
        signal.signal(signal.SIGTERM, lambda *_: _interrupt())
        print(describe(demo, scenarios, inject_after, clear_after), flush=True)
        print("Ctrl-C stops." if duration <= 0 else f"Stops after {duration:g} s (Ctrl-C stops sooner).", flush=True)
        reader, started = Reader(path), time.monotonic()
        # Each scheduled switch happens once, so SIGUSR1/SIGUSR2 stay in charge between and after them.
        schedule = [(inject_after, True)] + ([(clear_after, False)] if clear_after is not None else [])
        try:
            while duration <= 0 or time.monotonic() - started < duration:
                elapsed = time.monotonic() - started
                while scenarios and schedule and elapsed >= schedule[0][0]:
                    switch(schedule.pop(0)[1])
                print(status_line(reader, elapsed, demo.faults), flush=True)
                time.sleep(min(interval, max(0.05, duration - elapsed) if duration > 0 else interval))
        except KeyboardInterrupt:
            pass
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        print("stopping: the engine, then the exporter once it has delivered every row "
              "(Ctrl-C again stops it now; what is left stays in the segment and the spool) ...", flush=True)
        try:
            delivered = demo.close()
        except KeyboardInterrupt:
            delivered = False
    print(f"{'every audit row and log event delivered' if delivered else 'NOT everything was delivered'}; "
          f"the data stays in {workdir}:\n  hftel audit query --config {workdir / 'exporter.toml'} "
          f"\"SELECT count() FROM hftel.audit_orders\"", flush=True)
    return 0 if delivered else 1


def resume_halted(workdir: Path, segment: str) -> None:
    """The operator's resume after the stormguard-halt scenario: an audited configuration change."""
    from hftel.configchange import ConfigFile, change_config

    key = "stormguard.resume.mm"
    current = ConfigFile(workdir / "engine.json").get(key)
    change_config(segment, workdir / "engine.json", key, current + 1, operator_id="hftel-demo", source="CLI")


def _interrupt() -> None:
    raise KeyboardInterrupt
