"""The Alertmanager routing (alerts/alertmanager.py and the two configurations it generates), checked
with the real tools: amtool's checker and route tester, and a real Alertmanager that inhibits and
delivers to a local webhook server standing in for Slack, the pager and the mail server."""
from __future__ import annotations

import base64
import json
import socketserver
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from processes import AlertmanagerServer, WebhookReceiver, require, wait_until
from scripts import load_script

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "alerts"
PRODUCTION = ALERTS / "alertmanager.yml"
TEST_CONFIG = ALERTS / "alertmanager.test.yml"

alertmanager = load_script("alerts/alertmanager.py", "hftel_alertmanager")

CRIT_RECEIVERS = ["slack-trading-alerts", "pagerduty", "email-oncall"]
WARN_RECEIVERS = ["slack-trading-warnings"]
DEFAULT_RECEIVERS = ["slack-trading-warnings"]

# Inline secrets Alertmanager would accept; the production config must use the *_file variants.
INLINE_SECRET_KEYS = {"api_url", "slack_api_url", "routing_key", "service_key", "auth_password",
                      "smtp_auth_password", "auth_secret", "smtp_auth_secret", "api_key", "opsgenie_api_key",
                      "victorops_api_key", "wechat_api_secret", "token", "bot_token", "password", "credentials",
                      "bearer_token", "url"}
SECRET_FILE_KEYS = {"api_url_file", "routing_key_file", "auth_password_file"}


def runbook(family: str, alertname: str) -> str:
    return f"https://github.com/hftel/hftel/blob/main/docs/runbooks/{family}.md#{alertname.lower()}"


def alert(alertname: str, family: str | None, severity: str | None, **labels: str) -> dict:
    """An alert as Prometheus posts it: labels, and the annotations every hftel rule sets."""
    labels = {"alertname": alertname, **labels}
    if family is not None:
        labels["family"] = family
    if severity is not None:
        labels["severity"] = severity
    return {"labels": labels,
            "annotations": {"summary": f"{alertname} summary", "description": f"{alertname} description",
                            "runbook_url": runbook(family or "none", alertname)}}


# ---------------------------------------------------------------------------------------------------
# Generated files
# ---------------------------------------------------------------------------------------------------

def test_committed_production_config_is_what_the_generator_writes():
    """alerts/alertmanager.yml is what `python alerts/alertmanager.py` writes; run it after a change."""
    assert alertmanager.render_production() == PRODUCTION.read_text()


def test_committed_test_config_is_what_the_generator_writes():
    """alerts/alertmanager.test.yml is what `python alerts/alertmanager.py` writes; run it after a change."""
    assert alertmanager.render_test() == TEST_CONFIG.read_text()


def test_generator_prints_a_test_config_for_any_base_url():
    """`python alerts/alertmanager.py --test-config URL` prints the test config with its webhooks under URL."""
    result = subprocess.run(
        [sys.executable, str(ALERTS / "alertmanager.py"), "--test-config", "http://127.0.0.1:4321/"],
        capture_output=True, text=True, timeout=60, check=True)
    assert alertmanager.render_test("http://127.0.0.1:4321") == result.stdout
    urls = [config["url"] for receiver in yaml.safe_load(result.stdout)["receivers"]
            for config in receiver["webhook_configs"]]
    assert [f"http://127.0.0.1:4321/{name}" for name in CRIT_RECEIVERS + WARN_RECEIVERS] == urls


def test_generator_check_passes_on_the_committed_files():
    """`python alerts/alertmanager.py --check` exits 0 and prints no diff: nothing committed is stale."""
    result = subprocess.run([sys.executable, str(ALERTS / "alertmanager.py"), "--check"],
                            capture_output=True, text=True, timeout=60)
    assert (0, "") == (result.returncode, result.stdout), result.stderr


def test_generator_check_shows_a_stale_file_as_a_diff(tmp_path, monkeypatch, capsys):
    """`--check` exits 1 and prints a diff naming the file when a committed config was edited by hand."""
    edited = tmp_path / "alertmanager.yml"
    edited.write_text(PRODUCTION.read_text().replace("repeat_interval: 1h", "repeat_interval: 2h"))
    monkeypatch.setattr(alertmanager, "PRODUCTION_PATH", edited)
    assert 1 == alertmanager.main(["--check"])
    diff = capsys.readouterr().out
    assert "--- alerts/alertmanager.yml (committed)" in diff
    assert ["-      repeat_interval: 2h", "+      repeat_interval: 1h"] == [
        line for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("---", "+++"))]


def test_generated_yaml_reads_back_as_the_declaration():
    """The generator's YAML parses to exactly the configuration it declares, comments aside."""
    assert alertmanager.plain(alertmanager.production()) == yaml.safe_load(alertmanager.render_production())
    assert alertmanager.plain(alertmanager.test_config()) == yaml.safe_load(alertmanager.render_test())


def test_test_config_has_the_production_route_tree_and_inhibition():
    """The test config differs from production only in its receivers, which keep their names."""
    production, test = yaml.safe_load(PRODUCTION.read_text()), yaml.safe_load(TEST_CONFIG.read_text())
    assert production["route"] == test["route"]
    assert production["inhibit_rules"] == test["inhibit_rules"]
    assert [receiver["name"] for receiver in production["receivers"]] == [r["name"] for r in test["receivers"]]
    assert all(list(receiver) == ["name", "webhook_configs"] for receiver in test["receivers"])


# ---------------------------------------------------------------------------------------------------
# Secrets
# ---------------------------------------------------------------------------------------------------

def walk(node: Any, path: str = "") -> list[tuple[str, str, Any]]:
    """Every (path, key, value) of a parsed YAML document."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            found.append((path, key, value))
            found += walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += walk(value, f"{path}[{index}]")
    return found


def test_production_config_holds_no_inline_secret():
    """No api_url, routing_key, auth_password or other secret key carries a value in alertmanager.yml."""
    inline = [(path, key) for path, key, value in walk(yaml.safe_load(PRODUCTION.read_text()))
              if key in INLINE_SECRET_KEYS and value not in (None, "")]
    assert [] == inline


def test_production_config_reads_every_secret_from_a_file_under_etc_alertmanager_secrets():
    """Slack's URL, PagerDuty's routing key and the SMTP password come from files in /etc/alertmanager/secrets/."""
    files = {(key, value) for _, key, value in walk(yaml.safe_load(PRODUCTION.read_text())) if key.endswith("_file")}
    assert SECRET_FILE_KEYS == {key for key, _ in files}
    assert all(value.startswith("/etc/alertmanager/secrets/") for _, value in files), files


def test_repository_holds_no_secret_file():
    """alerts/secrets/ holds its README only: the secrets themselves live on the Alertmanager host."""
    assert ["README.md"] == sorted(path.name for path in (ALERTS / "secrets").iterdir())


# ---------------------------------------------------------------------------------------------------
# amtool
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("config", [PRODUCTION, TEST_CONFIG], ids=lambda path: path.name)
def test_amtool_check_config_passes(config):
    """`amtool check-config` accepts the committed config (secret files need not exist to check it)."""
    amtool = require("amtool")
    result = subprocess.run([amtool, "check-config", str(config)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_amtool_check_config_parses_the_templates_beside_the_production_config():
    """The production config's template paths exist relative to it, and amtool parses the template."""
    amtool = require("amtool")
    templates = yaml.safe_load(PRODUCTION.read_text())["templates"]
    assert all((ALERTS / template).is_file() for template in templates), templates
    result = subprocess.run([amtool, "check-config", str(PRODUCTION)], capture_output=True, text=True, timeout=60)
    assert f" - {len(templates)} templates" in result.stdout, result.stdout


ROUTES = [
    ("critical reaches Slack alerts, pager and email", CRIT_RECEIVERS,
     {"severity": "critical", "family": "feed-gap", "alertname": "FeedGapCritical", "engine": "e1"}),
    ("critical without an engine reaches the same three", CRIT_RECEIVERS,
     {"severity": "critical", "family": "clickhouse", "alertname": "SpoolFullCritical"}),
    ("warning reaches Slack warnings only", WARN_RECEIVERS,
     {"severity": "warning", "family": "feed-gap", "alertname": "FeedGapWarning", "engine": "e1"}),
    ("no severity reaches the default", DEFAULT_RECEIVERS,
     {"family": "feed-gap", "alertname": "FeedGapCritical", "engine": "e1"}),
    ("unknown severity reaches the default", DEFAULT_RECEIVERS,
     {"severity": "info", "family": "latency", "alertname": "Whatever", "engine": "e1"}),
]


@pytest.mark.parametrize("config", [PRODUCTION, TEST_CONFIG], ids=lambda path: path.name)
@pytest.mark.parametrize("receivers, labels", [route[1:] for route in ROUTES], ids=[route[0] for route in ROUTES])
def test_amtool_routes_an_alert_to_exactly_its_receivers(config, receivers, labels):
    """`amtool config routes test --verify.receivers` passes with exactly these receivers, in this order."""
    amtool = require("amtool")
    result = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={config}", f"--verify.receivers={','.join(receivers)}",
         *(f"{name}={value}" for name, value in labels.items())], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ",".join(receivers) == result.stdout.splitlines()[0]


def rule_alerts() -> list[dict]:
    """Every distinct alert of the Prometheus rules (alerts/hftel.rules.yml): its name and labels."""
    rules_file = ALERTS / "hftel.rules.yml"
    if not rules_file.exists():
        return []
    alerts = {}
    for group in yaml.safe_load(rules_file.read_text())["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                alerts.setdefault(rule["alert"], {"alertname": rule["alert"], **rule.get("labels", {})})
    return list(alerts.values())


@pytest.mark.parametrize("labels", rule_alerts(), ids=lambda labels: labels["alertname"])
def test_amtool_routes_every_rule_by_its_severity(labels):
    """Each alert of alerts/hftel.rules.yml reaches exactly its severity's receivers (CRIT: Slack, pager and
    email; WARN: Slack warnings), with an engine label as the exporter adds one."""
    amtool = require("amtool")
    routed = {"critical": CRIT_RECEIVERS, "warning": WARN_RECEIVERS}
    assert labels.get("severity") in routed, f"{labels['alertname']}: severity {labels.get('severity')!r}"
    receivers = routed[labels["severity"]]
    result = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={PRODUCTION}", f"--verify.receivers={','.join(receivers)}",
         *(f"{name}={value}" for name, value in {**labels, "engine": "e1"}.items())],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def render_template(tmp_path: Path, name: str, data: dict) -> str:
    """amtool's rendering of template `name` from alerts/templates/ for one notification's data."""
    amtool = require("amtool")
    data_path = tmp_path / "data.json"
    data_path.write_text(json.dumps(data))
    result = subprocess.run(
        [amtool, "template", "render", f"--template.glob={ALERTS / 'templates' / '*.tmpl'}",
         f"--template.data={data_path}", f"--template.text={{{{ template \"{name}\" . }}}}"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def notification(*alerts: dict) -> dict:
    """The template data of one firing group, as Alertmanager builds it."""
    entries = [{"status": "firing", "startsAt": "2024-01-02T01:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph", "fingerprint": f"{index:016x}", **alert}
               for index, alert in enumerate(alerts)]
    common = {key: value for key, value in alerts[0]["labels"].items()
              if all(other["labels"].get(key) == value for other in alerts)}
    annotations = {key: value for key, value in alerts[0]["annotations"].items()
                   if all(other["annotations"].get(key) == value for other in alerts)}
    return {"receiver": "slack-trading-alerts", "status": "firing", "alerts": entries, "groupLabels": common,
            "commonLabels": common, "commonAnnotations": annotations, "externalURL": "http://alertmanager:9093"}


def test_slack_title_names_severity_alert_and_engine(tmp_path):
    """A critical group is titled "[CRIT] FeedGapCritical on e1"."""
    data = notification(alert("FeedGapCritical", "feed-gap", "critical", engine="e1"))
    assert "[CRIT] FeedGapCritical on e1" == render_template(tmp_path, "hftel.title", data)


def test_slack_title_flags_an_alert_without_severity(tmp_path):
    """An alert that reached the default receiver for want of a severity says so in its title."""
    data = notification(alert("Unlabelled", "latency", None, engine="e2"))
    assert "[NO SEVERITY] Unlabelled on e2" == render_template(tmp_path, "hftel.title", data)


def test_slack_text_shows_each_alerts_summary_description_distinguishing_labels_and_runbook(tmp_path):
    """The Slack text lists every alert of the group with its summary, description, own labels and runbook."""
    first = alert("StormGuardHaltCritical", "stormguard", "critical", engine="e1", strategy="mm")
    second = alert("StormGuardHaltCritical", "stormguard", "critical", engine="e1", strategy="arb")
    text = render_template(tmp_path, "hftel.slack.text", notification(first, second))
    link = f"Runbook: <{runbook('stormguard', 'StormGuardHaltCritical')}|stormguard>"
    expected = [":rotating_light: *StormGuardHaltCritical summary*", "StormGuardHaltCritical description",
                "`strategy=mm`", link,
                ":rotating_light: *StormGuardHaltCritical summary*", "StormGuardHaltCritical description",
                "`strategy=arb`", link]
    assert expected == [line for line in text.splitlines() if line]


# ---------------------------------------------------------------------------------------------------
# A real Alertmanager
# ---------------------------------------------------------------------------------------------------

class SmtpServer:
    """A local SMTP server that accepts AUTH PLAIN and every message, recording the credentials and
    the messages it receives (no TLS: Go's client sends PLAIN in clear to 127.0.0.1 only)."""

    def __init__(self) -> None:
        logins: list[tuple[str, str]] = []
        messages: list[str] = []

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self) -> None:
                self.reply("220 hftel-test ESMTP")
                for raw in self.rfile:
                    command = raw.decode().rstrip("\r\n")
                    verb = command.split(" ")[0].upper()
                    if verb == "EHLO":
                        self.reply("250-hftel-test")
                        self.reply("250 AUTH PLAIN")
                    elif verb == "AUTH":
                        _, username, password = base64.b64decode(command.split()[2]).decode().split("\0")
                        logins.append((username, password))
                        self.reply("235 authenticated")
                    elif verb == "DATA":
                        self.reply("354 end with .")
                        lines = []
                        for line in self.rfile:
                            if line == b".\r\n":
                                break
                            lines.append(line.decode())
                        messages.append("".join(lines))
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("250 ok")

        self.logins, self.messages = logins, messages
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "SmtpServer":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def held_once_suppressed(server: AlertmanagerServer, inhibited: tuple[str, str | None]) -> dict:
    """Every alert Alertmanager holds, once the alert `inhibited` (alertname, engine) shows as suppressed."""
    def suppressed() -> dict | None:
        held = server.alerts()
        target = held.get(inhibited)
        return held if target and target["status"]["state"] == "suppressed" else None
    return wait_until(suppressed, f"{inhibited} to be suppressed", timeout=30)


def test_critical_inhibits_warnings_of_its_family_and_engine_only(tmp_path):
    """A firing FeedGapCritical on e1 suppresses FeedGapWarning on e1, not on e2, nor e1's latency warning."""
    with WebhookReceiver() as webhook, AlertmanagerServer(tmp_path, alertmanager.render_test(webhook.url)) as server:
        server.post(alert("FeedGapCritical", "feed-gap", "critical", engine="e1"),
                    alert("FeedGapWarning", "feed-gap", "warning", engine="e1"),
                    alert("FeedGapWarning", "feed-gap", "warning", engine="e2"),
                    alert("OrderLatencyHigh", "latency", "warning", engine="e1"))
        held = held_once_suppressed(server, ("FeedGapWarning", "e1"))
        critical = held[("FeedGapCritical", "e1")]
        assert ("active", []) == (critical["status"]["state"], critical["status"]["inhibitedBy"])
        assert [critical["fingerprint"]] == held[("FeedGapWarning", "e1")]["status"]["inhibitedBy"]
        for other in [("FeedGapWarning", "e2"), ("OrderLatencyHigh", "e1")]:
            assert ("active", []) == (held[other]["status"]["state"], held[other]["status"]["inhibitedBy"]), other


def test_critical_without_engine_inhibits_warnings_of_its_family_without_engine(tmp_path):
    """The exporter's SpoolFullCritical (no engine label) suppresses ClickHouseDown (none either), not an
    engine's warning of the same family."""
    with WebhookReceiver() as webhook, AlertmanagerServer(tmp_path, alertmanager.render_test(webhook.url)) as server:
        server.post(alert("SpoolFullCritical", "clickhouse", "critical"),
                    alert("ClickHouseDown", "clickhouse", "warning"),
                    alert("ClickHouseDown", "clickhouse", "warning", engine="e1"))
        held = held_once_suppressed(server, ("ClickHouseDown", None))
        critical = held[("SpoolFullCritical", None)]
        assert [critical["fingerprint"]] == held[("ClickHouseDown", None)]["status"]["inhibitedBy"]
        assert "active" == held[("ClickHouseDown", "e1")]["status"]["state"]


def test_alertmanager_delivers_each_alert_to_exactly_its_receivers(tmp_path):
    """Through a real Alertmanager, a critical reaches the Slack, pager and email webhooks once each; a
    warning and an alert without severity reach Slack warnings only."""
    with WebhookReceiver() as webhook, AlertmanagerServer(tmp_path, alertmanager.render_test(webhook.url)) as server:
        server.post(alert("FeedGapCritical", "feed-gap", "critical", engine="e1"),
                    alert("OrderLatencyHigh", "latency", "warning", engine="e1"),
                    alert("Unlabelled", "latency", None, engine="e1"))
        expected = sorted([*((f"/{name}", "FeedGapCritical") for name in CRIT_RECEIVERS),
                           ("/slack-trading-warnings", "OrderLatencyHigh"), ("/slack-trading-warnings", "Unlabelled")])
        # Warnings wait group_wait (30 s) before their first notification; criticals 10 s.
        wait_until(lambda: set(expected) <= set(webhook.deliveries()), f"deliveries {expected}", timeout=90,
                   interval=0.5)
        assert expected == webhook.deliveries()


def production_with_local_secrets(directory: Path, webhook: WebhookReceiver, smtp: SmtpServer) -> str:
    """The committed production config, with its secret files moved to `directory` and its Slack,
    PagerDuty and SMTP endpoints local; returns it as JSON (which is YAML)."""
    config = yaml.safe_load(PRODUCTION.read_text())
    config["templates"] = [str(ALERTS / template) for template in config["templates"]]
    for receiver in config["receivers"]:
        for slack in receiver.get("slack_configs", []):
            slack["api_url_file"] = str(directory / Path(slack["api_url_file"]).name)
        for pager in receiver.get("pagerduty_configs", []):
            pager["routing_key_file"] = str(directory / Path(pager["routing_key_file"]).name)
            pager["url"] = f"{webhook.url}/pagerduty-events"
        for email in receiver.get("email_configs", []):
            email["auth_password_file"] = str(directory / Path(email["auth_password_file"]).name)
            email["smarthost"], email["require_tls"] = smtp.address, False
    return json.dumps(config)


def test_production_receivers_send_with_the_secrets_read_from_their_files(tmp_path):
    """A critical reaches Slack at the URL in its file, PagerDuty with the routing key in its file, and
    the mail server logged in with the password in its file, each rendered by the hftel templates."""
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    with WebhookReceiver() as webhook, SmtpServer() as smtp:
        values = {"slack-trading-alerts-webhook-url": f"{webhook.url}/slack-hook-alerts",
                  "slack-trading-warnings-webhook-url": f"{webhook.url}/slack-hook-warnings",
                  "pagerduty-routing-key": "test-routing-key-0123", "smtp-password": "test-smtp-password"}
        for name, value in values.items():
            (secrets / name).write_text(value)
            (secrets / name).chmod(0o600)
        config = production_with_local_secrets(secrets, webhook, smtp)
        with AlertmanagerServer(tmp_path, config) as server:
            server.post(alert("FeedGapCritical", "feed-gap", "critical", engine="e1"))
            wait_until(lambda: len(webhook.received) >= 2 and smtp.messages, "Slack, PagerDuty and mail",
                       timeout=60, interval=0.2)
        received = dict(webhook.received)
        assert ["/pagerduty-events", "/slack-hook-alerts"] == sorted(received)
        slack = received["/slack-hook-alerts"]
        assert ("#trading-alerts", "[CRIT] FeedGapCritical on e1") == (slack["channel"],
                                                                        slack["attachments"][0]["title"])
        pager = received["/pagerduty-events"]
        assert ("test-routing-key-0123", "[CRIT] FeedGapCritical on e1: FeedGapCritical summary") == (
            pager["routing_key"], pager["payload"]["summary"])
        assert [("alertmanager@example.com", "test-smtp-password")] == smtp.logins
        assert "Subject: [CRIT] FeedGapCritical on e1\r\n" in smtp.messages[0]
