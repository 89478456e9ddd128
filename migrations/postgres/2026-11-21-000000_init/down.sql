-- Reverses up.sql: children before parents; each table's indexes and constraints go with it.
DROP TABLE action_tokens;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
DROP TABLE users;
