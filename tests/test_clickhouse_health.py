"""ClickHouse's own health on /metrics: active parts per partition, merges, mutations (failed ones too),
disks and query latency, read from the sink's system tables on a thread of their own. A scrape never
waits for ClickHouse; a ClickHouse that fails says so once and is counted; 0 turns it all off.

The embedded engine runs in this process; the server is the chdb-backed test endpoint, reached through
the real clickhouse-connect client, with its fault switches.
"""
from __future__ import annotations

import os
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import CapturingLogger

import hftel
from hftel_exporter.config import ConfigError, load_config
from hftel_exporter.drain import Drain
from hftel_exporter.exporter import Exporter
from hftel_exporter.segments import Attachment
from hftel_exporter.spool import Spool
from processes import ExporterProcess, wait_until

pytest.importorskip("chdb.session", reason="the embedded ClickHouse and the test server run on chdb: "
                                           "pip install 'hftel[exporter]'")
pytest.importorskip("clickhouse_connect", reason="the clickhouse sink needs clickhouse-connect")

from hftel_exporter import ddl  # noqa: E402
from hftel_exporter.clickhouse_health import ClickHouseHealth, start_health  # noqa: E402
from hftel_exporter.sinks import ClickHouseSink, EmbeddedSink  # noqa: E402
from tests.clickhouse_endpoint import ClickHouseEndpoint  # noqa: E402

#: Seconds the test server holds each request in the stall tests: well above the buckets' 1 s bound
#: and a prompt scrape, well below the clients' timeouts.
STALL = 1.5
LONG_STALL = 6.0


def samples(body: bytes | str) -> dict[tuple[str, frozenset], float]:
    """Every sample of an exposition: (name, labels) -> value."""
    text = body.decode() if isinstance(body, bytes) else body
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(found: dict, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


def slower_than(found: dict, histogram: str, seconds: float, **labels: str) -> float:
    """How many observations of `histogram` took longer than the bucket bound `seconds`."""
    count = value(found, f"{histogram}_count", **labels) or 0
    return count - (value(found, f"{histogram}_bucket", le=str(seconds), **labels) or 0)


def table(name: str, sink: str = "embedded") -> dict[str, str]:
    return {"sink": sink, "database": "hftel", "table": name}


@pytest.fixture
def engine(tmp_path):
    (tmp_path / "shm").mkdir()
    telemetry = hftel.Telemetry.create(str(tmp_path / "shm" / "hftel-engine"), capacity=16, values_bytes=1 << 12,
                                       audit_ring_bytes=1 << 16, log_ring_bytes=1 << 16)
    yield telemetry
    telemetry.close()


class Scraped:
    """An exporter in this process whose drain and health collector use `sink`; `scrape()` is /metrics."""

    def __init__(self, tmp_path, sink, engine):
        self.log = CapturingLogger()
        config = load_config(None, environ={"HFTEL_SEGMENTS_PATHS": f"{tmp_path}/shm/hftel-*"})
        self.exporter = Exporter(config, self.log)
        self.drain = Drain(Spool(str(tmp_path / "spool"), 1 << 30), sink, batch_interval=0.0, log=self.log)
        self.drain.follow([Attachment.open(engine.path)])
        self.health = ClickHouseHealth(sink, interval=5.0, log=self.log)
        self.exporter.drain, self.exporter.health = self.drain, self.health

    def deliver(self) -> int:
        self.drain.collect()
        return self.drain.deliver()

    def scrape(self) -> dict:
        return samples(self.exporter.metrics(None)[0])


# -- the embedded engine -----------------------------------------------------------------------------

@pytest.fixture
def embedded(tmp_path):
    sink = EmbeddedSink(str(tmp_path / "chdb"))
    ddl.migrate(sink.command, sink.query_rows)
    yield sink
    sink.close()


@pytest.fixture
def scraped(tmp_path, embedded, engine):
    return Scraped(tmp_path, embedded, engine)


def test_active_parts_per_partition_appear_for_the_audit_tables_a_drain_filled(scraped, embedded, engine):
    """After a drain inserts rows, each audit table that got some has its active parts counted in its month."""
    engine.audit.order(intent_id=1, strategy="mm", symbol="2330", side="BUY", quantity=1, price=600.5)
    engine.audit.risk_decision(intent_id=1, strategy="mm", rule="max_position", decision="ALLOW")
    assert scraped.deliver() == 2
    assert scraped.health.collect()
    month = embedded.query_rows("SELECT toString(toYYYYMM(now64(9))) AS month")[0]["month"]
    found = scraped.scrape()
    assert value(found, "hftel_clickhouse_health_up", sink="embedded") == 1
    assert value(found, "hftel_clickhouse_up", sink="embedded") == 1  # the same sink label
    for name in ("audit_orders", "audit_risk_decisions"):
        assert value(found, "hftel_clickhouse_parts", **table(name), partition=month) >= 1
    assert not [key for key in found if key[0] == "hftel_clickhouse_parts" and ("table", "audit_connectivity") in key[1]]


def test_every_table_of_the_database_has_merge_and_mutation_series_at_zero_when_idle(scraped):
    """Each MergeTree table of the hftel database has merges, pending and failed mutations, 0 when none."""
    assert scraped.health.collect()
    found = scraped.scrape()
    for name in ("audit_orders", "audit_risk_decisions", "audit_guardrail_transitions", "audit_connectivity",
                 "audit_config_changes", "logs_hft", "schema_migrations"):
        for family in ("merges_active", "mutations_pending", "mutations_failed"):
            assert value(found, f"hftel_clickhouse_{family}", **table(name)) == 0, (family, name)


def test_disk_free_total_and_used_are_the_data_directorys_filesystem_and_add_up(scraped, embedded):
    """The default disk is the data directory's filesystem: its size, something free, used = total - free."""
    assert scraped.health.collect()
    found = scraped.scrape()
    disk = {"sink": "embedded", "disk": "default"}
    free, total, used = (value(found, f"hftel_clickhouse_disk_{what}_bytes", **disk) for what in ("free", "total", "used"))
    filesystem = os.statvfs(embedded.path)
    assert total == filesystem.f_blocks * filesystem.f_frsize
    assert 0 < free < total and used > 0 and used == total - free


def test_a_mutation_that_keeps_failing_counts_as_failed_until_it_is_killed(scraped, embedded, engine):
    """A mutation whose every attempt fails is pending and failed for its table alone; KILL MUTATION clears both."""
    engine.audit.order(intent_id=1, strategy="mm", symbol="2330", side="BUY", quantity=1, price=600.5)
    assert scraped.deliver() == 1
    embedded.command("ALTER TABLE hftel.audit_orders UPDATE price = throwIf(1) WHERE 1 SETTINGS mutations_sync = 0")

    def failed() -> dict | None:
        scraped.health.collect()
        found = scraped.scrape()
        return found if value(found, "hftel_clickhouse_mutations_failed", **table("audit_orders")) == 1 else None

    found = wait_until(failed, "the mutation's failed attempt in hftel_clickhouse_mutations_failed")
    assert value(found, "hftel_clickhouse_mutations_pending", **table("audit_orders")) == 1
    assert value(found, "hftel_clickhouse_mutations_failed", **table("audit_risk_decisions")) == 0
    [mutation] = embedded.query_rows("SELECT latest_fail_reason FROM system.mutations WHERE NOT is_done")
    assert "FUNCTION_THROW_IF_VALUE_IS_NON_ZERO" in mutation["latest_fail_reason"]

    embedded.command("KILL MUTATION WHERE database = 'hftel' AND table = 'audit_orders'")

    def cleared() -> dict | None:
        scraped.health.collect()
        found = scraped.scrape()
        return found if value(found, "hftel_clickhouse_mutations_failed", **table("audit_orders")) == 0 else None

    found = wait_until(cleared, "hftel_clickhouse_mutations_failed back at 0 after KILL MUTATION")
    assert value(found, "hftel_clickhouse_mutations_pending", **table("audit_orders")) == 0


# -- the setting ---------------------------------------------------------------------------------------

def test_the_health_interval_defaults_to_five_seconds():
    """Without a setting, ClickHouse's health is read every 5 seconds."""
    assert load_config(None, environ={}).clickhouse.health_interval == 5.0


@pytest.mark.parametrize("text", ["-1", "nan", "inf", "soon"])
def test_a_bad_health_interval_is_refused_naming_the_key(text):
    """A negative, non-finite or non-numeric interval stops the start with the key named."""
    with pytest.raises(ConfigError, match=r"clickhouse\.health_interval"):
        load_config(None, environ={}, flags={"clickhouse.health_interval": text})


def test_a_bad_health_interval_in_the_file_is_refused_naming_the_key(tmp_path):
    """The same from the TOML file."""
    config = tmp_path / "exporter.toml"
    config.write_text("[clickhouse]\nhealth_interval = -5\n")
    with pytest.raises(ConfigError, match=r"clickhouse\.health_interval: must be a number of seconds >= 0"):
        load_config(str(config), environ={})


def test_no_collector_without_a_drain_or_with_an_interval_of_zero(scraped):
    """start_health makes nothing when the sink is off (no drain) or the interval is 0."""
    assert start_health(None, 5.0, scraped.log) is None
    assert start_health(scraped.drain, 0.0, scraped.log) is None


# -- the exporter process ----------------------------------------------------------------------------

def get(url: str, timeout: float = 10.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def ready(exporter: ExporterProcess, sink: str) -> dict:
    """Waits for a collection that saw the migrated database; its scrape."""
    def collected() -> dict | None:
        found = samples(get(exporter.url + "/metrics"))
        migrated = value(found, "hftel_clickhouse_parts", **table("schema_migrations", sink), partition="tuple()")
        return found if value(found, "hftel_clickhouse_health_up", sink=sink) == 1 and migrated else None

    return wait_until(collected, f"hftel_clickhouse_health_up 1 with the schema's parts ({sink} sink)")


def test_the_exporter_reads_the_embedded_engines_health_by_default(tmp_path):
    """The default sink (embedded) gets a collector of its own; its families are on /metrics."""
    with ExporterProcess(tmp_path, "--segments.paths", f"{tmp_path}/hftel-*",
                         "--clickhouse.health-interval", "0.2") as exporter:
        found = ready(exporter, "embedded")
    assert value(found, "hftel_clickhouse_health_errors_total", sink="embedded") == 0
    assert value(found, "hftel_clickhouse_disk_total_bytes", sink="embedded", disk="default") > 0


def test_a_health_interval_of_zero_renders_no_health_family(tmp_path):
    """With clickhouse.health_interval = 0 nothing reads the system tables and no health family is served."""
    with ExporterProcess(tmp_path, "--segments.paths", f"{tmp_path}/hftel-*",
                         "--clickhouse.health-interval", "0") as exporter:
        body = get(exporter.url + "/metrics").decode()
    assert 'hftel_clickhouse_up{sink="embedded"}' in body
    for name in ("hftel_clickhouse_health_up", "hftel_clickhouse_health_errors", "hftel_clickhouse_query_duration",
                 "hftel_clickhouse_parts", "hftel_clickhouse_merges_active", "hftel_clickhouse_mutations",
                 "hftel_clickhouse_disk_"):
        assert name not in body
    assert not [line for line in exporter.log() if line["event"].startswith("ClickHouse health")]


# -- a ClickHouse server: slow, stalled, failing -------------------------------------------------------

@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory):
    with ClickHouseEndpoint(str(tmp_path_factory.mktemp("clickhouse"))) as endpoint:
        yield endpoint


@pytest.fixture
def server(clickhouse):
    clickhouse.fault("none")
    sink = ClickHouseSink(clickhouse.url, user="default", password="", timeout=10.0)
    ddl.migrate(sink.command, sink.query_rows)
    sink.command("TRUNCATE TABLE hftel.audit_orders")
    yield sink
    clickhouse.fault("none")
    sink.close()


def test_a_slow_server_shows_in_the_insert_and_query_durations(tmp_path, clickhouse, server, engine):
    """Every request held STALL seconds: the insert and each system-table query take longer than that."""
    scraped = Scraped(tmp_path, server, engine)
    engine.audit.order(intent_id=1, strategy="mm", symbol="2330", side="BUY", quantity=1, price=600.5)
    scraped.drain.collect()
    clickhouse.fault("stall", STALL)
    assert scraped.drain.deliver() == 1
    assert scraped.health.collect()
    clickhouse.fault("none")
    found = scraped.scrape()
    assert slower_than(found, "hftel_clickhouse_insert_duration_seconds", 1.0) == 1
    assert value(found, "hftel_clickhouse_insert_duration_seconds_sum") >= STALL
    queries = value(found, "hftel_clickhouse_query_duration_seconds_count", sink="clickhouse")
    assert queries == 5 and slower_than(found, "hftel_clickhouse_query_duration_seconds", 1.0, sink="clickhouse") == 5
    assert value(found, "hftel_clickhouse_query_duration_seconds_sum", sink="clickhouse") >= 5 * STALL


def server_exporter(tmp_path, clickhouse) -> ExporterProcess:
    return ExporterProcess(tmp_path, "--segments.paths", f"{tmp_path}/hftel-*", "--clickhouse.url", clickhouse.url,
                           "--clickhouse.user", "default", "--clickhouse.health-interval", "0.2",
                           environ={"HFTEL_CLICKHOUSE_PASSWORD": ""})


def test_metrics_answers_promptly_with_the_last_snapshot_while_a_collection_is_stalled(tmp_path, clickhouse, server):
    """With the server holding every request LONG_STALL seconds, scrapes still answer at once with the
    snapshot from before; the stalled query then shows in the query durations."""
    with server_exporter(tmp_path, clickhouse) as exporter:
        before = ready(exporter, "clickhouse")
        requests = clickhouse.stats()["requests"]
        clickhouse.fault("stall", LONG_STALL)
        wait_until(lambda: clickhouse.stats()["requests"] > requests, "a request held by the stalled server")
        for _ in range(3):
            started = time.perf_counter()
            found = samples(get(exporter.url + "/metrics", timeout=LONG_STALL))
            assert time.perf_counter() - started < 1.0
            assert value(found, "hftel_clickhouse_health_up", sink="clickhouse") == 1
            assert value(found, "hftel_clickhouse_parts", **table("schema_migrations", "clickhouse"),
                         partition="tuple()") == value(before, "hftel_clickhouse_parts",
                                                       **table("schema_migrations", "clickhouse"), partition="tuple()")
        wait_until(lambda: slower_than(samples(get(exporter.url + "/metrics")),
                                       "hftel_clickhouse_query_duration_seconds", 5.0, sink="clickhouse") >= 1,
                   "a system-table query slower than 5 s in hftel_clickhouse_query_duration_seconds")


@pytest.mark.parametrize("fault, says", [pytest.param(("500",), "fault 500 injected", id="500"),
                                         pytest.param(("refuse",), "Connection refused", id="refuse"),
                                         pytest.param(("garbage",), "not a ClickHouse answer", id="garbage")])
def test_a_failing_server_is_health_up_0_counted_and_logged_once_and_the_exporter_serves_on(tmp_path, clickhouse,
                                                                                           server, fault, says):
    """A server that answers 500, refuses or answers garbage: health up 0 and every failed collection
    counted, one log line saying why (not one per interval), /metrics served throughout; back to 1 when
    it heals, with one line saying so."""
    with server_exporter(tmp_path, clickhouse) as exporter:
        errors = value(ready(exporter, "clickhouse"), "hftel_clickhouse_health_errors_total", sink="clickhouse")
        clickhouse.fault(*fault)

        def failing() -> dict | None:
            found = samples(get(exporter.url + "/metrics"))
            failed = value(found, "hftel_clickhouse_health_errors_total", sink="clickhouse") - errors
            return found if value(found, "hftel_clickhouse_health_up", sink="clickhouse") == 0 and failed >= 3 else None

        found = wait_until(failing, "three failed collections counted, with health up 0")
        assert value(found, "hftel_clickhouse_parts", **table("schema_migrations", "clickhouse"),
                     partition="tuple()") is None  # dropped, not stale
        [failure] = [line for line in exporter.log() if line["event"].startswith("ClickHouse health collection failed")]
        assert failure["level"] == "error" and failure["sink"] == "clickhouse" and says in failure["error"], failure
        assert exporter.process.poll() is None

        clickhouse.fault("none")
        ready(exporter, "clickhouse")
        recovered = [line for line in exporter.log() if line["event"] == "ClickHouse health collection recovered"]
        assert len(recovered) == 1
