-- nachweis store schema, SQLite dialect. Keep equivalent to
-- ../postgres/0001_initial.sql: the same tables, columns, constraints and
-- indexes, with TEXT timestamps (fixed-width RFC 3339, UTC, microseconds,
-- so they sort as text) and TEXT JSON checked by json_valid.

-- One application; late bundles add to an existing case.
CREATE TABLE cases (
    case_id        TEXT PRIMARY KEY NOT NULL,
    procedure      TEXT NOT NULL,
    tenant         TEXT,
    -- The verdict of the newest bundle's check.
    verdict        TEXT NOT NULL
        CHECK (verdict IN ('complete', 'incomplete', 'needs_review')),
    review_status  TEXT NOT NULL
        CHECK (review_status IN ('pending_review', 'approved', 'rejected', 'closed_complete', 'superseded')),
    schema_version TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
) STRICT;

-- `nachweis cases` and the review queue list newest first, per tenant and status.
CREATE INDEX cases_by_updated ON cases (updated_at DESC, case_id);
CREATE INDEX cases_by_tenant_status ON cases (tenant, review_status, updated_at DESC);

-- One received bundle. bundle_id is the idempotency key.
CREATE TABLE bundles (
    bundle_id      TEXT PRIMARY KEY NOT NULL,
    case_id        TEXT NOT NULL REFERENCES cases (case_id),
    received_at    TEXT NOT NULL,
    manifest       TEXT NOT NULL CHECK (json_valid(manifest)),
    report         TEXT NOT NULL CHECK (json_valid(report)),
    verdict        TEXT NOT NULL
        CHECK (verdict IN ('complete', 'incomplete', 'needs_review')),
    schema_version TEXT NOT NULL,
    recorded_at    TEXT NOT NULL
) STRICT;

CREATE INDEX bundles_by_case ON bundles (case_id, received_at, recorded_at, bundle_id);

-- Document metadata and extraction result; position keeps manifest order.
CREATE TABLE documents (
    bundle_id     TEXT NOT NULL REFERENCES bundles (bundle_id),
    document_id   TEXT NOT NULL,
    position      INTEGER NOT NULL,
    filename      TEXT NOT NULL,
    media_type    TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    declared_type TEXT,
    location      TEXT,
    extracted     TEXT NOT NULL CHECK (json_valid(extracted)),
    PRIMARY KEY (bundle_id, document_id),
    UNIQUE (bundle_id, position)
) STRICT;

-- Draft versions of a case: the review queue.
CREATE TABLE drafts (
    draft_id   INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id    TEXT NOT NULL REFERENCES cases (case_id),
    -- The bundle whose check produced this draft.
    bundle_id  TEXT NOT NULL REFERENCES bundles (bundle_id),
    version    INTEGER NOT NULL CHECK (version >= 1),
    kind       TEXT NOT NULL,
    text       TEXT NOT NULL,
    body       TEXT NOT NULL CHECK (json_valid(body)),
    status     TEXT NOT NULL
        CHECK (status IN ('pending_review', 'approved', 'rejected', 'superseded')),
    created_at TEXT NOT NULL,
    UNIQUE (case_id, version)
) STRICT;

-- At most one draft per case waits for review; only its approval may release a letter.
CREATE UNIQUE INDEX drafts_one_pending_per_case ON drafts (case_id) WHERE status = 'pending_review';
CREATE INDEX drafts_by_status ON drafts (status, created_at);

-- Append-only, hash-chained audit trail (no personal data in detail).
-- ids are assigned from audit_head and have no gaps; a UNIQUE prev_hash
-- makes a forked chain impossible to store.
CREATE TABLE audit_log (
    id             INTEGER PRIMARY KEY,
    at             TEXT NOT NULL,
    actor          TEXT NOT NULL,
    action         TEXT NOT NULL,
    case_id        TEXT,
    bundle_id      TEXT,
    schema_version TEXT,
    detail         TEXT NOT NULL CHECK (json_valid(detail)),
    prev_hash      TEXT NOT NULL UNIQUE,
    hash           TEXT NOT NULL UNIQUE
) STRICT;

CREATE INDEX audit_log_by_case ON audit_log (case_id, id);

-- The chain head: one row, read and advanced inside every appending
-- transaction. It also reveals a truncated tail.
CREATE TABLE audit_head (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    last_id   INTEGER NOT NULL,
    last_hash TEXT NOT NULL
) STRICT;

INSERT INTO audit_head (singleton, last_id, last_hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
