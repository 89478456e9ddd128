-- Reverses up.sql.
DROP INDEX memberships_tenant_created_idx;
DROP INDEX audit_events_action_idx;
DROP INDEX audit_events_target_idx;
DROP INDEX audit_events_actor_idx;
DROP INDEX audit_events_tenant_idx;
CREATE INDEX audit_events_tenant_idx ON audit_events (tenant_id, at);
CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, at);
CREATE INDEX audit_events_target_idx ON audit_events (target_id, at);
