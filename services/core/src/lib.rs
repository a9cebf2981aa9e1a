//! What every service shares: configuration, TLS, the authentication entry point with its
//! brute-force guard, and logging.

pub mod acme;
pub mod auth;
pub mod beneath;
pub mod config;
pub mod fence;
pub mod files;
pub mod helper;
pub mod homes;
pub mod limits;
pub mod logging;
pub mod mailsearch;
pub mod mime;
pub mod net;
pub mod shutdown;
pub mod system;
pub mod tls;
pub mod url;

pub use auth::{Auth, AuthError};
pub use config::Config;
