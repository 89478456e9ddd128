//! Mailers for UMS. [`FileMailer`] writes each message as an `.eml` file for development and
//! tests, instead of sending it.

mod file;
mod message;

pub use file::{FileMailer, FileMailerError};
