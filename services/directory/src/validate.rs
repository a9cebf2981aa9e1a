//! Syntax of the names an administrator types, with messages that say what to fix.

use crate::DirectoryError;

fn invalid(field: &'static str, message: impl Into<String>) -> DirectoryError {
    DirectoryError::Invalid {
        field,
        message: message.into(),
    }
}

/// A mail domain: lowercase ASCII labels (IDNs in their xn-- form), at least one dot.
pub fn domain(input: &str) -> Result<String, DirectoryError> {
    let d = input.trim().trim_end_matches('.').to_ascii_lowercase();
    if d.is_empty() {
        return Err(invalid("domain", "a domain name is required"));
    }
    if !d.is_ascii() {
        return Err(invalid(
            "domain",
            "use the ASCII (xn--) form of an internationalised domain name",
        ));
    }
    if d.len() > 253 {
        return Err(invalid("domain", "a domain name is at most 253 characters"));
    }
    if !d.contains('.') {
        return Err(invalid(
            "domain",
            format!("'{d}' needs a dot, as in example.com"),
        ));
    }
    for label in d.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(invalid(
                "domain",
                "each part between dots is 1 to 63 characters",
            ));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(invalid(
                "domain",
                format!("'{label}' may hold only letters, digits and '-'"),
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid(
                "domain",
                format!("'{label}' cannot begin or end with '-'"),
            ));
        }
    }
    Ok(d)
}

/// An address in one of our domains: `local@domain`, lowercased. '+' is kept for
/// sub-addressing, so it cannot appear in a mailbox name.
pub fn address(field: &'static str, input: &str) -> Result<(String, String), DirectoryError> {
    let a = input.trim().to_lowercase();
    let Some((local, dom)) = a.rsplit_once('@') else {
        return Err(invalid(
            field,
            format!("'{input}' is not an address (name@domain)"),
        ));
    };
    let dom = domain(dom).map_err(|e| match e {
        DirectoryError::Invalid { message, .. } => invalid(field, message),
        other => other,
    })?;
    if local.is_empty() || local.len() > 64 {
        return Err(invalid(field, "the part before @ is 1 to 64 characters"));
    }
    if local.contains('+') {
        return Err(invalid(
            field,
            "'+' is reserved for sub-addresses (name+tag@domain)",
        ));
    }
    let ok_char = |c: char| c.is_alphanumeric() || "._-=!#$%&'*/?^`{|}~".contains(c);
    if !local.chars().all(ok_char) {
        return Err(invalid(
            field,
            "the part before @ may hold letters, digits and . _ - only (and a few symbols)",
        ));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(invalid(
            field,
            "dots cannot begin, end or repeat in the part before @",
        ));
    }
    Ok((local.to_string(), dom))
}

/// A login or group name: what Samba, LDAP uid and short logins use.
pub fn name(field: &'static str, input: &str) -> Result<String, DirectoryError> {
    let n = input.trim().to_ascii_lowercase();
    let mut chars = n.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if n.is_empty() || n.len() > 32 || !first_ok || !rest_ok {
        return Err(invalid(
            field,
            format!(
                "'{input}': 1 to 32 characters, a letter first, then letters, digits, '.', '_' or '-'"
            ),
        ));
    }
    Ok(n)
}

pub fn display_name(input: &str) -> Result<String, DirectoryError> {
    let d = input.trim();
    if d.chars().count() > 256 {
        return Err(invalid("display_name", "at most 256 characters"));
    }
    if d.chars().any(|c| c.is_control()) {
        return Err(invalid("display_name", "no control characters"));
    }
    Ok(d.to_string())
}

/// A telephone number as people write it (digits, spaces, + - . ( ) /); empty: none.
pub fn phone(input: &str) -> Result<Option<String>, DirectoryError> {
    let p = input.trim();
    if p.is_empty() {
        return Ok(None);
    }
    if p.chars().count() > 40
        || !p.chars().any(|c| c.is_ascii_digit())
        || !p
            .chars()
            .all(|c| c.is_ascii_digit() || " +-.()/".contains(c))
    {
        return Err(invalid(
            "phone",
            "a telephone number: digits, spaces and + - . ( ) /, at most 40",
        ));
    }
    Ok(Some(p.to_string()))
}

/// The password rules: long enough, not the login itself.
pub fn password(input: &str, min_len: usize, login: &str) -> Result<(), DirectoryError> {
    let n = input.chars().count();
    if n < min_len {
        return Err(invalid(
            "password",
            format!("at least {min_len} characters (this one has {n})"),
        ));
    }
    if input.len() > 1024 {
        return Err(invalid("password", "at most 1024 bytes"));
    }
    if !login.is_empty() && input.to_lowercase().contains(&login.to_lowercase()) {
        return Err(invalid(
            "password",
            "the password cannot contain the login name",
        ));
    }
    if input
        .chars()
        .all(|c| c == input.chars().next().unwrap_or(' '))
    {
        return Err(invalid(
            "password",
            "a single repeated character is not a password",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains() {
        assert_eq!(domain("Example.COM.").unwrap(), "example.com");
        assert_eq!(
            domain("xn--bcher-kva.example").unwrap(),
            "xn--bcher-kva.example"
        );
        for bad in [
            "",
            "localhost",
            "bücher.de",
            "-a.com",
            "a..com",
            "a_b.com",
            "a b.com",
        ] {
            assert!(domain(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn addresses() {
        assert_eq!(
            address("address", "Alice.Martin@Example.com").unwrap(),
            ("alice.martin".into(), "example.com".into())
        );
        for bad in [
            "alice",
            "@example.com",
            "a+b@example.com",
            ".a@example.com",
            "a..b@example.com",
            "a b@example.com",
            "a@b",
            "a\"b@example.com",
            "a<b@example.com",
        ] {
            assert!(address("address", bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn names_and_passwords() {
        assert_eq!(name("uid", "Alice").unwrap(), "alice");
        for bad in ["", "1abc", "a/b", "a b", &"a".repeat(33)] {
            assert!(name("uid", bad).is_err(), "{bad} accepted");
        }
        assert!(password("correct horse", 8, "alice").is_ok());
        assert!(password("short", 8, "alice").is_err());
        assert!(password("alice2026!", 8, "alice").is_err());
        assert!(password("aaaaaaaaaaaa", 8, "bob").is_err());
    }
}
