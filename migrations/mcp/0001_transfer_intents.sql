-- The MCP server's transfer intents: one row per transfer it asked a holder to approve. They outlive
-- tool calls (a client may give up after 60 s; the approval may take 300 s) and restarts.

CREATE TABLE transfer_intents (
    id                   TEXT PRIMARY KEY,
    owner                TEXT NOT NULL,
    -- The caller's optional idempotency_key and the terms it stands for.
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
    status               TEXT NOT NULL
        CHECK (status IN ('requesting', 'pending', 'completed', 'denied', 'expired', 'failed', 'cancelled')),
    -- While pending: how to resume the wait after a restart.
    auth_req_id          TEXT,
    interval_seconds     INTEGER,
    expires_at_ms        INTEGER,
    -- Once completed: the bank's receipt (JSON). Once failed: why.
    receipt              TEXT,
    reason               TEXT,
    created_at_ms        INTEGER NOT NULL,
    updated_at_ms        INTEGER NOT NULL,
    UNIQUE (owner, idempotency_key)
) STRICT;
CREATE INDEX transfer_intents_open ON transfer_intents(owner, status);
