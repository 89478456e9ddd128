-- UMS schema for SQLite: users, login sessions, their rotating refresh tokens, and one-time
-- e-mailed action tokens. Every timestamp is BIGINT microseconds since the Unix epoch (UTC).
-- Ids are hyphenated UUID text. Only digests of tokens are ever stored.

CREATE TABLE users (
    id             TEXT    PRIMARY KEY NOT NULL,
    -- Stored lower-cased by the domain (`Email::parse`), so a plain unique index is
    -- case-insensitive in effect.
    email          TEXT    NOT NULL,
    -- Stored as given; unique regardless of case through `users_username_key`.
    username       TEXT    NOT NULL,
    password_hash  TEXT    NOT NULL,
    first_name     TEXT    NOT NULL DEFAULT '',
    last_name      TEXT    NOT NULL DEFAULT '',
    role           TEXT    NOT NULL DEFAULT 'user' CHECK (role IN ('admin', 'user')),
    is_active      BOOLEAN NOT NULL DEFAULT TRUE CHECK (is_active IN (0, 1)),
    email_verified BOOLEAN NOT NULL DEFAULT FALSE CHECK (email_verified IN (0, 1)),
    preferences    TEXT    NOT NULL DEFAULT '{}'
                   CHECK (json_valid(preferences) AND json_type(preferences) = 'object'),
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL,
    last_login_at  BIGINT,
    version        BIGINT  NOT NULL DEFAULT 1
);

-- The adapter recognises these two names (and the columns they cover) in constraint errors
-- and reports them as `Duplicate(Email)` / `Duplicate(Username)`.
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

CREATE TABLE sessions (
    id           TEXT   PRIMARY KEY NOT NULL,
    user_id      TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    user_agent   TEXT,
    ip           TEXT
);

CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_revoked_at_idx ON sessions (revoked_at);

CREATE TABLE refresh_tokens (
    token_hash TEXT   PRIMARY KEY NOT NULL,
    session_id TEXT   NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at  BIGINT NOT NULL,
    used_at    BIGINT
);

-- Without it, deleting a session scans every refresh token to cascade.
CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);

CREATE TABLE action_tokens (
    token_hash TEXT   PRIMARY KEY NOT NULL,
    user_id    TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT   NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

-- Without it, deleting a user scans every action token to cascade.
CREATE INDEX action_tokens_user_id_idx ON action_tokens (user_id);
