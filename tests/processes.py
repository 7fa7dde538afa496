"""Real processes for the tests: the `hftel exporter` command and a Prometheus server, on loopback.

Nothing here sleeps for a fixed time. Start-up is known from the process itself (the exporter's
READY=1 on a notify socket, Prometheus's /-/ready), and a condition that takes a scrape or two is
polled with a deadline and a message saying what never happened.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable

import pytest

DEBIAN_PACKAGE = {"prometheus": "prometheus", "promtool": "prometheus",
                  "amtool": "prometheus-alertmanager", "prometheus-alertmanager": "prometheus-alertmanager"}


def require(binary: str) -> str:
    """The path of a real tool, or skip the test saying which package provides it."""
    path = shutil.which(binary)
    if path is None:
        package = DEBIAN_PACKAGE.get(binary, binary)
        pytest.skip(f"{binary} is not installed: `make test` installs Debian's {package} package when run as root "
                    f"(scripts/install-tools)")
    return path


def hftel(*arguments: str, check: bool = False, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m hftel ARGUMENTS`, its output captured as text."""
    return subprocess.run([sys.executable, "-m", "hftel", *arguments], capture_output=True, text=True,
                          timeout=timeout, check=check)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Polls `condition` until it returns something truthy; fails naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


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


class PrometheusServer:
    """A real Prometheus on a loopback port with a temporary data directory.

    >>> with PrometheusServer(tmp_path, scrape_configs) as prometheus:   # doctest: +SKIP
    ...     prometheus.query('up{job="hftel"}')
    """

    def __init__(self, directory: Path, scrape_configs: list[dict], scrape_interval: str = "1s",
                 rule_files: list[str] = (), evaluation_interval: str = "1s"):
        self.binary = require("prometheus")
        self.directory = directory
        self.port = free_port()
        config = {"global": {"scrape_interval": scrape_interval, "scrape_timeout": scrape_interval,
                             "evaluation_interval": evaluation_interval},
                  "rule_files": list(rule_files), "scrape_configs": scrape_configs}
        self.config_path = directory / "prometheus.yml"
        self.config_path.write_text(json.dumps(config))  # JSON is YAML
        self.log_path = directory / "prometheus.log"

    def __enter__(self) -> "PrometheusServer":
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [self.binary, f"--config.file={self.config_path}", f"--storage.tsdb.path={self.directory / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._ready, "Prometheus to be ready", timeout=60)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"Prometheus exited with {self.process.returncode}:\n{self.log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def query(self, promql: str) -> list[dict]:
        """The instant vector of `promql`, as the HTTP API returns it."""
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]["result"]

    def rules(self) -> list[dict]:
        """Every loaded rule, with its health and last error, as /api/v1/rules lists them."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v1/rules", timeout=5) as response:
            groups = json.load(response)["data"]["groups"]
        return [rule for group in groups for rule in group["rules"]]

    def targets(self) -> list[dict]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v1/targets", timeout=5) as response:
            return json.load(response)["data"]["activeTargets"]


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
                 "--port", "0", "--interval", "0.5", *self.arguments], stdout=stdout, stderr=subprocess.STDOUT)
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
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
