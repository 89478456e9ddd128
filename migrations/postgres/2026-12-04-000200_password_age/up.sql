-- When each user's password was last set (at creation, by a change, by a reset), for
-- `UMS_PASSWORD_MAX_AGE_DAYS`.
ALTER TABLE users ADD COLUMN password_changed_at timestamptz;

-- The existing users: the latest password change or reset the audit trail still holds,
-- else the account's creation (GREATEST ignores the NULL of a user with no such event).
-- `updated_at` would be no better: any profile change moves it, so it would grant a password
-- that was never changed a new lease of life.
UPDATE users u
SET password_changed_at = GREATEST(
    u.created_at,
    (SELECT max(a.at) FROM audit_events a
     WHERE a.target_type = 'user' AND a.target_id = u.id
       AND a.action IN ('user.password_changed', 'user.password_reset'))
);

ALTER TABLE users ALTER COLUMN password_changed_at SET NOT NULL;
-- For inserts by a previous release during a rolling deploy (they do not name the column):
-- a new user's password was set now. This release always writes it.
ALTER TABLE users ALTER COLUMN password_changed_at SET DEFAULT now();
