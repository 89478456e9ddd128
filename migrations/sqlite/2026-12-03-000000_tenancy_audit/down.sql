-- Reverses up.sql.
DROP INDEX users_created_at_idx;
ALTER TABLE sessions DROP COLUMN tenant_id;
DROP TABLE audit_events;
DROP TABLE memberships;
DROP TABLE tenants;
