"""Counters, read back through a snapshot as the exporter reads them."""
import pytest

import hftel


def test_counter_starts_at_zero(tel):
    """A new counter reads 0 before anything is recorded."""
    tel.counter("orders", "Orders sent.")
    assert tel.snapshot().get_sample_value("orders_total") == 0


def test_inc_adds_one_by_default_and_the_amount_given(tel):
    """inc() adds 1; inc(n) adds n."""
    orders = tel.counter("orders", "Orders sent.")
    orders.inc()
    orders.inc(41)
    assert tel.snapshot().get_sample_value("orders_total") == 42


def test_total_suffix_is_optional_as_in_prometheus_client(tel):
    """'orders_total' and 'orders' name the same counter family."""
    tel.counter("orders_total", "Orders sent.").inc(3)
    tel.counter("orders", "Orders sent.").inc(4)
    assert tel.snapshot().get_sample_value("orders_total") == 7


def test_negative_increment_is_refused(tel):
    """A counter never goes down: inc(-1) raises ValueError and changes nothing."""
    orders = tel.counter("orders", "Orders sent.")
    with pytest.raises(ValueError, match="only go up"):
        orders.inc(-1)
    assert tel.snapshot().get_sample_value("orders_total") == 0


def test_float_increment_is_refused(tel):
    """Counters hold integers; inc(1.5) is a TypeError rather than a silent truncation."""
    with pytest.raises(TypeError):
        tel.counter("orders", "Orders sent.").inc(1.5)


def test_single_writer_counter_counts_like_an_atomic_one(tel):
    """A single-writer handle (no LOCK prefix) gives the same totals from its one thread."""
    fast = tel.counter("fast", "Single-writer.", single_writer=True)
    assert fast.single_writer
    for _ in range(1000):
        fast.inc()
    assert tel.snapshot().get_sample_value("fast_total") == 1000


def test_labelled_counter_keeps_one_series_per_label_set(tel):
    """Each label set is its own series; labels() by position or by name reach the same one."""
    orders = tel.counter("orders", "Orders sent.", labels=("side", "venue"))
    orders.labels("buy", "X").inc()
    orders.labels(side="buy", venue="X").inc()
    orders.labels(side="sell", venue="X").inc(5)
    snap = tel.snapshot()
    assert snap.get_sample_value("orders_total", {"side": "buy", "venue": "X"}) == 2
    assert snap.get_sample_value("orders_total", {"side": "sell", "venue": "X"}) == 5


def test_label_values_with_quotes_and_newlines_round_trip(tel):
    """Label values are escaped for exposition and read back exactly."""
    odd = 'a "quoted"\\ value\nwith newline'
    tel.counter("odd", "Odd labels.", labels=("why",)).labels(why=odd).inc()
    assert tel.snapshot().get_sample_value("odd_total", {"why": odd}) == 1


def test_calling_inc_on_a_labelled_family_names_the_fix(tel):
    """A family with labels needs .labels(...) first, and the error says so."""
    orders = tel.counter("orders", "Orders sent.", labels=("side",))
    with pytest.raises(AttributeError, match=r"call \.labels"):
        orders.inc()


def test_wrong_label_names_are_refused(tel):
    """labels() with names the family was not declared with is a ValueError naming them."""
    orders = tel.counter("orders", "Orders sent.", labels=("side",))
    with pytest.raises(ValueError, match="expected labels"):
        orders.labels(venue="X")


@pytest.mark.parametrize("name", ["", "1st", "has space", "dash-ed", "x" * 200])
def test_invalid_metric_names_are_refused(tel, name):
    """Names outside Prometheus' [a-zA-Z_:][a-zA-Z0-9_:]* (or too long) raise RegistrationError."""
    with pytest.raises(hftel.RegistrationError):
        tel.counter(name, "Bad name.")


@pytest.mark.parametrize("label", ["1x", "__reserved", "a-b"])
def test_invalid_label_names_are_refused(tel, label):
    """Label names outside [a-zA-Z_][a-zA-Z0-9_]* or starting with __ raise RegistrationError."""
    with pytest.raises(hftel.RegistrationError, match="label name"):
        tel.counter("orders", "Orders.", labels=(label,))
