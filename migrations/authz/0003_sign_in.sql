-- Users signing in to MCP clients (authorization code with PKCE): clients registered at /register,
-- authorization codes, and refresh tokens in rotation families. Codes and refresh tokens are kept only
-- as SHA-256 hashes (base64url): the database never holds a credential anyone could present.

CREATE TABLE registered_clients (
    client_id      TEXT PRIMARY KEY,
    client_name    TEXT,
    -- A JSON array of strings, each checked at registration.
    redirect_uris  TEXT NOT NULL,
    created_at     INTEGER NOT NULL
) STRICT;

-- One sign-in: the refresh tokens rotated from one another, revoked together.
CREATE TABLE grant_families (
    family_id   TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL,
    subject     TEXT NOT NULL,
    scope       TEXT NOT NULL,
    resource    TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
) STRICT;

CREATE TABLE authorization_codes (
    code_hash       TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL,
    redirect_uri    TEXT NOT NULL,
    code_challenge  TEXT NOT NULL,
    resource        TEXT NOT NULL,
    scope           TEXT NOT NULL,
    subject         TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    -- Set when exchanged: the family of the tokens issued for it, revoked if the code comes back.
    family_id       TEXT REFERENCES grant_families(family_id)
) STRICT;

CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    family_id   TEXT NOT NULL REFERENCES grant_families(family_id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    -- Set when exchanged for its successor: presenting it again is reuse.
    rotated_at  INTEGER
) STRICT;
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);
