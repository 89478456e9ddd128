-- Tenants, memberships and the audit trail; the tenant scope of a session; indexes for the
-- administrators' user search. The same tables, columns and rules as migrations/sqlite, in
-- native types.

CREATE TABLE tenants (
    id          uuid        PRIMARY KEY,
    name        text        NOT NULL,
    -- `[a-z0-9-]{3,63}`, checked by the domain (`TenantSlug::parse`); unique through
    -- `tenants_slug_key`, which the adapter maps to `Duplicate(Slug)`.
    slug        text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    domain      text        NOT NULL DEFAULT '',
    settings    jsonb       NOT NULL DEFAULT '{}'
                CONSTRAINT tenants_settings_check CHECK (jsonb_typeof(settings) = 'object'),
    is_active   boolean     NOT NULL DEFAULT TRUE,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    version     bigint      NOT NULL DEFAULT 1
);

CREATE UNIQUE INDEX tenants_slug_key ON tenants (slug);
-- Listing pages, oldest first.
CREATE INDEX tenants_created_at_idx ON tenants (created_at, id);

CREATE TABLE memberships (
    tenant_id  uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       text        NOT NULL
               CONSTRAINT memberships_role_check
               CHECK (role IN ('admin', 'moderator', 'member', 'viewer')),
    created_at timestamptz NOT NULL,
    CONSTRAINT memberships_pkey PRIMARY KEY (tenant_id, user_id)
);

-- A user's tenants, and the cascade when a user is deleted.
CREATE INDEX memberships_user_id_idx ON memberships (user_id);

-- Append-only. No foreign keys: a deleted user's or tenant's events stay, with their ids.
CREATE TABLE audit_events (
    id          uuid        PRIMARY KEY,
    at          timestamptz NOT NULL,
    actor_id    uuid,
    tenant_id   uuid,
    action      text        NOT NULL,
    target_type text,
    target_id   uuid,
    ip          text,
    request_id  text,
    details     jsonb       NOT NULL DEFAULT '{}'
                CONSTRAINT audit_events_details_check CHECK (jsonb_typeof(details) = 'object')
);

-- Newest first, overall and per filter; retention deletes from the old end of the first.
CREATE INDEX audit_events_at_idx ON audit_events (at, id);
CREATE INDEX audit_events_tenant_idx ON audit_events (tenant_id, at);
CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, at);
CREATE INDEX audit_events_target_idx ON audit_events (target_id, at);

-- The tenant a session's tokens are scoped to; no foreign key (a refresh re-checks it).
ALTER TABLE sessions ADD COLUMN tenant_id uuid;

-- The administrators' user search: `q` is a case-insensitive substring of any of the four
-- fields, answered by one trigram index over this exact expression (the adapter's query
-- repeats it verbatim, so the planner can use the index).
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX users_search_trgm_idx ON users USING gin (
    (lower(email) || ' ' || lower(username) || ' ' || lower(first_name) || ' ' || lower(last_name))
    gin_trgm_ops
);
-- The default order of the list.
CREATE INDEX users_created_at_idx ON users (created_at, id);
