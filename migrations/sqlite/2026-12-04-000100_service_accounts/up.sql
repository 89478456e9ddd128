-- Service accounts: the credentials other services (resource servers) authenticate with, by
-- HTTP Basic, to introspect access tokens. Only the SHA-256 digest of a secret is stored (the
-- CHECK admits nothing else). Timestamps are BIGINT microseconds since the Unix epoch (UTC),
-- ids hyphenated UUID text, as in the first migration.

CREATE TABLE service_accounts (
    id           TEXT   PRIMARY KEY NOT NULL,
    -- `[A-Za-z0-9_.-]{3,64}`, checked by the domain (`ServiceAccountName::parse`); unique
    -- regardless of case through `service_accounts_name_key`, which the adapter maps to
    -- `Duplicate(ServiceAccountName)`.
    name         TEXT   NOT NULL,
    description  TEXT   NOT NULL DEFAULT '',
    -- Public, `ums_sa_` and random URL-safe characters.
    client_id    TEXT   NOT NULL,
    -- Lower-case hex SHA-256 of the secret.
    secret_hash  TEXT   NOT NULL
                 CHECK (length(secret_hash) = 64 AND secret_hash NOT GLOB '*[^0-9a-f]*'),
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT
);

CREATE UNIQUE INDEX service_accounts_name_key ON service_accounts (lower(name));
-- Authentication looks accounts up by client id.
CREATE UNIQUE INDEX service_accounts_client_id_key ON service_accounts (client_id);
-- Listing pages, oldest first.
CREATE INDEX service_accounts_created_at_idx ON service_accounts (created_at, id);
