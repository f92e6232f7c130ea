-- The reference bank's ledger. Money is INTEGER minor units; balances can never go negative.

CREATE TABLE users (
    subject TEXT PRIMARY KEY,
    name    TEXT NOT NULL,
    email   TEXT NOT NULL UNIQUE
) STRICT;

CREATE TABLE accounts (
    id             TEXT PRIMARY KEY,
    owner_subject  TEXT NOT NULL REFERENCES users(subject),
    name           TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('checking', 'savings')),
    masked_number  TEXT NOT NULL,
    currency       TEXT NOT NULL CHECK (length(currency) = 3),
    balance_minor  INTEGER NOT NULL CHECK (balance_minor >= 0)
) STRICT;
CREATE INDEX accounts_by_owner ON accounts(owner_subject);

-- One row per executed transfer; its two ledger entries sum to zero.
CREATE TABLE transfers (
    id               TEXT PRIMARY KEY,
    owner_subject    TEXT NOT NULL REFERENCES users(subject),
    from_account_id  TEXT NOT NULL REFERENCES accounts(id),
    to_account_id    TEXT NOT NULL REFERENCES accounts(id),
    amount_minor     INTEGER NOT NULL CHECK (amount_minor > 0),
    currency         TEXT NOT NULL,
    memo             TEXT,
    status           TEXT NOT NULL CHECK (status IN ('completed')),
    client_id        TEXT,
    -- The access token that approved it: UNIQUE makes each approval move money at most once.
    token_jti        TEXT NOT NULL UNIQUE,
    created_at_ms    INTEGER NOT NULL,
    CHECK (from_account_id <> to_account_id)
) STRICT;

CREATE TABLE ledger_entries (
    id                   INTEGER PRIMARY KEY,
    transfer_id          TEXT NOT NULL REFERENCES transfers(id),
    account_id           TEXT NOT NULL REFERENCES accounts(id),
    amount_minor         INTEGER NOT NULL CHECK (amount_minor <> 0),
    balance_after_minor  INTEGER NOT NULL CHECK (balance_after_minor >= 0)
) STRICT;
CREATE INDEX ledger_entries_by_transfer ON ledger_entries(transfer_id);

-- Idempotency-Key → the response first given for it, per token subject.
CREATE TABLE idempotency_keys (
    owner_subject        TEXT NOT NULL,
    key                  TEXT NOT NULL,
    request_fingerprint  TEXT NOT NULL,
    transfer_id          TEXT NOT NULL REFERENCES transfers(id),
    response_body        TEXT NOT NULL,
    PRIMARY KEY (owner_subject, key)
) STRICT;
