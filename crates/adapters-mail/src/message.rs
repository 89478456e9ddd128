//! Rendering an RFC 5322 plain-text message, with header values that cannot inject headers.

use std::fmt::Write as _;

/// Longest encoded word RFC 2047 allows.
const MAX_ENCODED_WORD: usize = 75;
/// `=?utf-8?Q?` and `?=`.
const ENCODED_WORD_OVERHEAD: usize = 12;

/// What goes into one message.
#[derive(Debug)]
pub(crate) struct Message<'a> {
    pub(crate) from: &'a str,
    pub(crate) to: &'a str,
    pub(crate) subject: &'a str,
    /// RFC 5322 date, e.g. `Wed, 1 Jan 2025 12:00:00 +0000`.
    pub(crate) date: &'a str,
    /// Without the angle brackets.
    pub(crate) message_id: &'a str,
    pub(crate) body: &'a str,
}

/// A header value on one line: every control character (CR and LF above all, which would end
/// the header and start another) becomes a space, and the ends are trimmed.
pub(crate) fn single_line(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// An unstructured header value (the subject): on one line, and as RFC 2047 `Q` encoded words,
/// folded between words, when it is not plain ASCII.
fn unstructured(value: &str) -> String {
    let value = single_line(value);
    if value.is_ascii() {
        return value;
    }
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    for c in value.chars() {
        let mut encoded = String::new();
        if c == ' ' {
            encoded.push('_');
        } else if c.is_ascii_alphanumeric() || "!*+-/".contains(c) {
            encoded.push(c);
        } else {
            let mut buf = [0u8; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                // Writing to a String cannot fail.
                let _ = write!(encoded, "={byte:02X}");
            }
        }
        if current.len() + encoded.len() > MAX_ENCODED_WORD - ENCODED_WORD_OVERHEAD {
            words.push(std::mem::take(&mut current));
        }
        current.push_str(&encoded);
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
        .iter()
        .map(|word| format!("=?utf-8?Q?{word}?="))
        .collect::<Vec<_>>()
        .join("\r\n ")
}

/// The body with every line ending (`\r\n`, `\n` or a lone `\r`) as CRLF, ending with one.
fn crlf_body(body: &str) -> String {
    let unified = body.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = unified.replace('\n', "\r\n");
    if !out.ends_with("\r\n") {
        out.push_str("\r\n");
    }
    out
}

/// The whole message: headers, a blank line, the body; every line ending CRLF.
pub(crate) fn render(message: &Message<'_>) -> String {
    let headers = [
        ("From", single_line(message.from)),
        ("To", single_line(message.to)),
        ("Subject", unstructured(message.subject)),
        ("Date", single_line(message.date)),
        (
            "Message-ID",
            format!("<{}>", single_line(message.message_id)),
        ),
        ("MIME-Version", "1.0".to_owned()),
        ("Content-Type", "text/plain; charset=utf-8".to_owned()),
        ("Content-Transfer-Encoding", "8bit".to_owned()),
    ];
    let mut out = String::new();
    for (name, value) in headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(&value);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.push_str(&crlf_body(message.body));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_cannot_break_a_header_line() {
        assert_eq!(single_line(" a\r\nBcc: x\rb\nc\u{0}d "), "a  Bcc: x b c d");
    }

    #[test]
    fn non_ascii_subjects_become_short_encoded_words() {
        assert_eq!(unstructured("Grüße"), "=?utf-8?Q?Gr=C3=BC=C3=9Fe?=");
        assert_eq!(unstructured("plain ascii"), "plain ascii");
        let long = unstructured(&"é".repeat(60));
        for word in long.split("\r\n ") {
            assert!(word.len() <= MAX_ENCODED_WORD, "{word}");
            assert!(
                word.starts_with("=?utf-8?Q?") && word.ends_with("?="),
                "{word}"
            );
        }
        assert!(long.is_ascii());
    }

    #[test]
    fn line_endings_become_crlf() {
        assert_eq!(crlf_body("a\nb\r\nc\rd"), "a\r\nb\r\nc\r\nd\r\n");
        assert_eq!(crlf_body("a\r\n"), "a\r\n");
    }
}
