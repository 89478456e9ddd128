-- UMS schema for PostgreSQL: users, login sessions, their rotating refresh tokens, and one-time
-- e-mailed action tokens. The same tables, columns and rules as migrations/sqlite, in native
-- types: uuid ids, timestamptz instants (kept to the microsecond), a jsonb preferences object,
-- boolean flags and a bigint version. Only digests of tokens are ever stored.

CREATE TABLE users (
    id             uuid        PRIMARY KEY,
    -- Stored lower-cased by the domain (`Email::parse`); unique through `users_email_key`.
    email          text        NOT NULL,
    -- Stored as given; unique regardless of case through `users_username_key`.
    username       text        NOT NULL,
    password_hash  text        NOT NULL,
    first_name     text        NOT NULL DEFAULT '',
    last_name      text        NOT NULL DEFAULT '',
    role           text        NOT NULL DEFAULT 'user'
                   CONSTRAINT users_role_check CHECK (role IN ('admin', 'user')),
    is_active      boolean     NOT NULL DEFAULT TRUE,
    email_verified boolean     NOT NULL DEFAULT FALSE,
    preferences    jsonb       NOT NULL DEFAULT '{}'
                   CONSTRAINT users_preferences_check CHECK (jsonb_typeof(preferences) = 'object'),
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    last_login_at  timestamptz,
    version        bigint      NOT NULL DEFAULT 1
);

-- The adapter maps a unique violation of these two (by constraint name) to
-- `Duplicate(Email)` / `Duplicate(Username)`. Logins are looked up through them, with the same
-- `lower(...)` expression.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

CREATE TABLE sessions (
    id           uuid        PRIMARY KEY,
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    -- As the client sent them, truncated by the caller; not `inet`, so any text round-trips.
    user_agent   text,
    ip           text
);

CREATE INDEX sessions_user_id_idx ON sessions (user_id);
-- For `revoked_since`, which rebuilds the revocation list at start-up.
CREATE INDEX sessions_revoked_at_idx ON sessions (revoked_at);

CREATE TABLE refresh_tokens (
    token_hash text        PRIMARY KEY,
    session_id uuid        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at  timestamptz NOT NULL,
    used_at    timestamptz
);

-- Without it, deleting a session scans every refresh token to cascade.
CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);

CREATE TABLE action_tokens (
    token_hash text        PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    text        NOT NULL
               CONSTRAINT action_tokens_purpose_check
               CHECK (purpose IN ('verify_email', 'reset_password')),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);

-- Without it, deleting a user scans every action token to cascade.
CREATE INDEX action_tokens_user_id_idx ON action_tokens (user_id);
