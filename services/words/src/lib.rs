//! What Bureau says to people (the admin API's errors, the health view, the console), from
//! one catalogue per language (`web-admin/i18n/<language>.json`, shared with the console):
//! by key, with `{names}` filled in. An error is made as a [`Said`] (a key and its values),
//! shown in English by the CLI and the logs, and in the request's language by the console
//! (which says the key from its own catalogue).

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::sync::OnceLock;

const CATALOGUES: [(&str, &str); 2] = [
    ("en", include_str!("../../../web-admin/i18n/en.json")),
    ("fr", include_str!("../../../web-admin/i18n/fr.json")),
];

type Catalogue = HashMap<String, String>;

/// A language's catalogue as the console fetches it (`/admin/i18n/<language>.json`): the
/// one copy in the binary serves the console and the server.
pub fn catalogue_json(lang: &str) -> Option<&'static str> {
    CATALOGUES
        .iter()
        .find(|(l, _)| *l == lang)
        .map(|(_, json)| *json)
}

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

/// A sentence to say: a catalogue key and the values of its `{names}`. Shown in English
/// (Display), in another language with [`Said::in_words`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Said {
    pub key: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, String>,
}

/// The sentence of `key`, its values to come ([`Said::with`]).
pub fn said(key: &str) -> Said {
    Said {
        key: key.to_string(),
        args: BTreeMap::new(),
    }
}

impl Said {
    /// The value of `{name}`.
    pub fn with(mut self, name: &str, value: impl Display) -> Said {
        self.args.insert(name.to_string(), value.to_string());
        self
    }

    pub fn in_words(&self, w: Words) -> String {
        let vars: Vec<(&str, &dyn Display)> = self
            .args
            .iter()
            .map(|(k, v)| (k.as_str(), v as &dyn Display))
            .collect();
        w.say(&self.key, &vars)
    }
}

/// A kept `Option<Said>` that older releases kept as English text: such text is read as
/// `err_plain` with it (for `#[serde(deserialize_with)]`).
pub fn said_or_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Said>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Kept {
        Said(Said),
        Text(String),
    }
    Ok(match Option::<Kept>::deserialize(d)? {
        None => None,
        Some(Kept::Said(s)) => Some(s),
        Some(Kept::Text(t)) => Some(said("err_plain").with("error", t)),
    })
}

impl Display for Said {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.in_words(Words::english()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_the_server_says_is_in_every_catalogue() {
        let services = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let mut keys = Vec::new();
        for crate_dir in std::fs::read_dir(services).unwrap() {
            let src = crate_dir.unwrap().path().join("src");
            if src.is_dir() {
                keys.extend(keys_in(&src));
            }
        }
        assert!(keys.len() > 20, "{keys:?}");
        for (lang, c) in catalogues() {
            let missing: Vec<&String> = keys.iter().filter(|k| !c.contains_key(*k)).collect();
            assert!(missing.is_empty(), "{lang} lacks {missing:?}");
        }
        let fr = Words::of(Some("fr-FR,fr;q=0.9,en;q=0.8"));
        assert_eq!(fr.say("health_disk", &[]), "Disque");
        assert_eq!(Words::of(Some("de")).say("health_disk", &[]), "Disk");
        let unknown = "no_such_key";
        assert_eq!(Words::of(None).say(unknown, &[]), unknown);
        let s = said("health_dns_ok").with("name", "box.example");
        assert_eq!(s.to_string(), "box.example has an address in DNS.");
        assert_eq!(s.in_words(fr), "box.example a une adresse dans le DNS.");
    }

    /// The keys of `say("…"` and `said("…"` calls in a source folder and below.
    fn keys_in(dir: &std::path::Path) -> Vec<String> {
        let mut keys = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                keys.extend(keys_in(&path));
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for call in ["say(\"", "said(\""] {
                for part in text.split(call).skip(1) {
                    let key = part.split('"').next().unwrap_or("");
                    let plain = key
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                    if !key.is_empty() && plain {
                        keys.push(key.to_string());
                    }
                }
            }
        }
        keys.sort();
        keys.dedup();
        keys
    }
}
