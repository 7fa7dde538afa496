# _audit_rows.pxi -- GENERATED from src/hftel/schemas.py by `python -m hftel.schemas pyx`.
# Do not edit: change the declarations and regenerate (a test fails when the two differ).
# Included by _rings.pyx, which defines _AuditWriterBase, _put_text, _put_bytes and _code.

cdef extern from "hftel_audit.h" nogil:
    const uint16_t HFTEL_AUDIT_ORDERS_TYPE_ID
    const uint16_t HFTEL_AUDIT_RISK_DECISIONS_TYPE_ID
    const uint16_t HFTEL_AUDIT_GUARDRAIL_TRANSITIONS_TYPE_ID
    const uint16_t HFTEL_AUDIT_CONNECTIVITY_TYPE_ID
    const uint16_t HFTEL_AUDIT_CONFIG_CHANGES_TYPE_ID

    ctypedef struct hftel_audit_orders_row:
        uint64_t ts
        uint64_t seq
        uint64_t source_id
        uint64_t intent_id
        uint64_t correlation_id
        uint8_t trace_id[16]
        char strategy[24]
        char symbol[16]
        uint8_t side
        uint8_t order_type
        uint8_t time_in_force
        uint8_t status
        int64_t quantity
        double price
        uint64_t latency_ns
        int32_t reject_code
        char broker_order_id[32]
        char reject_reason[96]

    ctypedef struct hftel_audit_risk_decisions_row:
        uint64_t ts
        uint64_t seq
        uint64_t source_id
        uint64_t intent_id
        uint64_t correlation_id
        uint8_t trace_id[16]
        char strategy[24]
        char symbol[16]
        char rule[32]
        uint8_t decision
        uint8_t risk_mode
        double limit_value
        double observed_value
        char reason[96]

    ctypedef struct hftel_audit_guardrail_transitions_row:
        uint64_t ts
        uint64_t seq
        uint64_t source_id
        uint64_t correlation_id
        uint8_t trace_id[16]
        char strategy[24]
        uint8_t from_mode
        uint8_t to_mode
        char trigger[32]
        double trigger_value
        double threshold
        double drawdown
        double reject_rate
        char detail[96]

    ctypedef struct hftel_audit_connectivity_row:
        uint64_t ts
        uint64_t seq
        uint64_t source_id
        uint64_t correlation_id
        uint8_t trace_id[16]
        char gateway[16]
        char session[32]
        uint8_t event
        char detail[128]

    ctypedef struct hftel_audit_config_changes_row:
        uint64_t ts
        uint64_t seq
        uint64_t source_id
        uint64_t correlation_id
        uint8_t trace_id[16]
        char operator_id[32]
        uint8_t source
        char key[64]
        uint8_t old_config_hash[32]
        uint8_t new_config_hash[32]
        char diff[1024]

_AUDIT_ORDERS_SIDE = {'BUY': 1, 'SELL': 2}
_AUDIT_ORDERS_ORDER_TYPE = {'LIMIT': 1, 'MARKET': 2}
_AUDIT_ORDERS_TIME_IN_FORCE = {'ROD': 1, 'IOC': 2, 'FOK': 3}
_AUDIT_ORDERS_STATUS = {'INTENT': 1, 'SUBMITTED': 2, 'ACK': 3, 'PARTIAL_FILL': 4, 'FILLED': 5, 'CANCELLED': 6, 'REJECTED': 7}
_AUDIT_RISK_DECISIONS_DECISION = {'ALLOW': 1, 'REJECT': 2, 'THROTTLE': 3}
_AUDIT_RISK_DECISIONS_RISK_MODE = {'NORMAL': 1, 'WARM': 2, 'STORM': 3, 'HALT': 4}
_AUDIT_GUARDRAIL_TRANSITIONS_FROM_MODE = {'NORMAL': 1, 'WARM': 2, 'STORM': 3, 'HALT': 4}
_AUDIT_GUARDRAIL_TRANSITIONS_TO_MODE = {'NORMAL': 1, 'WARM': 2, 'STORM': 3, 'HALT': 4}
_AUDIT_CONNECTIVITY_EVENT = {'CONNECTED': 1, 'DISCONNECTED': 2, 'RECONNECTING': 3, 'LOGIN': 4, 'LOGOUT': 5, 'HEARTBEAT_MISSED': 6, 'ERROR': 7}
_AUDIT_CONFIG_CHANGES_SOURCE = {'CLI': 1, 'GRPC': 2}


cdef class AuditWriter(_AuditWriterBase):
    """Writes audit rows: one method per audit table, named for a row of it.

    >>> seq = tel.audit.order(intent_id=7, strategy='mm', symbol='2330', side='BUY', quantity=1)

    Every method returns the row's sequence number. Text longer than its column is cut; an
    enum takes its member's name (or code); bytes columns take bytes of at most their width.
    """

    def order(self, *, uint64_t ts=0, uint64_t intent_id=0, uint64_t correlation_id=0, trace_id=None, strategy='', symbol='', side=None, order_type=None, time_in_force=None, status=None, int64_t quantity=0, double price=0, uint64_t latency_ns=0, int32_t reject_code=0, broker_order_id='', reject_reason=''):
        """A row of audit_orders: Order intents and every broker response to them."""
        cdef hftel_audit_orders_row row
        memset(&row, 0, sizeof(row))
        row.ts = ts
        row.intent_id = intent_id
        row.correlation_id = correlation_id
        _put_bytes(row.trace_id, 16, trace_id, 'audit_orders.trace_id')
        _put_text(row.strategy, 24, strategy, 'audit_orders.strategy')
        _put_text(row.symbol, 16, symbol, 'audit_orders.symbol')
        row.side = _code(_AUDIT_ORDERS_SIDE, side, 'audit_orders.side')
        row.order_type = _code(_AUDIT_ORDERS_ORDER_TYPE, order_type, 'audit_orders.order_type')
        row.time_in_force = _code(_AUDIT_ORDERS_TIME_IN_FORCE, time_in_force, 'audit_orders.time_in_force')
        row.status = _code(_AUDIT_ORDERS_STATUS, status, 'audit_orders.status')
        row.quantity = quantity
        row.price = price
        row.latency_ns = latency_ns
        row.reject_code = reject_code
        _put_text(row.broker_order_id, 32, broker_order_id, 'audit_orders.broker_order_id')
        _put_text(row.reject_reason, 96, reject_reason, 'audit_orders.reject_reason')
        return self._write(HFTEL_AUDIT_ORDERS_TYPE_ID, &row, sizeof(row))

    def risk_decision(self, *, uint64_t ts=0, uint64_t intent_id=0, uint64_t correlation_id=0, trace_id=None, strategy='', symbol='', rule='', decision=None, risk_mode=None, double limit_value=0, double observed_value=0, reason=''):
        """A row of audit_risk_decisions: Every pre-trade risk decision, with the limit and the value it was checked against."""
        cdef hftel_audit_risk_decisions_row row
        memset(&row, 0, sizeof(row))
        row.ts = ts
        row.intent_id = intent_id
        row.correlation_id = correlation_id
        _put_bytes(row.trace_id, 16, trace_id, 'audit_risk_decisions.trace_id')
        _put_text(row.strategy, 24, strategy, 'audit_risk_decisions.strategy')
        _put_text(row.symbol, 16, symbol, 'audit_risk_decisions.symbol')
        _put_text(row.rule, 32, rule, 'audit_risk_decisions.rule')
        row.decision = _code(_AUDIT_RISK_DECISIONS_DECISION, decision, 'audit_risk_decisions.decision')
        row.risk_mode = _code(_AUDIT_RISK_DECISIONS_RISK_MODE, risk_mode, 'audit_risk_decisions.risk_mode')
        row.limit_value = limit_value
        row.observed_value = observed_value
        _put_text(row.reason, 96, reason, 'audit_risk_decisions.reason')
        return self._write(HFTEL_AUDIT_RISK_DECISIONS_TYPE_ID, &row, sizeof(row))

    def guardrail_transition(self, *, uint64_t ts=0, uint64_t correlation_id=0, trace_id=None, strategy='', from_mode=None, to_mode=None, trigger='', double trigger_value=0, double threshold=0, double drawdown=0, double reject_rate=0, detail=''):
        """A row of audit_guardrail_transitions: StormGuard mode changes, with the trigger and the metric values behind it."""
        cdef hftel_audit_guardrail_transitions_row row
        memset(&row, 0, sizeof(row))
        row.ts = ts
        row.correlation_id = correlation_id
        _put_bytes(row.trace_id, 16, trace_id, 'audit_guardrail_transitions.trace_id')
        _put_text(row.strategy, 24, strategy, 'audit_guardrail_transitions.strategy')
        row.from_mode = _code(_AUDIT_GUARDRAIL_TRANSITIONS_FROM_MODE, from_mode, 'audit_guardrail_transitions.from_mode')
        row.to_mode = _code(_AUDIT_GUARDRAIL_TRANSITIONS_TO_MODE, to_mode, 'audit_guardrail_transitions.to_mode')
        _put_text(row.trigger, 32, trigger, 'audit_guardrail_transitions.trigger')
        row.trigger_value = trigger_value
        row.threshold = threshold
        row.drawdown = drawdown
        row.reject_rate = reject_rate
        _put_text(row.detail, 96, detail, 'audit_guardrail_transitions.detail')
        return self._write(HFTEL_AUDIT_GUARDRAIL_TRANSITIONS_TYPE_ID, &row, sizeof(row))

    def connectivity(self, *, uint64_t ts=0, uint64_t correlation_id=0, trace_id=None, gateway='', session='', event=None, detail=''):
        """A row of audit_connectivity: Broker and feed gateway sessions: connects, drops, logins, errors."""
        cdef hftel_audit_connectivity_row row
        memset(&row, 0, sizeof(row))
        row.ts = ts
        row.correlation_id = correlation_id
        _put_bytes(row.trace_id, 16, trace_id, 'audit_connectivity.trace_id')
        _put_text(row.gateway, 16, gateway, 'audit_connectivity.gateway')
        _put_text(row.session, 32, session, 'audit_connectivity.session')
        row.event = _code(_AUDIT_CONNECTIVITY_EVENT, event, 'audit_connectivity.event')
        _put_text(row.detail, 128, detail, 'audit_connectivity.detail')
        return self._write(HFTEL_AUDIT_CONNECTIVITY_TYPE_ID, &row, sizeof(row))

    def config_change(self, *, uint64_t ts=0, uint64_t correlation_id=0, trace_id=None, operator_id='', source=None, key='', old_config_hash=None, new_config_hash=None, diff=''):
        """A row of audit_config_changes: Every configuration change made through the CLI or gRPC: who, what, and the hashes before and after."""
        cdef hftel_audit_config_changes_row row
        memset(&row, 0, sizeof(row))
        row.ts = ts
        row.correlation_id = correlation_id
        _put_bytes(row.trace_id, 16, trace_id, 'audit_config_changes.trace_id')
        _put_text(row.operator_id, 32, operator_id, 'audit_config_changes.operator_id')
        row.source = _code(_AUDIT_CONFIG_CHANGES_SOURCE, source, 'audit_config_changes.source')
        _put_text(row.key, 64, key, 'audit_config_changes.key')
        _put_bytes(row.old_config_hash, 32, old_config_hash, 'audit_config_changes.old_config_hash')
        _put_bytes(row.new_config_hash, 32, new_config_hash, 'audit_config_changes.new_config_hash')
        _put_text(row.diff, 1024, diff, 'audit_config_changes.diff')
        return self._write(HFTEL_AUDIT_CONFIG_CHANGES_TYPE_ID, &row, sizeof(row))
