-- What the money policy's limits left when the intent was recorded (e.g. "daily_total: 40.00 of 100.00 USD
-- left in 24 hours"), reported with the transfer's status. NULL: no limit on recent use counted.
ALTER TABLE transfer_intents ADD COLUMN policy_note TEXT;
