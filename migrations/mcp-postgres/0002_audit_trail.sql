-- The audit trail (src/mcp/lifecycle/audit), as migrations/mcp/0006_audit_trail.sql on SQLite: one
-- entry per lifecycle transition, creation and policy refusal, written in the same transaction as the
-- change it records, hash-chained, and heads of the chain signed by the server's audit key. Appends
-- from every replica are serialised by a transaction-scoped advisory lock, so the chain stays linear.
-- No secret and no token is written here.

CREATE TABLE audit_entries (
    seq              BIGINT PRIMARY KEY,
    at_ms            BIGINT NOT NULL,
    kind             TEXT NOT NULL,
    owner            TEXT NOT NULL,
    holder_subject   TEXT NOT NULL,
    intent_id        TEXT,
    from_account_id  TEXT NOT NULL,
    to_account_id    TEXT NOT NULL,
    amount_minor     BIGINT NOT NULL,
    currency         TEXT NOT NULL,
    memo             TEXT,
    binding_message  TEXT,
    reference        TEXT,
    -- The outcome (JSON: code, lookup, reason, rule, status, transfer_id).
    details          TEXT NOT NULL,
    prev_hash        TEXT NOT NULL,
    hash             TEXT NOT NULL
);
CREATE INDEX audit_entries_by_intent ON audit_entries (intent_id) WHERE intent_id IS NOT NULL;
CREATE INDEX audit_entries_by_owner ON audit_entries (owner, at_ms);

-- Append-only for bankguard itself. Someone who owns the table can drop this trigger: the hash chain
-- and the signed heads are what make their edits detectable.
CREATE FUNCTION bankguard_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit entries are append-only';
END;
$$;
CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION bankguard_audit_append_only();

-- The chain's head at entry `seq`, signed (compact JWS, ES256) with the audit key `key_id`.
CREATE TABLE signed_heads (
    seq           BIGINT PRIMARY KEY,
    hash          TEXT NOT NULL,
    signed_at_ms  BIGINT NOT NULL,
    key_id        TEXT NOT NULL,
    jws           TEXT NOT NULL
);
