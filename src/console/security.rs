//! The console's access rules: where it may listen (loopback unless
//! `--allow-remote`), the login token printed at start for a remote console
//! (compared in constant time), per-browser sessions held in a cookie, the
//! CSRF token every POST must carry, and the response headers (strict CSP,
//! no sniffing, no referrer). Input: the listen address, request cookies and
//! form fields; output: decisions and header values for `console::server`.
//! Tokens never go to logs or pages (but the CSRF token into its own forms).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use rand_core::{OsRng, RngCore};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::error::ConsoleError;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "crux_console";
/// The hidden form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf";
/// Sessions kept at most (beyond, the oldest not logged in is dropped first).
pub const MAX_SESSIONS: usize = 256;

/// Headers on every response.
pub const SECURITY_HEADERS: [(&str, &str); 5] = [
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-store"),
];

/// Who may use the console.
pub enum Access {
    /// Listening on loopback: whoever reaches it is the local user.
    Local,
    /// Listening beyond loopback (`--allow-remote`): a session must log in
    /// with this token first.
    Remote { token: Zeroizing<String> },
}

/// Refuses a non-loopback address unless `allow_remote`; says which access
/// rule applies.
pub fn access_for(listen: SocketAddr, allow_remote: bool) -> Result<Access, ConsoleError> {
    if listen.ip().is_loopback() {
        return Ok(Access::Local);
    }
    if !allow_remote {
        return Err(ConsoleError::RemoteNotAllowed { addr: listen });
    }
    Ok(Access::Remote { token: Zeroizing::new(random_token()) })
}

/// 128 random bits from the OS, as 32 hex digits.
pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Constant-time equality of two tokens (a length mismatch is not secret).
pub fn tokens_equal(given: &str, expected: &str) -> bool {
    given.len() == expected.len() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

/// One browser's session: its CSRF token and whether it has logged in.
#[derive(Clone, Debug)]
pub struct Session {
    pub id: String,
    pub csrf: String,
    pub logged_in: bool,
    /// whether the cookie must be (re)sent with this response
    pub fresh: bool,
}

/// Sessions by cookie value.
#[derive(Default)]
pub struct Sessions {
    by_id: HashMap<String, (Session, Instant)>,
}

impl Sessions {
    /// The session the cookie names, or a new one (logged in when `local`).
    pub fn resolve(&mut self, cookie: Option<&str>, local: bool) -> Session {
        if let Some(id) = cookie {
            if let Some((session, _)) = self.by_id.get(id) {
                return Session { fresh: false, ..session.clone() };
            }
        }
        self.create(local)
    }

    /// A new session with fresh random id and CSRF token.
    pub fn create(&mut self, logged_in: bool) -> Session {
        if self.by_id.len() >= MAX_SESSIONS {
            // the oldest session that has not logged in goes first, so that
            // browsers without a login cannot push out those with one
            let oldest =
                self.by_id.iter().min_by_key(|(_, (session, at))| (session.logged_in, *at)).map(|(id, _)| id.clone());
            if let Some(id) = oldest {
                self.by_id.remove(&id);
            }
        }
        let session = Session { id: random_token(), csrf: random_token(), logged_in, fresh: true };
        self.by_id.insert(session.id.clone(), (session.clone(), Instant::now()));
        session
    }

    /// Replaces `old` by a new logged-in session (a new id after login).
    pub fn log_in(&mut self, old: &str) -> Session {
        self.by_id.remove(old);
        self.create(true)
    }
}

/// The value of cookie `name` in a `Cookie` request header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').filter_map(|pair| pair.trim().split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// The `Set-Cookie` value for a session: not readable by scripts, sent only
/// with requests from the console's own pages.
pub fn session_cookie(session: &Session) -> String {
    format!("{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict", session.id)
}

/// Does a POST carry this session's CSRF token?
pub fn csrf_ok(session: &Session, given: Option<&str>) -> bool {
    given.is_some_and(|token| tokens_equal(token, &session.csrf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_only_unless_allowed() {
        assert!(matches!(access_for("127.0.0.1:8080".parse().unwrap(), false), Ok(Access::Local)));
        assert!(matches!(access_for("[::1]:8080".parse().unwrap(), false), Ok(Access::Local)));
        let refused = access_for("0.0.0.0:8080".parse().unwrap(), false).err().unwrap().to_string();
        assert!(refused.contains("--allow-remote"), "{refused}");
        match access_for("192.168.1.5:8080".parse().unwrap(), true) {
            Ok(Access::Remote { token }) => assert_eq!(token.len(), 32),
            _ => panic!("remote access expected"),
        }
    }

    #[test]
    fn tokens_and_cookies() {
        assert!(tokens_equal("abc", "abc"));
        assert!(!tokens_equal("abc", "abd"));
        assert!(!tokens_equal("abc", "abcd"));
        assert_ne!(random_token(), random_token());
        assert_eq!(cookie_value("a=1; crux_console=xyz; b=2", SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie_value("a=1", SESSION_COOKIE), None);
    }

    #[test]
    fn sessions_resolve_and_log_in() {
        let mut sessions = Sessions::default();
        let first = sessions.resolve(None, false);
        assert!(first.fresh && !first.logged_in);
        let again = sessions.resolve(Some(&first.id), false);
        assert_eq!(again.csrf, first.csrf);
        assert!(!again.fresh);
        assert!(csrf_ok(&again, Some(&first.csrf)));
        assert!(!csrf_ok(&again, None));
        assert!(!csrf_ok(&again, Some("0")));
        let logged = sessions.log_in(&first.id);
        assert!(logged.logged_in && logged.id != first.id);
        // the old id is gone: a new, logged-out session
        assert!(!sessions.resolve(Some(&first.id), false).logged_in);
        for _ in 0..MAX_SESSIONS + 5 {
            sessions.create(false);
        }
        assert!(sessions.by_id.len() <= MAX_SESSIONS);
        assert!(sessions.resolve(Some(&logged.id), false).logged_in, "a flood of new sessions keeps the logged-in one");
    }
}
