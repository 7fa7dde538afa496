"""Gauges of floats (the default) and of 64-bit integers."""
import pytest


def test_float_gauge_set_inc_dec(tel):
    """set, inc and dec compose on a float gauge."""
    pnl = tel.gauge("pnl", "Realised PnL.")
    pnl.set(10.5)
    pnl.inc(2.25)
    pnl.dec(0.75)
    assert tel.snapshot().get_sample_value("pnl") == 12.0


def test_int_gauge_holds_negative_values(tel):
    """An integer gauge is signed: positions go short."""
    position = tel.gauge("position", "Net position.", kind="int")
    position.set(3)
    position.dec(5)
    assert tel.snapshot().get_sample_value("position") == -2


def test_int_gauge_keeps_full_64_bit_precision(tel):
    """Values beyond a double's 53-bit mantissa survive an integer gauge exactly."""
    big = tel.gauge("big", "Large value.", kind="int")
    big.set(2**62 + 1)
    assert tel.snapshot().get_sample_value("big") == 2**62 + 1


def test_int_gauge_refuses_floats(tel):
    """An integer gauge raises TypeError on a float rather than truncating it."""
    with pytest.raises(TypeError):
        tel.gauge("position", "Net position.", kind="int").set(1.5)


def test_unknown_gauge_kind_is_refused(tel):
    """kind must be 'float' or 'int'; anything else is named in the error."""
    with pytest.raises(ValueError, match="kind must be"):
        tel.gauge("g", "Gauge.", kind="decimal")


def test_registering_a_name_again_with_another_type_conflicts(tel):
    """One name, one type: a gauge cannot reuse a counter's name."""
    tel.gauge("mode", "Mode.", kind="int")
    with pytest.raises(ValueError, match="already registered as an integer gauge"):
        tel.gauge("mode", "Mode.", kind="float")
