/* hftel_audit.h -- GENERATED from src/hftel/schemas.py by `python -m hftel.schemas header`.
 * Do not edit: change the declarations and regenerate (a test fails when the two differ).
 *
 * One fixed-size row struct per audit table. Text fields are UTF-8, NUL padded and cut at
 * their width; enums are u8 codes, 0 meaning unset, in the order the schema lists them. */
#ifndef HFTEL_AUDIT_H
#define HFTEL_AUDIT_H

#include "hftel.h"

/* audit_orders: Order intents and every broker response to them. */
#define HFTEL_AUDIT_ORDERS_TYPE_ID 1u
#define HFTEL_AUDIT_ORDERS_RECORD_LENGTH 264u
#define HFTEL_AUDIT_ORDERS_SIDE_BUY 1u
#define HFTEL_AUDIT_ORDERS_SIDE_SELL 2u
#define HFTEL_AUDIT_ORDERS_ORDER_TYPE_LIMIT 1u
#define HFTEL_AUDIT_ORDERS_ORDER_TYPE_MARKET 2u
#define HFTEL_AUDIT_ORDERS_TIME_IN_FORCE_ROD 1u
#define HFTEL_AUDIT_ORDERS_TIME_IN_FORCE_IOC 2u
#define HFTEL_AUDIT_ORDERS_TIME_IN_FORCE_FOK 3u
#define HFTEL_AUDIT_ORDERS_STATUS_INTENT 1u
#define HFTEL_AUDIT_ORDERS_STATUS_SUBMITTED 2u
#define HFTEL_AUDIT_ORDERS_STATUS_ACK 3u
#define HFTEL_AUDIT_ORDERS_STATUS_PARTIAL_FILL 4u
#define HFTEL_AUDIT_ORDERS_STATUS_FILLED 5u
#define HFTEL_AUDIT_ORDERS_STATUS_CANCELLED 6u
#define HFTEL_AUDIT_ORDERS_STATUS_REJECTED 7u
typedef struct hftel_audit_orders_row {
    uint64_t ts;                             /* When the engine recorded the row (ns since the Unix epoch, realtime clock). */
    uint64_t seq;                            /* Per-source sequence number: gaps and duplicates are detectable per source. */
    uint64_t source_id;                      /* Which writer wrote the row: drawn at random per writer, so unique across restarts. */
    uint64_t intent_id;                      /* The strategy intent this row belongs to (0: none). */
    uint64_t correlation_id;                 /* Ties the rows of one flow together (0: none). */
    uint8_t trace_id[16];                    /* W3C trace id of the flow (16 zero bytes: none). */
    char strategy[24];                       /* Strategy name (curated, low cardinality). */
    char symbol[16];                         /* Instrument symbol. */
    uint8_t side;                            /* Buy or sell. */
    uint8_t order_type;                      /* Order type. */
    uint8_t time_in_force;                   /* Time in force. */
    uint8_t status;                          /* What this row records. */
    int64_t quantity;                        /* Order quantity (lots or shares). */
    double price;                            /* Limit price (0 for market orders). */
    uint64_t latency_ns;                     /* Intent to this broker response, ns (0 for the intent itself). */
    int32_t reject_code;                     /* Broker or risk reject code (0: not rejected). */
    char broker_order_id[32];                /* The broker's order id. */
    char reject_reason[96];                  /* Why it was rejected. */
} hftel_audit_orders_row;
HFTEL_STATIC_ASSERT(sizeof(hftel_audit_orders_row) == HFTEL_AUDIT_ORDERS_RECORD_LENGTH, "audit_orders record length");

/* audit_risk_decisions: Every pre-trade risk decision, with the limit and the value it was checked against. */
#define HFTEL_AUDIT_RISK_DECISIONS_TYPE_ID 2u
#define HFTEL_AUDIT_RISK_DECISIONS_RECORD_LENGTH 248u
#define HFTEL_AUDIT_RISK_DECISIONS_DECISION_ALLOW 1u
#define HFTEL_AUDIT_RISK_DECISIONS_DECISION_REJECT 2u
#define HFTEL_AUDIT_RISK_DECISIONS_DECISION_THROTTLE 3u
#define HFTEL_AUDIT_RISK_DECISIONS_RISK_MODE_NORMAL 1u
#define HFTEL_AUDIT_RISK_DECISIONS_RISK_MODE_WARM 2u
#define HFTEL_AUDIT_RISK_DECISIONS_RISK_MODE_STORM 3u
#define HFTEL_AUDIT_RISK_DECISIONS_RISK_MODE_HALT 4u
typedef struct hftel_audit_risk_decisions_row {
    uint64_t ts;                             /* When the engine recorded the row (ns since the Unix epoch, realtime clock). */
    uint64_t seq;                            /* Per-source sequence number: gaps and duplicates are detectable per source. */
    uint64_t source_id;                      /* Which writer wrote the row: drawn at random per writer, so unique across restarts. */
    uint64_t intent_id;                      /* The strategy intent this row belongs to (0: none). */
    uint64_t correlation_id;                 /* Ties the rows of one flow together (0: none). */
    uint8_t trace_id[16];                    /* W3C trace id of the flow (16 zero bytes: none). */
    char strategy[24];                       /* Strategy name (curated, low cardinality). */
    char symbol[16];                         /* Instrument symbol. */
    char rule[32];                           /* The risk rule that decided. */
    uint8_t decision;                        /* The outcome. */
    uint8_t risk_mode;                       /* StormGuard mode at decision time. */
    double limit_value;                      /* The limit the rule enforces. */
    double observed_value;                   /* The value checked against it. */
    char reason[96];                         /* Why, in words. */
} hftel_audit_risk_decisions_row;
HFTEL_STATIC_ASSERT(sizeof(hftel_audit_risk_decisions_row) == HFTEL_AUDIT_RISK_DECISIONS_RECORD_LENGTH, "audit_risk_decisions record length");

/* audit_guardrail_transitions: StormGuard mode changes, with the trigger and the metric values behind it. */
#define HFTEL_AUDIT_GUARDRAIL_TRANSITIONS_TYPE_ID 3u
#define HFTEL_AUDIT_GUARDRAIL_TRANSITIONS_RECORD_LENGTH 240u
#define HFTEL_AUDIT_GUARDRAIL_TRANSITIONS_FROM_MODE_NORMAL 1u
#define HFTEL_AUDIT_GUARDRAIL_TRANSITIONS_FROM_MODE_WARM 2u
#define HFTEL_AUDIT_GUARDRAIL_TRANSITIONS_FROM_MODE_STORM 3u
#define HFTEL_AUDIT_GUARDRAIL_TRANSITIONS_FROM_MODE_HALT 4u
#define HFTEL_AUDIT_GUARDRAIL_TRANSITIONS_TO_MODE_NORMAL 1u
#define HFTEL_AUDIT_GUARDRAIL_TRANSITIONS_TO_MODE_WARM 2u
#define HFTEL_AUDIT_GUARDRAIL_TRANSITIONS_TO_MODE_STORM 3u
#define HFTEL_AUDIT_GUARDRAIL_TRANSITIONS_TO_MODE_HALT 4u
typedef struct hftel_audit_guardrail_transitions_row {
    uint64_t ts;                             /* When the engine recorded the row (ns since the Unix epoch, realtime clock). */
    uint64_t seq;                            /* Per-source sequence number: gaps and duplicates are detectable per source. */
    uint64_t source_id;                      /* Which writer wrote the row: drawn at random per writer, so unique across restarts. */
    uint64_t correlation_id;                 /* Ties the rows of one flow together (0: none). */
    uint8_t trace_id[16];                    /* W3C trace id of the flow (16 zero bytes: none). */
    char strategy[24];                       /* Strategy name (curated, low cardinality). */
    uint8_t from_mode;                       /* Mode before. */
    uint8_t to_mode;                         /* Mode after. */
    char trigger[32];                        /* What tripped the transition. */
    double trigger_value;                    /* The value of the trigger metric. */
    double threshold;                        /* The threshold it crossed. */
    double drawdown;                         /* Drawdown at the time. */
    double reject_rate;                      /* Order reject rate at the time. */
    char detail[96];                         /* Anything else the operator needs. */
} hftel_audit_guardrail_transitions_row;
HFTEL_STATIC_ASSERT(sizeof(hftel_audit_guardrail_transitions_row) == HFTEL_AUDIT_GUARDRAIL_TRANSITIONS_RECORD_LENGTH, "audit_guardrail_transitions record length");

/* audit_connectivity: Broker and feed gateway sessions: connects, drops, logins, errors. */
#define HFTEL_AUDIT_CONNECTIVITY_TYPE_ID 4u
#define HFTEL_AUDIT_CONNECTIVITY_RECORD_LENGTH 232u
#define HFTEL_AUDIT_CONNECTIVITY_EVENT_CONNECTED 1u
#define HFTEL_AUDIT_CONNECTIVITY_EVENT_DISCONNECTED 2u
#define HFTEL_AUDIT_CONNECTIVITY_EVENT_RECONNECTING 3u
#define HFTEL_AUDIT_CONNECTIVITY_EVENT_LOGIN 4u
#define HFTEL_AUDIT_CONNECTIVITY_EVENT_LOGOUT 5u
#define HFTEL_AUDIT_CONNECTIVITY_EVENT_HEARTBEAT_MISSED 6u
#define HFTEL_AUDIT_CONNECTIVITY_EVENT_ERROR 7u
typedef struct hftel_audit_connectivity_row {
    uint64_t ts;                             /* When the engine recorded the row (ns since the Unix epoch, realtime clock). */
    uint64_t seq;                            /* Per-source sequence number: gaps and duplicates are detectable per source. */
    uint64_t source_id;                      /* Which writer wrote the row: drawn at random per writer, so unique across restarts. */
    uint64_t correlation_id;                 /* Ties the rows of one flow together (0: none). */
    uint8_t trace_id[16];                    /* W3C trace id of the flow (16 zero bytes: none). */
    char gateway[16];                        /* Which gateway (e.g. shioaji). */
    char session[32];                        /* Session or connection id. */
    uint8_t event;                           /* What happened. */
    char detail[128];                        /* Error text or other detail. */
} hftel_audit_connectivity_row;
HFTEL_STATIC_ASSERT(sizeof(hftel_audit_connectivity_row) == HFTEL_AUDIT_CONNECTIVITY_RECORD_LENGTH, "audit_connectivity record length");

/* audit_config_changes: Every configuration change made through the CLI or gRPC: who, what, and the hashes before and after. */
#define HFTEL_AUDIT_CONFIG_CHANGES_TYPE_ID 5u
#define HFTEL_AUDIT_CONFIG_CHANGES_RECORD_LENGTH 1240u
#define HFTEL_AUDIT_CONFIG_CHANGES_SOURCE_CLI 1u
#define HFTEL_AUDIT_CONFIG_CHANGES_SOURCE_GRPC 2u
typedef struct hftel_audit_config_changes_row {
    uint64_t ts;                             /* When the engine recorded the row (ns since the Unix epoch, realtime clock). */
    uint64_t seq;                            /* Per-source sequence number: gaps and duplicates are detectable per source. */
    uint64_t source_id;                      /* Which writer wrote the row: drawn at random per writer, so unique across restarts. */
    uint64_t correlation_id;                 /* Ties the rows of one flow together (0: none). */
    uint8_t trace_id[16];                    /* W3C trace id of the flow (16 zero bytes: none). */
    char operator_id[32];                    /* Who made the change. */
    uint8_t source;                          /* Where the change came from. */
    char key[64];                            /* The configuration key changed. */
    uint8_t old_config_hash[32];             /* SHA-256 of the configuration before. */
    uint8_t new_config_hash[32];             /* SHA-256 of the configuration after. */
    char diff[1024];                         /* The change, as a unified diff (cut at the field's width). */
} hftel_audit_config_changes_row;
HFTEL_STATIC_ASSERT(sizeof(hftel_audit_config_changes_row) == HFTEL_AUDIT_CONFIG_CHANGES_RECORD_LENGTH, "audit_config_changes record length");

#endif /* HFTEL_AUDIT_H */
