"""The Alertmanager routing of hftel's alerts, declared once; both committed configurations are
generated from it.

    python alerts/alertmanager.py                    # writes alerts/alertmanager.yml and alerts/alertmanager.test.yml
    python alerts/alertmanager.py --check            # exit 1 with a diff when a committed file is not what this writes
    python alerts/alertmanager.py --test-config URL  # prints the test configuration with receivers at URL/<receiver>

`alertmanager.yml` sends CRIT to Slack #trading-alerts, PagerDuty and email, WARN to Slack
#trading-warnings, and anything without a known severity to #trading-warnings too. Its secrets are
read from files under /etc/alertmanager/secrets/ (see secrets/README.md), never written here.

`alertmanager.test.yml` has the same route tree and inhibition with every receiver replaced by a
webhook to `http://127.0.0.1:9099/<receiver>`, so a test or a failure drill runs a real Alertmanager
with a local HTTP server standing in for Slack, the pager and the mail server.

The tests (tests/test_alertmanager.py) fail if a committed file differs from what this writes.
"""
from __future__ import annotations

import argparse
import difflib
import re
import sys
from pathlib import Path
from typing import Any, NamedTuple

HERE = Path(__file__).resolve().parent
PRODUCTION_PATH = HERE / "alertmanager.yml"
TEST_PATH = HERE / "alertmanager.test.yml"
TEST_WEBHOOK_BASE = "http://127.0.0.1:9099"


class Note(NamedTuple):
    """A value with the comment that the generated YAML prints above it."""
    value: Any
    comment: str


# ---------------------------------------------------------------------------------------------------
# Deployment: where the secrets live and who is told. Only file paths and addresses here, no secret.
# ---------------------------------------------------------------------------------------------------
SECRETS_DIR = "/etc/alertmanager/secrets"
SLACK_ALERTS_URL_FILE = f"{SECRETS_DIR}/slack-trading-alerts-webhook-url"
SLACK_WARNINGS_URL_FILE = f"{SECRETS_DIR}/slack-trading-warnings-webhook-url"
PAGERDUTY_ROUTING_KEY_FILE = f"{SECRETS_DIR}/pagerduty-routing-key"
SMTP_PASSWORD_FILE = f"{SECRETS_DIR}/smtp-password"

ALERTS_CHANNEL = "#trading-alerts"
WARNINGS_CHANNEL = "#trading-warnings"
EMAIL_TO = "trading-oncall@example.com"
EMAIL_FROM = "alertmanager@example.com"
SMARTHOST = "smtp.example.com:587"
SMTP_USERNAME = "alertmanager@example.com"

# Relative to the configuration file's directory: Alertmanager resolves it there.
TEMPLATES = ["templates/hftel.tmpl"]

# ---------------------------------------------------------------------------------------------------
# Receivers: one per destination, so `amtool config routes test` names exactly where an alert goes.
# ---------------------------------------------------------------------------------------------------
SLACK_ALERTS = "slack-trading-alerts"
SLACK_WARNINGS = "slack-trading-warnings"
PAGER = "pagerduty"
EMAIL = "email-oncall"


def slack(channel: str, url_file: str) -> dict:
    return {"api_url_file": url_file, "channel": channel, "send_resolved": True,
            "color": '{{ template "hftel.slack.color" . }}',
            "title": '{{ template "hftel.title" . }}',
            "title_link": "{{ .CommonAnnotations.runbook_url }}",
            "text": '{{ template "hftel.slack.text" . }}',
            "fallback": '{{ template "hftel.title" . }}'}


RECEIVERS: dict[str, Note] = {
    SLACK_ALERTS: Note({"slack_configs": [slack(ALERTS_CHANNEL, SLACK_ALERTS_URL_FILE)]},
                       f"CRIT only, so that {ALERTS_CHANNEL} stays worth watching during the session."),
    PAGER: Note({"pagerduty_configs": [{
        "routing_key_file": PAGERDUTY_ROUTING_KEY_FILE, "send_resolved": True, "severity": "critical",
        "description": '{{ template "hftel.title" . }}: {{ .CommonAnnotations.summary }}',
        "links": [{"href": "{{ .CommonAnnotations.runbook_url }}", "text": "Runbook"}]}]},
        "CRIT: pages the on-call person (PagerDuty Events API v2)."),
    EMAIL: Note({"email_configs": [{
        "to": EMAIL_TO, "from": EMAIL_FROM, "smarthost": SMARTHOST, "require_tls": True,
        "auth_username": SMTP_USERNAME, "auth_password_file": SMTP_PASSWORD_FILE, "send_resolved": True,
        "headers": {"Subject": '{{ template "hftel.title" . }}'}}]},
        "CRIT: a written record for the on-call mailbox, and a second path if Slack is down."),
    SLACK_WARNINGS: Note({"slack_configs": [slack(WARNINGS_CHANNEL, SLACK_WARNINGS_URL_FILE)]},
                         "WARN, and anything without a known severity (the root's default)."),
}

# ---------------------------------------------------------------------------------------------------
# The route tree and the inhibition: the same in production and in the test configuration.
# ---------------------------------------------------------------------------------------------------
ROUTE = {
    "receiver": Note(SLACK_WARNINGS, "The default: an alert with no or an unknown severity still reaches a person\n"
                                     "(WARN's channel, titled NO SEVERITY) instead of being dropped."),
    "group_by": Note(["alertname", "engine", "family"],
                     "One notification per alert, engine and runbook family; a group shares one runbook_url."),
    "group_wait": Note("30s", "WARN timing, inherited by everything that is not CRIT: wait 30s to gather\n"
                              "a group, add new alerts to it every 5m, remind every 4h (about once per\n"
                              "trading session) while it still fires."),
    "group_interval": "5m",
    "repeat_interval": "4h",
    "routes": [
        Note({"matchers": ['severity="critical"'],
              "receiver": SLACK_ALERTS,
              "group_wait": Note("10s", "CRIT pages fast: 10s gathers the alerts of one incident without\n"
                                        "holding the page; new alerts join after 1m; repeat every hour."),
              "group_interval": "1m",
              "repeat_interval": "1h",
              "routes": [
                  {"receiver": SLACK_ALERTS, "continue": True},
                  {"receiver": PAGER, "continue": True},
                  {"receiver": EMAIL},
              ]},
             "CRIT: Slack #trading-alerts, the pager and email, each exactly once (no matchers below:\n"
             "every CRIT matches all three; `continue` goes on to the next)."),
        Note({"matchers": ['severity="warning"'], "receiver": SLACK_WARNINGS},
             f"WARN: Slack {WARNINGS_CHANNEL} only."),
    ],
}

INHIBIT_RULES = [
    Note({"source_matchers": ['severity="critical"'],
          "target_matchers": ['severity="warning"'],
          "equal": ["family", "engine"]},
         "A firing CRIT silences the WARNs of the same runbook family on the same engine (an alert\n"
         "without an engine label, the exporter's, matches only others without one)."),
]


def production() -> dict:
    """The production configuration: real receivers, secrets read from files."""
    return {
        "global": Note({"resolve_timeout": "5m"}, "An alert that Prometheus stops sending is resolved after 5m."),
        "templates": Note(TEMPLATES, "The Slack, pager and mail texts (relative to this file's directory)."),
        "route": ROUTE,
        "inhibit_rules": INHIBIT_RULES,
        "receivers": Note([Note({"name": name, **integration.value}, integration.comment)
                           for name, integration in RECEIVERS.items()],
                          "Every secret is read from a *_file path at send time, never written here: see\n"
                          f"alerts/secrets/README.md for what goes in {SECRETS_DIR}/."),
    }


def test_config(base_url: str = TEST_WEBHOOK_BASE) -> dict:
    """The same route tree and inhibition; every receiver a webhook to `base_url/<receiver>`."""
    base = base_url.rstrip("/")
    return {
        "route": ROUTE,
        "inhibit_rules": INHIBIT_RULES,
        "receivers": Note([{"name": name, "webhook_configs": [{"url": f"{base}/{name}", "send_resolved": True}]}
                           for name in RECEIVERS],
                          f"The production receivers' names, each a local webhook at {base}/<receiver>."),
    }


def plain(value: Any) -> Any:
    """`value` without its notes: what a YAML parser reads back from `render(value)`."""
    if isinstance(value, Note):
        return plain(value.value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


# ---------------------------------------------------------------------------------------------------
# YAML with comments (PyYAML drops them): block mappings and sequences, flow lists of scalars.
# ---------------------------------------------------------------------------------------------------
_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./@+-]*(:[A-Za-z0-9_./@+-]+)*|[0-9]+[smhdwy]")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if _PLAIN.fullmatch(value) and value.lower() not in _RESERVED:
        return value
    if "\n" not in value and all(char.isprintable() for char in value):
        return "'" + value.replace("'", "''") + "'"
    raise ValueError(f"no YAML form for {value!r}")


def _comment(text: str, indent: int) -> list[str]:
    return [" " * indent + "# " + line for line in text.splitlines()]


def _block(value: Any, indent: int) -> list[str]:
    """The lines of a mapping or a sequence, at `indent` spaces."""
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, Note):
                lines += _comment(item.comment, indent)
                item = item.value
            lines += _entry(" " * indent + f"{key}:", item, indent)
    else:
        for item in value:
            if isinstance(item, Note):
                lines += _comment(item.comment, indent)
                item = item.value
            if isinstance(item, dict) and item:
                inner = _block(item, indent + 2)
                first = next(n for n, line in enumerate(inner) if not line.lstrip().startswith("#"))
                lines += [line[2:] for line in inner[:first]]  # a first key's comment goes above the dash
                lines.append(" " * indent + "- " + inner[first].lstrip())
                lines += inner[first + 1:]
            else:
                lines += _entry(" " * indent + "-", item, indent)
    return lines


def _entry(head: str, value: Any, indent: int) -> list[str]:
    if isinstance(value, dict) and value:
        return [head] + _block(value, indent + 2)
    if isinstance(value, list) and any(isinstance(item, (dict, list, Note)) for item in value):
        return [head] + _block(value, indent + 2)
    if isinstance(value, list):
        return [f"{head} [{', '.join(_scalar(item) for item in value)}]"]
    if isinstance(value, dict):
        return [f"{head} {{}}"]
    return [f"{head} {_scalar(value)}"]


def render(config: dict, title: str) -> str:
    header = (f"# {title}\n"
              "# Generated by alerts/alertmanager.py from its one declaration of the routing; do not edit:\n"
              "# change alertmanager.py and run `python alerts/alertmanager.py`.\n")
    return header + "\n".join(_block(config, 0)) + "\n"


def render_production() -> str:
    return render(production(), "hftel's Alertmanager routing (production).")


def render_test(base_url: str = TEST_WEBHOOK_BASE) -> str:
    return render(test_config(base_url), "hftel's Alertmanager routing for tests and failure drills: the production "
                                         "route tree and inhibition,\n# every receiver a local webhook.")


def rendered() -> dict[Path, str]:
    """Each committed file and the text it must hold."""
    return {PRODUCTION_PATH: render_production(), TEST_PATH: render_test()}


def stale() -> str:
    """A unified diff of every committed file against what this generates ('' when none differs)."""
    diffs = []
    for path, text in rendered().items():
        committed = path.read_text() if path.exists() else ""
        diffs += difflib.unified_diff(committed.splitlines(keepends=True), text.splitlines(keepends=True),
                                      f"alerts/{path.name} (committed)", "generated")
    return "".join(diffs)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 with a unified diff when a committed file is not what this writes")
    action.add_argument("--test-config", metavar="BASE_URL",
                        help="write nothing; print the test configuration with every receiver at BASE_URL/<receiver>")
    args = parser.parse_args(argv)
    if args.test_config:
        sys.stdout.write(render_test(args.test_config))
        return 0
    if args.check:
        diff = stale()
        sys.stdout.write(diff)
        if diff:
            print("\nalerts/alertmanager.yml or alerts/alertmanager.test.yml is stale: run "
                  "`python alerts/alertmanager.py`", file=sys.stderr)
        return 1 if diff else 0
    for path, text in rendered().items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
