-- The MCP server's transfer intents on PostgreSQL, shared by every `bankguard serve` replica: the same
-- table as the SQLite store reaches after its migrations (migrations/mcp), in one step.
--
-- `state` holds the lifecycle state as JSON (written only through the transition function) and may
-- hold the approval's access token while the transfer is executed: grant this database to the
-- bankguard role only. `status` mirrors the state's name for queries; `version` makes every
-- transition a compare-and-set. `runner` names the replica that drives an open intent.

CREATE TABLE transfer_intents (
    id                   TEXT PRIMARY KEY,
    owner                TEXT NOT NULL,
    -- The holder's subject at the provider when it differs from owner (their user id at the bank).
    holder_subject       TEXT,
    idempotency_key      TEXT,
    request_fingerprint  TEXT NOT NULL,
    reference            TEXT NOT NULL,
    from_account_id      TEXT NOT NULL,
    from_label           TEXT NOT NULL,
    to_account_id        TEXT NOT NULL,
    to_label             TEXT NOT NULL,
    amount_minor         BIGINT NOT NULL CHECK (amount_minor > 0),
    currency             TEXT NOT NULL,
    memo                 TEXT,
    status               TEXT NOT NULL CHECK (status IN ('requesting', 'pending', 'executing', 'outcome_unknown',
                                                         'completed', 'denied', 'expired', 'cancelled', 'failed')),
    state                TEXT NOT NULL CHECK (state::jsonb ->> 'status' = status),
    version              BIGINT NOT NULL DEFAULT 0,
    runner               TEXT,
    -- Ping mode: SHA-256 of the client_notification_token, so a ping to any replica finds the wait.
    ping_digest          BYTEA CHECK (octet_length(ping_digest) = 32),
    created_at_ms        BIGINT NOT NULL,
    updated_at_ms        BIGINT NOT NULL,
    UNIQUE (owner, idempotency_key)
);
CREATE INDEX transfer_intents_open ON transfer_intents (owner, status);
CREATE INDEX transfer_intents_by_status ON transfer_intents (status)
    WHERE status IN ('requesting', 'pending', 'executing', 'outcome_unknown');
CREATE INDEX transfer_intents_by_runner ON transfer_intents (runner)
    WHERE status IN ('requesting', 'pending', 'executing', 'outcome_unknown');
CREATE INDEX transfer_intents_by_ping ON transfer_intents (ping_digest) WHERE ping_digest IS NOT NULL;

-- One row per live server process, stamped with the database's clock.
CREATE TABLE runners (
    id               TEXT PRIMARY KEY,
    started_at_ms    BIGINT NOT NULL,
    heartbeat_at_ms  BIGINT NOT NULL
);

-- Every change of status is announced to every replica when it commits (payload: "<id> <status>"),
-- so a call following the intent on another replica wakes at once.
CREATE FUNCTION bankguard_announce_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('bankguard_intents', NEW.id || ' ' || NEW.status);
    RETURN NULL;
END
$$;
CREATE TRIGGER transfer_intents_announce_status
    AFTER UPDATE OF status ON transfer_intents
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION bankguard_announce_status();

-- A runner that stops deletes its row after releasing its intents: the others claim them at once.
CREATE FUNCTION bankguard_announce_handback() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('bankguard_handback', OLD.id);
    RETURN NULL;
END
$$;
CREATE TRIGGER runners_announce_handback
    AFTER DELETE ON runners
    FOR EACH ROW EXECUTE FUNCTION bankguard_announce_handback();
