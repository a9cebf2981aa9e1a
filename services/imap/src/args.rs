//! The bytes of command arguments as imap-codec gives them: mailbox names, LIST patterns
//! and APPEND's message.

use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};

/// LIST and LSUB match the reference and the wildcard as one pattern.
pub(crate) fn list_pattern(reference: &Mailbox, wildcard: &ListMailbox) -> Vec<u8> {
    let mut p = mailbox_bytes(reference);
    p.extend_from_slice(match wildcard {
        ListMailbox::Token(t) => t.as_ref(),
        ListMailbox::String(s) => s.as_ref(),
    });
    p
}

/// A mailbox argument's bytes as the client sent them.
pub(crate) fn mailbox_bytes(m: &Mailbox) -> Vec<u8> {
    match m {
        Mailbox::Inbox => b"INBOX".to_vec(),
        Mailbox::Other(o) => o.inner().as_ref().to_vec(),
    }
}

/// The message of an APPEND, literal or literal8 (RFC 3516).
pub(crate) fn message_bytes(
    m: &imap_codec::imap_types::extensions::binary::LiteralOrLiteral8,
) -> Vec<u8> {
    use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
    match m {
        LiteralOrLiteral8::Literal(l) => l.data().to_vec(),
        LiteralOrLiteral8::Literal8(l) => l.data.to_vec(),
    }
}
