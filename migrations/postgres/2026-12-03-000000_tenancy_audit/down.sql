-- Reverses up.sql (pg_trgm stays installed: other databases' objects may use it, and
-- dropping an extension is the operator's decision).
DROP INDEX users_created_at_idx;
DROP INDEX users_search_trgm_idx;
ALTER TABLE sessions DROP COLUMN tenant_id;
DROP TABLE audit_events;
DROP TABLE memberships;
DROP TABLE tenants;
