-- The durable mail outbox, and indexes for the one-time tokens' resend cooldown and for the
-- purges of ended sessions and spent or expired tokens. The same tables, columns and rules as
-- migrations/sqlite, in native types.

-- One row per message, written by a store's journal in the transaction of the change that
-- caused it, and delivered later by the worker (`Outbox::claim`, `mark_sent`, `mark_failed`).
-- `kind` is `MailKind::as_str` and has no CHECK: the adapter gives up a row of unknown kind when it
-- reads it, so a new kind needs no migration. `payload` holds the sealed message (encrypted
-- by the service, so a copy of the database does not hand out the tokens in it) until it is
-- delivered, then NULL. A message is pending while neither `sent_at` nor `failed_at` (given
-- up) is set; it is due once `next_attempt_at` has come and no lease (`lease_until`) runs.
CREATE TABLE outbox (
    id              uuid        PRIMARY KEY,
    kind            text        NOT NULL,
    created_at      timestamptz NOT NULL,
    payload         bytea,
    attempts        integer     NOT NULL DEFAULT 0
                    CONSTRAINT outbox_attempts_check CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL,
    lease_until     timestamptz,
    sent_at         timestamptz,
    failed_at       timestamptz,
    last_error      text,
    CONSTRAINT outbox_payload_check CHECK (sent_at IS NOT NULL OR payload IS NOT NULL)
);

-- `claim` (`... ORDER BY created_at, id LIMIT n FOR UPDATE SKIP LOCKED`): the pending
-- messages alone, oldest first, so a claim reads the front of a small index however many
-- delivered messages are kept; `status` counts from it too.
CREATE INDEX outbox_pending_idx ON outbox (created_at, id)
    WHERE sent_at IS NULL AND failed_at IS NULL;
-- `purge_before` (delivered or given up before an instant) and `status` (given up since one).
CREATE INDEX outbox_sent_at_idx ON outbox (sent_at) WHERE sent_at IS NOT NULL;
CREATE INDEX outbox_failed_at_idx ON outbox (failed_at) WHERE failed_at IS NOT NULL;

-- The resend cooldown of `issue_action_token` (a token of this user and purpose created at or
-- after an instant?). It serves the foreign key's cascade as well, so it replaces the index
-- on `user_id` alone.
CREATE INDEX action_tokens_cooldown_idx ON action_tokens (user_id, purpose, created_at);
DROP INDEX action_tokens_user_id_idx;
-- `purge_action_tokens`: spent or expired before an instant.
CREATE INDEX action_tokens_used_at_idx ON action_tokens (used_at) WHERE used_at IS NOT NULL;
CREATE INDEX action_tokens_expires_at_idx ON action_tokens (expires_at);

-- `purge_ended`: sessions expired before an instant (those revoked before one are found
-- through `sessions_revoked_at_idx`); their refresh tokens through
-- `refresh_tokens_session_id_idx`.
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
