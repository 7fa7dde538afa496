"""Python-level log event: hftel's RingLogger against structlog's fast JSON configuration.

The same risk_engine event, `info("order_checked", intent_id=i, risk_mode="NORMAL")` on a logger
bound to component="risk_engine", strategy="mm", four ways:

- hftel, bound RingLogger (hftel.logs.get_logger): one copy of event and fields into the log ring,
  the component's required fields checked (strict);
- hftel through structlog.get_logger()'s lazy proxy (hftel.logs.configure installed RingLogger);
- structlog fast JSON (its recommended configuration, orjson, to /dev/null), bound and through the
  proxy: what an engine without hftel would do.

Each round is one loop of N calls. The log ring is drained before every round, outside the timed
region, so no event meets a full ring (dropped); the hftel tests check afterwards that nothing
overflowed and that each call left one event.
"""
import pytest
import structlog

from hftel import logs

N = 10_000
OP = "log event (risk_engine, 2 bound + 2 call fields)"
TARGET_NS = 1000  # the bound RingLogger, net of the loop, per call
CONTEXT = {"component": "risk_engine", "strategy": "mm"}
FAST = {"rounds": 30, "warmup_rounds": 3}
SLOW = {"rounds": 15, "warmup_rounds": 2}

pytestmark = pytest.mark.benchmark(group="python: " + OP)


def empty_loop(log, n):
    for i in range(n):
        pass


def log_loop(log, n):
    for i in range(n):
        log.info("order_checked", intent_id=i, risk_mode="NORMAL")


def info(library, variant, **extra):
    return {"kind": "python", "section": "rings", "op": OP, "library": library, "variant": variant, **extra}


def measure_hftel(benchmark, measure, rings, log, variant, **extra):
    rings.drain()
    before = rings.drained["log"]
    calls = measure(benchmark, log_loop, (log, N), n=N, setup=rings.drain, **FAST, **info("hftel", variant, **extra))
    rings.drain()
    assert rings.overflows() == dict.fromkeys(rings.overflows(), 0)
    assert rings.log.stats()["truncated"] == rings.log.stats()["violations"] == 0
    assert rings.drained["log"] - before == calls * N
    event = rings.last["log"].events[-1]
    assert {key: event[key] for key in ("event", "level", *CONTEXT, "intent_id", "risk_mode")} == {
        "event": "order_checked", "level": "info", **CONTEXT, "intent_id": N - 1, "risk_mode": "NORMAL"}


def check_structlog(fast, make_logger):
    """What the structlog loop writes carries every field (on a buffer, before the timed run)."""
    lines = fast.lines(make_logger, log_loop)
    assert [line["intent_id"] for line in lines] == [0, 1]
    assert {key: lines[0][key] for key in ("event", "level", *CONTEXT, "risk_mode")} == {
        "event": "order_checked", "level": "info", **CONTEXT, "risk_mode": "NORMAL"}
    assert lines[0]["timestamp"].endswith("Z")


def test_empty_loop(benchmark, measure):
    """Baseline: `for i in range(N): pass`."""
    measure(benchmark, empty_loop, (None, N), n=N, **FAST, **info("baseline", "empty loop", role="baseline"))


def test_hftel_bound(benchmark, measure, rings, structlog_hftel):
    """hftel.logs.get_logger(...): a bound RingLogger, straight into the log ring."""
    log = logs.get_logger(**CONTEXT)
    assert type(log) is logs.RingLogger
    measure_hftel(benchmark, measure, rings, log, "bound RingLogger (hftel.logs.get_logger)",
                  target_ns=TARGET_NS, versus="structlog fast JSON, bound logger")


def test_hftel_proxy(benchmark, measure, rings, structlog_hftel):
    """structlog.get_logger(...) after hftel.logs.configure: the lazy proxy in front of RingLogger."""
    log = structlog_hftel.get_logger(**CONTEXT)
    assert type(log) is not logs.RingLogger
    measure_hftel(benchmark, measure, rings, log, "structlog.get_logger() proxy",
                  versus="structlog fast JSON, lazy proxy")  # no target: the proxy's cost is structlog's


def test_structlog_bound(benchmark, measure, structlog_fast_json):
    """structlog fast JSON, a bound logger (get_logger(...).bind())."""
    check_structlog(structlog_fast_json, lambda: structlog.get_logger(**CONTEXT).bind())
    log = structlog_fast_json.configure().get_logger(**CONTEXT).bind()
    measure(benchmark, log_loop, (log, N), n=N, **SLOW, **info("structlog fast JSON", "bound logger", role="reference"))


def test_structlog_proxy(benchmark, measure, structlog_fast_json):
    """structlog fast JSON, through the lazy proxy structlog.get_logger(...) returns."""
    check_structlog(structlog_fast_json, lambda: structlog.get_logger(**CONTEXT))
    log = structlog_fast_json.configure().get_logger(**CONTEXT)
    measure(benchmark, log_loop, (log, N), n=N, **SLOW, **info("structlog fast JSON", "lazy proxy"))
