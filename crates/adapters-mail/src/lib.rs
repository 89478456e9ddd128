//! Mailers for UMS: [`SmtpMailer`] sends through an SMTP server with lettre (TLS by rustls);
//! [`FileMailer`], the embedded default, writes each message as an `.eml` file instead. Both
//! compose the same multipart plain-text and HTML message with lettre.

mod file;
mod message;
mod smtp;

pub use file::FileMailer;
pub use message::SenderError;
pub use smtp::{SmtpConfigError, SmtpMailer, SmtpSecurity};
