-- Schema versions, SQLite dialect (keep equivalent to
-- ../postgres/0004_schema_versions.sql). Admins add procedure schemas and the
-- document catalogue as versions; a version is never changed or deleted, so
-- every stored check can be re-run with exactly the text it was made with.

-- One stored version of a subject: a procedure (its base schema and tenant
-- overlays) or the shared document catalogue (subject 'catalogue').
CREATE TABLE schema_versions (
    -- '<subject>@<number>', e.g. 'uvg@3'; what cases and the audit log record.
    version_id   TEXT PRIMARY KEY NOT NULL,
    subject      TEXT NOT NULL,
    number       INTEGER NOT NULL CHECK (number >= 1),
    -- The version the author wrote into the file ([procedure] / [catalogue] version).
    label        TEXT NOT NULL,
    -- SHA-256 (hex) of the source texts; the same texts are the same version.
    content_hash TEXT NOT NULL,
    -- The source files: {"procedure": {origin, text}, "overlays": [...], "catalogue": …}.
    sources      TEXT NOT NULL CHECK (json_valid(sources)),
    author       TEXT NOT NULL,
    comment      TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    UNIQUE (subject, number),
    UNIQUE (subject, content_hash)
) STRICT;

-- Which version serves which tenant; tenant '' serves every tenant that has
-- no activation of its own. The history of activations is in the audit log.
CREATE TABLE schema_activations (
    subject      TEXT NOT NULL,
    tenant       TEXT NOT NULL,
    version_id   TEXT NOT NULL REFERENCES schema_versions (version_id),
    activated_at TEXT NOT NULL,
    activated_by TEXT NOT NULL,
    PRIMARY KEY (subject, tenant)
) STRICT;

CREATE TRIGGER schema_versions_no_update BEFORE UPDATE ON schema_versions
BEGIN
    SELECT RAISE(ABORT, 'schema_versions is append-only');
END;

CREATE TRIGGER schema_versions_no_delete BEFORE DELETE ON schema_versions
BEGIN
    SELECT RAISE(ABORT, 'schema_versions is append-only');
END;
