"""The real monitoring processes a drill runs on loopback: Prometheus, Alertmanager, and a webhook
receiver standing in for Slack, the pager and the mail server.

Each is a context manager that starts the process, waits until it says it is ready (Prometheus's and
Alertmanager's `/-/ready`), and stops it on exit. Nothing sleeps for a fixed time: `wait_until`
polls a condition with a deadline and raises `DrillError` naming what never happened. The tests
(tests/processes.py) use the same classes.

    >>> with WebhookReceiver() as webhook, Alertmanager(workdir, routing) as alertmanager:  # doctest: +SKIP
    ...     alertmanager.post({"labels": {"alertname": "X", "severity": "critical"}})
"""
from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

#: binary -> the Debian package that provides it (what `make test` installs through scripts/install-tools).
DEBIAN_PACKAGE = {"prometheus": "prometheus", "promtool": "prometheus",
                  "amtool": "prometheus-alertmanager", "prometheus-alertmanager": "prometheus-alertmanager"}


class DrillError(Exception):
    """A drill could not run or did not see what it expected; the message says which."""


class ToolMissing(DrillError):
    """A real tool the drill needs is not installed."""


def find_tool(binary: str) -> str:
    """The path of `binary`, or ToolMissing naming the Debian package that provides it."""
    path = shutil.which(binary)
    if path is None:
        package = DEBIAN_PACKAGE.get(binary, binary)
        raise ToolMissing(f"{binary} is not installed: install Debian's {package} package "
                          f"(scripts/install-tools does, as root)")
    return path


def free_port() -> int:
    """A TCP port nobody listens on at the moment, on 127.0.0.1."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Polls `condition` until it returns something truthy, and returns that; DrillError naming `what`
    at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise DrillError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def _get_json(url: str, timeout: float = 5) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


class _Server:
    """A child process with a log file, ready once `ready_url` answers 200."""

    name = "server"

    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = directory / f"{self.name}.log"
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def __enter__(self) -> "_Server":
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until(self._ready, f"{self.name} to be ready on {self.url}", timeout=60)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise DrillError(f"{self.name} exited with {self.process.returncode}:\n{self.log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False


class Prometheus(_Server):
    """A real Prometheus on a loopback port, its data in `directory`.

    >>> scrape = [{"job_name": "hftel", "static_configs": [{"targets": ["127.0.0.1:9477"]}]}]
    >>> with Prometheus(tmp_path, scrape, rule_files=["rules.yml"]) as prometheus:   # doctest: +SKIP
    ...     prometheus.query('up{job="hftel"}')
    """

    name = "prometheus"

    def __init__(self, directory: Path, scrape_configs: list[dict], scrape_interval: str = "1s",
                 rule_files: Sequence[str] = (), evaluation_interval: str = "1s",
                 alertmanagers: Sequence[str] = ()) -> None:
        self.binary = find_tool("prometheus")
        super().__init__(directory, free_port())
        config: dict[str, Any] = {
            "global": {"scrape_interval": scrape_interval, "scrape_timeout": scrape_interval,
                       "evaluation_interval": evaluation_interval},
            "rule_files": list(rule_files), "scrape_configs": scrape_configs}
        if alertmanagers:
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": list(alertmanagers)}]}]}
        directory.mkdir(parents=True, exist_ok=True)
        self.config_path = directory / "prometheus.yml"
        self.config_path.write_text(json.dumps(config, indent=1))  # JSON is YAML

    def command(self) -> list[str]:
        return [self.binary, f"--config.file={self.config_path}", f"--storage.tsdb.path={self.directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"]

    def query(self, promql: str) -> list[dict]:
        """The instant vector of `promql`, as the HTTP API returns it."""
        body = _get_json(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        if body["status"] != "success":
            raise DrillError(f"Prometheus refused {promql!r}: {body}")
        return body["data"]["result"]

    def rules(self) -> list[dict]:
        """Every loaded rule, with its health and last error, as /api/v1/rules lists them."""
        groups = _get_json(f"{self.url}/api/v1/rules")["data"]["groups"]
        return [rule for group in groups for rule in group["rules"]]

    def targets(self) -> list[dict]:
        return _get_json(f"{self.url}/api/v1/targets")["data"]["activeTargets"]

    def alerts(self) -> list[dict]:
        """Every pending and firing alert: labels, annotations, state and activeAt."""
        return _get_json(f"{self.url}/api/v1/alerts")["data"]["alerts"]


class Alertmanager(_Server):
    """A real Alertmanager on a loopback port, clustering off, its state in `directory`.

    >>> with Alertmanager(tmp_path, routing_yaml) as alertmanager:   # doctest: +SKIP
    ...     alertmanager.alerts()
    """

    name = "alertmanager"

    def __init__(self, directory: Path, config: str) -> None:
        self.binary = find_tool("prometheus-alertmanager")
        super().__init__(directory, free_port())
        directory.mkdir(parents=True, exist_ok=True)
        self.config_path = directory / "alertmanager.yml"
        self.config_path.write_text(config)

    @property
    def address(self) -> str:
        """host:port, as Prometheus's alerting configuration names it."""
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [self.binary, f"--config.file={self.config_path}", f"--storage.path={self.directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=", "--log.level=warn"]

    def post(self, *alerts: dict) -> None:
        """Sends alerts as Prometheus does, to /api/v2/alerts."""
        request = urllib.request.Request(f"{self.url}/api/v2/alerts", data=json.dumps(list(alerts)).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            if response.status != 200:
                raise DrillError(f"Alertmanager answered {response.status} to a POST of alerts")

    def alerts(self) -> dict[tuple[str, str | None], dict]:
        """Every alert Alertmanager holds, by (alertname, engine), with its status."""
        held = _get_json(f"{self.url}/api/v2/alerts")
        return {(entry["labels"]["alertname"], entry["labels"].get("engine")): entry for entry in held}


@dataclass(frozen=True)
class Notification:
    """One notification a receiver got: when (wall clock, s), where, and its alerts' names and statuses."""

    at: float
    receiver: str
    status: str
    alerts: tuple[tuple[str, str], ...]  # (alertname, status) per alert of the group
    payload: dict

    def names(self, status: str | None = None) -> set[str]:
        return {name for name, state in self.alerts if status is None or state == status}


class WebhookReceiver:
    """A local HTTP server standing in for Slack, the pager and the mail server: it records every
    notification Alertmanager posts to `/<receiver>`.

    >>> with WebhookReceiver() as webhook:   # doctest: +SKIP
    ...     webhook.url, webhook.deliveries()
    """

    def __init__(self) -> None:
        notifications: list[Notification] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                notifications.append(Notification(
                    time.time(), self.path.lstrip("/"), payload.get("status", ""),
                    tuple((entry["labels"].get("alertname", ""), entry.get("status", ""))
                          for entry in payload.get("alerts", [])), payload))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:  # keep the output clean
                pass

        self.notifications = notifications
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "WebhookReceiver":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def received(self) -> list[tuple[str, dict]]:
        """(path, payload) of every notification so far, in arrival order."""
        return [(f"/{note.receiver}", note.payload) for note in list(self.notifications)]

    def deliveries(self) -> list[tuple[str, str]]:
        """(receiver path, alertname) for every alert of every notification so far."""
        return sorted((path, entry["labels"]["alertname"]) for path, payload in list(self.received)
                      for entry in payload["alerts"])

    def about(self, alertname: str, status: str, since: float = 0.0) -> list[Notification]:
        """The notifications since `since` of a group holding `alertname` with the group's `status`:
        firing while one of its alerts fires, resolved once every one of them is."""
        return [note for note in list(self.notifications)
                if note.at >= since and note.status == status and alertname in note.names(status)]

    def receivers_of(self, alertname: str, status: str, since: float = 0.0) -> set[str]:
        """The receivers that were told `alertname` is `status` (firing or resolved) at or after `since`."""
        return {note.receiver for note in self.about(alertname, status, since)}

    def first(self, alertname: str, status: str, since: float = 0.0) -> float | None:
        """When a receiver was first told `alertname` is `status` at or after `since`."""
        return min((note.at for note in self.about(alertname, status, since)), default=None)


def scrape_config(job: str, targets: Iterable[str]) -> dict:
    """One static scrape job, as prometheus.yml declares it."""
    return {"job_name": job, "static_configs": [{"targets": list(targets)}]}
