-- Indexes that serve the lists' exact orders, so no page of a large list sorts:
-- - the e-mail and username orders of the user list, by code point (the adapter's
--   `COLLATE "C"`, which the unique lower(...) indexes of the default collation cannot serve);
-- - the audit trail filtered by tenant, actor, target or action, newest first with ties by id;
-- - a tenant's member list, oldest membership first with ties by user.
CREATE INDEX users_email_c_idx ON users ((email COLLATE "C"), id);
CREATE INDEX users_username_c_idx ON users ((lower(username) COLLATE "C"), id);

DROP INDEX audit_events_tenant_idx;
DROP INDEX audit_events_actor_idx;
DROP INDEX audit_events_target_idx;
CREATE INDEX audit_events_tenant_idx ON audit_events (tenant_id, at, id);
CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, at, id);
CREATE INDEX audit_events_target_idx ON audit_events (target_id, at, id);
CREATE INDEX audit_events_action_idx ON audit_events (action, at, id);

CREATE INDEX memberships_tenant_created_idx ON memberships (tenant_id, created_at, user_id);
