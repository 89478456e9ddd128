-- An index of the unrevoked sessions alone, for `SessionStore::live_for_user`: logout-all, a
-- password change and a deletion look up the user's live sessions to put them on the
-- revocation fast path. Sessions are never deleted, so `sessions_user_id_idx` holds every
-- session a user ever had; this one holds only those not revoked (expired or not), and stays
-- small however many sessions each user has ended.
CREATE INDEX sessions_live_idx ON sessions (user_id) WHERE revoked_at IS NULL;
