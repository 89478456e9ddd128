//! `SmtpMailer`: the [`Mailer`] port over SMTP with lettre, TLS by rustls.
//!
//! The transport comes from one URL (`UMS_SMTP_URL`), as lettre reads it: `smtps://` is SMTP
//! over TLS (port 465), `smtp://...?tls=required` STARTTLS that must succeed (587), and plain
//! `smtp://` no encryption at all, for a relay on the same host or a test server. Credentials
//! go in the URL's user and password (percent-encoded).

use std::time::Duration;

use async_trait::async_trait;
use domain::model::OutgoingMail;
use domain::ports::{MailError, Mailer};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::message::{Sender, SenderError};

/// Why an [`SmtpMailer`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SmtpConfigError {
    /// The URL is not one lettre understands (its text is not repeated: it may hold a password).
    #[error("UMS_SMTP_URL is not a valid smtp:// or smtps:// URL: {0}")]
    Url(String),
    /// The sender address is refused.
    #[error(transparent)]
    Sender(#[from] SenderError),
}

/// How a URL protects the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// SMTP over TLS from the first byte (`smtps://`).
    Tls,
    /// STARTTLS, required (`smtp://...?tls=required`).
    StartTls,
    /// STARTTLS if the server offers it (`?tls=opportunistic`): open to a downgrade.
    Opportunistic,
    /// None (`smtp://`).
    None,
}

impl SmtpSecurity {
    /// What `url` asks for, read the way lettre reads it.
    #[must_use]
    pub fn of(url: &str) -> Self {
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("smtps://") {
            Self::Tls
        } else if lower.contains("tls=required") {
            Self::StartTls
        } else if lower.contains("tls=opportunistic") {
            Self::Opportunistic
        } else {
            Self::None
        }
    }
}

/// Sends through one SMTP server, one connection per message (mail is rare: a pool would
/// keep idle connections, and lettre's pool needs a runtime even when it is dropped).
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// The longest one delivery (or check) may take, connecting included: lettre bounds only
    /// the connection, so a server that stops answering would hold the worker for ever.
    timeout: Duration,
    sender: Sender,
    security: SmtpSecurity,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("security", &self.security)
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// A mailer for the server `url` names, sending as `from`; one delivery, from connecting to
    /// the server's last reply, takes at most `timeout`.
    ///
    /// # Errors
    /// [`SmtpConfigError`] for a URL lettre refuses or an invalid sender.
    pub fn new(url: &SecretString, from: &str, timeout: Duration) -> Result<Self, SmtpConfigError> {
        let sender = Sender::parse(from)?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
            .map_err(|e| SmtpConfigError::Url(e.to_string()))?
            .timeout(Some(timeout))
            .build();
        Ok(Self {
            transport,
            timeout,
            sender,
            security: SmtpSecurity::of(url.expose_secret()),
        })
    }

    /// How the connection is protected.
    #[must_use]
    pub fn security(&self) -> SmtpSecurity {
        self.security
    }

    /// Whether the server answers (connects, greets and accepts `NOOP`).
    ///
    /// # Errors
    /// [`MailError::Transient`] when it does not.
    pub async fn check(&self) -> Result<(), MailError> {
        match tokio::time::timeout(self.timeout, self.transport.test_connection()).await {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err(MailError::Transient(
                "the SMTP server did not answer".into(),
            )),
            Ok(Err(error)) => Err(MailError::Transient(Box::new(error))),
            Err(_) => Err(self.timed_out()),
        }
    }
}

impl SmtpMailer {
    fn timed_out(&self) -> MailError {
        MailError::Transient(
            format!("the SMTP server did not finish within {:?}", self.timeout).into(),
        )
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, id: Uuid, mail: OutgoingMail) -> Result<(), MailError> {
        let message = self.sender.compose(id, &mail)?;
        let Ok(sent) = tokio::time::timeout(self.timeout, self.transport.send(message)).await
        else {
            return Err(self.timed_out());
        };
        match sent {
            Ok(response) => {
                tracing::debug!(mail_id = %id, code = %response.code(), "SMTP server accepted the message");
                Ok(())
            }
            Err(error) if error.is_permanent() => Err(MailError::Permanent(Box::new(error))),
            Err(error) => Err(MailError::Transient(Box::new(error))),
        }
    }
}
