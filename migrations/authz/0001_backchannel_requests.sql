-- CIBA authentication requests of the embedded authorization server. They outlive restarts.

CREATE TABLE backchannel_requests (
    auth_req_id                TEXT PRIMARY KEY,
    client_id                  TEXT NOT NULL,
    subject                    TEXT NOT NULL,
    scope                      TEXT NOT NULL,
    audience                   TEXT,
    binding_message            TEXT NOT NULL,
    -- The request's authorization_details as a JSON array, copied verbatim into the access token.
    authorization_details      TEXT,
    -- Set for ping clients only: the bearer token the ping is sent with.
    client_notification_token  TEXT,
    created_at                 INTEGER NOT NULL,
    expires_at                 INTEGER NOT NULL,
    interval_seconds           INTEGER NOT NULL,
    last_polled_at_ms          INTEGER,
    status                     TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
    decided_at                 INTEGER,
    -- 1 once tokens were issued: an auth_req_id is exchanged at most once.
    redeemed                   INTEGER NOT NULL DEFAULT 0 CHECK (redeemed IN (0, 1)),
    -- 1 once the ping for the outcome was sent (or given up on).
    notified                   INTEGER NOT NULL DEFAULT 0 CHECK (notified IN (0, 1))
) STRICT;
CREATE INDEX backchannel_requests_pending ON backchannel_requests(subject, status, expires_at);
CREATE INDEX backchannel_requests_unnotified ON backchannel_requests(notified, status);
