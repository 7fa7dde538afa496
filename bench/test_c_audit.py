"""C-level audit row from Cython (bench/cloops.pyx): hftel_audit_write in a `with nogil` loop.

Each iteration fills one hftel_audit_orders_row (the fields of the Python audit benchmark) and
writes it: with its ts given (a constant: the engine already has a timestamp) and with ts 0 (the
writer reads CLOCK_REALTIME). The bare clock_gettime(CLOCK_REALTIME) is the reference for the
difference between the two. The audit ring (16 MiB, 288 bytes a record) is drained before every
round, outside the timed region, so no row ever meets a full ring; each test checks that every row
reached the ring and that nothing overflowed.
"""
import pytest

N = 20_000
ROUNDS = {"rounds": 50, "warmup_rounds": 5}
TARGET_NS = 50
TS = 1_700_000_000_000_000_000
PYTHON_AUDIT_OP = "audit row (audit_orders, 10 fields)"  # bench/test_python_audit.py: the structlog row to compare with

pytestmark = pytest.mark.benchmark(group="c: audit row in a nogil loop")


def info(op, variant, **extra):
    return {"kind": "c", "section": "rings", "op": op, "library": "hftel", "variant": variant, **extra}


@pytest.fixture(scope="module")
def audit_loop(cloops, rings):
    return cloops.AuditLoop(rings.tel._segment, 0xB0_0C_A0_D1)


def measure_audit(benchmark, measure, rings, audit_loop, ts, variant):
    rings.drain()
    before = rings.drained["audit"]
    results = []

    def run(n):
        results.append(audit_loop.orders(n, ts))

    calls = measure(benchmark, run, (N,), n=N, setup=rings.drain, **ROUNDS,
                    **info("audit row (audit_orders)", variant, target_ns=TARGET_NS,
                           versus="structlog fast JSON, bound logger", versus_op=PYTHON_AUDIT_OP))
    rings.drain()
    assert rings.overflows() == dict.fromkeys(rings.overflows(), 0)
    assert [written for written, _ in results] == [N] * calls
    assert rings.drained["audit"] - before == calls * N
    rows = rings.last["audit"].tables["audit_orders"]
    assert rows["seq"][-1] == results[-1][1] and rows["source_id"][-1] == audit_loop.source_id
    assert rows["intent_id"][-1] == N and rows["symbol"][-1] == b"2330" and rows["price"][-1] == 101.5
    return rows


def test_clock_gettime(benchmark, measure, cloops):
    """Reference: a bare clock_gettime(CLOCK_REALTIME) (vDSO), what the writer adds when ts is 0."""
    calls = measure(benchmark, cloops.clock_realtime, (N,), n=N, **ROUNDS,
                    **info("clock_gettime(CLOCK_REALTIME)", "vDSO", role="clock"))
    assert calls and cloops.clock_realtime(1)[1] > TS


def test_audit_write_ts_given(benchmark, measure, rings, audit_loop):
    """hftel_audit_write with the row's ts set by the caller: no clock read."""
    rows = measure_audit(benchmark, measure, rings, audit_loop, TS, "ts given")
    assert (rows["ts"] == TS).all()


def test_audit_write_ts_zero(benchmark, measure, rings, audit_loop):
    """hftel_audit_write with ts 0: the writer stamps each row with CLOCK_REALTIME."""
    rows = measure_audit(benchmark, measure, rings, audit_loop, 0, "ts=0 (writer reads the clock)")
    assert (rows["ts"] > TS).all() and (rows["ts"][1:] >= rows["ts"][:-1]).all()
