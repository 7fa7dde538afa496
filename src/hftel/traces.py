"""One SQL query that follows a strategy intent through every table: the T7 trace.

Rows that belong to the intent carry its `intent_id` (audit_orders, audit_risk_decisions and the
log events of logs_hft). Rows the flow caused without being part of the intent, such as a
StormGuard transition it tripped, the gateway drop it was caught in, or the operator's
configuration change made in response, carry the flow's `correlation_id`, which the query looks
up from the intent's own order rows. Which table is matched how follows from its declared columns.

    >>> print(trace_sql(42).splitlines()[0])
    SELECT ts, source, summary, intent_id, correlation_id FROM (
"""
from __future__ import annotations

from hftel.schemas import CLICKHOUSE_TABLES, checked_database

#: What one row of each table says, in a few words (a test checks every table has one).
SUMMARIES: dict[str, str] = {
    "audit_orders": "concat(toString(status), ' ', strategy, ' ', symbol, ' ', toString(side), ' ', "
                    "toString(quantity), ' @ ', toString(price), if(reject_reason = '', '', concat(' (', reject_reason, ')')))",
    "audit_risk_decisions": "concat(toString(decision), ' by ', rule, ' in ', toString(risk_mode), "
                            "if(reason = '', '', concat(': ', reason)))",
    "audit_guardrail_transitions": "concat(strategy, ' ', toString(from_mode), ' -> ', toString(to_mode), ' on ', trigger)",
    "audit_connectivity": "concat(gateway, ' ', toString(event), if(detail = '', '', concat(': ', detail)))",
    "audit_config_changes": "concat(operator_id, ' changed ', key, ' (', toString(source), ')')",
    "logs_hft": "concat(level, ' ', component, ' ', event)",
}


def trace_sql(intent_id: int, database: str = "hftel") -> str:
    """Every row of every table that belongs to intent `intent_id` or to its flow, oldest first.

    Columns: ts, source (the table), summary, intent_id, correlation_id.
    """
    if not isinstance(intent_id, int) or not 0 < intent_id < 2**64:
        raise ValueError(f"an intent id is a positive 64-bit integer, got {intent_id!r}")
    database = checked_database(database)
    flow = f"(SELECT correlation_id FROM {database}.audit_orders WHERE intent_id = {intent_id} AND correlation_id != 0)"
    branches = []
    for table in CLICKHOUSE_TABLES:
        names = {column.name for column in table.columns}
        matches = []
        if "intent_id" in names:
            matches.append(f"intent_id = {intent_id}")
        if "correlation_id" in names:
            matches.append(f"correlation_id IN {flow}")
        intent = "intent_id" if "intent_id" in names else "toUInt64(0)"
        branches.append(f"  SELECT ts, '{table.name}' AS source, {SUMMARIES[table.name]} AS summary, "
                        f"{intent} AS intent_id, correlation_id FROM {database}.{table.name} "
                        f"WHERE {' OR '.join(matches)}")
    return ("SELECT ts, source, summary, intent_id, correlation_id FROM (\n"
            + "\n  UNION ALL\n".join(branches) + "\n) ORDER BY ts, source")
