-- Tenants, memberships and the audit trail; the tenant scope of a session; indexes for the
-- administrators' user search. Timestamps are BIGINT microseconds since the Unix epoch (UTC),
-- ids hyphenated UUID text, as in the first migration.

CREATE TABLE tenants (
    id          TEXT    PRIMARY KEY NOT NULL,
    name        TEXT    NOT NULL,
    -- `[a-z0-9-]{3,63}`, checked by the domain (`TenantSlug::parse`); unique through
    -- `tenants_slug_key`, which the adapter maps to `Duplicate(Slug)`.
    slug        TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    domain      TEXT    NOT NULL DEFAULT '',
    settings    TEXT    NOT NULL DEFAULT '{}'
                CHECK (json_valid(settings) AND json_type(settings) = 'object'),
    is_active   BOOLEAN NOT NULL DEFAULT TRUE CHECK (is_active IN (0, 1)),
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    version     BIGINT  NOT NULL DEFAULT 1
);

CREATE UNIQUE INDEX tenants_slug_key ON tenants (slug);
-- Listing pages, oldest first.
CREATE INDEX tenants_created_at_idx ON tenants (created_at, id);

CREATE TABLE memberships (
    tenant_id  TEXT   NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id    TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT   NOT NULL CHECK (role IN ('admin', 'moderator', 'member', 'viewer')),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);

-- A user's tenants, and the cascade when a user is deleted.
CREATE INDEX memberships_user_id_idx ON memberships (user_id);

-- Append-only. No foreign keys: a deleted user's or tenant's events stay, with their ids.
CREATE TABLE audit_events (
    id          TEXT   PRIMARY KEY NOT NULL,
    at          BIGINT NOT NULL,
    actor_id    TEXT,
    tenant_id   TEXT,
    action      TEXT   NOT NULL,
    target_type TEXT,
    target_id   TEXT,
    ip          TEXT,
    request_id  TEXT,
    details     TEXT   NOT NULL DEFAULT '{}'
                CHECK (json_valid(details) AND json_type(details) = 'object')
);

-- Newest first, overall and per filter; retention deletes from the old end of the first.
CREATE INDEX audit_events_at_idx ON audit_events (at, id);
CREATE INDEX audit_events_tenant_idx ON audit_events (tenant_id, at);
CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, at);
CREATE INDEX audit_events_target_idx ON audit_events (target_id, at);

-- The tenant a session's tokens are scoped to; no foreign key (a refresh re-checks it).
ALTER TABLE sessions ADD COLUMN tenant_id TEXT;

-- The default order of the administrators' user list. The `q` substring search scans (SQLite
-- has no trigram index); see README "Scale".
CREATE INDEX users_created_at_idx ON users (created_at, id);
