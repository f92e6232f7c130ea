-- Ping mode: the SHA-256 of the client_notification_token sent with an intent's approval request, so
-- a server that takes the intent over still recognises the provider's ping for it.
ALTER TABLE transfer_intents ADD COLUMN ping_digest BLOB CHECK (ping_digest IS NULL OR length(ping_digest) = 32);
CREATE INDEX transfer_intents_by_ping ON transfer_intents(ping_digest) WHERE ping_digest IS NOT NULL;
