"""Real processes for the tests, on loopback: the `hftel exporter` command, `hftel demo`, and the
Prometheus, Alertmanager and webhook receiver of hftel_drill.servers (skipping when a tool is missing).

Nothing here sleeps for a fixed time. Start-up is known from the process itself (the exporter's
READY=1 on a notify socket, Prometheus's /-/ready), and a condition that takes a scrape or two is
polled with a deadline and a message saying what never happened.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

import psutil
import pytest

from hftel_drill import servers
from hftel_drill.servers import WebhookReceiver, free_port  # noqa: F401  (re-exported for the tests)


def require(binary: str) -> str:
    """The path of a real tool, or skip the test saying which package provides it."""
    try:
        return servers.find_tool(binary)
    except servers.ToolMissing as missing:
        pytest.skip(f"{missing}; `make test` installs it when run as root")


def hftel(*arguments: str, check: bool = False, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m hftel ARGUMENTS`, its output captured as text."""
    return subprocess.run([sys.executable, "-m", "hftel", *arguments], capture_output=True, text=True,
                          timeout=timeout, check=check)


def sigint_default() -> None:
    """preexec_fn for a child a test stops with SIGINT, as Ctrl-C does. A shell that starts a job in the
    background without job control (CI runners, `cmd &` in a script) ignores SIGINT for it, the child
    inherits that across exec, and Python then never raises KeyboardInterrupt: put the default back."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Polls `condition` until it returns something truthy; fails naming `what` at the deadline."""
    try:
        return servers.wait_until(condition, what, timeout, interval)
    except servers.DrillError as error:
        pytest.fail(str(error))


class ExporterProcess:
    """`python -m hftel exporter ARGS` with a notify socket, as systemd would run it.

    >>> with ExporterProcess(tmp_path, "--segments.paths", glob) as exporter:  # doctest: +SKIP
    ...     urllib.request.urlopen(exporter.url + "/metrics")
    """

    def __init__(self, directory: Path, *arguments: str, environ: dict[str, str] | None = None):
        self.directory = directory
        self.arguments = ["--web.listen-address", "127.0.0.1:0", *arguments]
        # The spool and the embedded ClickHouse go to the test's directory, as systemd's StateDirectory would.
        self.environ = {**os.environ, "STATE_DIRECTORY": str(directory / "state"), **(environ or {})}
        self.notify_path = directory / "notify.sock"
        self.stderr_path = directory / "exporter.stderr"
        self.messages: list[str] = []
        self.process: subprocess.Popen | None = None
        self.port = 0

    def __enter__(self) -> "ExporterProcess":
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(self.notify_path))
        self.notify.settimeout(0.2)
        with open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hftel", "exporter", *self.arguments], stderr=stderr,
                env={**self.environ, "NOTIFY_SOCKET": str(self.notify_path)})
        self.wait_for_message("READY=1")
        started = [line for line in self.log() if line.get("event") == "exporter started"]
        self.port = int(started[0]["address"].rsplit(":", 1)[1])
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.notify.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_for_message(self, wanted: str) -> str:
        """Receives notify messages until one holds the line `wanted`; fails if the exporter exits."""
        deadline = time.monotonic() + 20
        while True:
            try:
                message = self.notify.recv(4096).decode()
            except socket.timeout:
                exited = self.process is not None and self.process.poll() is not None
                if exited or time.monotonic() > deadline:
                    reason = f"exited with {self.process.returncode}" if exited else "sent nothing for 20 s"
                    pytest.fail(f"waiting for {wanted}, the exporter {reason}; its stderr:\n{self.stderr()}")
                continue
            self.messages.append(message)
            if wanted in message.splitlines():
                return message

    def stop(self) -> int:
        """SIGTERM, as systemd stops it; the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=20)

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def log(self) -> list[dict]:
        return [json.loads(line) for line in self.stderr().splitlines() if line.startswith("{")]


class PrometheusServer(servers.Prometheus):
    """hftel_drill's real Prometheus, skipping the test when it is not installed.

    >>> with PrometheusServer(tmp_path, scrape_configs) as prometheus:   # doctest: +SKIP
    ...     prometheus.query('up{job="hftel"}')
    """

    def __init__(self, directory: Path, scrape_configs: list[dict], scrape_interval: str = "1s",
                 rule_files: list[str] = (), evaluation_interval: str = "1s", alertmanagers: list[str] = ()):
        require("prometheus")
        super().__init__(directory, scrape_configs, scrape_interval, rule_files, evaluation_interval, alertmanagers)


class AlertmanagerServer(servers.Alertmanager):
    """hftel_drill's real Alertmanager, skipping the test when it is not installed."""

    def __init__(self, directory: Path, config: str):
        require("prometheus-alertmanager")
        super().__init__(directory, config)


class DemoProcess:
    """`hftel demo` as a user runs it, on a free port, with its working directory under `directory`.

    >>> demo = DemoProcess(tmp_path, "--scenario", "feed-gap").start()   # doctest: +SKIP
    >>> demo.query("SELECT count() FROM hftel.audit_orders")              # doctest: +SKIP
    """

    def __init__(self, directory: Path, *arguments: str):
        self.directory = directory
        self.workdir = directory / "demo"
        self.segment = str(directory / "demo.seg")
        self.stdout_path = directory / "demo.stdout"
        self.arguments = arguments

    def start(self) -> "DemoProcess":
        with open(self.stdout_path, "w") as stdout:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hftel", "demo", "--segment", self.segment, "--dir", str(self.workdir),
                 "--port", "0", "--interval", "0.5", *self.arguments], stdout=stdout, stderr=subprocess.STDOUT,
                preexec_fn=sigint_default)
        self.metrics_url = wait_until(self._metrics_url, "the demo to print its metrics URL", timeout=120)
        self.port = int(self.metrics_url.rsplit(":", 1)[1].split("/")[0])
        return self

    def _metrics_url(self) -> str | None:
        if self.process.poll() is not None:
            pytest.fail(f"hftel demo exited with {self.process.returncode}:\n{self.output()}")
        for line in self.output().splitlines():
            if line.strip().startswith("metrics"):
                return line.split()[-1]
        return None

    def output(self) -> str:
        return self.stdout_path.read_text()

    def query(self, sql: str) -> list[dict]:
        """Rows of a read-only query on the demo's embedded ClickHouse, as dicts."""
        result = hftel("audit", "query", "--config", str(self.workdir / "exporter.toml"), "--format", "JSONEachRow",
                       sql, check=True)
        return [json.loads(line) for line in result.stdout.splitlines()]

    def scrape(self) -> str:
        with urllib.request.urlopen(self.metrics_url, timeout=10) as response:
            return response.read().decode()

    def interrupt(self) -> int:
        """Ctrl-C, as a user stops it; its exit status once it has delivered everything."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=180)

    def kill(self) -> None:
        """Stops the demo as SIGTERM does (engine, then exporter); failing that, kills it and the engine and
        exporter it started, so that none is left running into the next tests."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pid in self.children():
            try:
                child = psutil.Process(pid)
                if "hftel" in " ".join(child.cmdline()) or "multiprocessing" in " ".join(child.cmdline()):
                    child.kill()
            except psutil.Error:
                pass  # already gone

    def children(self) -> list[int]:
        """The engine's and the exporter's pids, from the demo's first line."""
        for line in self.output().splitlines():
            if line.startswith("hftel demo: engine pid "):
                words = line.split()
                return [int(words[4]), int(words[-1])]
        return []
