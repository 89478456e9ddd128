-- Service accounts: the credentials other services (resource servers) authenticate with, by
-- HTTP Basic, to introspect access tokens. Only the SHA-256 digest of a secret is stored (the
-- CHECK admits nothing else). The same table, columns and rules as migrations/sqlite, in
-- native types.

CREATE TABLE service_accounts (
    id           uuid        PRIMARY KEY,
    -- `[A-Za-z0-9_.-]{3,64}`, checked by the domain (`ServiceAccountName::parse`); unique
    -- regardless of case through `service_accounts_name_key`, which the adapter maps to
    -- `Duplicate(ServiceAccountName)`.
    name         text        NOT NULL,
    description  text        NOT NULL DEFAULT '',
    -- Public, `ums_sa_` and random URL-safe characters.
    client_id    text        NOT NULL,
    -- Lower-case hex SHA-256 of the secret.
    secret_hash  text        NOT NULL
                 CONSTRAINT service_accounts_secret_hash_check
                 CHECK (secret_hash ~ '^[0-9a-f]{64}$'),
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz
);

CREATE UNIQUE INDEX service_accounts_name_key ON service_accounts (lower(name));
-- Authentication looks accounts up by client id.
CREATE UNIQUE INDEX service_accounts_client_id_key ON service_accounts (client_id);
-- Listing pages, oldest first.
CREATE INDEX service_accounts_created_at_idx ON service_accounts (created_at, id);
