//! Mail: the messages the use cases send (plain text and HTML), sealing them into a journal,
//! and the delivery worker that empties the durable outbox through the [`Mailer`].
//!
//! A use case never talks to a mail server: it puts the sealed message into the journal of
//! the change that causes it, so the store commits both or neither. [`MailDelivery`] claims due
//! messages, opens and sends them, and records the outcome, retrying with exponential backoff;
//! a slow or refusing server delays mail, never an HTTP request.
//!
//! [`Mailer`]: crate::ports::Mailer

use super::Ports;
use crate::model::{Email, MailKind, OutgoingMail, SealedMail, User};
use crate::ports::{ClaimedMail, MailError, SealError, StoreError};
use crate::settings::AuthSettings;
use chrono::{DateTime, TimeDelta, Utc};

/// Characters of HTML that must be escaped in text and attribute values.
fn escape_html(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An HTML document: paragraphs (already escaped), an optional button link, and more
/// paragraphs after it.
fn html_page(
    title: &str,
    paragraphs: &[String],
    link: Option<(&str, &str)>,
    after: &[String],
) -> String {
    let paragraph = |body: &mut String, text: &str| {
        body.push_str("<p>");
        body.push_str(text);
        body.push_str("</p>\n");
    };
    let mut body = String::new();
    for text in paragraphs {
        paragraph(&mut body, text);
    }
    if let Some((href, label)) = link {
        let href = escape_html(href);
        body.push_str(&format!(
            "<p><a href=\"{href}\" style=\"display:inline-block;padding:10px 16px;\
             background:#2457c5;color:#ffffff;text-decoration:none;border-radius:4px\">{}</a></p>\n\
             <p style=\"font-size:small;color:#555\">Or copy this link into your browser:<br>{href}</p>\n",
            escape_html(label)
        ));
    }
    for text in after {
        paragraph(&mut body, text);
    }
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n\
         <body style=\"font-family:sans-serif;line-height:1.5\">\n{body}</body></html>\n",
        escape_html(title)
    )
}

/// "24 hours", "1 hour", "30 minutes": a lifetime as a person would write it.
pub(crate) fn human_duration(duration: TimeDelta) -> String {
    let (n, unit) = if duration.num_minutes() < 120 && duration.num_minutes() % 60 != 0 {
        (duration.num_minutes(), "minute")
    } else {
        (duration.num_hours(), "hour")
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// `n***@example.com`: the first character of the local part and the domain.
fn mask_address(email: &Email) -> String {
    let (local, domain) = email
        .as_str()
        .split_once('@')
        .unwrap_or((email.as_str(), ""));
    let first: String = local.chars().take(1).collect();
    format!("{first}***@{domain}")
}

/// The time of an event as written in a message.
fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The messages of the account flows.
pub(crate) mod messages {
    use super::*;

    /// "Confirm your e-mail address", with the link and the bare token.
    pub(crate) fn verification(
        settings: &AuthSettings,
        to: &Email,
        name: &str,
        token: &str,
    ) -> OutgoingMail {
        let link = settings.verification_link(token);
        let lifetime = human_duration(settings.verification_ttl);
        OutgoingMail {
            to: to.clone(),
            subject: "Confirm your e-mail address".to_owned(),
            text: format!(
                "Hello {name},\n\nTo confirm your e-mail address, open this link:\n\n{link}\n\n\
                 or send this token to POST /api/v1/auth/verify-email:\n\ntoken: {token}\n\n\
                 It expires in {lifetime}. If you did not create this account, ignore this message.\n"
            ),
            html: html_page(
                "Confirm your e-mail address",
                &[
                    format!("Hello {},", escape_html(name)),
                    "To confirm your e-mail address, open this link:".to_owned(),
                ],
                Some((&link, "Confirm my address")),
                &[
                    format!("token: <code>{}</code>", escape_html(token)),
                    format!(
                        "It expires in {lifetime}. If you did not create this account, ignore \
                         this message."
                    ),
                ],
            ),
        }
    }

    /// "Reset your password", with the link and the bare token.
    pub(crate) fn password_reset(
        settings: &AuthSettings,
        user: &User,
        token: &str,
    ) -> OutgoingMail {
        let link = settings.reset_link(token);
        let lifetime = human_duration(settings.reset_ttl);
        let name = user.username.as_str();
        OutgoingMail {
            to: user.email.clone(),
            subject: "Reset your password".to_owned(),
            text: format!(
                "Hello {name},\n\nSomeone asked to reset the password of your account. To choose \
                 a new password, open this link:\n\n{link}\n\nor send this token with the new \
                 password to POST /api/v1/auth/password/reset:\n\ntoken: {token}\n\n\
                 It works once and expires in {lifetime}. Resetting signs you out everywhere. \
                 If you did not ask for this, ignore this message: your password stays as it is.\n"
            ),
            html: html_page(
                "Reset your password",
                &[
                    format!("Hello {},", escape_html(name)),
                    "Someone asked to reset the password of your account. To choose a new \
                     password, open this link:"
                        .to_owned(),
                ],
                Some((&link, "Choose a new password")),
                &[
                    format!("token: <code>{}</code>", escape_html(token)),
                    format!(
                        "It works once and expires in {lifetime}. Resetting signs you out \
                         everywhere. If you did not ask for this, ignore this message: your \
                         password stays as it is."
                    ),
                ],
            ),
        }
    }

    /// "Your password was changed".
    pub(crate) fn password_changed(user: &User, at: DateTime<Utc>, by_reset: bool) -> OutgoingMail {
        let name = user.username.as_str();
        let how = if by_reset {
            "was reset with a link sent to this address"
        } else {
            "was changed"
        };
        let at = when(at);
        let advice = "If this was you, there is nothing to do. If it was not, reset your \
                      password at once and tell your administrator.";
        OutgoingMail {
            to: user.email.clone(),
            subject: "Your password was changed".to_owned(),
            text: format!(
                "Hello {name},\n\nThe password of your account {how} on {at}. Every other \
                 session was signed out.\n\n{advice}\n"
            ),
            html: html_page(
                "Your password was changed",
                &[
                    format!("Hello {},", escape_html(name)),
                    format!(
                        "The password of your account {how} on {at}. Every other session was \
                         signed out."
                    ),
                    advice.to_owned(),
                ],
                None,
                &[],
            ),
        }
    }

    /// "Your e-mail address was changed", to the old address.
    pub(crate) fn email_changed(
        old: &Email,
        user: &User,
        new: &Email,
        at: DateTime<Utc>,
    ) -> OutgoingMail {
        let name = user.username.as_str();
        let at = when(at);
        // Only a hint of the new address: the old mailbox may be why it was changed.
        let masked = mask_address(new);
        let advice = "If you did not ask for this, tell your administrator at once.";
        OutgoingMail {
            to: old.clone(),
            subject: "Your e-mail address was changed".to_owned(),
            text: format!(
                "Hello {name},\n\nThe e-mail address of your account was changed on {at} from \
                 this address to {masked}. Messages about your account now go there.\n\n{advice}\n"
            ),
            html: html_page(
                "Your e-mail address was changed",
                &[
                    format!("Hello {},", escape_html(name)),
                    format!(
                        "The e-mail address of your account was changed on {at} from this \
                         address to {}. Messages about your account now go there.",
                        escape_html(&masked)
                    ),
                    advice.to_owned(),
                ],
                None,
                &[],
            ),
        }
    }
}

impl Ports {
    /// `mail` sealed for the outbox as a message of `kind`, queued now.
    ///
    /// # Errors
    /// [`SealError`] when sealing fails.
    pub(crate) fn seal_mail(
        &self,
        kind: MailKind,
        mail: &OutgoingMail,
    ) -> Result<SealedMail, SealError> {
        let id = self.ids.new_id();
        Ok(SealedMail {
            id,
            kind,
            created_at: self.clock.now(),
            sealed: self.seal.seal(id, mail)?,
        })
    }
}

/// How the delivery worker retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverySettings {
    /// Messages claimed per round. Default 1, so that a lease covers one delivery, not a
    /// batch sent one after the other.
    pub batch: u32,
    /// How long a claim keeps other workers off a message: longer than one delivery can
    /// take (the composition root refuses a lease shorter than two SMTP timeouts). Default 5
    /// minutes.
    pub lease: TimeDelta,
    /// Delivery attempts before a message is given up. Default 10.
    pub max_attempts: u32,
    /// Wait after the first failure, doubled after each further one. Default 10 seconds.
    pub first_backoff: TimeDelta,
    /// Longest wait between two attempts. Default 1 hour.
    pub max_backoff: TimeDelta,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            batch: 1,
            lease: TimeDelta::minutes(5),
            max_attempts: 10,
            first_backoff: TimeDelta::seconds(10),
            max_backoff: TimeDelta::hours(1),
        }
    }
}

impl DeliverySettings {
    /// The wait before the next attempt after `failures` failed ones (1 or more).
    #[must_use]
    pub fn backoff(&self, failures: u32) -> TimeDelta {
        let doublings = failures.saturating_sub(1).min(30);
        let factor = 1_i32 << doublings.min(20);
        self.first_backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }
}

/// What one round of delivery did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Messages delivered.
    pub sent: u32,
    /// Messages that failed and will be tried again.
    pub retrying: u32,
    /// Messages given up.
    pub dead: u32,
}

/// The delivery worker: empties the outbox through the mailer.
#[derive(Debug, Clone)]
pub struct MailDelivery {
    ports: Ports,
    settings: DeliverySettings,
}

impl MailDelivery {
    /// A worker over `ports`.
    #[must_use]
    pub fn new(ports: Ports, settings: DeliverySettings) -> Self {
        Self { ports, settings }
    }

    /// Claims the due messages and tries each once. The composition root calls this in a loop
    /// (again at once while a round was full, else after a pause).
    ///
    /// # Errors
    /// [`StoreError`] when the outbox cannot be read or written; a message whose outcome could
    /// not be recorded is retried after its lease.
    pub async fn deliver_due(&self) -> Result<DeliveryReport, StoreError> {
        let now = self.ports.clock.now();
        let claimed = self
            .ports
            .outbox
            .claim(now, now + self.settings.lease, self.settings.batch)
            .await?;
        let mut report = DeliveryReport::default();
        for message in claimed {
            self.deliver(message, &mut report).await?;
        }
        Ok(report)
    }

    async fn deliver(
        &self,
        claimed: ClaimedMail,
        report: &mut DeliveryReport,
    ) -> Result<(), StoreError> {
        let ClaimedMail { mail, attempts } = claimed;
        let (id, kind) = (mail.id, mail.kind);
        let outcome = match self.ports.seal.open(id, &mail.sealed) {
            Ok(open) => self.ports.mailer.send(id, open).await,
            // Another key (UMS_JWT_SECRET changed) or altered bytes: it never will open.
            Err(error) => Err(MailError::Permanent(Box::new(error))),
        };
        let now = self.ports.clock.now();
        match outcome {
            Ok(()) => {
                // The server has the message: recording that must not fail lightly, or the
                // message goes out again after its lease.
                let mut recorded = self.ports.outbox.mark_sent(id, now).await;
                for _ in 1..MARK_SENT_TRIES {
                    if recorded.is_ok() {
                        break;
                    }
                    recorded = self.ports.outbox.mark_sent(id, now).await;
                }
                if let Err(error) = recorded {
                    tracing::error!(mail_id = %id, %kind, error = %error, "mail delivered but not recorded; it will be sent again after its lease");
                    return Err(error);
                }
                tracing::info!(mail_id = %id, %kind, attempts = attempts + 1, "mail delivered");
                report.sent += 1;
            }
            Err(error) => {
                let failures = attempts + 1;
                let reason = reason_of(&error);
                let retry_at = match &error {
                    MailError::Transient(_) if failures < self.settings.max_attempts => {
                        Some(now + self.settings.backoff(failures))
                    }
                    _ => None,
                };
                self.ports
                    .outbox
                    .mark_failed(id, now, reason.clone(), retry_at)
                    .await?;
                if let Some(retry_at) = retry_at {
                    tracing::warn!(mail_id = %id, %kind, failures, %retry_at, reason = %reason, "mail delivery failed; will retry");
                    report.retrying += 1;
                } else {
                    tracing::error!(mail_id = %id, %kind, failures, reason = %reason, "mail delivery failed; giving up");
                    report.dead += 1;
                }
            }
        }
        Ok(())
    }

    /// The outbox's state, for the readiness probe.
    ///
    /// # Errors
    /// [`StoreError`] when the outbox cannot be read.
    pub async fn status(&self) -> Result<crate::ports::OutboxStatus, StoreError> {
        let since = self.ports.clock.now() - TimeDelta::hours(1);
        self.ports.outbox.status(since).await
    }
}

/// `word` with the address in it, if any, replaced by `address` (its brackets and
/// punctuation kept): `<bob@x.org>:` becomes `<address>:`.
fn mask_word(word: &str) -> String {
    if !word.contains('@') {
        return word.to_owned();
    }
    let punctuation = |c: char| "<>()[]{}\"',;:.".contains(c);
    let start = word.len() - word.trim_start_matches(punctuation).len();
    let end = word.trim_end_matches(punctuation).len().max(start);
    format!("{}address{}", &word[..start], &word[end..])
}

/// Attempts at recording a delivery before giving up on it.
const MARK_SENT_TRIES: u32 = 3;

/// The error and its sources on one bounded line, as the outbox records and logs it, with
/// every e-mail address masked (servers echo the recipient in their replies, and the reason
/// is stored and logged in clear while the message itself is sealed).
fn reason_of(error: &MailError) -> String {
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    let reason: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    reason
        .split(' ')
        .map(mask_word)
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(500)
        .collect()
}
