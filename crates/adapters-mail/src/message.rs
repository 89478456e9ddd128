//! Composing a message with lettre: multipart/alternative plain text and HTML, the sender
//! parsed once, the message id fixed by the outbox (so every attempt carries the same
//! `Message-ID`), and header values encoded by lettre (no header injection).

use std::time::SystemTime;

use domain::model::OutgoingMail;
use domain::ports::MailError;
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use uuid::Uuid;

/// Why a sender address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the sender address must be a mailbox like `UMS <no-reply@example.com>`: {0}")]
pub struct SenderError(String);

/// The sender of every message and the right-hand side of their `Message-ID`s.
#[derive(Debug, Clone)]
pub(crate) struct Sender {
    from: Mailbox,
    id_domain: String,
}

impl Sender {
    /// Parses `from`, e.g. `UMS <no-reply@example.com>`.
    pub(crate) fn parse(from: &str) -> Result<Self, SenderError> {
        let from: Mailbox = from
            .trim()
            .parse()
            .map_err(|e: lettre::address::AddressError| SenderError(e.to_string()))?;
        let id_domain = from.email.domain().to_owned();
        Ok(Self { from, id_domain })
    }

    /// The message `id` as lettre builds it.
    pub(crate) fn compose(&self, id: Uuid, mail: &OutgoingMail) -> Result<Message, MailError> {
        let to: Mailbox = mail
            .to
            .as_str()
            .parse()
            .map_err(|e: lettre::address::AddressError| MailError::Permanent(Box::new(e)))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .date(SystemTime::now())
            .message_id(Some(format!("<{id}@{}>", self.id_domain)))
            .multipart(MultiPart::alternative_plain_html(
                mail.text.clone(),
                mail.html.clone(),
            ))
            .map_err(|e| MailError::Permanent(Box::new(e)))
    }
}
