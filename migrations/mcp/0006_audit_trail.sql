-- The audit trail (src/mcp/lifecycle/audit): one entry per lifecycle transition, creation and policy
-- refusal, written in the same transaction as the change it records, hash-chained (`prev_hash`,
-- `hash`), and heads of the chain signed by the server's audit key. No secret and no token is
-- written here: entries are built field by field, never from an intent's state.

CREATE TABLE audit_entries (
    seq              INTEGER PRIMARY KEY,
    at_ms            INTEGER NOT NULL,
    kind             TEXT NOT NULL,
    owner            TEXT NOT NULL,
    holder_subject   TEXT NOT NULL,
    intent_id        TEXT,
    from_account_id  TEXT NOT NULL,
    to_account_id    TEXT NOT NULL,
    amount_minor     INTEGER NOT NULL,
    currency         TEXT NOT NULL,
    memo             TEXT,
    binding_message  TEXT,
    reference        TEXT,
    -- The outcome (JSON: code, lookup, reason, rule, status, transfer_id).
    details          TEXT NOT NULL,
    prev_hash        TEXT NOT NULL,
    hash             TEXT NOT NULL
) STRICT;
CREATE INDEX audit_entries_by_intent ON audit_entries(intent_id) WHERE intent_id IS NOT NULL;
CREATE INDEX audit_entries_by_owner ON audit_entries(owner, at_ms);

-- Append-only for bankguard itself. Someone with write access to the file can drop these triggers:
-- the hash chain and the signed heads are what make their edits detectable.
CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;

-- The chain's head at entry `seq`, signed (compact JWS, ES256) with the audit key `key_id`.
CREATE TABLE signed_heads (
    seq           INTEGER PRIMARY KEY,
    hash          TEXT NOT NULL,
    signed_at_ms  INTEGER NOT NULL,
    key_id        TEXT NOT NULL,
    jws           TEXT NOT NULL
) STRICT;
