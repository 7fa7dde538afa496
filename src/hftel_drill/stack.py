"""Everything a drill runs, started in order on loopback and stopped in reverse:

    webhook receiver  <- Alertmanager (alerts/alertmanager.test.yml: production tree, webhook receivers)
                              ^
    demo engine -> hftel exporter  <- Prometheus (alerts/hftel.rules.yml, scraping every 1 s)
         (segment)      | drain
                        v
                 embedded ClickHouse (audit tables, logs_hft), queried through the exporter's query socket

Rules and routing are the committed files with their durations scaled (hftel_drill.timing). The
working directory keeps every configuration and log for a look afterwards.

    >>> with Stack(Path("/tmp/drill"), find_alerts_dir(), scale=0.1) as stack:   # doctest: +SKIP
    ...     stack.inject("feed-gap")
"""
from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any, Callable

import yaml

from hftel.demo.runner import Demo, resume_halted
from hftel_drill import timing
from hftel_drill.servers import Alertmanager, DrillError, Prometheus, WebhookReceiver, scrape_config, wait_until

RULES_FILE = "hftel.rules.yml"
ROUTING_FILE = "alertmanager.test.yml"
ENGINE = "drill"  # the segment's name, which the exporter puts in every engine series' `engine` label


def find_alerts_dir(given: str | None = None) -> Path:
    """The directory holding the project's rule file and test routing: `given`, else the checkout this
    package runs from, else ./alerts. DrillError saying where to look when none has both files."""
    candidates = [Path(given)] if given else [Path(__file__).resolve().parents[2] / "alerts", Path.cwd() / "alerts"]
    for candidate in candidates:
        if (candidate / RULES_FILE).is_file() and (candidate / ROUTING_FILE).is_file():
            return candidate
    where = " or ".join(str(candidate) for candidate in candidates)
    raise DrillError(f"no {RULES_FILE} and {ROUTING_FILE} in {where}: run hftel drill from an hftel checkout, "
                     f"or pass --alerts DIR")


def _load_yaml(path: Path) -> dict:
    try:
        loaded = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise DrillError(f"cannot read {path}: {error}") from None
    if not isinstance(loaded, dict):
        raise DrillError(f"{path} is not a YAML mapping")
    return loaded


class Stack:
    """The demo engine and exporter, Prometheus, Alertmanager and the webhook receiver of one drill run."""

    def __init__(self, workdir: Path, alerts_dir: Path, scale: float = 1.0, *,
                 say: Callable[[str], None] = lambda text: None, seed: int | None = None) -> None:
        if not timing.is_scale(scale):
            raise DrillError(f"the time scale must be in (0, 1], not {scale!r}")
        self.workdir = workdir
        self.scale = scale
        self.say = say
        self.seed = seed
        self.rules = timing.scale_rules(_load_yaml(alerts_dir / RULES_FILE), scale)
        self._routing_source = _load_yaml(alerts_dir / ROUTING_FILE)
        self.routing: dict = {}
        self._exit = contextlib.ExitStack()
        self.demo: Demo | None = None
        self._reader: Any = None

    # -- start and stop ------------------------------------------------------------------------------

    def __enter__(self) -> "Stack":
        self.workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            self._start()
        except BaseException:
            self._exit.close()
            raise
        return self

    def _start(self) -> None:
        rules_path = self.workdir / "rules.yml"
        rules_path.write_text(json.dumps(self.rules, indent=1))  # JSON is YAML
        self.webhook = self._exit.enter_context(WebhookReceiver())
        self.routing = timing.scale_routing(self._routing_source, self.scale, self.webhook.url)
        self.say(f"starting Alertmanager (routing {ROUTING_FILE}, receivers at {self.webhook.url}/<receiver>)")
        self.alertmanager = self._exit.enter_context(
            Alertmanager(self.workdir / "alertmanager", yaml.safe_dump(self.routing, sort_keys=False)))
        self.say("starting the demo engine and the exporter")
        self.demo = self._exit.enter_context(
            Demo(self.workdir / "demo", str(self.workdir / f"{ENGINE}.seg"), port=0, seed=self.seed))
        self.say(f"starting Prometheus (rules {RULES_FILE}, scraping {self.demo.metrics_url} every 1 s)")
        self.prometheus = self._exit.enter_context(Prometheus(
            self.workdir / "prometheus", [scrape_config("hftel", [f"127.0.0.1:{self.demo.port}"])],
            scrape_interval=timing.duration(timing.SCRAPE_INTERVAL), rule_files=[str(rules_path)],
            alertmanagers=[self.alertmanager.address]))
        wait_until(self._scraped, "Prometheus to scrape the exporter and load the rules", timeout=60, interval=0.2)

    def _scraped(self) -> bool:
        targets = self.prometheus.targets()
        rules = self.prometheus.rules()
        broken = [rule for rule in rules if rule.get("health") == "err"]
        if broken:
            raise DrillError(f"Prometheus cannot evaluate {broken[0]['name']}: {broken[0].get('lastError')}")
        return bool(targets) and all(target["health"] == "up" for target in targets) and bool(rules) and \
            all(rule.get("health") == "ok" for rule in rules)

    def __exit__(self, *exc_info: Any) -> None:
        if self._reader is not None:
            with contextlib.suppress(Exception):
                self._reader.close()
        self._exit.close()

    # -- the fault ----------------------------------------------------------------------------------

    def inject(self, scenario: str) -> None:
        assert self.demo is not None
        self.demo.faults.inject(scenario)

    def clear(self, scenario: str) -> None:
        """Switches the fault off; a halted strategy is resumed as an operator does, by an audited
        configuration change."""
        assert self.demo is not None
        self.demo.faults.clear(scenario)
        if scenario == "stormguard-halt":
            resume_halted(self.demo.workdir, self.demo.segment)

    # -- what the drill looks at ---------------------------------------------------------------------

    def alerts(self) -> list[dict]:
        """Prometheus's pending and firing alerts."""
        return self.prometheus.alerts()

    def count(self, sql: str) -> int:
        """The `n` a counting query returns from the demo's embedded ClickHouse (via the exporter)."""
        rows = self._audit_reader().query_rows(sql)
        if len(rows) != 1 or "n" not in rows[0]:
            raise DrillError(f"expected one row with a column n from {sql!r}, got {rows!r}")
        return int(rows[0]["n"])

    def _audit_reader(self) -> Any:
        if self._reader is None:
            from hftel_exporter.audit import open_reader
            from hftel_exporter.config import load_config

            assert self.demo is not None
            self._reader = open_reader(load_config(str(self.demo.config_path)))
        return self._reader


def now() -> float:
    """Wall-clock seconds: Prometheus's activeAt and the webhook's receipt times are wall-clock too."""
    return time.time()
