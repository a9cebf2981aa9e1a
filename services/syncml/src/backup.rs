//! IceWarp's `backup` URL parameter (`backup`, `backup=<prefix>`): each item a device sends
//! and the server stores is also written, as the device sent it, as a file in the user's
//! home folder on the office's file server, named `<prefix>YYYYMMDDNNNN.<ext>`: the day
//! (UTC) and a counter of that day's files of the prefix from 0001, so it starts again each
//! day. A file that cannot be written is logged; the item is stored all the same.

use bureau_core::homes::Homes;

/// The most characters of a prefix.
const MAX_PREFIX: usize = 64;

/// A URL's prefix, if it is one: letters, digits, `.`, `-`, `_`.
pub fn prefix(v: &str) -> Option<String> {
    let ok = v.len() <= MAX_PREFIX
        && !v.starts_with('.')
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    ok.then(|| v.to_string())
}

/// A file's extension for an item's content type.
fn ext(content_type: &str) -> &'static str {
    match content_type.to_ascii_lowercase().as_str() {
        "text/vcard" | "text/x-vcard" | "text/directory" => "vcf",
        "text/calendar" => "ics",
        "text/x-vcalendar" => "vcs",
        "text/plain" => "txt",
        "message/rfc822" => "eml",
        ct if ct.starts_with("text/x-s4j-sif") || ct.ends_with("+xml") => "xml",
        _ => "dat",
    }
}

/// The next free name of a day's files of a prefix.
fn next_name(existing: &[String], prefix: &str, day: &str, ext: &str) -> String {
    let stem = format!("{prefix}{day}");
    let last = existing
        .iter()
        .filter_map(|n| {
            let rest = n.strip_prefix(&stem)?;
            let (count, _) = rest.split_once('.')?;
            (count.len() == 4)
                .then(|| count.parse::<u32>().ok())
                .flatten()
        })
        .max()
        .unwrap_or(0);
    format!("{stem}{:04}.{ext}", last + 1)
}

/// Writes a Sync command's items (content type, data) as files; blocking.
pub fn write(homes: &Homes, uid: &str, prefix: &str, items: &[(String, String)]) {
    let day = chrono::Utc::now().format("%Y%m%d").to_string();
    for (ct, data) in items {
        let mut done = false;
        // Another session may take a name in between: the next one, then.
        for _ in 0..5 {
            let existing = homes.names(uid).unwrap_or_default();
            let name = next_name(&existing, prefix, &day, ext(ct));
            match homes.write_new(uid, &name, data.as_bytes()) {
                Ok(_) => done = true,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => log::warn!("syncml: backup of an item into {uid}'s files: {e}"),
            }
            break;
        }
        if !done {
            log::warn!("syncml: an item of {uid}'s was not backed up");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_count_the_days_files_of_a_prefix() {
        let have = [
            "phone-202612050007.vcf",
            "phone-202612040042.vcf",
            "202612050003.ics",
            "notes.txt",
        ]
        .map(String::from);
        assert_eq!(
            next_name(&have, "phone-", "20261205", "vcf"),
            "phone-202612050008.vcf"
        );
        assert_eq!(next_name(&have, "", "20261205", "ics"), "202612050004.ics");
        assert_eq!(
            next_name(&have, "phone-", "20261206", "vcf"),
            "phone-202612060001.vcf"
        );
        assert_eq!(prefix("phone-"), Some("phone-".into()));
        assert_eq!(prefix("../etc"), None);
        assert_eq!(prefix("a b"), None);
        assert_eq!(ext("text/x-vcalendar"), "vcs");
    }
}
