-- Which server process is waiting on a pending intent, and until when its claim holds. A process
-- renews its lease while it waits; when it stops, another process (or the restarted one) takes the
-- intent over once the lease has run out, so an approval given meanwhile still executes.
ALTER TABLE transfer_intents ADD COLUMN runner TEXT;
ALTER TABLE transfer_intents ADD COLUMN lease_until_ms INTEGER;
