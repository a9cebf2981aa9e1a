//! The words the admin API says to people, from the console's catalogues (one per
//! language, `web-admin/i18n/<language>.json`, for the console and the server alike): by
//! key, with `{names}` filled in, in the first language of the request's Accept-Language
//! the console has (it sends its own), else English.

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::OnceLock;

const CATALOGUES: [(&str, &str); 2] = [
    ("en", include_str!("../../../web-admin/i18n/en.json")),
    ("fr", include_str!("../../../web-admin/i18n/fr.json")),
];

type Catalogue = HashMap<String, String>;

fn catalogues() -> &'static [(&'static str, Catalogue)] {
    static READ: OnceLock<Vec<(&'static str, Catalogue)>> = OnceLock::new();
    READ.get_or_init(|| {
        CATALOGUES
            .iter()
            .map(|(lang, json)| (*lang, serde_json::from_str(json).unwrap_or_default()))
            .collect()
    })
}

/// One language's words.
#[derive(Clone, Copy)]
pub struct Words(&'static Catalogue);

impl Words {
    pub fn english() -> Words {
        Words(&catalogues()[0].1)
    }

    /// The first language of an Accept-Language value ("fr-FR,fr;q=0.9,en;q=0.8") there
    /// is a catalogue for; English else.
    pub fn of(accept: Option<&str>) -> Words {
        let wanted = accept.unwrap_or("").split(',').map(|l| {
            let tag = l.split(';').next().unwrap_or("").trim();
            tag.split('-').next().unwrap_or("").to_ascii_lowercase()
        });
        for tag in wanted {
            if let Some((_, c)) = catalogues().iter().find(|(lang, _)| *lang == tag) {
                return Words(c);
            }
        }
        Words::english()
    }

    /// The text of `key`, its `{names}` filled in from `vars` (the key itself if the
    /// catalogue lacks it: a test holds every key the server says in both).
    pub fn say(&self, key: &str, vars: &[(&str, &dyn Display)]) -> String {
        let mut text = self.0.get(key).cloned().unwrap_or_else(|| key.to_string());
        for (name, value) in vars {
            text = text.replace(&format!("{{{name}}}"), &value.to_string());
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_the_server_says_is_in_every_catalogue() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
        let said = regex_lite_keys(dir);
        assert!(said.len() > 20, "{said:?}");
        for (lang, c) in catalogues() {
            let missing: Vec<&String> = said.iter().filter(|k| !c.contains_key(*k)).collect();
            assert!(missing.is_empty(), "{lang} lacks {missing:?}");
        }
        let fr = Words::of(Some("fr-FR,fr;q=0.9,en;q=0.8"));
        assert_eq!(fr.say("health_disk", &[]), catalogues()[1].1["health_disk"]);
        assert_eq!(Words::of(Some("de")).say("health_disk", &[]), "Disk");
        let unknown = "no_such_key";
        assert_eq!(Words::of(None).say(unknown, &[]), unknown);
    }

    /// The keys of `say("…"` calls in the crate's sources.
    fn regex_lite_keys(dir: &str) -> Vec<String> {
        let mut keys = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            for part in text.split("say(\"").skip(1) {
                if let Some(key) = part.split('"').next()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                {
                    keys.push(key.to_string());
                }
            }
        }
        keys.sort();
        keys.dedup();
        keys
    }
}
