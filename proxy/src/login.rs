//! The login name a user types: `user:account@target`, `user@target` or plain `user`.
//!
//! `ssh -p 2222 alice:root@web-01@bastion` makes OpenSSH send the user name
//! `alice:root@web-01` (it splits user and host at the *last* `@`), so the first `@`
//! separates the gatehouse user from the target, and a `:` in the user part names the
//! account on the target. A missing account means the target's default; a missing target
//! opens the interactive menu.

use std::fmt;

/// A parsed login name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// The gatehouse user.
    pub user: String,
    /// The account on the target, when named.
    pub account: Option<String>,
    /// The target, when named; `None` opens the menu.
    pub target: Option<String>,
}

/// Why a login name does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginError(String);

impl fmt::Display for LoginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LoginError {}

impl Login {
    /// Parses `user[:account][@target]`.
    pub fn parse(s: &str) -> Result<Login, LoginError> {
        let (user_part, target) = match s.split_once('@') {
            Some((u, t)) => (u, Some(t)),
            None => (s, None),
        };
        let (user, account) = match user_part.split_once(':') {
            Some((u, a)) => (u, Some(a)),
            None => (user_part, None),
        };
        let bad = |what: &str| LoginError(format!("login {s:?}: empty {what} (use user:account@target)"));
        if user.is_empty() {
            return Err(bad("user"));
        }
        if account.is_some_and(str::is_empty) {
            return Err(bad("account"));
        }
        if target.is_some_and(str::is_empty) {
            return Err(bad("target"));
        }
        if target.is_some_and(|t| t.contains('@')) {
            return Err(LoginError(format!("login {s:?}: more than one '@' in the target name")));
        }
        Ok(Login { user: user.into(), account: account.map(Into::into), target: target.map(Into::into) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> (String, Option<String>, Option<String>) {
        let l = Login::parse(s).unwrap();
        (l.user, l.account, l.target)
    }

    #[test]
    fn forms() {
        let s = |x: &str| Some(x.to_string());
        assert_eq!(ok("alice:root@web-01"), ("alice".into(), s("root"), s("web-01")));
        assert_eq!(ok("alice@web-01"), ("alice".into(), None, s("web-01")));
        assert_eq!(ok("alice"), ("alice".into(), None, None));
        assert_eq!(ok("alice:deploy"), ("alice".into(), s("deploy"), None));
    }

    #[test]
    fn errors_name_the_part() {
        for (input, part) in [("", "user"), (":root@x", "user"), ("a:@x", "account"), ("a@", "target")] {
            let e = Login::parse(input).unwrap_err().to_string();
            assert!(e.contains(part), "{input}: {e}");
        }
        assert!(Login::parse("a@b@c").is_err());
    }
}
