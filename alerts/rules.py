"""The alerting rules of hftel, declared once: each alert's PromQL, labels and annotations, its promtool
unit tests, and why it stays quiet on a healthy engine.

`alerts/generate.py` renders these into `alerts/hftel.rules.yml` (what Prometheus loads) and
`alerts/hftel.rules.test.yml` (`promtool test rules`); tests/test_alert_rules.py fails when the
committed files are not what it renders. The names, severities and families are shared with the
Alertmanager routing (`alerts/alertmanager*.yml`) and the runbooks (`docs/runbooks/<family>.md`, one
`## AlertName` heading per alert).

    >>> alert, = by_name("FeedGapCritical")
    >>> alert.severity, alert.family, alert.for_
    ('critical', 'feed-gap', '5s')
    >>> alert.metrics
    ('hft_feed_gap_seconds', 'hft_market_open')
    >>> alert.runbook_url
    'https://github.com/hftel/hftel/blob/main/docs/runbooks/feed-gap.md#feedgapcritical'

How the expressions are written:

- Engine series carry `engine` (the exporter adds it). Expressions aggregate with `max by` or
  `sum by`, keeping `engine` and the label that says where (strategy, api, sink, check, ring) and
  dropping `instance` and `job`, so two Prometheus jobs scraping one engine raise one alert.
- The exporter's own series (hftel_clickhouse_*, hftel_spool_*, hftel_exporter_*,
  hftel_recorder_write_failures_total) have no engine: they keep `instance`, the exporter reporting.
- A ratio filters its denominator with `> 0`: an unset limit or an idle engine gives no result
  rather than +Inf or NaN.
- A quantile is `histogram_quantile(0.99, sum by (le, ...) (rate(..._bucket[window])))`; with no
  observations in the window it is NaN, which compares false.
- An alert with two conditions (BusOverflowCritical, RecorderFailureCritical) is two rules with the
  same name and a `cause` label telling them apart. Without it both would send alerts with the same
  label set, which Alertmanager takes for one alert, resolved whenever either rule stops firing.
- Values are shown with the humanize function that fits them: humanizeDuration for seconds,
  humanizePercentage for ratios, humanize for counts.

One rule is one `Alert`; `ALERTS` holds them in the order the rule files list them. The rules are
declared by area, in alert_rules_trading.py (the trading path, feed to reconciliation),
alert_rules_pipeline.py (recorder, ClickHouse and spool, engine, rings and exporter) and
alert_rules_host.py (v2: the ClickHouse server's health and the host); the types and
helpers they use are alert_model.py's. This module re-exports all of it: import from here.
"""
from __future__ import annotations

import sys
from pathlib import Path

# alerts/ is not a package and this file is loaded by path (alerts/generate.py, the tests), so its
# sibling modules are found by putting alerts/ on sys.path; their names (alert_*) shadow nothing.
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.append(_HERE)

from alert_model import (  # noqa: E402  (needs alerts/ on sys.path)
    ENGINE, EVALUATION_INTERVAL, FAMILIES, GROUPS, INSTANCE, JOB, RUNBOOK_BASE, SEVERITIES, Alert, Case, Expected,
    engine_series, exporter_series, metric_names, on_engine, on_exporter)
from alert_rules_host import CLICKHOUSE_SERVER, HOST  # noqa: E402
from alert_rules_pipeline import CLICKHOUSE, ENGINE_AND_EXPORTER, RECORDER_FAILURE  # noqa: E402
from alert_rules_trading import (  # noqa: E402
    BUS_OVERFLOW, DISCONNECT, FEED_GAP, LATENCY, RECONCILIATION, REJECT_SPIKE, STORMGUARD)

__all__ = [
    "ALERTS", "NAMES", "by_name",
    # alert_model, re-exported: the types, the constants and the helpers the declarations use
    "ENGINE", "EVALUATION_INTERVAL", "FAMILIES", "GROUPS", "INSTANCE", "JOB", "RUNBOOK_BASE", "SEVERITIES",
    "Alert", "Case", "Expected", "engine_series", "exporter_series", "metric_names", "on_engine", "on_exporter",
    # the families, re-exported
    "FEED_GAP", "BUS_OVERFLOW", "STORMGUARD", "REJECT_SPIKE", "DISCONNECT", "LATENCY", "RECONCILIATION",
    "RECORDER_FAILURE", "CLICKHOUSE", "CLICKHOUSE_SERVER", "ENGINE_AND_EXPORTER", "HOST",
]

#: Every rule, in the order the rule files list them (by family, as the runbooks are).
ALERTS: tuple[Alert, ...] = (*FEED_GAP, *BUS_OVERFLOW, *STORMGUARD, *REJECT_SPIKE, *DISCONNECT, *LATENCY,
                             *RECONCILIATION, *RECORDER_FAILURE, *CLICKHOUSE, *CLICKHOUSE_SERVER, *ENGINE_AND_EXPORTER,
                             *HOST)

#: The alert names, each once, in order.
NAMES: tuple[str, ...] = tuple(dict.fromkeys(alert.name for alert in ALERTS))


def by_name(name: str) -> tuple[Alert, ...]:
    """Every rule of the alert `name` (two for BusOverflowCritical and RecorderFailureCritical)."""
    rules = tuple(alert for alert in ALERTS if alert.name == name)
    if not rules:
        raise KeyError(f"no alert named {name!r}")
    return rules
