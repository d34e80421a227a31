-- Caseworker review, PostgreSQL dialect (keep equivalent to
-- ../sqlite/0003_review.sql): accounts and sessions, claims, corrections,
-- approved letters, and the uploaded documents' bytes for page images.

-- Who works on a case now; a claim keeps two people from editing one draft.
ALTER TABLE cases ADD COLUMN assignee TEXT;
ALTER TABLE cases ADD COLUMN claimed_at TIMESTAMPTZ;
-- When the first bundle of the case arrived (the application's date of receipt).
ALTER TABLE cases ADD COLUMN received_at TIMESTAMPTZ;
UPDATE cases SET received_at = (SELECT MIN(b.received_at) FROM bundles b WHERE b.case_id = cases.case_id);

-- The review queue: open cases of a tenant, oldest received first.
CREATE INDEX cases_queue ON cases (tenant, review_status, received_at, case_id);
CREATE INDEX cases_by_assignee ON cases (assignee);

-- The check report a draft was made from (corrections re-run the check, so
-- a draft's report can differ from its bundle's), who made the draft and
-- who decided on it.
ALTER TABLE drafts ADD COLUMN report JSONB;
ALTER TABLE drafts ADD COLUMN created_by TEXT NOT NULL DEFAULT 'worker';
ALTER TABLE drafts ADD COLUMN decided_by TEXT;
ALTER TABLE drafts ADD COLUMN decided_at TIMESTAMPTZ;
-- The reason of a rejection.
ALTER TABLE drafts ADD COLUMN decision_note TEXT;
UPDATE drafts SET report = (SELECT b.report FROM bundles b WHERE b.bundle_id = drafts.bundle_id);

-- Local accounts. Passwords only as Argon2id PHC strings.
CREATE TABLE users (
    username      TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    -- The Landkreis whose cases this account sees.
    tenant        TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('caseworker', 'admin', 'auditor')),
    password_hash TEXT NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMPTZ NOT NULL
);

-- Sign-in sessions and API tokens. Only the SHA-256 of the token is kept,
-- so a copy of the database does not hand out sessions.
CREATE TABLE sessions (
    token_hash   TEXT PRIMARY KEY,
    username     TEXT NOT NULL REFERENCES users (username),
    -- `browser` (cookie + CSRF token) or `api` (bearer token).
    kind         TEXT NOT NULL CHECK (kind IN ('browser', 'api')),
    csrf_token   TEXT NOT NULL,
    label        TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL
);

CREATE INDEX sessions_by_user ON sessions (username);

-- Failed sign-ins per account and per client address, for throttling.
CREATE TABLE login_throttle (
    key          TEXT PRIMARY KEY,
    failures     BIGINT NOT NULL,
    window_start TIMESTAMPTZ NOT NULL,
    locked_until TIMESTAMPTZ
);

-- A caseworker's correction of a segment's document type. The check of the
-- case re-runs with every correction of the case applied, in id order.
CREATE TABLE corrections (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id       TEXT NOT NULL REFERENCES cases (case_id),
    -- The upload: its bundle and its document_id within that bundle.
    bundle_id     TEXT NOT NULL,
    document_id   TEXT NOT NULL,
    first_page    BIGINT NOT NULL,
    doc_type      TEXT NOT NULL,
    previous_type TEXT NOT NULL,
    username      TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);

CREATE INDEX corrections_by_case ON corrections (case_id, id);

-- Approved letters as rendered. One per draft: approving twice cannot make two.
CREATE TABLE letters (
    draft_id    BIGINT PRIMARY KEY REFERENCES drafts (draft_id),
    case_id     TEXT NOT NULL REFERENCES cases (case_id),
    pdf         BYTEA NOT NULL,
    sha256      TEXT NOT NULL,
    approved_by TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE INDEX letters_by_case ON letters (case_id);

-- The uploaded files, by the SHA-256 of their bytes, for page images in
-- the review UI; shared by every document with the same content.
CREATE TABLE document_contents (
    sha256     TEXT PRIMARY KEY,
    content    BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- Texts an audit entry refers to by hash (e.g. the diff of a letter edit,
-- which holds personal data): the chained entry keeps only the hash, so the
-- text can be erased after its retention period without breaking the chain.
CREATE TABLE audit_attachments (
    sha256     TEXT PRIMARY KEY,
    content    TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
