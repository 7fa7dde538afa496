"""Python-level audit row: hftel's tel.audit.order() against structlog's fast JSON configuration.

An engine without hftel would log the same ten fields as one structlog event, rendered to JSON by
orjson and written out (structlog's recommended fast set-up, to /dev/null here): once through a
bound logger, once through the lazy proxy structlog.get_logger() returns. hftel copies them into a
fixed-size row in the audit ring instead; its timestamp comes from the writer (ts=0).

Each round is one loop of N calls with intent_id = the loop index. The audit ring is drained before
every round, outside the timed region, so no row ever meets a full ring (which would spill to a
file); every test checks afterwards that nothing overflowed and that each call left one row.
"""
import pytest
import structlog

N = 10_000
OP = "audit row (audit_orders, 10 fields)"
TARGET_NS = 300  # net of the loop, per call
FAST = {"rounds": 30, "warmup_rounds": 3}
SLOW = {"rounds": 15, "warmup_rounds": 2}

pytestmark = pytest.mark.benchmark(group="python: " + OP)


def empty_loop(target, n):
    for i in range(n):
        pass


def audit_loop(audit, n):
    for i in range(n):
        audit.order(intent_id=i, correlation_id=2, strategy="mm", symbol="2330", side="BUY", order_type="LIMIT",
                    time_in_force="ROD", status="INTENT", quantity=1, price=101.5)


def structlog_loop(log, n):
    for i in range(n):
        log.info("order", intent_id=i, correlation_id=2, strategy="mm", symbol="2330", side="BUY",
                 order_type="LIMIT", time_in_force="ROD", status="INTENT", quantity=1, price=101.5)


def info(library, variant, **extra):
    return {"kind": "python", "section": "rings", "op": OP, "library": library, "variant": variant, **extra}


def test_empty_loop(benchmark, measure):
    """Baseline: `for i in range(N): pass`."""
    measure(benchmark, empty_loop, (None, N), n=N, **FAST, **info("baseline", "empty loop", role="baseline"))


def test_hftel_audit_order(benchmark, measure, rings):
    """hftel tel.audit.order(...) with ten fields: one row into the audit ring."""
    audit = rings.tel.audit
    rings.drain()
    before = rings.drained["audit"]
    calls = measure(benchmark, audit_loop, (audit, N), n=N, setup=rings.drain, **FAST,
                    **info("hftel", "tel.audit.order()", target_ns=TARGET_NS))
    rings.drain()
    assert rings.overflows() == dict.fromkeys(rings.overflows(), 0)
    assert rings.drained["audit"] - before == calls * N
    row = rings.last["audit"].tables["audit_orders"][-1]
    assert (row["intent_id"], row["strategy"], row["symbol"], row["price"]) == (N - 1, b"mm", b"2330", 101.5)
    assert row["source_id"] == audit.source_id and row["ts"] > 0


def check_structlog(fast, make_logger):
    """What the structlog loop writes carries every field (on a buffer, before the timed run)."""
    lines = fast.lines(make_logger, structlog_loop)
    assert [line["intent_id"] for line in lines] == [0, 1]
    assert lines[0]["event"] == "order" and lines[0]["price"] == 101.5 and lines[0]["side"] == "BUY"
    assert lines[0]["level"] == "info" and lines[0]["timestamp"].endswith("Z")


def test_structlog_bound(benchmark, measure, structlog_fast_json):
    """structlog fast JSON, a bound logger (get_logger().bind()): the same ten fields as one event."""
    check_structlog(structlog_fast_json, lambda: structlog.get_logger().bind())
    log = structlog_fast_json.configure().get_logger().bind()
    measure(benchmark, structlog_loop, (log, N), n=N, **SLOW,
            **info("structlog fast JSON", "bound logger", role="reference"))


def test_structlog_proxy(benchmark, measure, structlog_fast_json):
    """structlog fast JSON, through the lazy proxy structlog.get_logger() returns."""
    check_structlog(structlog_fast_json, lambda: structlog.get_logger())
    log = structlog_fast_json.configure().get_logger()
    measure(benchmark, structlog_loop, (log, N), n=N, **SLOW, **info("structlog fast JSON", "lazy proxy"))
