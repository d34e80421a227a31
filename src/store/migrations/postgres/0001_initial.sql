-- nachweis store schema, PostgreSQL dialect. Keep equivalent to
-- ../sqlite/0001_initial.sql: the same tables, columns, constraints and indexes.

-- One application; late bundles add to an existing case.
CREATE TABLE cases (
    case_id        TEXT PRIMARY KEY,
    procedure      TEXT NOT NULL,
    tenant         TEXT,
    -- The verdict of the newest bundle's check.
    verdict        TEXT NOT NULL
        CHECK (verdict IN ('complete', 'incomplete', 'needs_review')),
    review_status  TEXT NOT NULL
        CHECK (review_status IN ('pending_review', 'approved', 'rejected', 'closed_complete', 'superseded')),
    schema_version TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);

-- `nachweis cases` and the review queue list newest first, per tenant and status.
CREATE INDEX cases_by_updated ON cases (updated_at DESC, case_id);
CREATE INDEX cases_by_tenant_status ON cases (tenant, review_status, updated_at DESC);

-- One received bundle. bundle_id is the idempotency key.
CREATE TABLE bundles (
    bundle_id      TEXT PRIMARY KEY,
    case_id        TEXT NOT NULL REFERENCES cases (case_id),
    received_at    TIMESTAMPTZ NOT NULL,
    manifest       JSONB NOT NULL,
    report         JSONB NOT NULL,
    verdict        TEXT NOT NULL
        CHECK (verdict IN ('complete', 'incomplete', 'needs_review')),
    schema_version TEXT NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL
);

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
    extracted     JSONB NOT NULL,
    PRIMARY KEY (bundle_id, document_id),
    UNIQUE (bundle_id, position)
);

-- Draft versions of a case: the review queue.
CREATE TABLE drafts (
    draft_id   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id    TEXT NOT NULL REFERENCES cases (case_id),
    -- The bundle whose check produced this draft.
    bundle_id  TEXT NOT NULL REFERENCES bundles (bundle_id),
    version    BIGINT NOT NULL CHECK (version >= 1),
    kind       TEXT NOT NULL,
    text       TEXT NOT NULL,
    body       JSONB NOT NULL,
    status     TEXT NOT NULL
        CHECK (status IN ('pending_review', 'approved', 'rejected', 'superseded')),
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (case_id, version)
);

-- At most one draft per case waits for review; only its approval may release a letter.
CREATE UNIQUE INDEX drafts_one_pending_per_case ON drafts (case_id) WHERE status = 'pending_review';
CREATE INDEX drafts_by_status ON drafts (status, created_at);

-- Append-only, hash-chained audit trail (no personal data in detail).
-- ids are assigned from audit_head and have no gaps; a UNIQUE prev_hash
-- makes a forked chain impossible to store.
CREATE TABLE audit_log (
    id             BIGINT PRIMARY KEY,
    at             TIMESTAMPTZ NOT NULL,
    actor          TEXT NOT NULL,
    action         TEXT NOT NULL,
    case_id        TEXT,
    bundle_id      TEXT,
    schema_version TEXT,
    detail         JSONB NOT NULL,
    prev_hash      TEXT NOT NULL UNIQUE,
    hash           TEXT NOT NULL UNIQUE
);

CREATE INDEX audit_log_by_case ON audit_log (case_id, id);

-- The chain head: one row, locked (SELECT ... FOR UPDATE) and advanced inside
-- every appending transaction, so concurrent workers append one after the
-- other and the chain never forks. It also reveals a truncated tail.
CREATE TABLE audit_head (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    last_id   BIGINT NOT NULL,
    last_hash TEXT NOT NULL
);

INSERT INTO audit_head (singleton, last_id, last_hash)
VALUES (TRUE, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE FUNCTION audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
