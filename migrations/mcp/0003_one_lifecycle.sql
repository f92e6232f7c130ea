-- One lifecycle per transfer intent: the state and the data it carries live in one JSON column
-- (`state`, written only through the transition function), `status` mirrors its name for queries,
-- and `version` makes every transition a compare-and-set. Leases move from one write per intent to
-- one heartbeat per server process (`runners`); an intent names the runner that drives it.
-- `state` may hold the approval's access token while the transfer is executed: the file is created
-- readable by its owner only.

CREATE TABLE transfer_intents_v3 (
    id                   TEXT PRIMARY KEY,
    owner                TEXT NOT NULL,
    idempotency_key      TEXT,
    request_fingerprint  TEXT NOT NULL,
    reference            TEXT NOT NULL,
    from_account_id      TEXT NOT NULL,
    from_label           TEXT NOT NULL,
    to_account_id        TEXT NOT NULL,
    to_label             TEXT NOT NULL,
    amount_minor         INTEGER NOT NULL CHECK (amount_minor > 0),
    currency             TEXT NOT NULL,
    memo                 TEXT,
    status               TEXT NOT NULL CHECK (status IN ('requesting', 'pending', 'executing', 'outcome_unknown',
                                                         'completed', 'denied', 'expired', 'cancelled', 'failed')),
    state                TEXT NOT NULL CHECK (json_valid(state)),
    version              INTEGER NOT NULL DEFAULT 0,
    runner               TEXT,
    created_at_ms        INTEGER NOT NULL,
    updated_at_ms        INTEGER NOT NULL,
    UNIQUE (owner, idempotency_key)
) STRICT;

INSERT INTO transfer_intents_v3
SELECT id, owner, idempotency_key, request_fingerprint, reference, from_account_id, from_label, to_account_id,
       to_label, amount_minor, currency, memo, status,
       CASE status
           WHEN 'pending' THEN json_object('status', 'pending', 'auth_req_id', auth_req_id,
                                           'expires_at', expires_at_ms, 'interval_seconds', interval_seconds)
           WHEN 'completed' THEN json_object('status', 'completed', 'receipt', json(receipt))
           WHEN 'failed' THEN json_object('status', 'failed', 'reason',
                                          json_object('kind', 'provider_unreachable', 'detail', coalesce(reason, '')))
           ELSE json_object('status', status)
       END,
       0, runner, created_at_ms, updated_at_ms
FROM transfer_intents;

DROP TABLE transfer_intents;
ALTER TABLE transfer_intents_v3 RENAME TO transfer_intents;
CREATE INDEX transfer_intents_open ON transfer_intents(owner, status);
CREATE INDEX transfer_intents_by_runner ON transfer_intents(runner) WHERE status IN ('requesting', 'pending', 'executing', 'outcome_unknown');

CREATE TABLE runners (
    id               TEXT PRIMARY KEY,
    started_at_ms    INTEGER NOT NULL,
    heartbeat_at_ms  INTEGER NOT NULL
) STRICT;
