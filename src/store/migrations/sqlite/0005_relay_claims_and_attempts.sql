-- Outbox claims and the delivery-attempt journal, SQLite dialect (keep
-- equivalent to ../postgres/0005_relay_claims_and_attempts.sql).

-- Several workers run an outbox relay each. A relay claims a batch of
-- unpublished events for a lease (claim_events), so two relays do not
-- publish the same event in the normal case; a relay that dies leaves its
-- claims to expire. Publication stays at-least-once.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claimed_until TEXT;

-- Processing starts of queue messages that have not finished yet, keyed by
-- the SHA-256 of the message body (no personal data). A worker that dies
-- mid-bundle leaves its start here; a message whose starts keep not
-- finishing is dead-lettered by the worker after a bounded number, while
-- messages that were only prefetched beside it are never counted.
CREATE TABLE delivery_attempts (
    message_key TEXT PRIMARY KEY,
    started     INTEGER NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;
