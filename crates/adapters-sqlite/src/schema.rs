//! Diesel table definitions, written by hand to match `migrations/sqlite`.
//!
//! Ids are hyphenated UUID text; every timestamp is `BigInt` microseconds since the Unix epoch.

diesel::table! {
    /// User accounts.
    users (id) {
        /// Hyphenated UUID.
        id -> Text,
        /// Lower-cased e-mail address, unique (`users_email_key`).
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
        /// JSON object.
        preferences -> Text,
        /// Microseconds since the epoch.
        created_at -> BigInt,
        /// Microseconds since the epoch.
        updated_at -> BigInt,
        /// Microseconds since the epoch.
        last_login_at -> Nullable<BigInt>,
        /// Optimistic-concurrency version.
        version -> BigInt,
        /// Microseconds since the epoch: when the password was last set.
        password_changed_at -> BigInt,
    }
}

diesel::table! {
    /// Login sessions.
    sessions (id) {
        /// Hyphenated UUID.
        id -> Text,
        /// Owner.
        user_id -> Text,
        /// Microseconds since the epoch.
        created_at -> BigInt,
        /// Microseconds since the epoch.
        last_used_at -> BigInt,
        /// Microseconds since the epoch.
        expires_at -> BigInt,
        /// Microseconds since the epoch.
        revoked_at -> Nullable<BigInt>,
        /// Client's `User-Agent` at login.
        user_agent -> Nullable<Text>,
        /// Client's address at login.
        ip -> Nullable<Text>,
        /// The tenant the session's tokens are scoped to (no foreign key).
        tenant_id -> Nullable<Text>,
    }
}

diesel::table! {
    /// Refresh tokens (digests), each belonging to one session.
    refresh_tokens (token_hash) {
        /// Hex SHA-256 digest.
        token_hash -> Text,
        /// The session the token refreshes.
        session_id -> Text,
        /// Microseconds since the epoch.
        issued_at -> BigInt,
        /// When it was spent; microseconds since the epoch.
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// One-time e-mailed tokens (digests).
    action_tokens (token_hash) {
        /// Hex SHA-256 digest.
        token_hash -> Text,
        /// Whose token it is.
        user_id -> Text,
        /// `verify_email` or `reset_password`.
        purpose -> Text,
        /// Microseconds since the epoch.
        created_at -> BigInt,
        /// Microseconds since the epoch.
        expires_at -> BigInt,
        /// When it was spent; microseconds since the epoch.
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Tenants (organisations).
    tenants (id) {
        /// Hyphenated UUID.
        id -> Text,
        /// Display name.
        name -> Text,
        /// URL-safe name, unique (`tenants_slug_key`).
        slug -> Text,
        /// Free text, possibly empty.
        description -> Text,
        /// Internet domain, possibly empty.
        domain -> Text,
        /// JSON object.
        settings -> Text,
        /// Whether members may log in scoped to it.
        is_active -> Bool,
        /// Microseconds since the epoch.
        created_at -> BigInt,
        /// Microseconds since the epoch.
        updated_at -> BigInt,
        /// Optimistic-concurrency version.
        version -> BigInt,
    }
}

diesel::table! {
    /// One role per (tenant, user); the pair is the primary key.
    memberships (tenant_id, user_id) {
        /// The tenant.
        tenant_id -> Text,
        /// The member.
        user_id -> Text,
        /// `admin`, `moderator`, `member` or `viewer`.
        role -> Text,
        /// When they joined; microseconds since the epoch.
        created_at -> BigInt,
    }
}

diesel::table! {
    /// The append-only audit trail (no foreign keys: events outlive what they name).
    audit_events (id) {
        /// Hyphenated UUID.
        id -> Text,
        /// Microseconds since the epoch.
        at -> BigInt,
        /// Who did it.
        actor_id -> Nullable<Text>,
        /// In which tenant.
        tenant_id -> Nullable<Text>,
        /// Dotted action name.
        action -> Text,
        /// `user`, `tenant` or `session`.
        target_type -> Nullable<Text>,
        /// Hyphenated UUID of the target.
        target_id -> Nullable<Text>,
        /// Client's address.
        ip -> Nullable<Text>,
        /// The request that caused it.
        request_id -> Nullable<Text>,
        /// JSON object.
        details -> Text,
    }
}

diesel::table! {
    /// The durable mail outbox: one row per message, written by a journal.
    outbox (id) {
        /// Hyphenated UUID (v7): also the message's `Message-ID`.
        id -> Text,
        /// `MailKind::as_str`.
        kind -> Text,
        /// When it was queued; microseconds since the epoch.
        created_at -> BigInt,
        /// The sealed message; NULL once delivered.
        payload -> Nullable<Binary>,
        /// Failed delivery attempts so far.
        attempts -> Integer,
        /// Not to be tried before this instant; microseconds since the epoch.
        next_attempt_at -> BigInt,
        /// Claimed by a worker until this instant; microseconds since the epoch.
        lease_until -> Nullable<BigInt>,
        /// When it was delivered; microseconds since the epoch.
        sent_at -> Nullable<BigInt>,
        /// When it was given up; microseconds since the epoch.
        failed_at -> Nullable<BigInt>,
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
        /// Hyphenated UUID.
        id -> Text,
        /// Unique regardless of case (`service_accounts_name_key`).
        name -> Text,
        /// Possibly empty.
        description -> Text,
        /// Public identifier, unique (`service_accounts_client_id_key`).
        client_id -> Text,
        /// Lower-case hex SHA-256 of the secret.
        secret_hash -> Text,
        /// Microseconds since the epoch.
        created_at -> BigInt,
        /// Microseconds since the epoch.
        last_used_at -> Nullable<BigInt>,
    }
}
