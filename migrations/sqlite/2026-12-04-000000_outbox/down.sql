-- Reverses up.sql.
DROP INDEX sessions_expires_at_idx;
DROP INDEX action_tokens_expires_at_idx;
DROP INDEX action_tokens_used_at_idx;
CREATE INDEX action_tokens_user_id_idx ON action_tokens (user_id);
DROP INDEX action_tokens_cooldown_idx;
DROP TABLE outbox;
