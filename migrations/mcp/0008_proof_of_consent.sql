-- Proof of consent (src/mcp/consent) and who acted: what shows, offline, that the holder approved
-- exactly the transfer that was executed.

-- The server's signed receipt of a completed transfer (compact JWS), written in the transaction that
-- records the completion.
ALTER TABLE transfer_intents ADD COLUMN server_receipt TEXT;

-- The approval as it arrived: the provider-signed access token (consumed by the bank by the time it is
-- read back, and expired soon after), the provider's key set as fetched to check it, and the outcome of
-- that check. docs/security.md says why keeping a consumed token is safe.
CREATE TABLE consent_evidence (
    intent_id        TEXT PRIMARY KEY,
    provider_issuer  TEXT NOT NULL,
    audience         TEXT,
    provider_token   TEXT NOT NULL,
    provider_jwks    TEXT,
    token_jti        TEXT,
    -- Why the token does not attest the approval; NULL when it does.
    problem          TEXT,
    approved_at_ms   INTEGER NOT NULL
) STRICT;

-- The MCP client that asked for a transfer, and that acted in each audit entry: the OAuth client id
-- its access token named, or "<name> (declared)" as it introduced itself at initialize.
ALTER TABLE transfer_intents ADD COLUMN client TEXT;
ALTER TABLE audit_entries ADD COLUMN client TEXT;

-- Every server's public signing key (a JWK), registered at start, so that any replica can put the key
-- of whichever replica signed a receipt into an evidence pack. Public keys only: whether a key is
-- trusted is decided by the verifier, never by this table.
CREATE TABLE server_keys (
    kid               TEXT PRIMARY KEY,
    jwk               TEXT NOT NULL,
    registered_at_ms  INTEGER NOT NULL
) STRICT;
