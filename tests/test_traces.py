"""The T7 trace query, derived from the table declarations."""
import pytest

from hftel.schemas import CLICKHOUSE_TABLES
from hftel.traces import SUMMARIES, trace_sql


def test_every_table_has_a_summary_and_no_summary_names_a_table_that_is_gone():
    assert set(SUMMARIES) == {table.name for table in CLICKHOUSE_TABLES}


def test_tables_with_an_intent_id_are_matched_by_it_and_every_table_by_the_flows_correlation_id():
    branches = trace_sql(42).split("UNION ALL")
    assert len(branches) == len(CLICKHOUSE_TABLES)
    for table, branch in zip(CLICKHOUSE_TABLES, branches):
        names = {column.name for column in table.columns}
        assert ("WHERE intent_id = 42 OR" in branch) == ("intent_id" in names)
        assert "correlation_id IN (SELECT correlation_id FROM hftel.audit_orders WHERE intent_id = 42" in branch


@pytest.mark.parametrize("bad", [0, -1, 2**64, "42; DROP TABLE x", 4.2])
def test_an_intent_id_that_is_not_a_positive_64_bit_integer_is_refused(bad):
    with pytest.raises(ValueError, match="positive 64-bit integer"):
        trace_sql(bad)


def test_the_database_name_is_checked():
    with pytest.raises(ValueError):
        trace_sql(42, database="hftel; DROP")
