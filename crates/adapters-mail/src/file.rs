//! `FileMailer`: the [`Mailer`] port writing one `.eml` file per message into a folder.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::Utc;
use domain::ports::{MailError, Mailer, OutgoingMail};
use uuid::Uuid;

use crate::message::{Message, render, single_line};

/// Why a [`FileMailer`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileMailerError {
    /// The sender address is empty.
    #[error("the sender address must not be empty")]
    EmptyFrom,
    /// The sender address holds a line break or another control character.
    #[error("the sender address must not contain line breaks or control characters")]
    InvalidFrom,
}

/// Writes every message as an RFC 5322 file `<UTC time>-<UUID v7>.eml` in a folder (created
/// when missing), so the files sort by time and never collide (the UUID is unique even within
/// one microsecond, and the file is created with `create_new`). Nothing is sent.
///
/// Each file is written under a hidden temporary name and then renamed, so a reader watching
/// the folder never sees half a message. Messages hold live tokens: the folder must be as
/// private as a mailbox. The log names the file, never the body.
#[derive(Debug, Clone)]
pub struct FileMailer {
    dir: PathBuf,
    from: String,
    /// Right-hand side of the Message-ID: the sender's domain.
    id_domain: String,
}

impl FileMailer {
    /// A mailer writing into `dir` with `from` as the sender, e.g.
    /// `UMS <no-reply@example.com>`.
    ///
    /// # Errors
    /// [`FileMailerError`] when `from` is empty or contains a control character (a line break
    /// would let it add headers).
    pub fn new(dir: PathBuf, from: String) -> Result<Self, FileMailerError> {
        if from.trim().is_empty() {
            return Err(FileMailerError::EmptyFrom);
        }
        if from.chars().any(char::is_control) {
            return Err(FileMailerError::InvalidFrom);
        }
        let from = from.trim().to_owned();
        let id_domain = from
            .rsplit_once('@')
            .map(|(_, domain)| domain.trim_end_matches('>').trim())
            .filter(|domain| {
                !domain.is_empty()
                    && domain
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            })
            .unwrap_or("localhost")
            .to_owned();
        Ok(Self {
            dir,
            from,
            id_domain,
        })
    }

    /// The folder the messages are written to.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Creates the folder if needed and writes `contents` to `dir/name`, via a temporary file in
/// the same folder that is renamed into place (`name` is unique, so nothing is overwritten).
///
/// The file is readable by its owner only (0600 on Unix): a message carries one-time tokens.
fn write_atomically(dir: &Path, name: &str, contents: &[u8]) -> std::io::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    let temporary = dir.join(format!(".{name}.tmp"));
    let target = dir.join(name);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let written = options
        .open(&temporary)
        .and_then(|mut file| {
            file.write_all(contents)?;
            file.sync_all()
        })
        .and_then(|()| fs::rename(&temporary, &target));
    if let Err(error) = written {
        // Best effort: the temporary file may not even exist.
        let _ = fs::remove_file(&temporary);
        return Err(error);
    }
    Ok(target)
}

#[async_trait]
impl Mailer for FileMailer {
    async fn send(&self, mail: OutgoingMail) -> Result<(), MailError> {
        let now = Utc::now();
        let id = Uuid::now_v7();
        let name = format!("{}-{id}.eml", now.format("%Y%m%dT%H%M%S%.6fZ"));
        let contents = render(&Message {
            from: &self.from,
            to: mail.to.as_str(),
            subject: &mail.subject,
            date: &now.to_rfc2822(),
            message_id: &format!("{id}@{}", self.id_domain),
            body: &mail.text,
        });
        let dir = self.dir.clone();
        let path =
            tokio::task::spawn_blocking(move || write_atomically(&dir, &name, contents.as_bytes()))
                .await
                .map_err(|e| MailError(Box::new(e)))?
                .map_err(|e| MailError(Box::new(e)))?;
        tracing::info!(
            path = %path.display(),
            subject = %single_line(&mail.subject),
            "mail written to file"
        );
        Ok(())
    }
}
