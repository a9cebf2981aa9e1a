//! Which commands each state allows (RFC 9051 3 and 6), in one table checked in one place
//! before any command runs: the dispatcher's arms then need no guards of their own.

use crate::ext::Ext;
use imap_codec::imap_types::command::CommandBody;

/// The states a command can be given in (Logout takes none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    NotAuthenticated,
    Authenticated,
    Selected,
}

/// Where a command is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Valid {
    /// Any state (RFC 9051 6.1; ID, RFC 2971 3.1).
    Any,
    /// Before authentication only (6.2).
    NotAuthenticated,
    /// Once authenticated, with or without a mailbox selected (6.3).
    Authenticated,
    /// With a mailbox selected (6.4).
    Selected,
}

pub(crate) fn valid(body: &CommandBody) -> Valid {
    use CommandBody as C;
    match body {
        C::Capability | C::Noop | C::Logout | C::Id { .. } => Valid::Any,
        C::StartTLS | C::Login { .. } | C::Authenticate { .. } => Valid::NotAuthenticated,
        C::Check
        | C::Close
        | C::Unselect
        | C::Expunge
        | C::ExpungeUid { .. }
        | C::Search { .. }
        | C::Sort { .. }
        | C::Thread { .. }
        | C::Fetch { .. }
        | C::Store { .. }
        | C::Copy { .. }
        | C::Move { .. } => Valid::Selected,
        _ => Valid::Authenticated,
    }
}

/// The same for the commands ext.rs parses.
pub(crate) fn valid_ext(e: &Ext) -> Valid {
    match e {
        Ext::Search { .. } => Valid::Selected,
        _ => Valid::Authenticated,
    }
}

/// Why a command valid in `valid` is refused in `phase` (the text of its BAD), if it is.
pub(crate) fn refusal(valid: Valid, phase: Phase) -> Option<&'static str> {
    match (valid, phase) {
        (Valid::Any, _)
        | (Valid::NotAuthenticated, Phase::NotAuthenticated)
        | (Valid::Authenticated, Phase::Authenticated | Phase::Selected)
        | (Valid::Selected, Phase::Selected) => None,
        (Valid::NotAuthenticated, _) => Some("already authenticated"),
        (_, Phase::NotAuthenticated) => Some("command not allowed before authentication"),
        (Valid::Selected, _) => Some("no mailbox selected"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table() {
        use Phase::*;
        assert_eq!(refusal(Valid::Any, NotAuthenticated), None);
        assert_eq!(
            refusal(Valid::NotAuthenticated, Selected),
            Some("already authenticated")
        );
        assert_eq!(
            refusal(Valid::Authenticated, NotAuthenticated),
            Some("command not allowed before authentication")
        );
        assert_eq!(
            refusal(Valid::Selected, Authenticated),
            Some("no mailbox selected")
        );
        assert_eq!(refusal(Valid::Authenticated, Selected), None);
    }
}
