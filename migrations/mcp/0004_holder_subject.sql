-- The holder's subject at the provider (the CIBA login_hint), when it differs from `owner`, their
-- user id at the bank (mcp.oauth.holder_claim). NULL: the same as `owner`, as for every intent made
-- before holders signed in.
ALTER TABLE transfer_intents ADD COLUMN holder_subject TEXT;
