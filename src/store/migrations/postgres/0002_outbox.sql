-- Transactional outbox, PostgreSQL dialect (keep equivalent to
-- ../sqlite/0002_outbox.sql). Events are written in the same transaction as
-- the change they report, so a change and its event never diverge; the
-- worker's relay publishes them to the events exchange and sets
-- published_at. Delivery is at-least-once: consumers deduplicate on event_id.
CREATE TABLE outbox (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     TEXT NOT NULL UNIQUE,
    -- Also the routing key on the events exchange (`bundle.checked`, `draft.ready`).
    event_type   TEXT NOT NULL,
    -- Ids, verdicts and versions only; never personal data.
    payload      JSONB NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    published_at TIMESTAMPTZ
);

-- The relay reads the unpublished tail in id order.
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL;
