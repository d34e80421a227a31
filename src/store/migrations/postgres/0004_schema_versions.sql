-- Schema versions, PostgreSQL dialect (keep equivalent to
-- ../sqlite/0004_schema_versions.sql). Admins add procedure schemas and the
-- document catalogue as versions; a version is never changed or deleted, so
-- every stored check can be re-run with exactly the text it was made with.

-- One stored version of a subject: a procedure (its base schema and tenant
-- overlays) or the shared document catalogue (subject 'catalogue').
CREATE TABLE schema_versions (
    -- '<subject>@<number>', e.g. 'uvg@3'; what cases and the audit log record.
    version_id   TEXT PRIMARY KEY,
    subject      TEXT NOT NULL,
    number       BIGINT NOT NULL CHECK (number >= 1),
    -- The version the author wrote into the file ([procedure] / [catalogue] version).
    label        TEXT NOT NULL,
    -- SHA-256 (hex) of the source texts; the same texts are the same version.
    content_hash TEXT NOT NULL,
    -- The source files: {"procedure": {origin, text}, "overlays": [...], "catalogue": …}.
    sources      JSONB NOT NULL,
    author       TEXT NOT NULL,
    comment      TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    UNIQUE (subject, number),
    UNIQUE (subject, content_hash)
);

-- Which version serves which tenant; tenant '' serves every tenant that has
-- no activation of its own. The history of activations is in the audit log.
CREATE TABLE schema_activations (
    subject      TEXT NOT NULL,
    tenant       TEXT NOT NULL,
    version_id   TEXT NOT NULL REFERENCES schema_versions (version_id),
    activated_at TIMESTAMPTZ NOT NULL,
    activated_by TEXT NOT NULL,
    PRIMARY KEY (subject, tenant)
);

CREATE FUNCTION schema_versions_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'schema_versions is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER schema_versions_append_only
    BEFORE UPDATE OR DELETE ON schema_versions
    FOR EACH ROW EXECUTE FUNCTION schema_versions_append_only();
