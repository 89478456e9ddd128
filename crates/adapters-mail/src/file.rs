//! `FileMailer`: the [`Mailer`] port writing one `.eml` file per message into a folder.
//!
//! The embedded default: a newcomer's `cargo run` needs no mail server, and the messages
//! (tokens included) can be read from the folder.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::Utc;
use domain::model::OutgoingMail;
use domain::ports::{MailError, Mailer};
use uuid::Uuid;

use crate::message::{Sender, SenderError};

/// Writes every message as an RFC 5322 file `<UTC time>-<message id>.eml` in a folder (created
/// when missing), so the files sort by time and never collide (the outbox id is unique, and
/// the file is created with `create_new`). Nothing is sent.
///
/// Each file is written under a hidden temporary name and then renamed, so a reader watching
/// the folder never sees half a message. Messages hold live tokens: the folder must be as
/// private as a mailbox. The log names the file, never the body.
#[derive(Debug, Clone)]
pub struct FileMailer {
    dir: PathBuf,
    sender: Sender,
}

impl FileMailer {
    /// A mailer writing into `dir` with `from` as the sender, e.g.
    /// `UMS <no-reply@example.com>`.
    ///
    /// # Errors
    /// [`SenderError`] when `from` is not a mailbox.
    pub fn new(dir: PathBuf, from: &str) -> Result<Self, SenderError> {
        Ok(Self {
            dir,
            sender: Sender::parse(from)?,
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
    async fn send(&self, id: Uuid, mail: OutgoingMail) -> Result<(), MailError> {
        let now = Utc::now();
        let name = format!("{}-{id}.eml", now.format("%Y%m%dT%H%M%S%.6fZ"));
        let contents = self.sender.compose(id, &mail)?.formatted();
        let dir = self.dir.clone();
        let path = tokio::task::spawn_blocking(move || write_atomically(&dir, &name, &contents))
            .await
            .map_err(|e| MailError::Transient(Box::new(e)))?
            .map_err(|e| MailError::Transient(Box::new(e)))?;
        tracing::info!(mail_id = %id, path = %path.display(), "mail written to file");
        Ok(())
    }
}
