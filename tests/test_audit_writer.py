"""Writing audit rows from Python: one method per table, every column round-trips to the consumer."""
from __future__ import annotations

import os
import time

import pytest

from hftel import rings
from hftel.schemas import AUDIT_ORDERS, AUDIT_TABLES, AuditTable, Column


def sample_value(table: AuditTable, column: Column, index: int):
    """A distinct, valid value for a column (derived from the schema, so new columns are covered)."""
    if column.kind == "text":
        return f"{column.name[:3]}{index}"[: column.width]
    if column.kind == "bytes":
        return bytes([index + 1]) * column.width
    if column.kind == "enum":
        return column.values[index % len(column.values)]
    if column.kind == "f64":
        return index + 0.25
    if column.kind in ("i32", "i64"):
        return -(index + 1)
    return index + 1000


def write_and_read(tel, method: str, **values):
    tel.audit.__getattribute__(method)(**values)
    consumer = rings.AuditConsumer(tel.path)
    batch = consumer.poll()
    consumer.release(batch)
    return batch


@pytest.mark.parametrize("table", AUDIT_TABLES, ids=lambda table: table.name)
def test_every_column_of_every_table_round_trips_through_the_ring(tel, table):
    """Each table's writer method stores every column where the consumer's numpy dtype reads it."""
    values = {column.name: sample_value(table, column, index)
              for index, column in enumerate(table.columns[3:])}
    batch = write_and_read(tel, table.writer, ts=1_700_000_000_000_000_000, **values)
    [row] = batch.tables[table.name]
    assert row["ts"] == 1_700_000_000_000_000_000
    for column in table.columns[3:]:
        stored = row[column.name]
        expected = values[column.name]
        if column.kind == "text":
            assert stored.decode() == expected
        elif column.kind == "bytes":
            assert bytes(stored) == expected
        elif column.kind == "enum":
            assert column.values[stored - 1] == expected
        else:
            assert stored == expected


def test_sequence_numbers_start_at_one_and_count_up_per_writer(tel):
    """A writer's rows carry seq 1, 2, 3 ... and its one random, non-zero source id."""
    returned = [tel.audit.order(intent_id=i) for i in range(5)]
    batch = write_and_read(tel, "connectivity", gateway="shioaji", event="CONNECTED")
    orders = batch.tables["audit_orders"]
    assert returned == [1, 2, 3, 4, 5]
    assert list(orders["seq"]) == [1, 2, 3, 4, 5]
    assert list(batch.tables["audit_connectivity"]["seq"]) == [6]
    assert set(orders["source_id"]) == {tel.audit.source_id} and tel.audit.source_id != 0


def test_a_forked_child_writes_as_a_new_source_from_seq_one(tel):
    """A child must not continue its parent's source: it gets its own id and starts at seq 1."""
    tel.audit.order(intent_id=1)
    parent_source = tel.audit.source_id
    child = os.fork()
    if child == 0:
        status = 0 if tel.audit.order(intent_id=2) == 1 and tel.audit.source_id != parent_source else 1
        os._exit(status)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    orders = rings.AuditConsumer(tel.path).poll().tables["audit_orders"]
    assert len(set(orders["source_id"])) == 2
    assert sorted(orders["seq"]) == [1, 1]


def test_a_row_without_ts_is_stamped_with_the_realtime_clock(tel):
    """ts=0 (the default) means now, in nanoseconds since the Unix epoch."""
    before = time.time_ns()
    tel.audit.order()
    after = time.time_ns()
    [row] = rings.AuditConsumer(tel.path).poll().tables["audit_orders"]
    assert before <= row["ts"] <= after


def test_text_longer_than_its_column_is_cut_on_a_character_boundary(tel):
    """symbol is 16 bytes wide: 15 ASCII bytes then a 3-byte character cannot fit, so it is left out."""
    write = "S" * 15 + "股票"
    [row] = write_and_read(tel, "order", symbol=write).tables["audit_orders"]
    assert row["symbol"].decode("utf-8") == "S" * 15


def test_an_enum_takes_its_member_name_its_code_or_none(tel):
    """side='SELL', side=2 and side=None store codes 2, 2 and 0."""
    tel.audit.order(side="SELL")
    tel.audit.order(side=2)
    tel.audit.order(side=None)
    orders = rings.AuditConsumer(tel.path).poll().tables["audit_orders"]
    assert list(orders["side"]) == [2, 2, 0]


def test_an_unknown_enum_value_is_refused_naming_the_column_and_its_members(tel):
    with pytest.raises(ValueError, match=r"audit_orders\.side must be one of BUY, SELL"):
        tel.audit.order(side="SHORT")


def test_an_enum_code_out_of_range_is_refused(tel):
    with pytest.raises(ValueError, match=r"audit_orders\.side"):
        tel.audit.order(side=3)


def test_bytes_longer_than_their_column_are_refused(tel):
    with pytest.raises(ValueError, match=r"audit_orders\.trace_id takes at most 16 bytes, got 17"):
        tel.audit.order(trace_id=b"x" * 17)


def test_text_of_the_wrong_type_is_refused_naming_the_column(tel):
    with pytest.raises(TypeError, match=r"audit_orders\.strategy takes text"):
        tel.audit.order(strategy=42)


def test_a_refused_row_does_not_use_a_sequence_number(tel):
    """Validation happens before the row is stamped: the next good row is still seq 1."""
    with pytest.raises(ValueError):
        tel.audit.order(side="SHORT")
    assert tel.audit.order(side="BUY") == 1


def test_an_unknown_column_is_refused_by_name(tel):
    with pytest.raises(TypeError, match="colour"):
        tel.audit.order(colour="red")


def test_the_writer_methods_are_named_in_the_schema():
    """tel.audit.<writer> exists for every table, so the schema is the one list of them."""
    from hftel import _rings

    assert all(callable(getattr(_rings.AuditWriter, table.writer)) for table in AUDIT_TABLES)
    assert AUDIT_ORDERS.writer == "order"
