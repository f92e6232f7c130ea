-- A resent /bc-authorize is answered with the request it repeats. The key fingerprints every
-- parameter of a request whose authorization_details carry an intentId; NULL for the others.
ALTER TABLE backchannel_requests ADD COLUMN retry_key TEXT;
CREATE INDEX backchannel_requests_retry ON backchannel_requests(client_id, retry_key) WHERE retry_key IS NOT NULL;
