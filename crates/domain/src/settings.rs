//! The tunable rules of the use cases (lifetimes, password rules), with their defaults.

use chrono::TimeDelta;

use crate::model::PasswordRules;

/// Settings of the authentication and account use cases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// Access-token lifetime. Default 15 minutes.
    pub access_ttl: TimeDelta,
    /// Session (refresh-token family) lifetime. Default 7 days.
    pub refresh_ttl: TimeDelta,
    /// Session lifetime with `remember_me`. Default 30 days.
    pub remember_me_ttl: TimeDelta,
    /// Lifetime of an e-mail verification token. Default 24 hours.
    pub verification_ttl: TimeDelta,
    /// Clock-skew tolerance of the token codec (its `exp` leeway). A revoked session stays on
    /// the fast-path list for `access_ttl + clock_skew`, the longest an access token issued for
    /// it can still be accepted. Default 5 seconds.
    pub clock_skew: TimeDelta,
    /// Failed logins for one login name that lock it. Default 5.
    pub login_max_failures: u32,
    /// The window in which failures are counted, and so the longest lockout. Default 15 minutes.
    pub login_window: TimeDelta,
    /// Rules for new passwords.
    pub password_rules: PasswordRules,
    /// Link e-mailed for address verification, with `{token}` where the token goes (for a
    /// front end that posts it back). Without it the e-mail carries the bare token.
    pub verify_email_url: Option<String>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            access_ttl: TimeDelta::minutes(15),
            refresh_ttl: TimeDelta::days(7),
            remember_me_ttl: TimeDelta::days(30),
            verification_ttl: TimeDelta::hours(24),
            clock_skew: TimeDelta::seconds(5),
            login_max_failures: 5,
            login_window: TimeDelta::minutes(15),
            password_rules: PasswordRules::default(),
            verify_email_url: None,
        }
    }
}

impl AuthSettings {
    /// How long after its revocation an access token of a session can still be presented with
    /// a valid signature and `exp`: the access-token lifetime plus the clock-skew tolerance.
    #[must_use]
    pub fn revocation_window(&self) -> TimeDelta {
        self.access_ttl + self.clock_skew
    }
}
