-- Reverses up.sql.
DROP INDEX sessions_live_idx;
