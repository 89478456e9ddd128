-- Reverses up.sql. pg_trgm stays installed: up.sql creates it only IF NOT EXISTS, so it may
-- have been there before, and other objects of this database may use it.
DROP INDEX users_created_at_idx;
DROP INDEX users_search_trgm_idx;
ALTER TABLE sessions DROP COLUMN tenant_id;
DROP TABLE audit_events;
DROP TABLE memberships;
DROP TABLE tenants;
