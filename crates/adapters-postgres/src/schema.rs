//! Diesel table definitions, written by hand to match `migrations/postgres`.

diesel::table! {
    /// User accounts.
    users (id) {
        /// Identifier (UUID v7).
        id -> Uuid,
        /// Lower-cased e-mail address, unique (`users_email_key` on `lower(email)`).
        email -> Text,
        /// Username as given, unique regardless of case (`users_username_key`).
        username -> Text,
        /// Hasher's self-describing hash.
        password_hash -> Text,
        /// Given name, possibly empty.
        first_name -> Text,
        /// Family name, possibly empty.
        last_name -> Text,
        /// `admin` or `user`.
        role -> Text,
        /// Whether the account may log in.
        is_active -> Bool,
        /// Whether the e-mail address has been proven.
        email_verified -> Bool,
        /// A JSON object.
        preferences -> Jsonb,
        /// Creation time.
        created_at -> Timestamptz,
        /// Last change.
        updated_at -> Timestamptz,
        /// Last login.
        last_login_at -> Nullable<Timestamptz>,
        /// Optimistic-concurrency version.
        version -> Int8,
        /// When the password was last set.
        password_changed_at -> Timestamptz,
    }
}

diesel::table! {
    /// Login sessions.
    sessions (id) {
        /// Identifier, carried in access tokens as `sid`.
        id -> Uuid,
        /// Owner.
        user_id -> Uuid,
        /// Login time.
        created_at -> Timestamptz,
        /// Last login or refresh.
        last_used_at -> Timestamptz,
        /// End of the session's fixed lifetime.
        expires_at -> Timestamptz,
        /// When it was revoked.
        revoked_at -> Nullable<Timestamptz>,
        /// Client's `User-Agent` at login.
        user_agent -> Nullable<Text>,
        /// Client's address at login.
        ip -> Nullable<Text>,
        /// The tenant the session's access tokens are scoped to (no foreign key).
        tenant_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    /// Refresh tokens (digests), each belonging to one session.
    refresh_tokens (token_hash) {
        /// Hex SHA-256 digest.
        token_hash -> Text,
        /// The session the token refreshes.
        session_id -> Uuid,
        /// When it was issued.
        issued_at -> Timestamptz,
        /// When it was spent.
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    /// One-time e-mailed tokens (digests).
    action_tokens (token_hash) {
        /// Hex SHA-256 digest.
        token_hash -> Text,
        /// Whose token it is.
        user_id -> Uuid,
        /// `verify_email` or `reset_password`.
        purpose -> Text,
        /// When it was issued.
        created_at -> Timestamptz,
        /// From this instant on it is refused.
        expires_at -> Timestamptz,
        /// When it was spent.
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    /// Tenants (organisations).
    tenants (id) {
        /// Identifier (UUID v7).
        id -> Uuid,
        /// Display name.
        name -> Text,
        /// Unique URL-safe name (`tenants_slug_key`).
        slug -> Text,
        /// Free text, possibly empty.
        description -> Text,
        /// The organisation's internet domain, possibly empty.
        domain -> Text,
        /// A JSON object.
        settings -> Jsonb,
        /// Whether members may log in scoped to it.
        is_active -> Bool,
        /// Creation time.
        created_at -> Timestamptz,
        /// Last change.
        updated_at -> Timestamptz,
        /// Optimistic-concurrency version.
        version -> Int8,
    }
}

diesel::table! {
    /// Memberships: one role per (tenant, user), primary key `memberships_pkey`.
    memberships (tenant_id, user_id) {
        /// The tenant (cascades on its deletion).
        tenant_id -> Uuid,
        /// The member (cascades on their deletion).
        user_id -> Uuid,
        /// `admin`, `moderator`, `member` or `viewer`.
        role -> Text,
        /// When they joined.
        created_at -> Timestamptz,
    }
}

diesel::table! {
    /// The append-only audit trail; no foreign keys, so events outlive what they name.
    audit_events (id) {
        /// Identifier (UUID v7).
        id -> Uuid,
        /// When it happened.
        at -> Timestamptz,
        /// Who did it.
        actor_id -> Nullable<Uuid>,
        /// The tenant it happened in.
        tenant_id -> Nullable<Uuid>,
        /// The dotted action name.
        action -> Text,
        /// `user`, `tenant` or `session`.
        target_type -> Nullable<Text>,
        /// The target's id.
        target_id -> Nullable<Uuid>,
        /// The client's address.
        ip -> Nullable<Text>,
        /// The request that caused it.
        request_id -> Nullable<Text>,
        /// A JSON object.
        details -> Jsonb,
    }
}

diesel::table! {
    /// The durable mail outbox: one row per message, written by a journal.
    outbox (id) {
        /// Identifier (UUID v7): also the message's `Message-ID`.
        id -> Uuid,
        /// `MailKind::as_str`.
        kind -> Text,
        /// When it was queued.
        created_at -> Timestamptz,
        /// The sealed message; NULL once delivered.
        payload -> Nullable<Bytea>,
        /// Failed delivery attempts so far.
        attempts -> Int4,
        /// Not to be tried before this instant.
        next_attempt_at -> Timestamptz,
        /// Claimed by a worker until this instant.
        lease_until -> Nullable<Timestamptz>,
        /// When it was delivered.
        sent_at -> Nullable<Timestamptz>,
        /// When it was given up.
        failed_at -> Nullable<Timestamptz>,
        /// The reason of the last failed attempt.
        last_error -> Nullable<Text>,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));
diesel::joinable!(action_tokens -> users (user_id));
diesel::joinable!(memberships -> tenants (tenant_id));
diesel::joinable!(memberships -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    sessions,
    refresh_tokens,
    action_tokens,
    tenants,
    memberships,
    audit_events,
    outbox,
);

diesel::table! {
    /// Service accounts (other services that introspect tokens); no foreign keys.
    service_accounts (id) {
        /// Identifier (UUID v7).
        id -> Uuid,
        /// Unique regardless of case (`service_accounts_name_key` on `lower(name)`).
        name -> Text,
        /// Possibly empty.
        description -> Text,
        /// Public identifier, unique (`service_accounts_client_id_key`).
        client_id -> Text,
        /// Lower-case hex SHA-256 of the secret.
        secret_hash -> Text,
        /// Creation time.
        created_at -> Timestamptz,
        /// Last authentication, roughly.
        last_used_at -> Nullable<Timestamptz>,
    }
}
