-- A refusal is an outcome too. Once a request is a well-formed transfer, approved by a genuine token
-- for exactly this body, whatever the bank answers is recorded under its Idempotency-Key and the
-- token is spent, whether money moved or not.

-- Every access token spent on a transfer request: by the transfer it made or by the refusal it got.
CREATE TABLE consumed_tokens (
    jti             TEXT PRIMARY KEY,
    consumed_at_ms  INTEGER NOT NULL
) STRICT;
INSERT INTO consumed_tokens (jti, consumed_at_ms) SELECT token_jti, created_at_ms FROM transfers;

-- Idempotency-Key → what the bank answered first, per token subject: the transfer it executed, or the
-- refusal it gave (status, code and detail, replayed word for word).
CREATE TABLE idempotency_outcomes (
    owner_subject        TEXT NOT NULL,
    key                  TEXT NOT NULL,
    request_fingerprint  TEXT NOT NULL,
    outcome              TEXT NOT NULL CHECK (outcome IN ('executed', 'refused')),
    transfer_id          TEXT REFERENCES transfers(id),
    response_body        TEXT,
    refusal_status       INTEGER CHECK (refusal_status BETWEEN 400 AND 499),
    refusal_code         TEXT,
    refusal_detail       TEXT,
    PRIMARY KEY (owner_subject, key),
    CHECK (CASE outcome
        WHEN 'executed' THEN transfer_id IS NOT NULL AND response_body IS NOT NULL
            AND refusal_status IS NULL AND refusal_code IS NULL AND refusal_detail IS NULL
        ELSE transfer_id IS NULL AND response_body IS NULL
            AND refusal_status IS NOT NULL AND refusal_code IS NOT NULL AND refusal_detail IS NOT NULL
    END)
) STRICT;
INSERT INTO idempotency_outcomes (owner_subject, key, request_fingerprint, outcome, transfer_id, response_body)
    SELECT owner_subject, key, request_fingerprint, 'executed', transfer_id, response_body FROM idempotency_keys;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_outcomes RENAME TO idempotency_keys;
