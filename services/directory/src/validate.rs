//! Syntax of the names an administrator types, with messages that say what to fix.

use crate::DirectoryError;
use bureau_words::{Said, said};

pub(crate) fn invalid(field: &'static str, message: Said) -> DirectoryError {
    DirectoryError::Invalid { field, message }
}

/// A mail domain: lowercase ASCII labels (IDNs in their xn-- form), at least one dot.
pub fn domain(input: &str) -> Result<String, DirectoryError> {
    let d = input.trim().trim_end_matches('.').to_ascii_lowercase();
    if d.is_empty() {
        return Err(invalid("domain", said("err_a_domain_name_is_required")));
    }
    if !d.is_ascii() {
        return Err(invalid("domain", said("err_use_the_ascii_xn_form_of")));
    }
    if d.len() > 253 {
        return Err(invalid("domain", said("err_a_domain_name_is_at_most")));
    }
    if !d.contains('.') {
        return Err(invalid(
            "domain",
            said("err_needs_a_dot_as_in_example").with("d", &d),
        ));
    }
    for label in d.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(invalid("domain", said("err_each_part_between_dots_is_1")));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(invalid(
                "domain",
                said("err_may_hold_only_letters_digits_and").with("label", label),
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid(
                "domain",
                said("err_cannot_begin_or_end_with").with("label", label),
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
            said("err_is_not_an_address_name_domain").with("input", input),
        ));
    };
    let dom = domain(dom).map_err(|e| match e {
        DirectoryError::Invalid { message, .. } => invalid(field, message),
        other => other,
    })?;
    if local.is_empty() || local.len() > 64 {
        return Err(invalid(field, said("err_the_part_before_is_1_to")));
    }
    if local.contains('+') {
        return Err(invalid(
            field,
            said("err_is_reserved_for_sub_addresses_name"),
        ));
    }
    let ok_char = |c: char| c.is_alphanumeric() || "._-=!#$%&'*/?^`{|}~".contains(c);
    if !local.chars().all(ok_char) {
        return Err(invalid(field, said("err_the_part_before_may_hold_letters")));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(invalid(field, said("err_dots_cannot_begin_end_or_repeat")));
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
            said("err_1_to_32_characters_a_letter").with("input", input),
        ));
    }
    Ok(n)
}

pub fn display_name(input: &str) -> Result<String, DirectoryError> {
    let d = input.trim();
    if d.chars().count() > 256 {
        return Err(invalid("display_name", said("err_at_most_256_characters")));
    }
    if d.chars().any(|c| c.is_control()) {
        return Err(invalid("display_name", said("err_no_control_characters")));
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
            said("err_a_telephone_number_digits_spaces_and"),
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
            said("err_at_least_characters_this_one_has")
                .with("min_len", min_len)
                .with("n", n),
        ));
    }
    if input.len() > 1024 {
        return Err(invalid("password", said("err_at_most_1024_bytes")));
    }
    if !login.is_empty() && input.to_lowercase().contains(&login.to_lowercase()) {
        return Err(invalid(
            "password",
            said("err_the_password_cannot_contain_the_login"),
        ));
    }
    if input
        .chars()
        .all(|c| c == input.chars().next().unwrap_or(' '))
    {
        return Err(invalid(
            "password",
            said("err_a_single_repeated_character_is_not"),
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
