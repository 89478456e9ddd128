-- When each user's password was last set (at creation, by a change, by a reset), for
-- `UMS_PASSWORD_MAX_AGE_DAYS`. Microseconds since the epoch, as every timestamp here.
--
-- SQLite adds a NOT NULL column only with a constant default; the adapter writes the column
-- on every insert, so the default is never used but by rows written by something else, which
-- it makes as old as can be (a change is required, never waived).
ALTER TABLE users ADD COLUMN password_changed_at BIGINT NOT NULL DEFAULT 0;

-- The existing users: the latest password change or reset the audit trail still holds,
-- else the account's creation. `updated_at` would be no better: any profile change moves it,
-- so it would grant a password that was never changed a new lease of life.
UPDATE users
SET password_changed_at = max(
    created_at,
    coalesce(
        (SELECT max(a.at) FROM audit_events a
         WHERE a.target_type = 'user' AND a.target_id = users.id
           AND a.action IN ('user.password_changed', 'user.password_reset')),
        created_at
    )
);
