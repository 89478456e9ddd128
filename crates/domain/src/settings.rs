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
    /// front end that posts it back). Default `{public_url}/verify-email?token={token}`.
    pub verify_email_url: Option<String>,
    /// Link e-mailed for a password reset, with `{token}` where the token goes. Default
    /// `{public_url}/reset-password?token={token}`.
    pub reset_password_url: Option<String>,
    /// The public base URL of the application the links in e-mails lead to, without a
    /// trailing slash. Default `http://localhost:8080`.
    pub public_url: String,
    /// Lifetime of a password-reset token. Default 1 hour.
    pub reset_ttl: TimeDelta,
    /// Least time between two verification or reset e-mails to one account. Default 60 s.
    pub mail_cooldown: TimeDelta,
    /// Whether login is refused until the address is verified. Default off.
    pub require_verified_email: bool,
    /// How long a password may be used: past it, login still succeeds but says a change is
    /// required, and the access tokens allow nothing but reading one's account and changing
    /// the password until it is changed (see [`crate::policy::password_change_required`]).
    /// Default `None`: passwords do not age.
    pub password_max_age: Option<TimeDelta>,
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
            reset_password_url: None,
            public_url: "http://localhost:8080".to_owned(),
            reset_ttl: TimeDelta::hours(1),
            mail_cooldown: TimeDelta::seconds(60),
            require_verified_email: false,
            password_max_age: None,
        }
    }
}

impl AuthSettings {
    /// The link for a verification token.
    #[must_use]
    pub fn verification_link(&self, token: &str) -> String {
        link(
            self.verify_email_url.as_deref(),
            &self.public_url,
            "verify-email",
            token,
        )
    }

    /// The link for a password-reset token.
    #[must_use]
    pub fn reset_link(&self, token: &str) -> String {
        link(
            self.reset_password_url.as_deref(),
            &self.public_url,
            "reset-password",
            token,
        )
    }

    /// How long after its revocation an access token of a session can still be presented with
    /// a valid signature and `exp`: the access-token lifetime plus the clock-skew tolerance.
    #[must_use]
    pub fn revocation_window(&self) -> TimeDelta {
        self.access_ttl + self.clock_skew
    }
}

/// `template` with `{token}` replaced, or `{base}/{page}?token={token}`.
fn link(template: Option<&str>, base: &str, page: &str, token: &str) -> String {
    match template {
        Some(template) => template.replace("{token}", token),
        None => format!("{}/{page}?token={token}", base.trim_end_matches('/')),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_come_from_the_template_or_the_public_url() {
        let mut settings = AuthSettings {
            public_url: "https://app.example.com/".to_owned(),
            ..AuthSettings::default()
        };
        assert_eq!(
            settings.verification_link("abc"),
            "https://app.example.com/verify-email?token=abc"
        );
        assert_eq!(
            settings.reset_link("abc"),
            "https://app.example.com/reset-password?token=abc"
        );
        settings.reset_password_url = Some("https://x.test/r#t={token}".to_owned());
        assert_eq!(settings.reset_link("abc"), "https://x.test/r#t=abc");
    }
}
