//! LOGIN and AUTHENTICATE PLAIN (RFC 9051 6.2), through the shared brute-force guard.

use crate::response::Code;
use crate::session::*;
use bureau_core::AuthError;

impl Session {
    pub(crate) async fn login(&mut self, tag: &str, login: &str, password: &str) {
        if !self.is_tls() {
            return self.no(tag, Code::PrivacyRequired, "issue STARTTLS first");
        }
        match self
            .ctx
            .auth
            .login(self.peer.ip().to_canonical(), login, password, "imap")
            .await
        {
            Ok(user) => {
                self.state = State::Authenticated(user);
                let c = self.capabilities();
                self.ok_code(tag, Code::Capability(&c), "logged in");
            }
            Err(AuthError::Refused) => self.no(
                tag,
                Code::Unavailable,
                "too many failed logins from your address",
            ),
            Err(AuthError::Internal(_)) => {
                self.no(tag, Code::Unavailable, "authentication unavailable")
            }
            Err(_) => self.no(tag, Code::AuthenticationFailed, "invalid credentials"),
        }
    }
}
