//! One file per command or family of commands, each an `impl Session` block; the
//! dispatcher and the table of which state allows which command are in session.rs and
//! state.rs.

pub(crate) mod acl;
pub(crate) mod append;
pub(crate) mod auth;
pub(crate) mod copy;
pub(crate) mod expunge;
pub(crate) mod ext;
pub(crate) mod fetch;
pub(crate) mod idle;
pub(crate) mod list;
pub(crate) mod mailbox;
pub(crate) mod quota;
pub(crate) mod search;
pub(crate) mod select;
pub(crate) mod store;
